"""Production parts around the core: data in and out, vector stores, weekly updates, the CLI.

==================  =====================================================
module              what
==================  =====================================================
``datasets``        load LlamaIndex / BEIR / CSV / JSONL datasets with a validation report
``embedders``       the embedding step behind one interface (local model, OpenAI-compatible API)
``stores``          guide step 6: apply the moved vectors to Qdrant or Milvus, with backup and rollback
``streaming``       :class:`NudgeState`: weekly labelled pairs, always applied to the original vectors
``remote``          fit NUDGE against a vector store without loading the corpus
``compat``          ``NUDGEM`` / ``NUDGEN``: drop-in replacements for the nudge-ft package
``cli``             the ``nudge`` command (``python -m nudge``)
==================  =====================================================
"""
