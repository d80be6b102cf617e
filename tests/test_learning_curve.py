"""Notebook 09's library: nested seeded subsets, the learning curve, the methods, the self-check."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nudge.adapter import QueryAdapter
from nudge.evaluation import evaluate_embeddings, split_by_known
from nudge.pairs import QuerySet
from nudge.teaching.exercises import check_squared_adapter
from nudge.teaching.learning_curve import (
    METHODS,
    bundled_problem,
    fit_method,
    learning_curve,
    nested_subsets,
    scifact_problem,
    train_val_positions,
)
from nudge.teaching.synthetic import make_retrieval_problem


def test_subsets_are_nested_seeded_and_cover_all():
    subsets = nested_subsets(300, (25, 50, 100, 200, None), seed=3)
    assert [s.size for s in subsets] == [25, 50, 100, 200, 300]
    for small, big in itertools.pairwise(subsets):
        assert np.array_equal(big[: small.size], small)
    assert sorted(subsets[-1].tolist()) == list(range(300))
    again = nested_subsets(300, (25, 50, 100, 200, None), seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(subsets, again, strict=False))
    other = nested_subsets(300, (25,), seed=4)[0]
    assert not np.array_equal(other, subsets[0])


def test_train_and_validation_stay_nested_80_20():
    subsets = nested_subsets(200, (25, 50, 100, 200), seed=0)
    parts = [train_val_positions(s) for s in subsets]
    for (tr, va), s in zip(parts, subsets, strict=False):
        assert tr.size + va.size == s.size and not set(tr) & set(va)
        assert va.size == s.size // 5
    for (tr1, va1), (tr2, va2) in itertools.pairwise(parts):
        assert set(tr1) <= set(tr2) and set(va1) <= set(va2)


@pytest.mark.parametrize(
    ("n", "sizes", "match"),
    [
        (10, (5, 20), "larger than"),
        (10, (5, 5), "increase"),
        (10, (), "non-empty"),
        (10, (0,), "positive"),
        (10, "25", "sequence"),
        (0, (1,), "n must be"),
    ],
)
def test_bad_sizes(n, sizes, match):
    with pytest.raises(ValueError, match=match):
        nested_subsets(n, sizes, seed=0)


@pytest.fixture(scope="module")
def small_problem():
    p = make_retrieval_problem(n_docs=150, dim=16, n_train=160, n_val=40, n_test=60, seed=2)
    pool = QuerySet(
        np.concatenate([p.train.embeddings, p.val.embeddings]),
        [list(a) for a in p.train.answers] + [list(a) for a in p.val.answers],
    )
    return p.embeddings, pool, p.test


def test_learning_curve_gains_are_the_methods_test_gains(small_problem):
    docs, pool, test = small_problem
    curve = learning_curve(docs, pool, test, sizes=(25, 100, None), seeds=(0, 1), metric="hit@1")
    assert curve.gains.shape == (3, 3, 2) and curve.sizes.tolist() == [25, 100, 200]
    base = evaluate_embeddings(docs, test)["hit@1"]
    assert curve.base == base
    # one cell recomputed by hand: seed 1, 100 questions, the adapter
    tr, va = train_val_positions(nested_subsets(len(pool), (25, 100), seed=1)[1])
    adapter = QueryAdapter(loss="auto", seed=1).fit(docs, pool.subset(tr), pool.subset(va))
    mapped = QuerySet(adapter.transform_queries(test.embeddings), test.answers)
    expected = evaluate_embeddings(docs, mapped)["hit@1"] - base
    assert curve.gains[2, 1, 1] == pytest.approx(expected)
    np.testing.assert_allclose(curve.mean("adapter"), curve.gains[2].mean(axis=1))
    assert "questions" in curve.table() and len(curve.table().splitlines()) == 5
    assert curve.known_share.shape == (3, 2) and np.all((curve.known_share >= 0) & (curve.known_share <= 1))
    assert np.all(np.diff(curve.known_share, axis=0) >= 0)  # nested training sets: coverage only grows


def test_learning_curve_rejects_unknown_names(small_problem):
    docs, pool, test = small_problem
    with pytest.raises(ValueError, match="methods"):
        learning_curve(docs, pool, test, methods=("NUDGE-X",), sizes=(25,), seeds=(0,))
    with pytest.raises(ValueError, match="metric"):
        learning_curve(docs, pool, test, sizes=(25,), seeds=(0,), metric="ranks")
    with pytest.raises(ValueError, match="seeds"):
        learning_curve(docs, pool, test, sizes=(25,), seeds=())


def test_fit_method_every_method(small_problem):
    docs, pool, test = small_problem
    train, val = pool.subset(range(160)), pool.subset(range(160, 200))
    for name in METHODS:
        fitted = fit_method(name, docs, train, val)
        assert fitted.seconds >= 0 and fitted.changes
        r = fitted.evaluate(test)
        assert 0 <= r["hit@1"] <= 1
        if name in ("no fine-tuning", "adapter"):
            assert fitted.doc_embeddings is docs  # documents untouched
        else:
            assert fitted.doc_embeddings.shape == docs.shape
    adapted = fit_method("adapter", docs, train, val).queries(test)
    np.testing.assert_allclose(np.linalg.norm(adapted.embeddings, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="name must be one of"):
        fit_method("full fine-tuning", docs, train, val)


def test_problems():
    p = bundled_problem()
    assert (len(p.train), len(p.val), len(p.test)) == (621, 155, 235)
    known, never = split_by_known(p.test, p.train)
    assert (len(known), len(never)) == (194, 41)
    assert len(p.pool) == 776


def test_scifact_problem(tmp_path, scifact):
    assert scifact_problem(tmp_path) is None
    p = scifact_problem(scifact)
    assert len(p.test) == 300 and len(p.train) + len(p.val) == 809 and p.docs.shape == (5183, 384)


def test_self_check_recomputes_the_answer():
    p = bundled_problem()
    hit = {}
    for loss in ("softmax", "squared"):
        adapter = QueryAdapter(loss=loss).fit(p.docs, p.train, p.val)
        mapped = QuerySet(adapter.transform_queries(p.test.embeddings), p.test.answers)
        hit[loss] = evaluate_embeddings(p.docs, mapped)["hit@1"]
    value = hit["squared"] - hit["softmax"]
    check = check_squared_adapter(value)
    assert check and "interval" in check.message and "state the verdict yourself" in check.message
    assert "clearly" not in check.message  # the check does not hand over the judgement
    assert not check_squared_adapter(value + 0.02)
    assert not check_squared_adapter(-value) or value == 0
    assert not check_squared_adapter(None) and "replace none" in repr(check_squared_adapter(None)).lower()
    assert not check_squared_adapter("0.6")
    # the answer is not one adapter's own score
    assert not check_squared_adapter(hit["squared"])


def test_method_difference_pairs_the_same_questions():
    from nudge.teaching.learning_curve import method_difference, per_query_scores

    rows = {
        "known": {"a": {"per_query": {"m": np.array([1.0, 0.0])}}, "b": {"per_query": {"m": np.array([0.0, 0.0])}}},
        "never asked": {"a": {"per_query": {"m": np.array([0.0])}}, "b": {"per_query": {"m": np.array([1.0])}}},
    }
    assert per_query_scores(rows, "a", "m").tolist() == [1.0, 0.0, 0.0]
    d = method_difference(rows, "a", "b", "m")
    assert d.n == 3 and abs(d.difference - 0.0) < 1e-12 and d.n_better == 1 and d.n_worse == 1
    assert method_difference(rows, "a", "b", "m", group="known").difference == 0.5
    with pytest.raises(ValueError, match="group"):
        per_query_scores(rows, "a", "m", group="nope")
    with pytest.raises(ValueError, match="method"):
        per_query_scores(rows, "c", "m")
