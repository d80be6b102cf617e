"""Phase 1 helpers: query sets, seeded splits grouped by query, pair grouping."""

from __future__ import annotations

import numpy as np
import pytest

from nudge import QuerySet, as_query_set, group_pairs, index_answers, split_queries


def test_split_sizes_disjoint_and_seeded():
    s = split_queries(1000, val_fraction=0.2, test_fraction=0.2, seed=7)
    assert (len(s.train), len(s.val), len(s.test)) == (640, 160, 200)
    together = np.concatenate([s.train, s.val, s.test])
    np.testing.assert_array_equal(np.sort(together), np.arange(1000))
    again = split_queries(1000, val_fraction=0.2, test_fraction=0.2, seed=7)
    np.testing.assert_array_equal(s.val, again.val)
    other = split_queries(1000, val_fraction=0.2, test_fraction=0.2, seed=8)
    assert not np.array_equal(s.val, other.val)
    no_test = split_queries(809, val_fraction=0.2, test_fraction=0.0, seed=0)
    assert (len(no_test.train), len(no_test.val), len(no_test.test)) == (647, 162, 0)


def test_split_errors():
    with pytest.raises(ValueError, match=r"n_queries must be an integer >= 2"):
        split_queries(1)
    with pytest.raises(ValueError, match=r"val_fraction must lie strictly between 0 and 1, got 1.5"):
        split_queries(10, val_fraction=1.5)
    with pytest.raises(ValueError, match=r"leave no training or no validation queries"):
        split_queries(3, val_fraction=0.1, test_fraction=0.0)


def test_query_set_conversions():
    q = np.eye(3, dtype=np.float32)
    qs = QuerySet(q, [[0], [1, 2], [2]])
    assert len(qs) == 3 and qs.n_pairs == 4
    sub = qs.subset([2, 0])
    np.testing.assert_array_equal(sub.embeddings, q[[2, 0]])
    assert sub.answers == [[2], [0]]
    d = qs.to_dict()
    assert d["q_ans_indx"] == [[0], [1, 2], [2]]
    assert as_query_set(d, "x").answers == d["q_ans_indx"]
    assert as_query_set((q, [[0]] * 3), "x").answers == [[0]] * 3


def test_group_pairs_and_index_answers():
    pairs = [("q1", "d2"), ("q2", "d1"), ("q1", "d3")]
    grouped = group_pairs(pairs)
    assert grouped == {"q1": ["d2", "d3"], "q2": ["d1"]}
    assert index_answers(grouped, ["q2", "q1"], ["d1", "d2", "d3"]) == [[0], [1, 2]]
    with pytest.raises(ValueError, match=r"pairs\[2\] repeats the pair \('q1', 'd2'\)"):
        group_pairs([*pairs[:2], ("q1", "d2")])
    with pytest.raises(ValueError, match=r"relevant\['q1'\] names unknown document id 'd9'"):
        index_answers({"q1": ["d9"]}, ["q1"], ["d1"])
    with pytest.raises(ValueError, match=r"relevant has no documents for query 'q3'"):
        index_answers(grouped, ["q3"], ["d1"])
