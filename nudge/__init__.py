"""nudge: a small, tested implementation of NUDGE for the teaching kit.

NUDGE (Zeighami, Wellmer, Parameswaran, arXiv 2409.02343) fine-tunes a retrieval system without
touching the embedding model: it moves the stored document vectors towards the training queries
they answer. The modules follow the phases of the practical guide:

=================  ==========================================================
phase              where
=================  ==========================================================
1 pairs, splits    :mod:`nudge.pairs`
3 MaxS-EFT         :mod:`nudge.directions`
4 MaxA-EFT         :mod:`nudge.gamma`
5 apply            :mod:`nudge.apply`
6 vector store     :mod:`nudge.stores` (Qdrant, Milvus; apply only moved rows, rollback)
weekly updates     :class:`nudge.NudgeState` (:mod:`nudge.streaming`)
past one machine   :func:`nudge.remote.fit_from_store` (fit without loading the corpus)
evaluation         :mod:`nudge.retrieval`, :mod:`nudge.metrics`
all at once        :class:`nudge.Nudge` (scikit-learn style), ``NUDGEM``/``NUDGEN`` (drop-in)
=================  ==========================================================
"""

__version__ = "0.1.0"

from ._io import load_embeddings, save_embeddings
from .apply import apply_nudge
from .compat import NUDGEM, NUDGEN, QueriesAnswersDict
from .estimator import NotFittedError, Nudge
from .gamma import REFERENCE_GRID
from .pairs import QuerySet, Split, as_query_set, group_pairs, index_answers, split_queries
from .streaming import NudgeState

__all__ = [
    "NUDGEM",
    "NUDGEN",
    "REFERENCE_GRID",
    "NotFittedError",
    "Nudge",
    "NudgeState",
    "QueriesAnswersDict",
    "QuerySet",
    "Split",
    "__version__",
    "apply_nudge",
    "as_query_set",
    "group_pairs",
    "index_answers",
    "load_embeddings",
    "save_embeddings",
    "split_queries",
]
