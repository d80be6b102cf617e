"""The notebooks' self-checks accept the right answer and reject wrong ones."""

from __future__ import annotations

import numpy as np
import pytest

from nudge import Nudge, split_queries
from nudge.evaluation import evaluate_embeddings
from nudge.teaching.bundled import load_tessera
from nudge.teaching.exercises import (
    check_best_gamma,
    check_cosine_trap,
    check_nearest_passage,
    check_query_sum,
    check_quickstart,
    check_saved_model,
    check_validation_size,
)


@pytest.fixture(scope="module")
def data():
    return load_tessera()


def test_placeholders_get_a_reminder_not_a_pass():
    for check in (check_quickstart, check_validation_size, check_nearest_passage, check_best_gamma, check_cosine_trap):
        result = check(None)
        assert not result and "replace None" in repr(result)


def test_quickstart_and_cosine_trap(data):
    docs, train, val, test = data.doc_embeddings, data.query_set("train"), data.query_set("val"), data.query_set("test")
    moved = Nudge("M").fit(docs, train, val).transform(docs)
    assert check_quickstart(evaluate_embeddings(moved, test)["ndcg@10"])
    assert not check_quickstart(0.5)
    cos = evaluate_embeddings(moved, test, metric="cosine")["ndcg@10"]
    assert check_cosine_trap(cos)
    wrong = check_cosine_trap(evaluate_embeddings(moved, test)["ndcg@10"])
    assert not wrong and "metric='cosine'" in repr(wrong)


def test_split_size_and_nearest_passage(data):
    n = len(data.query_ids)
    assert check_validation_size(len(split_queries(n, val_fraction=0.2, test_fraction=0.2, seed=1).val))
    assert not check_validation_size(len(split_queries(n, val_fraction=0.2, test_fraction=0.2, seed=1).test))
    q = data.query_set("test").embeddings[0]
    assert check_nearest_passage(data.doc_ids[int(np.argmax(data.doc_embeddings @ q))])
    assert not check_nearest_passage("no-such-id")


def test_query_sum(data):
    train = data.query_set("train")
    row = data.doc_ids.index("ops-001")
    mine = [i for i, a in enumerate(train.answers) if row in a]
    total = train.embeddings[mine].sum(axis=0)
    assert check_query_sum("ops-001", total)
    mean = check_query_sum("ops-001", total / len(mine))
    assert not mean and "mean" in repr(mean)
    assert not check_query_sum("ops-001", np.zeros(3))


def test_best_gamma_and_saved_model(data, tmp_path):
    docs = data.doc_embeddings
    model = Nudge("M", k=3).fit(docs, data.query_set("train"), data.query_set("val"))
    start, end = model.best_region_
    assert check_best_gamma((start + end) / 2, k=3)
    assert not check_best_gamma(end + 1.0, k=3)
    path = model.save(tmp_path / "m.npz")
    assert check_saved_model(path, embeddings=docs)
    assert not check_saved_model(path, embeddings=docs[::-1].copy())
    assert not check_saved_model(tmp_path / "missing.npz")


def test_store_and_streaming_checks(data):
    from nudge import NudgeState
    from nudge.teaching.bundled import weekly_batches
    from nudge.teaching.exercises import check_moved_after_weeks, check_store_hit1

    docs = data.doc_embeddings
    moved = Nudge("N").fit(docs, data.query_set("train"), data.query_set("val")).transform(docs)
    assert check_store_hit1(evaluate_embeddings(moved, data.query_set("test"))["hit@1"])
    before = check_store_hit1(evaluate_embeddings(docs, data.query_set("test"))["hit@1"])
    assert not before and "before NUDGE" in repr(before)
    later = load_tessera(week=2)
    state = NudgeState("M").add_pairs(train=data.id_pairs("train"), val=data.id_pairs("val"))
    state.fit_gamma(docs, data.doc_ids)
    state.fit_gamma(later.doc_embeddings, later.doc_ids)
    for week in weekly_batches(later, n_weeks=3, seed=0):
        state.add_pairs(train=later.id_pairs(week["train"]), val=later.id_pairs(week["val"]))
        state.fit_gamma(later.doc_embeddings, later.doc_ids)
    n = state.to_nudge(later.doc_embeddings, later.doc_ids).moved_.size
    assert check_moved_after_weeks(n) and not check_moved_after_weeks(n - 1)
