"""The bundled teaching dataset: Tessera, a fictional developer platform's docs and questions.

:func:`load_tessera` gives notebooks everything in one call, from the files under
``data/tessera`` (nothing needs a model):

* ``tessera.json``: week 1's labelled questions (LlamaIndex's ``EmbeddingQAFinetuneDataset``
  layout);
* ``tessera_never_asked.json``: the never-asked hold-out test questions (same layout, week-1
  corpus), kept apart so that nothing fitted on ``tessera.json`` can train on them;
* ``tessera_week2.json``: next week's labelled questions, corpus as it is then;
* ``metadata.json``: title, product area and week of every passage and question;
* ``split.json``: the fixed split of the labelled week-1 questions into ``train``, ``val``
  (only for choosing gamma) and hold-out ``test``, and the hold-out group ``test_never_asked``:
  questions whose passages have no training question in any week;
* ``embeddings/<model>/``: float32 vectors of every passage and question, with a manifest.

Those files are built from ``data/source`` by ``python tools/build_tessera.py`` (texts) and
``python tools/build_tessera.py --embed`` (vectors); see ``data/README.md``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..pairs import QuerySet, split_queries
from ..production.datasets import RetrievalDataset, load_llamaindex

__all__ = [
    "PARTS",
    "Tessera",
    "all_texts",
    "data_dir",
    "load_tessera",
    "tessera_embedder",
    "text_sha256",
    "weekly_batches",
]

MODEL = "all-MiniLM-L6-v2"
#: The parts of week 1's questions in ``split.json``.
PARTS = ("train", "val", "test", "test_never_asked")


def data_dir() -> Path:
    """The kit's ``data/`` folder (override with the environment variable ``NUDGE_DATA_DIR``)."""
    path = Path(os.environ.get("NUDGE_DATA_DIR", Path(__file__).resolve().parents[2] / "data"))
    if not (path / "source").is_dir():
        raise ValueError(
            f"data folder {str(path)!r} has no source/ folder: run from a clone of the kit "
            "(pip install -e .) or set NUDGE_DATA_DIR to its data/ folder"
        )
    return path


def text_sha256(texts: list[str]) -> str:
    """SHA-256 over texts in order (each UTF-8, length-prefixed so boundaries count)."""
    h = hashlib.sha256()
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little") + b)
    return h.hexdigest()


def _week1(folder: Path) -> tuple[RetrievalDataset, object]:
    """Week 1's labelled questions and the never-asked hold-out, as one dataset (in that order)."""
    labelled, report = load_llamaindex(folder / "tessera.json")
    report.raise_if_errors()
    held, report = load_llamaindex(folder / "tessera_never_asked.json")
    report.raise_if_errors()
    if held.corpus != labelled.corpus or set(held.queries) & set(labelled.queries):
        raise ValueError(
            "tessera_never_asked.json does not fit tessera.json (another corpus, or shared question ids): "
            "run `python tools/build_tessera.py`"
        )
    merged = RetrievalDataset(
        queries={**labelled.queries, **held.queries},
        corpus=labelled.corpus,
        relevant={**labelled.relevant, **held.relevant},
    )
    return merged, report


def all_texts(folder: Path | None = None) -> tuple[list[str], list[str], list[str], list[str]]:
    """Every passage and question of both weeks: ``(doc_ids, doc_texts, query_ids, query_texts)``.

    Questions: week 1's labelled ones, the never-asked hold-out, then week 2's.
    """
    folder = folder or data_dir() / "tessera"
    week1, _ = _week1(folder)
    week2, _ = load_llamaindex(folder / "tessera_week2.json")
    doc_ids = week2.doc_ids  # week 2's corpus contains week 1's
    query_ids = week1.query_ids + week2.query_ids
    queries = {**week1.queries, **week2.queries}
    return doc_ids, [week2.corpus[i] for i in doc_ids], query_ids, [queries[i] for i in query_ids]


@dataclass(frozen=True)
class Tessera:
    """The bundled dataset, ready for NUDGE.

    Attributes
    ----------
    dataset : RetrievalDataset
        Texts and labels of the chosen week (week 1: the labelled questions, then the never-asked
        hold-out; week 2: its new questions, corpus as of week 2).
    doc_ids : list of str, length N
        Row order of ``doc_embeddings``.
    doc_embeddings : ndarray of float32, shape (N, d)
    query_ids : list of str
        Row order of ``query_embeddings`` (all questions of the chosen week).
    query_embeddings : ndarray of float32, shape (n_queries, d)
    split : dict
        ``{"train": ids, "val": ids, "test": ids, "test_never_asked": ids}`` (week 1 only; empty
        lists for week 2). ``test`` holds labelled questions like the training ones: every one
        is answered by a passage that has training questions. ``test_never_asked`` holds
        questions about passages that have no training question in any week.
    metadata : dict
        Title, area and week of every passage and question.
    """

    dataset: RetrievalDataset
    doc_ids: list
    doc_embeddings: np.ndarray
    query_ids: list
    query_embeddings: np.ndarray
    split: dict
    metadata: dict
    model: str

    def _ids(self, part: str | list) -> list:
        ids = self.query_ids if part == "all" else self.split[part] if isinstance(part, str) else list(part)
        row = {q: i for i, q in enumerate(self.query_ids)}
        unknown = [q for q in ids if q not in row]
        if unknown:
            raise ValueError(f"part names unknown question ids, e.g. {unknown[0]!r}")
        return ids

    def query_set(self, part: str | list, doc_ids=None) -> QuerySet:
        """Embeddings and answer rows of ``part`` ("train", "val", "test", "test_never_asked",
        "all" or a list of ids).

        Answers are rows of ``doc_ids`` (default this week's ``self.doc_ids``; pass another
        week's ids to evaluate on its corpus).
        """
        ids = self._ids(part)
        row = {q: i for i, q in enumerate(self.query_ids)}
        return QuerySet(
            self.query_embeddings[[row[q] for q in ids]], self.dataset.answers(ids, doc_ids or self.doc_ids)
        )

    def id_pairs(self, part: str | list) -> tuple[np.ndarray, list[list[str]]]:
        """``(embeddings (n, d), relevant document ids per question)`` of ``part``, e.g. for
        :meth:`nudge.NudgeState.add_pairs`."""
        ids = self._ids(part)
        row = {q: i for i, q in enumerate(self.query_ids)}
        return self.query_embeddings[[row[q] for q in ids]], [list(self.dataset.relevant[q]) for q in ids]

    def titles(self, doc_rows) -> list[str]:
        """Titles of the passages at rows ``doc_rows``."""
        return [self.metadata["documents"][self.doc_ids[i]]["title"] for i in np.atleast_1d(doc_rows)]

    def texts(self, query_ids) -> list[str]:
        """Question texts."""
        return [self.dataset.queries[q] for q in query_ids]


def load_tessera(week: int = 1, model: str = MODEL, folder: Path | None = None) -> Tessera:
    """Load the bundled dataset with its precomputed embeddings (no model needed).

    Parameters
    ----------
    week : {1, 2}
        1: the questions of week 1 and the week-1 corpus, with the fixed split (the parts
        ``train``, ``val``, ``test`` and ``test_never_asked``; ``"all"`` includes the last).
        2: next week's questions and the grown corpus (for streaming updates).
    model : str
        Which precomputed embeddings to use.

    Raises ``ValueError`` if the embeddings do not match the texts (the manifest's hashes).
    """
    if week not in (1, 2):
        raise ValueError(f"week must be 1 or 2, got {week!r}")
    folder = folder or data_dir() / "tessera"
    if week == 1:
        dataset, _ = _week1(folder)
    else:
        dataset, report = load_llamaindex(folder / "tessera_week2.json")
        report.raise_if_errors()
    emb = folder / "embeddings" / model
    if not (emb / "manifest.json").is_file():
        raise ValueError(f"model {model!r} has no precomputed embeddings in {str(emb)!r}")
    manifest = json.loads((emb / "manifest.json").read_text())
    all_doc_ids = (emb / "corpus_ids.txt").read_text().split()
    all_query_ids = (emb / "query_ids.txt").read_text().split()
    docs = np.load(emb / "corpus.npy")
    queries = np.load(emb / "queries.npy")
    doc_ids, doc_texts, query_ids, query_texts = all_texts(folder)
    if (
        doc_ids != all_doc_ids
        or query_ids != all_query_ids
        or text_sha256(doc_texts) != manifest["corpus_texts_sha256"]
        or text_sha256(query_texts) != manifest["query_texts_sha256"]
    ):
        raise ValueError(
            f"the {model} embeddings in {str(emb)!r} no longer match the texts (ids or SHA-256 differ): "
            "run `python tools/build_tessera.py --embed` to regenerate them"
        )
    doc_row = {d: i for i, d in enumerate(all_doc_ids)}
    query_row = {q: i for i, q in enumerate(all_query_ids)}
    d_ids = dataset.doc_ids
    q_ids = dataset.query_ids
    split = json.loads((folder / "split.json").read_text()) if week == 1 else {part: [] for part in PARTS}
    metadata = json.loads((folder / "metadata.json").read_text())
    return Tessera(
        dataset=dataset,
        doc_ids=d_ids,
        doc_embeddings=docs[[doc_row[d] for d in d_ids]],
        query_ids=q_ids,
        query_embeddings=queries[[query_row[q] for q in q_ids]],
        split={k: list(split[k]) for k in PARTS},
        metadata=metadata,
        model=manifest["model"],
    )


def weekly_batches(data: Tessera, n_weeks: int = 3, seed: int = 0, val_fraction: float = 0.2) -> list[dict]:
    """Cut ``data``'s questions into ``n_weeks`` seeded batches, each split by question into
    training and validation ids (the streaming lesson's weeks).

    Hold-out test questions (``data.split["test"]`` and ``["test_never_asked"]``) are never in a
    batch: with week 2's data (no hold-out) every question is used.

    Returns a list of ``{"questions": ids, "train": ids, "val": ids}``, one per week.
    """
    if not isinstance(n_weeks, int) or n_weeks < 1:
        raise ValueError(f"n_weeks must be a positive integer, got {n_weeks!r}")
    held_out = set(data.split.get("test", [])) | set(data.split.get("test_never_asked", []))
    pool = [q for q in data.query_ids if q not in held_out]
    order = np.random.default_rng(seed).permutation(len(pool))
    weeks = []
    for number, rows in enumerate(np.array_split(order, n_weeks)):
        ids = [pool[i] for i in rows]
        split = split_queries(len(ids), val_fraction=val_fraction, test_fraction=0.0, seed=seed + number)
        weeks.append({"questions": ids, "train": [ids[i] for i in split.train], "val": [ids[i] for i in split.val]})
    return weeks


def tessera_embedder(model: str = MODEL, folder: Path | None = None):
    """A :class:`~nudge.production.embedders.LookupEmbedder` over every bundled passage and question.

    It "embeds" exactly the texts of the bundled dataset (both weeks) with the committed
    vectors, so notebooks run the embedding step without a model.
    """
    from ..production.embedders import LookupEmbedder

    folder = folder or data_dir() / "tessera"
    load_tessera(1, model, folder)  # checks the vectors still match the texts
    _, doc_texts, _, query_texts = all_texts(folder)
    emb = folder / "embeddings" / model
    vectors = np.concatenate([np.load(emb / "corpus.npy"), np.load(emb / "queries.npy")])
    return LookupEmbedder(doc_texts + query_texts, vectors, model)
