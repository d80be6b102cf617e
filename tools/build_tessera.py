"""Developer tool: build the bundled Tessera dataset from its sources (``data/source``).

``python tools/build_tessera.py`` rebuilds the texts, labels, split and example CSV under
``data/tessera`` and ``data/examples``; ``python tools/build_tessera.py --embed`` also writes the
vectors (needs the ``embed`` extra). The package only *loads* the data
(:func:`nudge.teaching.bundled.load_tessera`); nothing here is imported by it.

What :func:`assemble` builds:

* ``tessera.json``: week 1's labelled questions, in LlamaIndex's ``EmbeddingQAFinetuneDataset``
  layout (``queries``, ``corpus``, ``relevant_docs``);
* ``tessera_never_asked.json``: the *never-asked* hold-out test questions (see below), same
  layout, with the week-1 corpus; kept out of ``tessera.json`` so that nothing fitted on that
  file can train on them;
* ``tessera_week2.json``: next week's labelled questions, with the corpus as it is then
  (week-1 passages plus a few new ones); never-asked hold-out questions are not among them;
* ``metadata.json``: title, product area and week of every passage and question;
* ``split.json``: the fixed seeded split of the labelled week-1 questions (hold-out test, then
  80/20 train/validation) and the never-asked hold-out group ``test_never_asked``;
* ``embeddings/<model>/`` (``--embed``): float32 vectors of every passage and question, with a
  manifest (model, dimension, normalisation, SHA-256 of the exact texts).

The never-asked group (:func:`never_asked_holdout`): the authors wrote the first questions
about the week-1 *distractors* (passages without week-1 questions) as week-2 questions. A seeded
three quarters of the distractors whose week-2 questions name only distractors are set aside,
with all their questions, as a week-1 hold-out test group (``tessera_never_asked.json``):
questions whose answers have no training question in any week. Those questions leave week 2,
so no question is ever both training and test.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

import numpy as np

from nudge._io import atomic_write, write_json
from nudge.pairs import split_queries
from nudge.production.datasets import RetrievalDataset, save_llamaindex
from nudge.teaching.bundled import all_texts, data_dir, text_sha256

SPLIT_SEED = 0
TEST_FRACTION = 0.2
VAL_FRACTION = 0.2
NEVER_ASKED_SEED = 0
NEVER_ASKED_FRACTION = 0.75
AREAS = ("payments", "billing_auth", "webhooks_limits", "sdks_data")
EXAMPLE_AREA = "webhooks_limits"


def passage_text(title: str, text: str) -> str:
    """What is stored and embedded for a passage: its title, a newline, its text."""
    return f"{title}\n{text}"


def read_sources(source: Path | None = None) -> tuple[dict, dict]:
    """Passages and questions of every area, as written: ``(docs, queries)`` keyed by id.

    Raises ``ValueError`` on a repeated id or a question naming a passage unknown in its week.
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
    return docs, queries


def never_asked_holdout(docs: dict, queries: dict) -> tuple[list[str], list[str]]:
    """The never-asked hold-out: ``(passage ids, question ids)``, both in source order.

    Distractors are the week-1 passages that no week-1 question names. Eligible are those whose
    week-2 questions name nothing but distractors (a question naming a distractor together with
    an answer passage would be "known"). Questions that name several eligible distractors tie
    them together: a group is set aside whole. A seeded ``NEVER_ASKED_FRACTION`` of the groups
    (``numpy.random.default_rng(NEVER_ASKED_SEED)``, groups in source order) is set aside with
    every question naming them.
    """
    answered = {r for q in queries.values() if q["week"] == 1 for r in q["relevant"]}
    distractors = [d for d, v in docs.items() if v["week"] == 1 and d not in answered]
    week2 = [q for q in queries.values() if q["week"] == 2]
    mixed = {r for q in week2 if not set(q["relevant"]) <= set(distractors) for r in q["relevant"]}
    eligible = [d for d in distractors if d not in mixed and any(d in q["relevant"] for q in week2)]
    group = {d: i for i, d in enumerate(eligible)}  # union-find over co-named distractors
    for q in week2:
        rel = [r for r in q["relevant"] if r in group]
        for r in rel[1:]:
            a, b = group[rel[0]], group[r]
            for d, g in group.items():
                if g == b:
                    group[d] = a
    groups = list(dict.fromkeys(group.values()))
    order = np.random.default_rng(NEVER_ASKED_SEED).permutation(len(groups))
    chosen = {groups[i] for i in order[: round(NEVER_ASKED_FRACTION * len(groups))]}
    passages = [d for d in eligible if group[d] in chosen]
    held = [qid for qid, q in queries.items() if q["week"] == 2 and any(r in passages for r in q["relevant"])]
    return passages, held


def assemble(source: Path | None = None) -> dict:
    """Build the week-1 and week-2 datasets, metadata and split from ``data/source``.

    Returns a dict with ``week1``, ``never_asked`` and ``week2`` (:class:`RetrievalDataset`),
    ``metadata`` and ``split`` (JSON-ready dicts). Raises ``ValueError`` on any inconsistency in the sources.
    """
    docs, queries = read_sources(source)
    held_passages, held = never_asked_holdout(docs, queries)
    held_set = set(held)

    def dataset(query_ids: list[str], max_doc_week: int) -> RetrievalDataset:
        corpus = {i: passage_text(d["title"], d["text"]) for i, d in docs.items() if d["week"] <= max_doc_week}
        return RetrievalDataset(
            queries={i: queries[i]["text"] for i in query_ids},
            corpus=corpus,
            relevant={i: {r: 1.0 for r in queries[i]["relevant"]} for i in query_ids},
        )

    labelled = [i for i, q in queries.items() if q["week"] == 1]
    week2_ids = [i for i, q in queries.items() if q["week"] == 2 and i not in held_set]
    week1, never_asked, week2 = dataset(labelled, 1), dataset(held, 1), dataset(week2_ids, 2)
    s = split_queries(len(labelled), val_fraction=VAL_FRACTION, test_fraction=TEST_FRACTION, seed=SPLIT_SEED)
    split = {
        "seed": SPLIT_SEED,
        "test_fraction": TEST_FRACTION,
        "val_fraction": VAL_FRACTION,
        "how": "nudge.split_queries over the labelled week-1 question ids in file order",
        "train": [labelled[i] for i in s.train],
        "val": [labelled[i] for i in s.val],
        "test": [labelled[i] for i in s.test],
        "never_asked": {
            "seed": NEVER_ASKED_SEED,
            "fraction": NEVER_ASKED_FRACTION,
            "how": (
                "the week-2 questions of a seeded share of the week-1 distractors (passages no week-1 "
                "question names) whose week-2 questions name only distractors; set aside whole, so no "
                "question about these passages is training in any week (tools/build_tessera.py)"
            ),
            "passages": held_passages,
        },
        "test_never_asked": held,
    }
    metadata = {
        "documents": {i: {"title": d["title"], "area": d["area"], "week": d["week"]} for i, d in docs.items()},
        "queries": {
            i: (
                {"area": q["area"], "week": 1, "group": "test_never_asked"}
                if i in held_set
                else {"area": q["area"], "week": q["week"]}
            )
            for i, q in queries.items()
        },
    }
    return {"week1": week1, "never_asked": never_asked, "week2": week2, "metadata": metadata, "split": split}


def example_pairs_csv(built: dict) -> str:
    """The CSV of (query, document) pairs used by the bring-your-own-data notebook.

    All labelled week-1 questions of one product area with the text of each relevant passage,
    one row per pair, as a learner would export them from a spreadsheet.
    """
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


def write_assembled(out: Path | None = None, source: Path | None = None) -> Path:
    """Write the assembled files to ``out`` (default ``data/tessera``, atomically, one by one),
    and the example CSV of pairs to ``<out>/../examples/support_pairs.csv``."""
    out = out or data_dir() / "tessera"
    out.mkdir(parents=True, exist_ok=True)
    built = assemble(source)
    examples = out.parent / "examples"
    examples.mkdir(exist_ok=True)
    csv_text = example_pairs_csv(built)
    atomic_write(examples / "support_pairs.csv", lambda fh: fh.write(csv_text.encode("utf-8")))
    save_llamaindex(built["week1"], out / "tessera.json")
    save_llamaindex(built["never_asked"], out / "tessera_never_asked.json")
    save_llamaindex(built["week2"], out / "tessera_week2.json")
    write_json(out / "metadata.json", built["metadata"])
    write_json(out / "split.json", built["split"])
    return out


def _kept_vectors(folder: Path, model: str, ids: list[str], texts: dict[str, str], kind: str) -> dict:
    """Vectors already written for ``model`` whose texts are unchanged: ``{id: vector}``.

    The manifest holds the SHA-256 of the texts the vectors were made from, in the order of the
    id file; they are kept only when today's texts of those ids hash the same.
    """
    emb = folder / "embeddings" / model
    names = {"corpus": ("corpus_ids.txt", "corpus.npy"), "queries": ("query_ids.txt", "queries.npy")}[kind]
    if not (emb / "manifest.json").is_file():
        return {}
    manifest = json.loads((emb / "manifest.json").read_text())
    old_ids = (emb / names[0]).read_text().split()
    key = "corpus_texts_sha256" if kind == "corpus" else "query_texts_sha256"
    if any(i not in texts for i in old_ids) or text_sha256([texts[i] for i in old_ids]) != manifest[key]:
        return {}
    vectors, wanted = np.load(emb / names[1]), set(ids)
    return {i: vectors[r] for r, i in enumerate(old_ids) if i in wanted}


def write_embeddings(make_embedder, model: str, folder: Path | None = None, *, everything: bool = False) -> Path:
    """Write the vectors of every passage and question, and their manifest.

    Vectors already on disk for ``model`` are kept bit for bit when the texts they were made
    from are unchanged (checked per kind, passages and questions, against the manifest's
    SHA-256; a question that moved between files keeps its vector), and new ids are embedded
    alone. When a kind's old texts changed, that whole kind is embedded again, by
    ``make_embedder()`` (called only when something needs embedding). ``everything=True``
    embeds every text again.
    """
    folder = folder or data_dir() / "tessera"
    doc_ids, doc_texts, query_ids, query_texts = all_texts(folder)
    out = folder / "embeddings" / model
    old_manifest = json.loads((out / "manifest.json").read_text()) if (out / "manifest.json").is_file() else {}
    embedder = None
    made_with = old_manifest.get("made_with")
    arrays = {}
    for kind, ids, texts in (("corpus", doc_ids, doc_texts), ("queries", query_ids, query_texts)):
        by_id = dict(zip(ids, texts, strict=True))
        kept = {} if everything else _kept_vectors(folder, model, ids, by_id, kind)
        missing = [i for i in ids if i not in kept]
        if missing:
            if embedder is None:
                embedder = make_embedder()
                if embedder.model_name != model:
                    raise ValueError(f"the embedder makes {embedder.model_name!r} vectors, not {model!r}")
                made_with = repr(embedder)
            embed = embedder.embed_documents if kind == "corpus" else embedder.embed_queries
            new = np.asarray(embed([by_id[i] for i in missing]), dtype=np.float32)
            kept.update(zip(missing, new, strict=True))
        arrays[kind] = np.stack([kept[i] for i in ids]).astype(np.float32)
    out.mkdir(parents=True, exist_ok=True)
    for name, arr in (("corpus.npy", arrays["corpus"]), ("queries.npy", arrays["queries"])):
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(arr))
        atomic_write(out / name, lambda fh, buf=buf: fh.write(buf.getvalue()))
    atomic_write(out / "corpus_ids.txt", lambda fh: fh.write(("\n".join(doc_ids) + "\n").encode()))
    atomic_write(out / "query_ids.txt", lambda fh: fh.write(("\n".join(query_ids) + "\n").encode()))
    manifest = {
        "model": model,
        "dimension": int(arrays["corpus"].shape[1]),
        "dtype": "float32",
        "normalisation": "L2, every row unit length",
        "documents": len(doc_ids),
        "queries": len(query_ids),
        "document_text": "title + newline + passage text, as in tessera.json's corpus",
        "corpus_texts_sha256": text_sha256(doc_texts),
        "query_texts_sha256": text_sha256(query_texts),
        "made_with": made_with,
    }
    write_json(out / "manifest.json", manifest)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python tools/build_tessera.py", description="Rebuild the bundled Tessera dataset from data/source."
    )
    parser.add_argument(
        "--embed",
        action="store_true",
        help="also write the vectors: embed new or changed texts (needs the embed extra)",
    )
    parser.add_argument("--all", action="store_true", help="with --embed: embed every text again")
    args = parser.parse_args(argv)
    out = write_assembled()
    print(f"wrote {out}")
    if args.embed:

        def make():
            from nudge.production.embedders import SentenceTransformerEmbedder

            return SentenceTransformerEmbedder()

        from nudge.teaching.bundled import MODEL

        print(f"wrote {write_embeddings(make, MODEL, everything=args.all)}")


if __name__ == "__main__":
    main()
