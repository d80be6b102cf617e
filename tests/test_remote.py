"""Fitting from a vector store (``nudge.production.remote``): the same gamma and vectors as the in-memory fit.

The bundled data is loaded into the in-memory store, embedded Qdrant and Milvus Lite (files under
tmp_path); ``fit_from_store`` must give what ``Nudge(method, k=k).fit(embeddings, train, val)``
gives, reading only the documents with training queries, the validation answers and the search
hits, and applying it must write only the moved vectors. A backend whose client is missing is
skipped, naming the extra; with ``NUDGE_REQUIRE_STORES=1`` (CI) a missing client fails instead.
"""

from __future__ import annotations

import importlib.util
import os
import uuid

import numpy as np
import pytest

from nudge import Nudge
from nudge.production.remote import StoreFit, apply_to_store, fit_from_store
from nudge.production.stores import InMemoryStore, MilvusStore, QdrantStore, apply_nudge_to_store, rollback_store
from nudge.teaching.bundled import load_tessera
from nudge.teaching.synthetic import make_retrieval_problem

REQUIRE = os.environ.get("NUDGE_REQUIRE_STORES") == "1"
CLIENT_MODULES = {"memory": [], "qdrant": ["qdrant_client"], "milvus": ["pymilvus", "milvus_lite"]}
INSTALL = 'pip install -e ".[stores]"'
CASES = [(m, k) for m in "MN" for k in (1, 3)]


def need_client(backend: str) -> None:
    """Skip (or, under NUDGE_REQUIRE_STORES=1, fail) when the backend's client is not installed."""
    missing = [m for m in CLIENT_MODULES[backend] if importlib.util.find_spec(m) is None]
    if missing:
        message = f"the {backend} store tests need {', '.join(missing)} (the stores extra): {INSTALL}"
        if REQUIRE:
            pytest.fail(f"{message}; NUDGE_REQUIRE_STORES=1 makes them mandatory")
        pytest.skip(message)


def id_pairs(query_set, ids):
    """``(embeddings, answers as document ids)`` of a QuerySet whose answers are rows of ``ids``."""
    return query_set.embeddings, [[ids[j] for j in row] for row in query_set.answers]


# ------------------------------------------------------------------------------- data and stores
@pytest.fixture(scope="module")
def data():
    t = load_tessera()
    ids = list(t.doc_ids)
    train, val = t.query_set("train"), t.query_set("val")
    return {
        "ids": ids,
        "emb": t.doc_embeddings,
        "train": train,
        "val": val,
        "train_ids": id_pairs(train, ids),
        "val_ids": id_pairs(val, ids),
    }


@pytest.fixture(scope="module")
def models(data):
    return {(m, k): Nudge(m, k=k).fit(data["emb"], data["train"], data["val"]) for m, k in CASES}


class Backend:
    """Makes collections on one shared client (Qdrant's local mode locks its folder)."""

    def __init__(self, name: str, folder) -> None:
        self.name, self.client, self._corpus = name, None, {}
        if name == "qdrant":
            from qdrant_client import QdrantClient

            self.client = QdrantClient(path=str(folder / "qdrant"))
        elif name == "milvus":
            from pymilvus import MilvusClient

            self.client = MilvusClient(str(folder / "milvus.db"))

    def make(self, ids, vectors, metric: str = "dot"):
        if self.name == "memory":
            return InMemoryStore.from_embeddings(ids, vectors, metric)
        cls = QdrantStore if self.name == "qdrant" else MilvusStore
        return cls.from_embeddings(f"c{uuid.uuid4().hex[:12]}", ids, vectors, client=self.client, metric=metric)

    def corpus(self, data, metric: str = "dot"):
        """A collection of the bundled corpus, reset to the original vectors (shared within the module)."""
        if metric not in self._corpus:
            self._corpus[metric] = self.make(data["ids"], data["emb"], metric)
        store = self._corpus[metric]
        store.upsert(data["ids"], data["emb"])
        return store

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


@pytest.fixture(scope="module", params=["memory", "qdrant", "milvus"])
def backend(request, tmp_path_factory):
    need_client(request.param)
    b = Backend(request.param, tmp_path_factory.mktemp(request.param))
    yield b
    b.close()


class Spy:
    """Records the ids a store is asked to fetch and upsert, and whether it lists all its ids."""

    def __init__(self, store, monkeypatch) -> None:
        self.fetched, self.upserted, self.searched, self.listed = [], [], 0, False
        fetch, upsert, search = store.fetch, store.upsert, store.search

        def spy_fetch(ids):
            self.fetched += list(ids)
            return fetch(ids)

        def spy_upsert(ids, vectors):
            self.upserted += list(ids)
            return upsert(ids, vectors)

        def spy_search(queries, k=10):
            self.searched += len(queries)
            found = search(queries, k)
            self.hits.update(i for row in found[0] for i in row)
            return found

        def spy_ids():
            self.listed = True
            raise AssertionError("fit_from_store must not list the corpus")

        self.hits: set[str] = set()
        monkeypatch.setattr(store, "fetch", spy_fetch)
        monkeypatch.setattr(store, "upsert", spy_upsert)
        monkeypatch.setattr(store, "search", spy_search)
        monkeypatch.setattr(store, "ids", spy_ids)


def assert_same_fit(fit: StoreFit, model: Nudge, ids: list[str]) -> None:
    """Gamma (NUDGE-M to rel 1e-6, NUDGE-N equal), validation score, support and moved documents."""
    if model.method_ == "M":
        assert fit.gamma_ == pytest.approx(model.gamma_, rel=1e-6)
    else:
        assert fit.gamma_ == model.gamma_
    assert fit.val_score_ == pytest.approx(model.val_score_, abs=1e-12)
    assert sorted(fit.support_ids) == sorted(ids[i] for i in model.support_)
    assert sorted(fit.moved_ids) == sorted(ids[i] for i in model.moved_)


# ------------------------------------------------------------------------------- the same result
@pytest.mark.parametrize(("method", "k"), CASES)
def test_same_gamma_and_vectors_as_the_in_memory_fit(backend, data, models, method, k, tmp_path, monkeypatch):
    store = backend.corpus(data)
    spy = Spy(store, monkeypatch)
    fit = fit_from_store(store, data["train_ids"], data["val_ids"], method=method, k=k)
    model = models[(method, k)]
    assert_same_fit(fit, model, data["ids"])
    assert fit.gamma_ > 0 and fit.moved_.size > 0
    np.testing.assert_allclose(fit.validation_curve_["score"], model.validation_curve_["score"], atol=1e-12)
    # read: the documents with training queries, the validation answers and search hits; nothing listed
    assert not spy.listed and spy.upserted == []
    assert set(spy.fetched) <= set(fit.doc_ids_) | spy.hits
    assert spy.searched >= len(data["val_ids"][1])

    report = apply_to_store(store, fit, backup=tmp_path / "backup.npz")
    assert set(spy.upserted) == set(fit.moved_ids) == set(report.ids)  # only the moved vectors written
    monkeypatch.undo()
    np.testing.assert_allclose(store.fetch(data["ids"]), model.transform(data["emb"]), rtol=0, atol=1e-6)


def test_the_usual_apply_and_rollback_work_with_a_store_fit(backend, data, models, tmp_path):
    store = backend.corpus(data)
    fit = fit_from_store(store, data["train_ids"], data["val_ids"], method="N")
    report = apply_nudge_to_store(store, fit, fit.doc_ids_, backup=tmp_path / "b.npz")
    assert sorted(report.ids) == sorted(fit.moved_ids)
    np.testing.assert_allclose(store.fetch(data["ids"]), models[("N", 1)].transform(data["emb"]), atol=1e-6)
    rollback_store(store, tmp_path / "b.npz")
    np.testing.assert_array_equal(store.fetch(data["ids"]), data["emb"])


def test_reads_only_what_gamma_needs_on_a_larger_corpus(monkeypatch):
    p = make_retrieval_problem(4000, 32, 300, 100, 0, seed=3)
    ids = [f"doc-{i}" for i in range(4000)]
    store = InMemoryStore.from_embeddings(ids, p.embeddings)
    spy = Spy(store, monkeypatch)
    for method in "MN":
        spy.fetched = []
        fit = fit_from_store(store, id_pairs(p.train, ids), id_pairs(p.val, ids), method=method)
        assert_same_fit(fit, Nudge(method).fit(p.embeddings, p.train, p.val), ids)
        assert len(set(spy.fetched)) <= len(fit.doc_ids_) + 2 * len(p.val)  # not the 4000 documents
        assert fit.search_["candidates"] <= 2 * len(p.val)


class NoisyStore(InMemoryStore):
    """Ranks and scores with its own arithmetic, off by up to 3e-6 (embedded Qdrant: up to 5e-7)."""

    def search(self, queries, k=10):
        q = np.asarray(queries, dtype=np.float64)
        scores = q @ self._vectors.T.astype(np.float64)
        scores += np.random.default_rng(0).uniform(-3e-6, 3e-6, scores.shape)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        names = list(self._row)
        return [[names[j] for j in row] for row in order], np.take_along_axis(scores, order, 1)


def test_scores_are_the_librarys_not_the_stores(data, models):
    """Taken at face value, the noisy store's scores would move NUDGE-M's gamma here by 2e-6 to 8e-6 (relative)."""
    p = make_retrieval_problem(4000, 32, 300, 100, 0, seed=3)
    ids = [f"doc-{i}" for i in range(4000)]
    store = NoisyStore.from_embeddings(ids, p.embeddings)
    fit = fit_from_store(store, id_pairs(p.train, ids), id_pairs(p.val, ids), method="M")
    model = Nudge("M").fit(p.embeddings, p.train, p.val)
    assert fit.gamma_ == pytest.approx(model.gamma_, rel=5e-7)
    assert sorted(fit.moved_ids) == sorted(ids[i] for i in model.moved_)
    store = NoisyStore.from_embeddings(data["ids"], data["emb"])
    fit = fit_from_store(store, data["train_ids"], data["val_ids"], method="N")
    assert_same_fit(fit, models[("N", 1)], data["ids"])


def test_a_shallow_first_search_grows_until_the_background_is_found(data, models):
    store = InMemoryStore.from_embeddings(data["ids"], data["emb"])
    for k in (1, 3):
        fit = fit_from_store(store, data["train_ids"], data["val_ids"], method="M", k=k, search_depth=1)
        assert_same_fit(fit, models[("M", k)], data["ids"])
        assert fit.search_["rounds"] > 1 and fit.search_["searches"] > fit.search_["queries"]


def test_a_fixed_gamma_needs_no_search(data, monkeypatch):
    store = InMemoryStore.from_embeddings(data["ids"], data["emb"])
    spy = Spy(store, monkeypatch)
    fit = fit_from_store(store, data["train_ids"], method="M", gamma=0.25)
    model = Nudge("M", gamma=0.25).fit(data["emb"], data["train"])
    assert spy.searched == 0 and fit.val_score_ is None
    assert fit.gamma_ == 0.25 and sorted(fit.moved_ids) == sorted(data["ids"][i] for i in model.moved_)


# ------------------------------------------------------------------------------- metrics
@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_nudge_m_is_refused_unless_the_store_scores_by_inner_product(backend, data, metric):
    store = backend.corpus(data, metric)
    with pytest.raises(ValueError, match=r"NUDGE-M needs a collection scored by the inner product .*not unit length"):
        fit_from_store(store, data["train_ids"], data["val_ids"], method="M")


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_nudge_n_is_fine_with_cosine_and_l2_stores(backend, data, models, metric):
    store = backend.corpus(data, metric)
    fit = fit_from_store(store, data["train_ids"], data["val_ids"], method="N")
    assert_same_fit(fit, models[("N", 1)], data["ids"])


def test_vectors_that_are_not_unit_length_are_refused_by_a_dot_store(data, models):
    scaled = data["emb"] * np.float32(2.0)
    with pytest.raises(ValueError, match=r"has norm 2 .*ranks the vectors as stored.*normalised"):
        fit_from_store(InMemoryStore.from_embeddings(data["ids"], scaled), data["train_ids"], data["val_ids"])
    # a cosine store normalises as it scores: the same fit as on the normalised embeddings
    fit = fit_from_store(
        InMemoryStore.from_embeddings(data["ids"], scaled, "cosine"), data["train_ids"], data["val_ids"]
    )
    assert_same_fit(fit, models[("N", 1)], data["ids"])


# ------------------------------------------------------------------------------- errors
def test_missing_documents_are_named(backend, data):
    ids, val_answers = data["ids"], sorted({d for row in data["val_ids"][1] for d in row})
    gone = set(val_answers[:2])
    keep = [i for i, d in enumerate(ids) if d not in gone]
    store = backend.make([ids[i] for i in keep], data["emb"][keep])
    with pytest.raises(ValueError, match="val answers name documents that are not in the store") as err:
        fit_from_store(store, data["train_ids"], data["val_ids"])
    assert all(repr(d) in str(err.value) for d in gone)
    train_only = sorted({d for row in data["train_ids"][1] for d in row} - set(val_answers))[0]
    q, answers = data["train_ids"]
    with pytest.raises(ValueError, match=r"train answers name documents .*'nowhere'"):
        fit_from_store(store, (q, [*answers[:-1], [train_only, "nowhere"]]), data["val_ids"], gamma=0.1)


def test_bad_arguments_are_named(data):
    store = InMemoryStore.from_embeddings(data["ids"], data["emb"])
    train, val = data["train_ids"], data["val_ids"]
    cases = [
        ({"method": "X"}, "method must be"),
        ({"k": 0}, "k must be a positive integer"),
        ({"method": "M", "grid": [0.1]}, "grid applies to NUDGE-N only"),
        ({"gamma_choice": "largest"}, "gamma_choice must be"),
        ({"search_depth": 0}, "search_depth must be a positive integer"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            fit_from_store(store, train, val, **kwargs)
    with pytest.raises(ValueError, match="store must be a VectorStore"):
        fit_from_store(data["emb"], train, val)
    with pytest.raises(ValueError, match="val is required"):
        fit_from_store(store, train)
    with pytest.raises(ValueError, match=r"train answers\[0\]\[0\] must be a string id, got int"):
        fit_from_store(store, data["train"], val)
    with pytest.raises(ValueError, match=r"val embeddings has dtype float64 .*astype"):
        fit_from_store(store, train, (val[0].astype(np.float64), val[1]))
    with pytest.raises(ValueError, match="val embeddings has dimension 3"):
        fit_from_store(store, train, (val[0][:, :3], val[1]))


# ------------------------------------------------------------------------------- after an apply
def test_fitting_again_after_an_apply_reads_the_originals_from_the_backup(backend, data, models, tmp_path):
    store, backup = backend.corpus(data), tmp_path / "backup.npz"
    for method in "MN":
        store.upsert(data["ids"], data["emb"])
        backup.unlink(missing_ok=True)
        first = fit_from_store(store, data["train_ids"], data["val_ids"], method=method)
        apply_to_store(store, first, backup=backup)
        if method == "M":  # the nudged vectors are not unit length: seen at once
            with pytest.raises(ValueError, match="pass its backup="):
                fit_from_store(store, data["train_ids"], data["val_ids"], method=method)
        else:  # unit length: the apply sees that the fit read nudged vectors
            blind = fit_from_store(store, data["train_ids"], data["val_ids"], method=method)
            with pytest.raises(ValueError, match=r"fit again with fit_from_store\(\.\.\., backup="):
                apply_to_store(store, blind, backup=backup)
        again = fit_from_store(store, data["train_ids"], data["val_ids"], method=method, backup=backup)
        assert_same_fit(again, models[(method, 1)], data["ids"])
        assert apply_to_store(store, again, backup=backup).n_written == 0  # idempotent


def test_a_second_nudge_after_an_apply_equals_the_in_memory_one(backend, data, tmp_path):
    """Next week's fit (here: without the payments questions) from the nudged store, with its backup."""
    store, backup = backend.corpus(data), tmp_path / "backup.npz"
    apply_to_store(store, fit_from_store(store, data["train_ids"], data["val_ids"], method="N"), backup=backup)
    ids, answers = data["ids"], data["train"].answers
    rows = [i for i, row in enumerate(answers) if not any(ids[j].startswith("pay-") for j in row)]
    part = data["train"].subset(rows)
    second = fit_from_store(store, id_pairs(part, ids), data["val_ids"], method="N", backup=backup)
    model = Nudge("N").fit(data["emb"], part, data["val"])
    assert_same_fit(second, model, data["ids"])
    report = apply_to_store(store, second, backup=backup)
    assert report.n_restored > 0  # documents the first nudge moved and this one does not
    np.testing.assert_allclose(store.fetch(ids), model.transform(data["emb"]), atol=1e-6)


def test_apply_checks_the_fit_and_the_store(data, models, tmp_path):
    store = InMemoryStore.from_embeddings(data["ids"], data["emb"])
    other = InMemoryStore.from_embeddings(data["ids"], data["emb"], "cosine")
    fit = fit_from_store(store, data["train_ids"], data["val_ids"])
    with pytest.raises(ValueError, match="fit was made from another store"):
        apply_to_store(other, fit, backup=tmp_path / "b.npz")
    with pytest.raises(ValueError, match="fit must be a StoreFit"):
        apply_to_store(store, models[("N", 1)], backup=tmp_path / "b.npz")
    report = apply_to_store(store, fit, backup=tmp_path / "b.npz", dry_run=True)
    assert report.action == "dry run" and not (tmp_path / "b.npz").exists()
    np.testing.assert_array_equal(store.fetch(data["ids"]), data["emb"])
    assert "NUDGE-N" in repr(fit) and f"moves {fit.moved_.size}" in repr(fit)


def test_a_missing_client_skips_or_fails_as_asked(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(f"{__name__}.REQUIRE", False)
    with pytest.raises(pytest.skip.Exception, match=r"need qdrant_client .*pip install -e"):
        need_client("qdrant")
    monkeypatch.setattr(f"{__name__}.REQUIRE", True)
    with pytest.raises(pytest.fail.Exception, match="NUDGE_REQUIRE_STORES=1"):
        need_client("milvus")
