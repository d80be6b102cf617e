"""Paired differences (bootstrap interval, exact paired test) and the known / never-asked split."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from nudge.evaluation import (
    PairedDifference,
    compare,
    evaluate_by_group,
    evaluate_embeddings,
    format_table,
    known_mask,
    paired_difference,
    sign_test_p,
    split_by_known,
)
from nudge.pairs import QuerySet


def _brute_force_flip_p(d):
    """Two-sided sign-flip p-value by enumerating every sign pattern of every query."""
    d = np.asarray(d, dtype=float)
    observed = abs(d.sum())
    hits = sum(abs(np.dot(signs, d)) >= observed - 1e-12 for signs in itertools.product((-1, 1), repeat=d.size))
    return hits / 2**d.size


def test_hand_computed_difference_counts_and_str():
    before = [1, 0, 0, 1, 0, 1, 0, 0]
    after = [1, 1, 1, 0, 0, 1, 1, 0]
    diff = paired_difference(before, after)
    assert diff.difference == pytest.approx(2 / 8)
    assert (diff.n, diff.n_better, diff.n_worse) == (8, 3, 1)
    # exact sign test on 4 discordant queries, 3 up / 1 down: 2 * (1 + 4) / 16
    assert diff.p_value == pytest.approx(10 / 16) and diff.test == "exact sign test"
    text = str(diff)
    assert text.startswith("+0.250 [") and text.endswith(", 3 better / 1 worse, p=0.625")
    small = PairedDifference(0.083, 0.041, 0.124, 194, 0.004, 16, 4)
    assert str(small) == "+0.083 [+0.041, +0.124], 16 better / 4 worse, p=0.004" and small.clear
    assert not PairedDifference(0.01, -0.02, 0.04, 10, 0.5, 2, 1).clear
    assert PairedDifference(-0.1, -0.2, -0.01, 10, 0.01, 0, 3).clear


def test_verdict_states_the_one_rule():
    from nudge.evaluation import RULE

    assert PairedDifference(0.08, 0.04, 0.12, 194, 0.004, 16, 4).verdict == "clearly higher"
    assert PairedDifference(-0.1, -0.2, -0.01, 10, 0.2, 0, 3).verdict == "clearly lower"  # p is not the rule
    unclear = PairedDifference(0.01, -0.02, 0.04, 10, 0.01, 2, 1)  # small p, interval contains 0
    assert not unclear.clear and unclear.verdict.startswith("no clear difference")
    assert "excludes 0" in RULE and "not evidence of no difference" in RULE


def test_evaluate_store_gives_per_query_scores_equal_to_in_memory():
    from nudge.evaluation import evaluate_store, format_table
    from nudge.retrieval import search

    rng = np.random.default_rng(3)
    docs = rng.normal(size=(12, 5))
    queries = QuerySet(rng.normal(size=(9, 5)), [[int(i)] for i in rng.integers(0, 12, 9)])
    ids = [f"d{i}" for i in range(12)]

    class Store:
        def search(self, q, k):
            rows, scores = search(q, docs, k=k)
            return [[ids[r] for r in row] for row in rows], scores

    got, want = evaluate_store(Store(), queries, ids), evaluate_embeddings(docs, queries)
    for name in ("hit@1", "mrr@10", "ndcg@10", "recall@10"):
        np.testing.assert_allclose(got["per_query"][name], want["per_query"][name])
        assert got[name] == pytest.approx(want[name])
    assert "hit@1 vs a" in format_table({"a": want, "b": got}, interval="hit@1")


def test_bootstrap_of_two_queries_matches_the_exact_resampling_distribution():
    # differences (0, 1): the resampled mean is 0, 1/2 or 1 with probabilities 1/4, 1/2, 1/4
    diff = paired_difference([0.0, 0.0], [0.0, 1.0], confidence=0.95)
    assert (diff.low, diff.high) == (0.0, 1.0)
    diff = paired_difference([0.0, 0.0], [0.0, 1.0], confidence=0.4)  # 30% and 70% quantiles
    assert (diff.low, diff.high) == (0.5, 0.5)


def test_bootstrap_quantiles_against_full_enumeration():
    d = np.array([0.0, 0.25, 1.0, -0.5, 0.75])
    means = np.sort([d[list(idx)].mean() for idx in itertools.product(range(d.size), repeat=d.size)])
    cdf_levels = np.arange(1, means.size + 1) / means.size
    for level in (0.05, 0.95):
        # the test is only meaningful away from a jump of the exact distribution
        exact = means[np.searchsorted(cdf_levels, level)]
        near = np.abs(cdf_levels[np.searchsorted(means, exact, "right") - 1] - level)
        assert near > 0.01
    diff = paired_difference(np.zeros(5), d, confidence=0.9, n_resamples=20_000)
    assert diff.low == means[np.searchsorted(cdf_levels, 0.05)]
    assert diff.high == means[np.searchsorted(cdf_levels, 0.95)]


@pytest.mark.parametrize("n", [1, 3, 6, 9])
def test_sign_test_equals_brute_force_enumeration_for_0_1_scores(n):
    rng = np.random.default_rng(n)
    for _ in range(5):
        before, after = rng.integers(0, 2, n), rng.integers(0, 2, n)
        d = after - before
        diff = paired_difference(before, after)
        assert diff.p_value == pytest.approx(_brute_force_flip_p(d[d != 0]) if (d != 0).any() else 1.0)


def test_sign_flip_test_equals_brute_force_for_real_scores():
    rng = np.random.default_rng(1)
    before, after = rng.random(10), rng.random(10)
    diff = paired_difference(before, after)
    assert diff.test == "exact sign-flip test"
    assert diff.p_value == pytest.approx(_brute_force_flip_p(after - before))


def test_sign_flip_test_with_many_queries_is_estimated_and_close_to_exact(monkeypatch):
    import nudge.evaluation

    monkeypatch.setattr(nudge.evaluation, "EXACT_FLIPS_MAX", 8)  # so that 12 queries are "many"
    rng = np.random.default_rng(2)
    d = rng.normal(0.3, 1.0, 12)
    diff = paired_difference(np.zeros(12), d, n_resamples=20_000)
    assert diff.test == "sign-flip test, 20000 random flips"
    assert diff.p_value == pytest.approx(_brute_force_flip_p(d), abs=0.01)


def test_sign_test_closed_form():
    assert sign_test_p(0, 0) == 1.0
    assert sign_test_p(5, 5) == 1.0
    assert sign_test_p(19, 3) == pytest.approx(2 * sum(math.comb(22, i) for i in range(4)) / 2**22)
    assert sign_test_p(6, 0) == pytest.approx(2 / 64)


def test_no_difference_gives_an_interval_containing_zero_and_p_one():
    rng = np.random.default_rng(3)
    x = rng.random(50)
    same = paired_difference(x, x.copy())
    assert same.low <= 0 <= same.high and same.p_value == 1.0 and not same.clear
    balanced = paired_difference(np.r_[np.ones(10), np.zeros(10)], np.r_[np.zeros(10), np.ones(10)])
    assert balanced.difference == 0 and balanced.low < 0 < balanced.high and balanced.p_value == 1.0


def test_deterministic_with_seed_and_inputs_untouched():
    rng = np.random.default_rng(4)
    before, after = rng.random(40), rng.random(40)
    copies = before.copy(), after.copy()
    a = paired_difference(before, after, seed=7)
    assert a == paired_difference(before, after, seed=7)
    b = paired_difference(before, after, seed=8)
    assert (a.low, a.high) != (b.low, b.high) and a.difference == b.difference
    np.testing.assert_array_equal(before, copies[0])
    np.testing.assert_array_equal(after, copies[1])


def test_bad_input():
    with pytest.raises(ValueError, match=r"before and after must score the same queries; got 3 and 2"):
        paired_difference([1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match=r"after contains NaN or infinite values \(first at position 1\)"):
        paired_difference([1.0, 0.0], [1.0, math.nan])
    with pytest.raises(ValueError, match=r"before is empty"):
        paired_difference([], [])
    with pytest.raises(ValueError, match=r"before must be a 1-D array of per-query scores; got shape \(2, 1\)"):
        paired_difference([[1], [0]], [1, 0])
    with pytest.raises(ValueError, match=r"confidence must lie strictly between 0 and 1"):
        paired_difference([1], [0], confidence=95)
    with pytest.raises(ValueError, match=r"n_resamples must be a positive integer"):
        paired_difference([1], [0], n_resamples=0)
    with pytest.raises(ValueError, match=r"after must be a 1-D array of numbers"):
        paired_difference([1], ["x"])


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    docs = rng.normal(size=(30, 8)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    answers = [[int(i % 30)] for i in range(60)]
    queries = (docs[[a[0] for a in answers]] + 0.9 * rng.normal(size=(60, 8))).astype(np.float32)
    return docs, QuerySet(queries, answers)


def test_compare_and_table_show_the_interval_only_when_asked(problem):
    docs, qs = problem
    before = evaluate_embeddings(docs, qs)
    moved = docs.copy()
    moved[:10] *= 1.5
    after = evaluate_embeddings(moved, qs)
    assert set(before["per_query"]) == {"hit@1", "mrr@10", "ndcg@10", "recall@10"}
    assert before["per_query"]["hit@1"].mean() == before["hit@1"]
    changes = compare(before, after)
    assert "difference" not in changes
    with_interval = compare(before, after, interval="hit@1")
    diff = with_interval["difference"]
    assert diff == paired_difference(before["per_query"]["hit@1"], after["per_query"]["hit@1"])
    assert diff.n_better == with_interval["fixed"].size and diff.n_worse == with_interval["broken"].size
    plain = format_table({"base": before, "scaled": after})
    assert "vs" not in plain and len(plain.splitlines()[0].split()) == 4
    table = format_table({"base": before, "scaled": after}, interval="hit@1")
    assert table.splitlines()[0].endswith("hit@1 vs base")
    assert table.splitlines()[-1].endswith(str(diff)) and table.splitlines()[2].rstrip() == table.splitlines()[2]
    with pytest.raises(ValueError, match=r"baseline 'nope' is not a row"):
        format_table({"base": before}, interval="hit@1", baseline="nope")
    with pytest.raises(ValueError, match=r"has no per-query 'map'"):
        compare(before, after, interval="map")
    with pytest.raises(ValueError, match=r"has no per-query scores"):
        format_table({"base": before, "x": {"hit@1": 0.5, "mrr@10": 0, "ndcg@10": 0, "recall@10": 0}}, interval="hit@1")


def test_split_by_known_follows_the_rule():
    emb = np.eye(5, dtype=np.float32)
    train = QuerySet(emb[:2], [[0], [1, 2]])
    test = QuerySet(emb, [[0], [3], [3, 2], [4], [1]])
    np.testing.assert_array_equal(known_mask(test, train), [True, False, True, False, True])
    known, never = split_by_known(test, train)
    assert known.answers == [[0], [3, 2], [1]] and never.answers == [[3], [4]]
    np.testing.assert_array_equal(known.embeddings, emb[[0, 2, 4]])
    np.testing.assert_array_equal(never.embeddings, emb[[1, 3]])
    all_known, none = split_by_known(train, train)
    assert len(all_known) == 2 and len(none) == 0


def test_evaluate_by_group(problem):
    docs, qs = problem
    train = qs.subset(np.arange(0, 20))  # answers: passages 0..19
    test = qs.subset(np.arange(20, 60))  # passages 20..29 never asked, then 0..19 again
    groups = evaluate_by_group(docs, test, train)
    known, never = split_by_known(test, train)
    assert groups["known"]["hit@1"] == evaluate_embeddings(docs, known)["hit@1"]
    assert groups["known"]["n"] == 20 and groups["never asked"]["n"] == 20
    assert groups["never asked"]["ndcg@10"] == evaluate_embeddings(docs, never)["ndcg@10"]
    empty = evaluate_by_group(docs, train, train)["never asked"]
    assert empty["n"] == 0 and math.isnan(empty["hit@1"])
