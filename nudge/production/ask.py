"""``nudge ask RUN "question"``: the passages a run's nudged vectors retrieve, and a cited answer (notebook 10).

::

    nudge ask RUN "how do I rotate a webhook secret"              # the top 5 passages (nudged vectors)
    nudge ask RUN "how do I rotate a webhook secret" --vectors original   # the same before NUDGE
    NUDGE_CHAT_MODEL=gpt-4o-mini nudge ask RUN "..."              # with OPENAI_API_KEY set: also the answer

The question is embedded with the run's embedder (``--embedder`` may swap in another embedder of
the same model, e.g. ``local`` for a question the bundled ``tessera`` vectors do not know). With a
chat endpoint configured (``OPENAI_API_KEY`` and ``NUDGE_CHAT_MODEL``, and ``OPENAI_BASE_URL`` for a
gateway or a local server) the numbered passages are sent to the model, which answers citing them;
the cited passages are listed by id and unusable citations are reported.

:func:`add_ask_parser` registers the subcommand on the ``nudge`` parser; :func:`run_ask` runs it.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path

import numpy as np

from .._io import load_embeddings
from .chat import CHAT_MODEL_VARIABLE, ChatClient, chat_configured
from .rag import Passage, answer_question, retrieve_passages

__all__ = ["add_ask_parser", "run_ask"]

_EMBEDDERS = ("tessera", "local", "openai")
_SHOWN_CHARS = 300  # of each passage's text, on one line


def add_ask_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``ask`` subcommand to the ``nudge`` parser's subparsers; it runs :func:`run_ask`."""
    ask = subparsers.add_parser(
        "ask",
        help="retrieve a question's passages with the run's nudged vectors and, with a chat endpoint, answer it",
        description="Embed QUESTION with the run's embedder, retrieve the top passages with the run's nudged "
        "document vectors (dot product) and print them, numbered as a prompt would number them. With a chat "
        f"endpoint configured (OPENAI_API_KEY and {CHAT_MODEL_VARIABLE}; OPENAI_BASE_URL for a gateway such as "
        "Apertis AI or a local server) send that prompt and print the answer with the passages it cites.",
    )
    ask.add_argument("run", help="run folder written by `nudge fit`")
    ask.add_argument("question", help="the user's question (quote it)")
    ask.add_argument("--k", type=int, default=5, help="passages in the prompt (default 5)")
    ask.add_argument(
        "--vectors",
        choices=("nudged", "original"),
        default="nudged",
        help="retrieve with the nudged document vectors (default) or the original ones, to compare",
    )
    ask.add_argument("--embedder", choices=_EMBEDDERS, help="override the run's embedder (same model only)")
    ask.add_argument("--cache-dir", help="embedding cache folder for --embedder openai (default the run's)")
    ask.add_argument("--no-answer", action="store_true", help="only retrieve, even with a chat endpoint configured")
    ask.set_defaults(func=run_ask)
    return ask


def _read_run(path: str) -> tuple[Path, dict]:
    from .cli import RUN_FILE

    run_dir = Path(path)
    file = run_dir / RUN_FILE
    if not file.is_file():
        raise ValueError(f"{path!r} is not a run folder (no {RUN_FILE}); create one with `nudge fit DATA --out {path}`")
    try:
        run = json.loads(file.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{file} is not valid JSON: {exc}") from None
    if not isinstance(run, dict) or not {"data", "embedder"} <= run.keys():
        raise ValueError(f"{file} is not a run description written by `nudge fit`")
    return run_dir, run


def _embedder(option: str, cache_dir: str | None):
    if option == "tessera":
        from ..teaching.bundled import tessera_embedder

        return tessera_embedder()
    if option == "local":
        from .embedders import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder()
    if option == "openai":
        from .embedders import OpenAIEmbedder

        return OpenAIEmbedder(cache_dir=cache_dir, progress=False)
    raise ValueError(f"--embedder must be one of {', '.join(_EMBEDDERS)}, got {option!r}")


def _corpus(run_dir: Path, run: dict, doc_ids: list[str]) -> dict[str, str]:
    from .cli import ADDED_FILE, load_valid

    dataset = load_valid(run["data"], **({"split": run["beir_split"]} if run.get("beir_split") else {}))
    texts = dict(dataset.corpus)
    if (run_dir / ADDED_FILE).is_file():
        texts.update(json.loads((run_dir / ADDED_FILE).read_text(encoding="utf-8")))
    missing = [d for d in doc_ids if d not in texts]
    if missing:
        raise ValueError(
            f"the run's data {run['data']!r} no longer holds {len(missing)} of its documents, e.g. {missing[0]!r}: "
            "it changed since `nudge fit`; fit again"
        )
    return texts


def _question_vector(args: argparse.Namespace, run: dict) -> np.ndarray:
    option = args.embedder or run.get("embedder_option")
    if option is None:
        raise ValueError("run.json does not say which --embedder made the run: pass --embedder")
    if option == "precomputed":  # a run fit on --doc-vectors/--query-vectors: no model to embed a new question
        raise ValueError(
            f"the run was fit on precomputed vectors (model {run['embedder']!r}): pass --embedder with the model "
            "that made them (e.g. --embedder local for all-MiniLM-L6-v2 vectors fit with --vectors-model "
            "all-MiniLM-L6-v2)"
        )
    embedder = _embedder(option, args.cache_dir or run.get("cache_dir"))
    if embedder.model_name != run["embedder"]:
        raise ValueError(
            f"--embedder {option} embeds with {embedder.model_name!r} but the run was embedded with "
            f"{run['embedder']!r}: vectors of different models cannot be compared"
        )
    try:
        return np.asarray(embedder.embed_queries([args.question]))[0]
    except ValueError as exc:
        if option == "tessera" and "no precomputed vector" in str(exc):
            raise ValueError(
                "the tessera embedder only knows the bundled questions; embed a new question with the same model: "
                "--embedder local (needs the embed extra)"
            ) from None
        raise


def _show(passage: Passage) -> str:
    text = textwrap.shorten(" ".join(passage.text.split()), _SHOWN_CHARS, placeholder=" ...")
    return f"[{passage.number}] {passage.doc_id}  (score {passage.score:.3f})\n    {text}"


def run_ask(args: argparse.Namespace) -> None:
    """Print the retrieved passages and, with a chat endpoint configured, the cited answer."""
    from .cli import DOCS_FILE, NUDGED_FILE

    if not isinstance(args.question, str) or not args.question.strip():
        raise ValueError("QUESTION is empty: give the question in quotes")
    if isinstance(args.k, bool) or not isinstance(args.k, int) or args.k < 1:
        raise ValueError(f"--k must be a positive integer, got {args.k!r}")
    run_dir, run = _read_run(args.run)
    name = NUDGED_FILE if args.vectors == "nudged" else DOCS_FILE
    if not (run_dir / name).is_file():
        raise ValueError(f"run folder {str(run_dir)!r} has no {name}: write the run again with `nudge fit`")
    docs, doc_ids = load_embeddings(run_dir / name)
    corpus = _corpus(run_dir, run, doc_ids)
    question = _question_vector(args, run).astype(docs.dtype, copy=False)
    passages = retrieve_passages(question, docs, doc_ids, corpus, k=args.k)
    print(f"top {len(passages)} passages for {args.question.strip()!r} with the {args.vectors} vectors of {run_dir}:")
    for p in passages:
        print(_show(p))
    if args.no_answer:
        return
    if not chat_configured():
        print(
            f"no chat endpoint configured: set OPENAI_API_KEY and {CHAT_MODEL_VARIABLE} (and OPENAI_BASE_URL for a "
            "gateway or a local server) to get an answer citing these passages"
        )
        return
    client = ChatClient()
    result = answer_question(client, args.question, passages)
    print(f"\nanswer from {client.model_name}:\n{result.answer.strip()}\n")
    cited = ", ".join(f"[{n}] {d}" for n, d in zip(result.citations.numbers, result.citations.doc_ids, strict=True))
    print(f"cited: {cited or 'nothing'}")
    for problem in result.citations.problems:
        print(f"citation problem: {problem}")
