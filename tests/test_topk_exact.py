"""Gamma selection with top-k weights is exact for every k up to the corpus size (brute force)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import brute_score, unit

from nudge import Nudge
from nudge.gamma import validation_context
from nudge.teaching.synthetic import make_retrieval_problem


def random_problem(seed: int, n_docs: int, n_val: int, max_answers: int):
    """Small float64 problem whose validation queries have 1..max_answers answers each."""
    rng = np.random.default_rng(seed)
    dim = 6
    docs = unit(rng.standard_normal((n_docs, dim)))
    train_ans = [list(rng.choice(n_docs, size=int(rng.integers(1, 3)), replace=False)) for _ in range(2 * n_docs)]
    train_q = unit(docs[[a[0] for a in train_ans]] + 0.8 * rng.standard_normal((len(train_ans), dim)))
    val_ans = [
        list(rng.choice(n_docs, size=int(rng.integers(1, max_answers + 1)), replace=False)) for _ in range(n_val)
    ]
    val_q = unit(docs[[a[0] for a in val_ans]] + 0.8 * rng.standard_normal((n_val, dim)))
    return docs, (train_q, train_ans), (val_q, val_ans)


@pytest.mark.parametrize("seed", range(3))
def test_nudge_m_is_exact_for_every_k(seed):
    docs, train, val = random_problem(seed, n_docs=18, n_val=25, max_answers=6)
    for k in range(1, docs.shape[0] + 1):
        est = Nudge("M", k=k).fit(docs, train, val)
        assert 0.0 <= est.val_score_ <= 1.0
        assert np.all(est.validation_curve_["score"] >= 0) and np.all(est.validation_curve_["score"] <= 1)
        # the reported score is the one the documents really get, and no gamma does better
        assert brute_score(est.transform(docs), *val, k) == pytest.approx(est.val_score_, abs=1e-12)
        for gamma in np.linspace(0, max(1.0, 3 * est.gamma_), 31):
            assert brute_score(est.transform(docs, gamma=gamma), *val, k) <= est.val_score_ + 1e-12


@pytest.mark.parametrize("seed", range(4))
def test_nudge_n_grid_scores_are_exact_for_every_k(seed):
    docs, train, val = random_problem(seed, n_docs=16, n_val=20, max_answers=5)
    grid = np.linspace(0, 1.5, 7)
    for k in range(1, docs.shape[0] + 1):
        est = Nudge("N", k=k, grid=grid).fit(docs, train, val)
        brute = [brute_score(est.transform(docs, gamma=g), *val, k) for g in grid]
        np.testing.assert_allclose(est.validation_curve_["score"], brute, atol=1e-12)


def test_many_distinct_answer_counts_need_big_integer_weights():
    """Queries with 1..45 answers at k = 45: the common scale lcm(1..45) does not fit in int64."""
    rng = np.random.default_rng(3)
    n_docs, dim, k = 60, 6, 45
    docs = unit(rng.standard_normal((n_docs, dim)))
    val_ans = [list(rng.choice(n_docs, size=i, replace=False)) for i in range(1, 46)]
    val_q = unit(rng.standard_normal((len(val_ans), dim)))
    train_ans = [[i] for i in range(n_docs)]
    train_q = unit(docs + 0.7 * rng.standard_normal((n_docs, dim)))
    for method, extra in (("M", {}), ("N", {"grid": [0.0, 0.1, 0.4]})):
        est = Nudge(method, k=k, **extra).fit(docs, (train_q, train_ans), (val_q, val_ans))
        assert brute_score(est.transform(docs), val_q, val_ans, k) == pytest.approx(est.val_score_, abs=1e-12)
        assert np.all(est.validation_curve_["score"] >= 0)
    ctx = validation_context(docs, est, (val_q, val_ans), k=k)
    weights, scale = ctx.query_weights(k)
    assert scale > 2**63 and weights.dtype == object


def test_k_beyond_forty_on_a_synthetic_problem():
    """The case of issue 8: k = 41 with 200 validation queries used to overflow int64."""
    p = make_retrieval_problem(
        n_docs=300, dim=12, n_train=200, n_val=200, n_test=1, multi_answer_rate=0.6, seed=41, dtype=np.float64
    )
    for k in (41, 43, 50):
        est = Nudge("M", k=k).fit(p.embeddings, p.train, p.val)
        q, a = p.val.embeddings, p.val.answers
        assert brute_score(est.transform(p.embeddings), q, a, k) == pytest.approx(est.val_score_, abs=1e-12)
        assert np.all(est.validation_curve_["score"] >= 0)
