"""Vector store integration (guide step 6): replace the moved vectors by id, roll back, lose nothing.

Every behaviour runs on three stores: the in-memory reference, Qdrant in embedded local mode and
Milvus Lite (both on files under tmp_path). A backend whose client is missing is skipped, naming
the extra; with ``NUDGE_REQUIRE_STORES=1`` (CI) a missing client fails instead.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import uuid

import numpy as np
import pytest

from nudge import Nudge
from nudge.evaluation import evaluate_embeddings
from nudge.metrics import per_query
from nudge.production.stores import (
    InMemoryStore,
    MilvusStore,
    QdrantStore,
    VectorStore,
    apply_nudge_to_store,
    check_ids,
    check_vectors,
    read_backup,
    rollback_store,
)
from nudge.retrieval import search
from nudge.teaching.bundled import load_tessera

REQUIRE = os.environ.get("NUDGE_REQUIRE_STORES") == "1"
CLIENT_MODULES = {"memory": [], "qdrant": ["qdrant_client"], "milvus": ["pymilvus", "milvus_lite"]}
INSTALL = 'pip install -e ".[stores]"'


def need_client(backend: str) -> None:
    """Skip (or, under NUDGE_REQUIRE_STORES=1, fail) when the backend's client is not installed."""
    missing = [m for m in CLIENT_MODULES[backend] if importlib.util.find_spec(m) is None]
    if missing:
        message = f"the {backend} store tests need {', '.join(missing)} (the stores extra): {INSTALL}"
        if REQUIRE:
            pytest.fail(f"{message}; NUDGE_REQUIRE_STORES=1 makes them mandatory")
        pytest.skip(message)


# ------------------------------------------------------------------------------- data and models
@pytest.fixture(scope="module")
def data():
    t = load_tessera()
    return {
        "ids": list(t.doc_ids),
        "emb": t.doc_embeddings,
        "train": t.query_set("train"),
        "val": t.query_set("val"),
        "test": t.query_set("test"),
        "titles": [t.metadata["documents"][d]["title"] for d in t.doc_ids],
    }


@pytest.fixture(scope="module")
def models(data):
    return {m: Nudge(m).fit(data["emb"], data["train"], data["val"]) for m in "MN"}


class Backend:
    """Makes fresh collections on one shared client (Qdrant's local mode locks its folder)."""

    def __init__(self, name: str, folder) -> None:
        self.name, self.client, self._corpus = name, None, {}
        if name == "qdrant":
            from qdrant_client import QdrantClient

            self.client = QdrantClient(path=str(folder / "qdrant"))
        elif name == "milvus":
            from pymilvus import MilvusClient

            self.client = MilvusClient(str(folder / "milvus.db"))

    def make(self, ids, vectors, metric: str = "dot", payloads=None) -> VectorStore:
        collection = f"c{uuid.uuid4().hex[:12]}"
        if self.name == "memory":
            return InMemoryStore.from_embeddings(ids, vectors, metric)
        cls = QdrantStore if self.name == "qdrant" else MilvusStore
        return cls.from_embeddings(collection, ids, vectors, client=self.client, metric=metric, payloads=payloads)

    def corpus(self, data, metric: str = "dot") -> VectorStore:
        """A collection of the bundled corpus (titles as payloads) reset to the original vectors.

        Shared by the tests of one module (Milvus takes half a second to create a collection).
        """
        if metric not in self._corpus:
            payloads = [{"title": t} for t in data["titles"]]
            self._corpus[metric] = self.make(data["ids"], data["emb"], metric, payloads)
        store = self._corpus[metric]
        store.upsert(data["ids"], data["emb"])
        assert store.count() == len(data["ids"])
        return store

    def payload(self, store, doc_id: str) -> dict:
        """The fields stored beside a vector (none in memory)."""
        if self.name == "qdrant":
            return store.client.retrieve(store.collection, ids=[store.point_id(doc_id)], with_payload=True)[0].payload
        if self.name == "milvus":
            row = store.client.query(store.collection, filter=f'doc_id == "{doc_id}"', output_fields=["*"])[0]
            return {k: v for k, v in row.items() if k != "vector"}
        return {}

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


@pytest.fixture(scope="module", params=["memory", "qdrant", "milvus"])
def backend(request, tmp_path_factory):
    need_client(request.param)
    b = Backend(request.param, tmp_path_factory.mktemp(request.param))
    yield b
    b.close()


def rankings(store, queries, k: int = 10):
    ids, scores = store.search(queries, k)
    return ids, scores


def in_memory_rankings(data, matrix, queries, metric: str = "dot"):
    idx, scores = search(queries, matrix, k=10, metric=metric)
    return [[data["ids"][j] for j in row] for row in idx], scores


def metrics_of(data, ranked_ids, answers):
    row = {d: i for i, d in enumerate(data["ids"])}
    idx = np.array([[row[d] for d in r] for r in ranked_ids])
    m10, m1 = per_query(idx, answers, k=10), per_query(idx, answers, k=1)
    return {"hit@1": m1["hit"].mean(), "mrr@10": m10["mrr"].mean(), "ndcg@10": m10["ndcg"].mean()}


# ------------------------------------------------------------------------------- the interface
def test_stores_follow_the_interface(backend, data):
    ids, emb = data["ids"], data["emb"]
    store = backend.corpus(data)
    assert isinstance(store, VectorStore)
    assert (store.metric, store.dimension, store.count()) == ("dot", 384, 175)
    assert sorted(store.ids()) == sorted(ids)
    np.testing.assert_array_equal(store.fetch(ids), emb)  # float32 in, the same float32 out
    np.testing.assert_array_equal(store.fetch(ids[::-7]), emb[::-7])  # in the order asked
    got, scores = store.search(data["test"].embeddings[:3], 5)
    want, want_scores = in_memory_rankings(data, emb, data["test"].embeddings[:3])
    assert got == [r[:5] for r in want] and scores.shape == (3, 5)
    np.testing.assert_allclose(scores, want_scores[:, :5], atol=1e-5)


def test_missing_ids_are_named(backend, data, models, tmp_path):
    ids, emb = data["ids"], data["emb"]
    store = backend.corpus(data)
    with pytest.raises(ValueError, match=r"ids not found in .*'no-such-doc'"):
        store.fetch([ids[0], "no-such-doc"])
    # a store lacking one moved document: the apply names it and writes nothing
    model = models["M"]
    gone = int(model.moved_[0])
    keep = [i for i in range(len(ids)) if i != gone]
    partial = backend.make([ids[i] for i in keep], emb[keep])
    with pytest.raises(ValueError, match=rf"ids not found in .*{ids[gone]!r}"):
        apply_nudge_to_store(partial, model, ids, backup=tmp_path / "b.npz")
    assert not (tmp_path / "b.npz").exists()
    np.testing.assert_array_equal(partial.fetch([ids[i] for i in keep]), emb[keep])


# ------------------------------------------------------------------------------- nothing is lost
@pytest.mark.parametrize("method", ["M", "N"])
def test_nothing_is_lost(backend, data, models, method, tmp_path):
    ids, emb, test = data["ids"], data["emb"], data["test"]
    store = backend.corpus(data)
    before = rankings(store, test.embeddings)
    model, backup = models[method], tmp_path / "backup.npz"
    expected = model.transform(emb)
    moved = model.moved_
    untouched = np.setdiff1d(np.arange(len(ids)), moved)

    report = apply_nudge_to_store(store, model, ids, backup=backup, embeddings=emb)
    assert report.action == "apply" and report.n_moved == moved.size > 0
    assert sorted(report.ids) == sorted(ids[i] for i in moved)  # only the moved vectors are written
    assert sorted(os.listdir(tmp_path)) == ["backup.npz"]

    # the same points, untouched vectors bit for bit, moved ones as transform() gives them
    assert store.count() == len(ids) and sorted(store.ids()) == sorted(ids)
    after = store.fetch(ids)
    np.testing.assert_array_equal(after[untouched], emb[untouched])
    np.testing.assert_allclose(after[moved], expected[moved], rtol=0, atol=1e-6)
    if backend.name != "memory":
        assert backend.payload(store, ids[moved[0]])["title"] == data["titles"][moved[0]]

    # the store ranks the test questions as the in-memory evaluation does, with the same metrics
    got_ids, got_scores = rankings(store, test.embeddings)
    want_ids, want_scores = in_memory_rankings(data, expected, test.embeddings)
    assert got_ids == want_ids
    np.testing.assert_allclose(got_scores, want_scores, atol=1e-5)
    reference = evaluate_embeddings(expected, test)
    got = metrics_of(data, got_ids, test.answers)
    assert got == pytest.approx({k: reference[k] for k in got})

    # applying again changes nothing
    again = apply_nudge_to_store(store, model, ids, backup=backup, embeddings=emb)
    assert again.n_written == 0 and again.n_unchanged == moved.size
    np.testing.assert_array_equal(store.fetch(ids), after)

    # roll back: the original vectors, rankings and fields again
    rolled = rollback_store(store, backup)
    assert rolled.n_written == moved.size
    np.testing.assert_array_equal(store.fetch(ids), emb)
    assert store.count() == len(ids)
    assert rankings(store, test.embeddings)[0] == before[0]
    if backend.name != "memory":
        assert backend.payload(store, ids[moved[0]])["title"] == data["titles"][moved[0]]


def test_reapplying_another_nudge_restores_what_it_no_longer_moves(backend, data, models, tmp_path):
    ids, emb = data["ids"], data["emb"]
    store = backend.corpus(data)
    backup = tmp_path / "backup.npz"
    apply_nudge_to_store(store, models["M"], ids, backup=backup)
    smaller = Nudge("N", gamma=0.1).fit(emb, data["train"].subset(range(20)))
    assert 0 < smaller.moved_.size < models["M"].moved_.size
    report = apply_nudge_to_store(store, smaller, ids, backup=backup)
    assert report.n_restored == len(set(models["M"].moved_) - set(smaller.moved_))
    expected, got = smaller.transform(emb), store.fetch(ids)
    untouched = np.setdiff1d(np.arange(len(ids)), smaller.moved_)
    np.testing.assert_array_equal(got[untouched], emb[untouched])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    rollback_store(store, backup)
    np.testing.assert_array_equal(store.fetch(ids), emb)


# ------------------------------------------------------------------------------- refusals and dry runs
@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_nudge_m_is_refused_unless_scored_by_inner_product(backend, data, models, metric, tmp_path):
    ids, emb = data["ids"], data["emb"]
    store = backend.corpus(data, metric)
    assert store.metric == metric
    with pytest.raises(ValueError, match=rf"NUDGE-M needs a collection scored by the inner product .* not '{metric}'"):
        apply_nudge_to_store(store, models["M"], ids, backup=tmp_path / "b.npz")
    assert not (tmp_path / "b.npz").exists()
    np.testing.assert_allclose(store.fetch(ids), emb, atol=1e-6)


def test_nudge_n_is_fine_with_a_cosine_collection(backend, data, models, tmp_path):
    ids, emb, test = data["ids"], data["emb"], data["test"]
    store = backend.corpus(data, "cosine")
    model = models["N"]
    apply_nudge_to_store(store, model, ids, backup=tmp_path / "b.npz")
    expected = model.transform(emb)
    np.testing.assert_allclose(store.fetch(ids), expected, rtol=0, atol=1e-6)
    assert rankings(store, test.embeddings)[0] == in_memory_rankings(data, expected, test.embeddings, "cosine")[0]


def test_dry_run_writes_nothing(backend, data, models, tmp_path):
    ids, emb = data["ids"], data["emb"]
    store = backend.corpus(data)
    model = models["M"]
    report = apply_nudge_to_store(store, model, ids, backup=tmp_path / "b.npz", dry_run=True)
    assert report.action == "dry run" and report.backup is None
    assert report.n_written == model.moved_.size and sorted(report.ids) == sorted(ids[i] for i in model.moved_)
    shift = np.linalg.norm(model.transform(emb).astype(np.float64) - emb, axis=1).max()
    assert report.max_displacement == pytest.approx(shift, abs=1e-6)
    assert report.max_displacement == pytest.approx(model.gamma_, abs=1e-5)  # NUDGE-M moves every row by gamma
    assert "would write" in str(report)
    assert os.listdir(tmp_path) == []
    np.testing.assert_array_equal(store.fetch(ids), emb)


# ------------------------------------------------------------------------------- the backup
def test_backup_is_written_atomically_before_the_store_changes(backend, data, models, tmp_path, monkeypatch):
    ids, emb = data["ids"], data["emb"]
    model, backup = models["N"], tmp_path / "backup.npz"
    moved = [ids[i] for i in model.moved_]

    # the backup keeps exactly the originals of the moved ids
    store = backend.corpus(data)
    apply_nudge_to_store(store, model, ids, backup=backup)
    kept = read_backup(backup)
    assert kept.ids == moved and kept.meta["embeddings_sha256"] == model.embeddings_sha256_
    np.testing.assert_array_equal(kept.vectors, emb[model.moved_])

    # the backup cannot be written: no half file, no temporary file, and the store is untouched
    fresh, failing = backend.corpus(data), tmp_path / "sub"
    failing.mkdir()

    def broken_savez(fh, **arrays):
        fh.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        apply_nudge_to_store(fresh, model, ids, backup=failing / "backup.npz")
    monkeypatch.undo()
    assert os.listdir(failing) == []
    np.testing.assert_array_equal(fresh.fetch(ids), emb)

    # the store fails half way through writing: the backup, written first, brings it back
    real_upsert = fresh.upsert

    def flaky_upsert(batch_ids, vectors):
        real_upsert(batch_ids[:3], vectors[:3])
        raise ConnectionError("connection lost")

    monkeypatch.setattr(fresh, "upsert", flaky_upsert)
    with pytest.raises(RuntimeError, match=r"ConnectionError: connection lost.*run the same command again"):
        apply_nudge_to_store(fresh, model, ids, backup=failing / "backup.npz")
    monkeypatch.undo()
    assert not np.array_equal(fresh.fetch(ids), emb)
    rollback_store(fresh, failing / "backup.npz")
    np.testing.assert_array_equal(fresh.fetch(ids), emb)


def test_a_backup_for_other_embeddings_is_refused(data, models, tmp_path):
    ids, emb = data["ids"], data["emb"]
    store = InMemoryStore.from_embeddings(ids, emb)
    apply_nudge_to_store(store, models["N"], ids, backup=tmp_path / "b.npz")
    other = emb.copy()
    other[0] = -other[0]
    refit = Nudge("N").fit(other, data["train"], data["val"])
    with pytest.raises(ValueError, match=r"backup .* belongs to another run \('embeddings:"):
        apply_nudge_to_store(store, refit, ids, backup=tmp_path / "b.npz")
    with pytest.raises(ValueError, match=r"backup .* belongs to the memory store at memory:\w+, not to this"):
        apply_nudge_to_store(InMemoryStore.from_embeddings(ids, other), refit, ids, backup=tmp_path / "b.npz")
    assert (tmp_path / "b.npz").is_file()  # refused, and kept
    with pytest.raises(ValueError, match=r"is not a NUDGE store backup"):
        (tmp_path / "junk.npz").write_bytes(b"junk")
        rollback_store(store, tmp_path / "junk.npz")


def test_the_store_and_the_model_are_checked_against_each_other(data, models, tmp_path):
    ids, emb = data["ids"], data["emb"]
    model, backup = models["N"], tmp_path / "b.npz"
    store = InMemoryStore.from_embeddings(ids, emb)
    stale = emb.copy()
    stale[3, 0] += 1e-3
    with pytest.raises(ValueError, match=r"embeddings are not the ones the model was fitted on .* stale"):
        apply_nudge_to_store(store, model, ids, backup=backup, embeddings=stale)
    with pytest.raises(ValueError, match=r"doc_ids has 174 ids but the model was fitted on 175"):
        apply_nudge_to_store(store, model, ids[:-1], backup=backup)
    with pytest.raises(ValueError, match=r"dimension 10 but the model was fitted on dimension 384"):
        apply_nudge_to_store(InMemoryStore(10), model, ids, backup=backup)
    shuffled = InMemoryStore.from_embeddings(ids, emb[::-1])
    with pytest.raises(ValueError, match=r"is not the original row the model was fitted on"):
        apply_nudge_to_store(shuffled, model, ids, backup=backup, embeddings=emb)
    with pytest.raises(ValueError, match=r"per-row fingerprint differs.* another order"):
        apply_nudge_to_store(shuffled, model, ids, backup=backup)  # without the embeddings too
    with pytest.raises(ValueError, match=r"not unit length .* has norm 2"):
        apply_nudge_to_store(InMemoryStore.from_embeddings(ids, 2 * emb), model, ids, backup=backup)
    with pytest.raises(ValueError, match=r"not a fitted Nudge"):
        apply_nudge_to_store(store, Nudge("N"), ids, backup=backup)
    assert not backup.exists()


# ------------------------------------------------------------------------------- adapters
@pytest.mark.parametrize("name", ["qdrant", "milvus"])
def test_default_local_mode_persists_on_disk(name, data, tmp_path):
    need_client(name)
    ids, emb = data["ids"][:20], data["emb"][:20]
    if name == "qdrant":
        with QdrantStore.from_embeddings("docs", ids, emb, tmp_path / "folder") as store:
            assert store.metric == "dot"
        reopened = QdrantStore("docs", tmp_path / "folder")
    else:
        with MilvusStore.from_embeddings("docs", ids, emb, tmp_path / "docs.db") as store:
            assert store.metric == "dot"
        reopened = MilvusStore("docs", tmp_path / "docs.db")
    with reopened:
        assert reopened.count() == 20
        np.testing.assert_array_equal(reopened.fetch(ids), emb)
        with pytest.raises(ValueError, match=r"exists already: .* replace=True"):
            type(reopened).create("docs", 384, client=reopened.client)
        with pytest.raises(ValueError, match=r"collection 'nope' does not exist"):
            type(reopened)("nope", client=reopened.client)


def test_ids_with_awkward_characters_round_trip(backend, data):
    ids = ['say "hi"', "it's", "back\\slash", "déjà vu", "two words", "new\nline", "42"]
    emb = data["emb"][: len(ids)]
    store = backend.make(ids, emb)
    np.testing.assert_array_equal(store.fetch(ids[::-1]), emb[::-1])
    store.upsert(ids[:2], emb[5:7])
    np.testing.assert_array_equal(store.fetch(ids[:2]), emb[5:7])
    assert sorted(store.ids()) == sorted(ids) and store.count() == len(ids)
    found, _ = store.search(emb[2:3], 1)
    assert found == [["back\\slash"]]


@pytest.mark.parametrize(("cls", "module"), [(QdrantStore, "qdrant_client"), (MilvusStore, "pymilvus")])
def test_a_missing_client_names_the_extra(cls, module, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(ImportError, match=r'pip install -e "\.\[stores\]"'):
        cls("docs", tmp_path / "x.db")


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"ids lists the id 'a' more than once"):
        check_ids(["a", "b", "a"])
    with pytest.raises(ValueError, match=r"doc_ids\[1\] must be a string id, got int 3"):
        check_ids(["a", 3], "doc_ids")
    with pytest.raises(ValueError, match=r"vectors must have shape \(2, 4\)"):
        check_vectors(np.zeros((3, 4)), 2, 4)
    with pytest.raises(ValueError, match=r"metric must be one of 'dot', 'cosine', 'l2'; got 'manhattan'"):
        InMemoryStore(4, "manhattan")
    store = InMemoryStore.from_embeddings(["a", "b"], np.eye(2, 4, dtype=np.float32))
    with pytest.raises(ValueError, match=r"queries has dimension 3"):
        store.search(np.ones((1, 3), np.float32), 1)
    with pytest.raises(ValueError, match=r"k must be"):
        store.search(np.ones((1, 4), np.float32), 0)


def test_adapter_arguments_are_checked(tmp_path):
    if importlib.util.find_spec("pymilvus") is not None:
        with pytest.raises(ValueError, match=r"path must end in '\.db'"):
            MilvusStore("docs", tmp_path / "milvus")
    if importlib.util.find_spec("qdrant_client") is not None:
        with pytest.raises(ValueError, match=r"exactly one of path=.*url="):
            QdrantStore("docs", tmp_path, url="http://localhost:6333")


def test_qdrant_named_vectors_keep_the_payload(data, tmp_path):
    need_client("qdrant")
    ids, emb = data["ids"][:10], data["emb"][:10]
    payloads = [{"title": t} for t in data["titles"][:10]]
    with QdrantStore.from_embeddings("docs", ids, emb, tmp_path, vector_name="text", payloads=payloads) as store:
        assert store.vector_name == "text" and store.metric == "dot"
        store.upsert(ids[:2], emb[2:4])
        np.testing.assert_array_equal(store.fetch(ids), np.concatenate([emb[2:4], emb[2:]]))
        record = store.client.retrieve("docs", ids=[store.point_id(ids[0])], with_payload=True)[0]
        assert record.payload == {"title": data["titles"][0], "doc_id": ids[0]}
        assert store.search(emb[5:6], 1)[0] == [[ids[5]]]
        with pytest.raises(ValueError, match=r"vector_name must name one of the collection's vectors \['text'\]"):
            QdrantStore("docs", client=store.client)


def test_milvus_collection_of_its_own_schema_keeps_other_fields(data, tmp_path):
    """A collection made elsewhere: INT64 keys, a fixed text field, a vector field named 'emb'."""
    need_client("milvus")
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(str(tmp_path / "own.db"))
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=200)
    schema.add_field("emb", DataType.FLOAT_VECTOR, dim=384)
    index = client.prepare_index_params()
    index.add_index(field_name="emb", index_type="FLAT", metric_type="IP")
    client.create_collection("own", schema=schema, index_params=index)
    emb = data["emb"][:6]
    client.insert("own", [{"pk": i, "text": f"passage {i}", "emb": emb[i].tolist()} for i in range(6)])
    store = MilvusStore("own", client=client)
    assert (store.metric, store.dimension, store.count()) == ("dot", 384, 6)
    store.upsert(["1", "2"], emb[4:6])
    np.testing.assert_array_equal(store.fetch(["1", "2", "3"]), emb[[4, 5, 3]])
    rows = client.query("own", filter="pk in [1, 2]", output_fields=["text"])
    assert sorted(r["text"] for r in rows) == ["passage 1", "passage 2"]
    assert sorted(store.ids()) == [str(i) for i in range(6)]
    with pytest.raises(ValueError, match=r"integer primary keys; document id 'doc-1' is not one"):
        store.fetch(["doc-1"])
    client.close()


def test_a_missing_client_skips_or_fails_as_asked(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(sys.modules[__name__], "REQUIRE", False)
    with pytest.raises(pytest.skip.Exception, match=r"need qdrant_client .*pip install -e"):
        need_client("qdrant")
    monkeypatch.setattr(sys.modules[__name__], "REQUIRE", True)
    with pytest.raises(pytest.fail.Exception, match=r"need pymilvus, milvus_lite .*NUDGE_REQUIRE_STORES=1"):
        need_client("milvus")


# ------------------------------------------------------------------------------- misuse: nothing silently wrong
def test_applying_again_with_a_new_backup_path_refuses_nudged_vectors(data, models, tmp_path):
    ids, emb = data["ids"], data["emb"]
    store = InMemoryStore.from_embeddings(ids, emb)
    apply_nudge_to_store(store, models["M"], ids, backup=tmp_path / "first.npz")
    nudged = store.fetch(ids)
    with pytest.raises(ValueError, match=r"not the original row the model was fitted on .*already nudged"):
        apply_nudge_to_store(store, models["M"], ids, backup=tmp_path / "second.npz")
    assert not (tmp_path / "second.npz").exists()
    np.testing.assert_array_equal(store.fetch(ids), nudged)
    # the same model's fingerprints survive save / load
    models["M"].save(tmp_path / "m.npz")
    with pytest.raises(ValueError, match=r"already nudged"):
        apply_nudge_to_store(store, Nudge.load(tmp_path / "m.npz"), ids, backup=tmp_path / "second.npz")


def test_rollback_touches_only_its_own_store_and_ids(data, models, tmp_path):
    ids, emb = data["ids"], data["emb"]
    store, backup = InMemoryStore.from_embeddings(ids, emb), tmp_path / "b.npz"
    apply_nudge_to_store(store, models["N"], ids, backup=backup)
    other = InMemoryStore.from_embeddings(ids[:5], emb[:5])
    with pytest.raises(ValueError, match=r"cannot roll back this store: it belongs to the memory store at"):
        rollback_store(other, backup)
    assert other.count() == 5  # no foreign point inserted
    with pytest.raises(ValueError, match=r"belongs to another run"):
        rollback_store(store, backup, run="someone-else")
    moved = [ids[i] for i in models["N"].moved_]
    store.delete([moved[0]])
    report = rollback_store(store, backup)
    assert report.skipped == [moved[0]] and moved[0] not in set(store.ids())  # not re-created
    assert "not re-created" in str(report)
    keep = [i for i in ids if i != moved[0]]
    np.testing.assert_array_equal(store.fetch(keep), emb[[ids.index(i) for i in keep]])


def test_a_vector_changed_by_someone_else_is_not_overwritten_without_force(data, models, tmp_path):
    ids, emb = data["ids"], data["emb"]
    store, backup = InMemoryStore.from_embeddings(ids, emb), tmp_path / "b.npz"
    apply_nudge_to_store(store, models["N"], ids, backup=backup)
    moved = [ids[i] for i in models["N"].moved_]
    theirs = np.full((1, emb.shape[1]), 1 / np.sqrt(emb.shape[1]), np.float32)
    store.upsert([moved[1]], theirs)
    before = store.fetch(ids)
    for call in (lambda **kw: rollback_store(store, backup, **kw),
                 lambda **kw: apply_nudge_to_store(store, models["M"], ids, backup=backup, **kw)):  # fmt: skip
        with pytest.raises(ValueError, match=rf"vector for {moved[1]!r} .* someone changed it since.*force=True"):
            call()
        np.testing.assert_array_equal(store.fetch(ids), before)
    report = rollback_store(store, backup, force=True)
    assert report.forced == [moved[1]] and "overwritten (force)" in str(report)
    np.testing.assert_array_equal(store.fetch(ids), emb)


def test_a_failing_store_write_is_one_clear_error_and_the_same_apply_completes(data, models, tmp_path, monkeypatch):
    import sqlite3

    ids, emb = data["ids"], data["emb"]
    store, backup = InMemoryStore.from_embeddings(ids, emb), tmp_path / "b.npz"
    real, calls = store.upsert, []

    def full_disk(*args):
        calls.append(1)
        if len(calls) == 2:
            raise sqlite3.OperationalError("database or disk is full")
        return real(*args)

    monkeypatch.setattr(store, "upsert", full_disk)
    with pytest.raises(
        RuntimeError, match=r"writing to the store failed after 64 of .*OperationalError: database or disk"
    ):
        apply_nudge_to_store(store, models["M"], ids, backup=backup)
    monkeypatch.setattr(store, "upsert", real)
    apply_nudge_to_store(store, models["M"], ids, backup=backup)
    np.testing.assert_allclose(store.fetch(ids), models["M"].transform(emb), rtol=0, atol=1e-6)
