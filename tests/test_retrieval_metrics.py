"""Retrieval (chunked top-k, ranks) and metrics (hit, recall, MRR, nDCG)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nudge.metrics import evaluate, per_query, rank_changes
from nudge.retrieval import first_relevant_rank, search


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    corpus = rng.normal(size=(1000, 16)).astype(np.float32)
    queries = rng.normal(size=(40, 16)).astype(np.float32)
    return queries, corpus


@pytest.mark.parametrize("metric", ["dot", "cosine"])
@pytest.mark.parametrize("chunk_size", [1, 7, 333, 5000])
def test_search_equals_full_sort(data, metric, chunk_size):
    q, c = data
    idx, scores = search(q, c, k=10, metric=metric, chunk_size=chunk_size)
    if metric == "cosine":
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        c = c / np.linalg.norm(c, axis=1, keepdims=True)
    full = q @ c.T
    expected = np.argsort(-full, axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(idx, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(full, expected, 1), rtol=1e-5)


def test_search_breaks_ties_by_lower_index_and_caps_k():
    c = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    idx, _ = search(np.array([[1.0, 0.0]], np.float32), c, k=10, chunk_size=2)
    np.testing.assert_array_equal(idx, [[0, 2, 3, 1]])


def test_dot_and_cosine_differ_on_unnormalised_vectors():
    c = np.array([[3.0, 0.0], [0.6, 0.8]], dtype=np.float32)  # NUDGE-M-like long vector first
    q = np.array([[0.5, 0.866]], dtype=np.float32)
    assert search(q, c, 1, metric="dot")[0][0, 0] == 0
    assert search(q, c, 1, metric="cosine")[0][0, 0] == 1


def test_first_relevant_rank_matches_brute_force(data):
    q, c = data
    rng = np.random.default_rng(1)
    relevant = [sorted(rng.choice(1000, size=int(rng.integers(1, 4)), replace=False).tolist()) for _ in range(40)]
    ranks = first_relevant_rank(q, c, relevant, chunk_size=97)
    full = q @ c.T
    for i, rel in enumerate(relevant):
        others = np.delete(full[i], rel)
        assert ranks[i] == 1 + np.count_nonzero(others > full[i, rel].max())
    idx, _ = search(q, c, k=1000)
    for i, rel in enumerate(relevant):
        assert ranks[i] == 1 + min(int(np.flatnonzero(idx[i] == r)[0]) for r in rel)


def test_metrics_on_a_hand_computed_example():
    retrieved = np.array([[3, 1, 2, 0], [0, 1, 2, 3], [9, 8, 7, 6]])
    relevant = [[1, 0], {0: 2.0, 3: 1.0}, [5]]
    m = per_query(retrieved, relevant, k=3)
    np.testing.assert_allclose(m["hit"], [1, 1, 0])
    np.testing.assert_allclose(m["recall"], [0.5, 0.5, 0])
    np.testing.assert_allclose(m["mrr"], [0.5, 1.0, 0])
    ndcg0 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    ndcg1 = 2.0 / (2.0 + 1 / math.log2(3))  # graded: linear gain, ideal = [2, 1]
    np.testing.assert_allclose(m["ndcg"], [ndcg0, ndcg1, 0])
    means = evaluate(retrieved, relevant, k=3)
    assert means["mrr@3"] == pytest.approx(0.5) and set(means) == {"hit@3", "recall@3", "mrr@3", "ndcg@3"}


def test_metric_input_errors():
    with pytest.raises(ValueError, match=r"fewer than k=5"):
        per_query(np.zeros((1, 3), int), [[0]], k=5)
    with pytest.raises(ValueError, match=r"relevant has 2 entries but retrieved has 1 rows"):
        per_query(np.zeros((1, 3), int), [[0], [1]], k=1)
    # only grade 0: judged, nothing relevant: undefined (NaN), not an error (tests/test_graded_diagnostics.py)
    assert np.isnan(per_query(np.zeros((1, 3), int), [{4: 0.0}], k=1)["ndcg"][0])
    with pytest.raises(ValueError, match=r"relevant\[0\] has a negative or non-finite grade"):
        per_query(np.zeros((1, 3), int), [{4: -1.0}], k=1)
    with pytest.raises(ValueError, match=r"relevant\[0\] lists a document more than once"):
        per_query(np.zeros((1, 3), int), [[1, 1]], k=1)
    with pytest.raises(ValueError, match=r"metric must be 'dot' or 'cosine'"):
        search(np.ones((1, 2), np.float32), np.ones((2, 2), np.float32), metric="l2")


def test_rank_changes():
    before = np.array([1, 5, 2, 1, 30])
    after = np.array([1, 1, 4, 1, 12])
    ch = rank_changes(before, after, k=1)
    np.testing.assert_array_equal(ch["fixed"], [1])
    np.testing.assert_array_equal(ch["broken"], [])
    np.testing.assert_array_equal(ch["improved"], [1, 4])
    np.testing.assert_array_equal(ch["worsened"], [2])
    assert rank_changes(before, after, k=3)["broken"].tolist() == [2]
