"""The bundled Tessera dataset: built from its sources, as big as promised, embeddings in step."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil

import numpy as np
import pytest

from nudge.production.datasets import load_llamaindex
from nudge.teaching.bundled import PARTS, all_texts, data_dir, load_tessera, text_sha256, weekly_batches
from tools.build_tessera import never_asked_holdout, read_sources, write_assembled, write_embeddings

TESSERA = data_dir() / "tessera"


def test_committed_files_are_what_the_sources_build(tmp_path):
    write_assembled(tmp_path / "tessera")
    for name in ("tessera.json", "tessera_never_asked.json", "tessera_week2.json", "metadata.json", "split.json"):
        built = (tmp_path / "tessera" / name).read_bytes()
        assert built == (TESSERA / name).read_bytes(), f"{name}: run python tools/build_tessera.py"
    example = (tmp_path / "examples" / "support_pairs.csv").read_bytes()
    assert example == (TESSERA.parent / "examples" / "support_pairs.csv").read_bytes()


def test_size_and_shape_of_the_dataset():
    week1, report = load_llamaindex(TESSERA / "tessera.json")
    assert report.ok
    stats = week1.stats()
    assert stats["documents"] >= 150
    assert stats["answered_documents"] >= 100
    assert stats["queries"] >= 800
    per_doc = {}
    for rel in week1.relevant.values():
        for d in rel:
            per_doc[d] = per_doc.get(d, 0) + 1
    assert min(per_doc.values()) >= 4
    assert stats["queries_with_multiple_relevant"] >= 0.04 * stats["queries"]
    words = [len(t.split()) for t in week1.corpus.values()]
    assert min(words) >= 60 and max(words) <= 260  # 60-250 words of text plus the title line
    week2, report2 = load_llamaindex(TESSERA / "tessera_week2.json")
    assert report2.ok and set(week1.corpus) < set(week2.corpus)
    new_docs = set(week2.corpus) - set(week1.corpus)
    answered2 = {d for rel in week2.relevant.values() for d in rel}
    assert new_docs <= answered2, "every new passage gets labelled questions in week 2"
    assert answered2 - new_docs - set(per_doc), "week 2 also answers passages that had no questions before"


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9_]+", text.lower())


def test_no_question_copies_a_passage():
    week1, _ = load_llamaindex(TESSERA / "tessera.json")
    week2, _ = load_llamaindex(TESSERA / "tessera_week2.json")
    grams = set()
    for text in week2.corpus.values():
        w = _words(text)
        grams.update(tuple(w[i : i + 6]) for i in range(len(w) - 5))
    copied = []
    for q in [*week1.queries.values(), *week2.queries.values()]:
        w = _words(q)
        if any(tuple(w[i : i + 6]) in grams for i in range(len(w) - 5)):
            copied.append(q)
    assert not copied, f"questions sharing 6 consecutive words with a passage: {copied[:3]}"
    texts = [q.strip().lower() for q in [*week1.queries.values(), *week2.queries.values()]]
    assert len(set(texts)) == len(texts)


def test_split_is_fixed_disjoint_and_grouped_by_question():
    split = json.loads((TESSERA / "split.json").read_text())
    parts = [set(split[p]) for p in PARTS]
    for a, b in itertools.combinations(range(4), 2):
        assert not parts[a] & parts[b], (PARTS[a], PARTS[b])
    week1, _ = load_llamaindex(TESSERA / "tessera.json")
    never, _ = load_llamaindex(TESSERA / "tessera_never_asked.json")
    assert set().union(*parts[:3]) == set(week1.queries) and parts[3] == set(never.queries)
    n = len(week1.queries)
    assert abs(len(parts[2]) - 0.2 * n) <= 1 and abs(len(parts[1]) - 0.2 * (n - len(parts[2]))) <= 1


def test_never_asked_questions_are_never_training_in_any_week():
    split = json.loads((TESSERA / "split.json").read_text())
    week1, _ = load_llamaindex(TESSERA / "tessera.json")
    never, _ = load_llamaindex(TESSERA / "tessera_never_asked.json")
    week2, _ = load_llamaindex(TESSERA / "tessera_week2.json")
    held = split["test_never_asked"]
    assert len(held) >= 30 and held == never.query_ids and never.corpus == week1.corpus
    labelled = set(split["train"]) | set(split["val"]) | set(split["test"])
    # no question is in two files: nothing fitted on week 1 or week 2 can train on a hold-out question
    assert not (
        set(week1.queries) & set(week2.queries) or set(never.queries) & (set(week1.queries) | set(week2.queries))
    )
    # the rule: none of a never-asked question's passages is named by a question that may train
    trainable = labelled | set(week2.queries)
    asked = {d for q in trainable for d in (week1.relevant.get(q) or week2.relevant[q])}
    held_passages = {d for q in held for d in never.relevant[q]}
    assert held_passages == set(split["never_asked"]["passages"])
    assert not held_passages & asked
    # and every labelled test question is about a passage with training questions
    train_passages = {d for q in split["train"] for d in week1.relevant[q]}
    assert all(set(week1.relevant[q]) & train_passages for q in split["test"])
    # the weekly batches of the streaming lesson never hold a week-1 question
    for week in weekly_batches(load_tessera(week=2), n_weeks=3, seed=0):
        assert not set(week["questions"]) & (labelled | set(held))
    batches = weekly_batches(load_tessera(), n_weeks=2)  # even on week 1, no hold-out question
    used = {q for week in batches for q in week["questions"]}
    assert used == set(split["train"]) | set(split["val"])


def test_never_asked_holdout_is_seeded_and_set_aside_whole():
    docs, queries = read_sources()
    passages, held = never_asked_holdout(docs, queries)
    assert (passages, held) == never_asked_holdout(docs, queries)
    week1_answered = {r for q in queries.values() if q["week"] == 1 for r in q["relevant"]}
    assert not set(passages) & week1_answered and all(docs[p]["week"] == 1 for p in passages)
    for qid, q in queries.items():
        if set(q["relevant"]) & set(passages):
            assert qid in held and set(q["relevant"]) <= set(passages) and q["week"] == 2


def test_load_tessera_gives_aligned_unit_vectors():
    t = load_tessera()
    assert t.doc_embeddings.dtype == np.float32 and t.doc_embeddings.shape == (len(t.doc_ids), 384)
    np.testing.assert_allclose(np.linalg.norm(t.doc_embeddings, axis=1), 1.0, atol=1e-5)
    test = t.query_set("test")
    assert len(test) == len(t.split["test"])
    assert t.titles(test.answers[0])[0] == t.metadata["documents"][t.doc_ids[test.answers[0][0]]]["title"]
    never = t.query_set("test_never_asked")
    assert len(never) == len(t.split["test_never_asked"]) > 0
    assert t.query_ids[-len(never) :] == t.split["test_never_asked"]  # after the labelled questions
    w2 = load_tessera(week=2)
    assert len(w2.doc_ids) > len(t.doc_ids) and all(w2.split[p] == [] for p in PARTS)
    with pytest.raises(ValueError, match=r"week must be 1 or 2"):
        load_tessera(week=3)


def test_embeddings_that_no_longer_match_the_texts_are_refused(tmp_path):
    copy = tmp_path / "tessera"
    shutil.copytree(TESSERA, copy)
    data = json.loads((copy / "tessera.json").read_text())
    first = next(iter(data["queries"]))
    data["queries"][first] += " (edited)"
    (copy / "tessera.json").write_text(json.dumps(data, indent=2))
    with pytest.raises(ValueError, match=r"no longer match the texts .* `python tools/build_tessera.py --embed`"):
        load_tessera(folder=copy)


def test_manifest_describes_the_vectors():
    emb = TESSERA / "embeddings" / "all-MiniLM-L6-v2"
    manifest = json.loads((emb / "manifest.json").read_text())
    assert manifest["model"] == "all-MiniLM-L6-v2" and manifest["dimension"] == 384
    assert np.load(emb / "corpus.npy").shape == (manifest["documents"], 384)
    assert np.load(emb / "queries.npy").shape == (manifest["queries"], 384)
    assert text_sha256(["a", "b"]) != text_sha256(["ab"])


@pytest.mark.slow
def test_real_model_reproduces_a_sample_of_the_committed_vectors():
    from nudge.production.embedders import EMBED_INSTALL_HINT

    try:
        from nudge.production.embedders import SentenceTransformerEmbedder

        model = SentenceTransformerEmbedder()
    except ImportError as exc:
        if os.environ.get("NUDGE_REQUIRE_EMBED"):
            raise
        pytest.skip(f"the local model is not installed; install it with: {EMBED_INSTALL_HINT} ({exc})")
    doc_ids, doc_texts, query_ids, query_texts = all_texts()
    emb = TESSERA / "embeddings" / "all-MiniLM-L6-v2"
    rng = np.random.default_rng(0)
    d_rows = np.sort(rng.choice(len(doc_ids), 8, replace=False))
    q_rows = np.sort(rng.choice(len(query_ids), 16, replace=False))
    docs = model.embed_documents([doc_texts[i] for i in d_rows])
    queries = model.embed_queries([query_texts[i] for i in q_rows])
    np.testing.assert_allclose(docs, np.load(emb / "corpus.npy")[d_rows], atol=1e-5)
    np.testing.assert_allclose(queries, np.load(emb / "queries.npy")[q_rows], atol=1e-5)


class _CountingEmbedder:
    """Stands in for the model: a fixed vector per text, and a record of what it was asked."""

    model_name = "all-MiniLM-L6-v2"

    def __init__(self):
        self.asked = []

    def _embed(self, texts):
        self.asked += list(texts)
        return np.ones((len(texts), 384), dtype=np.float32) / np.sqrt(384)

    embed_documents = embed_queries = _embed


def test_write_embeddings_keeps_unchanged_vectors_and_embeds_only_changed_texts(tmp_path):
    copy = tmp_path / "tessera"
    shutil.copytree(TESSERA, copy)
    emb = copy / "embeddings" / "all-MiniLM-L6-v2"
    before = np.load(emb / "queries.npy")

    def refuse():
        raise AssertionError("no text changed: the model must not be needed")

    write_embeddings(refuse, "all-MiniLM-L6-v2", copy)
    for name in ("queries.npy", "corpus.npy", "query_ids.txt", "manifest.json"):
        assert (emb / name).read_bytes() == (TESSERA / "embeddings" / "all-MiniLM-L6-v2" / name).read_bytes()
    data = json.loads((copy / "tessera_week2.json").read_text())
    first = next(iter(data["queries"]))
    data["queries"][first] += " (edited)"
    (copy / "tessera_week2.json").write_text(json.dumps(data, indent=2))
    fake = _CountingEmbedder()
    write_embeddings(lambda: fake, "all-MiniLM-L6-v2", copy)
    # a changed question invalidates the questions' hash: every question is embedded again,
    # the passages (unchanged) are kept
    assert len(fake.asked) == len(before)
    assert (emb / "corpus.npy").read_bytes() == (
        TESSERA / "embeddings" / "all-MiniLM-L6-v2" / "corpus.npy"
    ).read_bytes()
    assert load_tessera(folder=copy).query_embeddings.shape[1] == 384
    fake2 = _CountingEmbedder()
    write_embeddings(lambda: fake2, "all-MiniLM-L6-v2", copy)
    assert fake2.asked == []
