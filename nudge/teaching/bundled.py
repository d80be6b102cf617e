"""The bundled teaching dataset: Tessera, a fictional developer platform's docs and questions.

``data/source/*.json`` hold what the authors wrote (passages and labelled questions per product
area, with the "week" each arrived in). :func:`assemble` turns them into the files the kit uses,
under ``data/tessera/``:

* ``tessera.json``: week 1, in LlamaIndex's ``EmbeddingQAFinetuneDataset`` layout
  (``queries``, ``corpus``, ``relevant_docs``);
* ``tessera_week2.json``: next week's labelled questions, with the corpus as it is then
  (week-1 passages plus a few new ones);
* ``metadata.json``: title, product area and week of every passage and question;
* ``split.json``: the fixed seeded split of week-1 questions: hold-out test, then 80/20
  train/validation;
* ``embeddings/<model>/``: float32 vectors of every passage and question, with a manifest
  (model, dimension, normalisation, SHA-256 of the exact texts).

:func:`load_tessera` gives notebooks everything in one call; nothing needs a model. Rebuild with
``python -m nudge.teaching.bundled`` (texts) and ``python -m nudge.teaching.bundled --embed`` (vectors; needs the
``embed`` extra).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._io import atomic_write
from ..pairs import QuerySet, split_queries
from ..production.datasets import RetrievalDataset, load_llamaindex, save_llamaindex

__all__ = [
    "Tessera",
    "assemble",
    "data_dir",
    "load_tessera",
    "tessera_embedder",
    "text_sha256",
    "weekly_batches",
    "write_embeddings",
]

MODEL = "all-MiniLM-L6-v2"
SPLIT_SEED = 0
TEST_FRACTION = 0.2
VAL_FRACTION = 0.2
AREAS = ("payments", "billing_auth", "webhooks_limits", "sdks_data")


def data_dir() -> Path:
    """The kit's ``data/`` folder (override with the environment variable ``NUDGE_DATA_DIR``)."""
    path = Path(os.environ.get("NUDGE_DATA_DIR", Path(__file__).resolve().parents[2] / "data"))
    if not (path / "source").is_dir():
        raise ValueError(
            f"data folder {str(path)!r} has no source/ folder: run from a clone of the kit "
            "(pip install -e .) or set NUDGE_DATA_DIR to its data/ folder"
        )
    return path


def passage_text(title: str, text: str) -> str:
    """What is stored and embedded for a passage: its title, a newline, its text."""
    return f"{title}\n{text}"


def assemble(source: Path | None = None) -> dict:
    """Build the week-1 and week-2 datasets, metadata and split from ``data/source``.

    Returns a dict with ``week1`` and ``week2`` (:class:`RetrievalDataset`), ``metadata``
    and ``split`` (JSON-ready dicts). Raises ``ValueError`` on any inconsistency in the sources.
    """
    source = source or data_dir() / "source"
    docs, queries = {}, {}
    for area in AREAS:
        raw = json.loads((source / f"{area}.json").read_text(encoding="utf-8"))
        for d in raw["documents"]:
            if d["id"] in docs:
                raise ValueError(f"source {area}.json repeats document id {d['id']!r}")
            docs[d["id"]] = {"title": d["title"], "text": d["text"], "area": area, "week": int(d["batch"])}
        for q in raw["queries"]:
            if q["id"] in queries:
                raise ValueError(f"source {area}.json repeats query id {q['id']!r}")
            for r in q["relevant"]:
                if r not in docs or docs[r]["week"] > q["batch"]:
                    raise ValueError(f"source {area}.json: query {q['id']!r} names {r!r}, unknown in its week")
            queries[q["id"]] = {
                "text": q["text"],
                "relevant": list(q["relevant"]),
                "area": area,
                "week": int(q["batch"]),
            }

    def dataset(week_of_queries: int, max_doc_week: int) -> RetrievalDataset:
        corpus = {i: passage_text(d["title"], d["text"]) for i, d in docs.items() if d["week"] <= max_doc_week}
        qs = {i: q for i, q in queries.items() if q["week"] == week_of_queries}
        return RetrievalDataset(
            queries={i: q["text"] for i, q in qs.items()},
            corpus=corpus,
            relevant={i: {r: 1.0 for r in q["relevant"]} for i, q in qs.items()},
        )

    week1, week2 = dataset(1, 1), dataset(2, 2)
    ids = week1.query_ids
    s = split_queries(len(ids), val_fraction=VAL_FRACTION, test_fraction=TEST_FRACTION, seed=SPLIT_SEED)
    split = {
        "seed": SPLIT_SEED,
        "test_fraction": TEST_FRACTION,
        "val_fraction": VAL_FRACTION,
        "how": "nudge.split_queries over the week-1 question ids in file order",
        "train": [ids[i] for i in s.train],
        "val": [ids[i] for i in s.val],
        "test": [ids[i] for i in s.test],
    }
    metadata = {
        "documents": {i: {"title": d["title"], "area": d["area"], "week": d["week"]} for i, d in docs.items()},
        "queries": {i: {"area": q["area"], "week": q["week"]} for i, q in queries.items()},
    }
    return {"week1": week1, "week2": week2, "metadata": metadata, "split": split}


def _write_json(path: Path, obj: object) -> None:
    atomic_write(path, lambda fh: fh.write((json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8")))


EXAMPLE_AREA = "webhooks_limits"


def example_pairs_csv(built: dict) -> str:
    """The CSV of (query, document) pairs used by the bring-your-own-data notebook.

    All week-1 questions of one product area with the text of each relevant passage, one row
    per pair, as a learner would export them from a spreadsheet.
    """
    import csv

    week1 = built["week1"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["query", "document"])
    for qid in week1.query_ids:
        if built["metadata"]["queries"][qid]["area"] != EXAMPLE_AREA:
            continue
        for did in week1.relevant[qid]:
            writer.writerow([week1.queries[qid], week1.corpus[did]])
    return buf.getvalue()


def write_assembled(out: Path | None = None) -> Path:
    """Write the assembled files to ``data/tessera`` (atomically, one by one), and the
    example CSV of pairs to ``data/examples/support_pairs.csv``."""
    out = out or data_dir() / "tessera"
    out.mkdir(parents=True, exist_ok=True)
    built = assemble()
    examples = out.parent / "examples"
    examples.mkdir(exist_ok=True)
    csv_text = example_pairs_csv(built)
    atomic_write(examples / "support_pairs.csv", lambda fh: fh.write(csv_text.encode("utf-8")))
    save_llamaindex(built["week1"], out / "tessera.json")
    save_llamaindex(built["week2"], out / "tessera_week2.json")
    _write_json(out / "metadata.json", built["metadata"])
    _write_json(out / "split.json", built["split"])
    return out


def text_sha256(texts: list[str]) -> str:
    """SHA-256 over texts in order (each UTF-8, length-prefixed so boundaries count)."""
    h = hashlib.sha256()
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little") + b)
    return h.hexdigest()


def all_texts(folder: Path | None = None) -> tuple[list[str], list[str], list[str], list[str]]:
    """Every passage and question of both weeks: ``(doc_ids, doc_texts, query_ids, query_texts)``."""
    folder = folder or data_dir() / "tessera"
    week1, _ = load_llamaindex(folder / "tessera.json")
    week2, _ = load_llamaindex(folder / "tessera_week2.json")
    doc_ids = week2.doc_ids  # week 2's corpus contains week 1's
    query_ids = week1.query_ids + week2.query_ids
    queries = {**week1.queries, **week2.queries}
    return doc_ids, [week2.corpus[i] for i in doc_ids], query_ids, [queries[i] for i in query_ids]


def write_embeddings(embedder, folder: Path | None = None) -> Path:
    """Embed every passage and question with ``embedder`` and write vectors and manifest."""
    folder = folder or data_dir() / "tessera"
    doc_ids, doc_texts, query_ids, query_texts = all_texts(folder)
    out = folder / "embeddings" / embedder.model_name
    out.mkdir(parents=True, exist_ok=True)
    docs = embedder.embed_documents(doc_texts)
    queries = embedder.embed_queries(query_texts)
    for name, arr in (("corpus.npy", docs), ("queries.npy", queries)):
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(arr, dtype=np.float32))
        atomic_write(out / name, lambda fh, buf=buf: fh.write(buf.getvalue()))
    atomic_write(out / "corpus_ids.txt", lambda fh: fh.write(("\n".join(doc_ids) + "\n").encode()))
    atomic_write(out / "query_ids.txt", lambda fh: fh.write(("\n".join(query_ids) + "\n").encode()))
    manifest = {
        "model": embedder.model_name,
        "dimension": int(docs.shape[1]),
        "dtype": "float32",
        "normalisation": "L2, every row unit length",
        "documents": len(doc_ids),
        "queries": len(query_ids),
        "document_text": "title + newline + passage text, as in tessera.json's corpus",
        "corpus_texts_sha256": text_sha256(doc_texts),
        "query_texts_sha256": text_sha256(query_texts),
        "made_with": repr(embedder),
    }
    _write_json(out / "manifest.json", manifest)
    return out


@dataclass(frozen=True)
class Tessera:
    """The bundled dataset, ready for NUDGE.

    Attributes
    ----------
    dataset : RetrievalDataset
        Texts and labels of the chosen week (week 2: its new questions, corpus as of week 2).
    doc_ids : list of str, length N
        Row order of ``doc_embeddings``.
    doc_embeddings : ndarray of float32, shape (N, d)
    query_ids : list of str
        Row order of ``query_embeddings`` (all questions of the chosen week).
    query_embeddings : ndarray of float32, shape (n_queries, d)
    split : dict
        ``{"train": ids, "val": ids, "test": ids}`` (week 1 only; empty lists for week 2).
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
        """Embeddings and answer rows of ``part`` ("train", "val", "test", "all" or a list of ids).

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
        1: the labelled questions of week 1 and the week-1 corpus, with the fixed split.
        2: next week's questions and the grown corpus (for streaming updates).
    model : str
        Which precomputed embeddings to use.

    Raises ``ValueError`` if the embeddings do not match the texts (the manifest's hashes).
    """
    if week not in (1, 2):
        raise ValueError(f"week must be 1 or 2, got {week!r}")
    folder = folder or data_dir() / "tessera"
    dataset, report = load_llamaindex(folder / ("tessera.json" if week == 1 else "tessera_week2.json"))
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
            "run `python -m nudge.teaching.bundled --embed` to regenerate them"
        )
    doc_row = {d: i for i, d in enumerate(all_doc_ids)}
    query_row = {q: i for i, q in enumerate(all_query_ids)}
    d_ids = dataset.doc_ids
    q_ids = dataset.query_ids
    split = json.loads((folder / "split.json").read_text()) if week == 1 else {"train": [], "val": [], "test": []}
    metadata = json.loads((folder / "metadata.json").read_text())
    return Tessera(
        dataset=dataset,
        doc_ids=d_ids,
        doc_embeddings=docs[[doc_row[d] for d in d_ids]],
        query_ids=q_ids,
        query_embeddings=queries[[query_row[q] for q in q_ids]],
        split={k: split[k] for k in ("train", "val", "test")},
        metadata=metadata,
        model=manifest["model"],
    )


def weekly_batches(data: Tessera, n_weeks: int = 3, seed: int = 0, val_fraction: float = 0.2) -> list[dict]:
    """Cut ``data``'s questions into ``n_weeks`` seeded batches, each split by question into
    training and validation ids (the streaming lesson's weeks).

    Returns a list of ``{"questions": ids, "train": ids, "val": ids}``, one per week.
    """
    if not isinstance(n_weeks, int) or n_weeks < 1:
        raise ValueError(f"n_weeks must be a positive integer, got {n_weeks!r}")
    order = np.random.default_rng(seed).permutation(len(data.query_ids))
    weeks = []
    for number, rows in enumerate(np.array_split(order, n_weeks)):
        ids = [data.query_ids[i] for i in rows]
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m nudge.teaching.bundled", description="Rebuild the bundled Tessera dataset."
    )
    parser.add_argument("--embed", action="store_true", help="also recompute the embeddings (needs the embed extra)")
    args = parser.parse_args(argv)
    out = write_assembled()
    print(f"wrote {out}")
    if args.embed:
        from ..production.embedders import SentenceTransformerEmbedder

        print(f"wrote {write_embeddings(SentenceTransformerEmbedder())}")


if __name__ == "__main__":
    main()
