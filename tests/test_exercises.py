"""The notebooks' self-checks accept the right answer and reject wrong ones."""

from __future__ import annotations

import numpy as np
import pytest

from nudge import Nudge, split_queries
from nudge.evaluation import evaluate_embeddings
from nudge.teaching.bundled import load_tessera
from nudge.teaching.exercises import (
    accepted_answer,
    check_fixed_gamma_weeks,
    check_k3_on_test,
    check_length_on_n,
    check_nearest_passage,
    check_query_sum,
    check_quickstart,
    check_seed_gain,
    check_store_hit1,
    check_validation_overlap,
)

ALL = (
    check_quickstart,
    check_validation_overlap,
    check_nearest_passage,
    check_k3_on_test,
    check_length_on_n,
    check_store_hit1,
    check_fixed_gamma_weeks,
    check_seed_gain,
)


@pytest.fixture(scope="module")
def data():
    return load_tessera()


def test_placeholders_get_a_reminder_not_a_pass():
    for check in ALL:
        result = check(None)
        assert not result and "replace None" in repr(result)
    assert not check_query_sum("ops-001", None)


def test_quickstart(data):
    docs, train, val, test = data.doc_embeddings, data.query_set("train"), data.query_set("val"), data.query_set("test")
    moved = Nudge("M").fit(docs, train, val).transform(docs)
    assert check_quickstart(evaluate_embeddings(moved, test)["ndcg@10"])
    assert not check_quickstart(0.5)
    assert not check_quickstart("a lot")


def test_validation_overlap(data):
    n = len(data.query_ids) - len(data.split["test_never_asked"])
    a, b = (set(split_queries(n, val_fraction=0.2, test_fraction=0.2, seed=s).val.tolist()) for s in (0, 1))
    assert check_validation_overlap(len(a & b))
    size = check_validation_overlap(len(b))
    assert not size and "size of one validation set" in repr(size)
    assert not check_validation_overlap(len(a & b) + 1)


def test_nearest_passage(data):
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


def test_k3_on_test(data):
    docs, train, val, test = data.doc_embeddings, data.query_set("train"), data.query_set("val"), data.query_set("test")
    share = {
        k: np.mean(evaluate_embeddings(Nudge("M", k=k).fit(docs, train, val).transform(docs), test)["ranks"] <= 3)
        for k in (1, 3)
    }
    right = check_k3_on_test(share[3])
    assert right and "k=1" in repr(right)
    if share[1] != share[3]:
        wrong = check_k3_on_test(share[1])
        assert not wrong and "k=1 model" in repr(wrong)
    assert not check_k3_on_test(share[3] + 0.01)


def test_length_on_n(data):
    from nudge.baselines import PopularityControl

    docs, train, val = data.doc_embeddings, data.query_set("train"), data.query_set("val")
    nudged = Nudge("N").fit(docs, train, val).transform(docs)
    right = check_length_on_n(PopularityControl().fit(nudged, train, val).factor_)
    assert right and "times as long" in repr(right)
    on_base = PopularityControl().fit(docs, train, val).factor_
    assert not check_length_on_n(on_base)
    assert not check_length_on_n(1.0)


def test_store_hit1(data):
    docs = data.doc_embeddings
    moved = Nudge("N").fit(docs, data.query_set("train"), data.query_set("val")).transform(docs)
    assert check_store_hit1(evaluate_embeddings(moved, data.query_set("test"))["hit@1"])
    before = check_store_hit1(evaluate_embeddings(docs, data.query_set("test"))["hit@1"])
    assert not before and "before NUDGE" in repr(before)


def test_fixed_gamma_weeks(data):
    from nudge import NudgeState
    from nudge.teaching.bundled import weekly_batches

    later = load_tessera(week=2)
    state = NudgeState("M").add_pairs(train=data.id_pairs("train"), val=data.id_pairs("val"))
    gamma1 = state.fit_gamma(data.doc_embeddings, data.doc_ids).gamma_
    for week in weekly_batches(later, n_weeks=3, seed=0):
        state.add_pairs(train=later.id_pairs(week["train"]), val=later.id_pairs(week["val"]))
        state.fit_gamma(later.doc_embeddings, later.doc_ids)
    model = state.to_nudge(later.doc_embeddings, later.doc_ids)
    test = data.query_set("test", later.doc_ids)
    kept, repicked = (
        int((evaluate_embeddings(model.transform(later.doc_embeddings, gamma=g), test)["ranks"] == 1).sum())
        for g in (gamma1, None)
    )
    assert check_fixed_gamma_weeks(kept)
    share = check_fixed_gamma_weeks(kept / len(test))
    assert not share and "count" in repr(share)
    if kept != repicked:
        wrong = check_fixed_gamma_weeks(repicked)
        assert not wrong and "re-picked" in repr(wrong)


def test_seed_gain():
    from nudge.teaching import exercises

    best, result = exercises._seed_gain(2)
    assert best in ("M", "N") and result.n == 50
    assert check_seed_gain(result.low)
    assert not check_seed_gain(result.high)


def test_accepted_answers_are_what_the_checks_accept():
    for check in ALL:
        value = accepted_answer(check.__name__)
        assert check(value), check.__name__
    assert check_query_sum("ops-001", accepted_answer("check_query_sum"))
    with pytest.raises(ValueError, match="check"):
        accepted_answer("check_nothing")
