"""The query-side linear adapter (nudge.adapter): gradient, recovery of a known map, early stopping."""

from __future__ import annotations

import numpy as np
import pytest

from nudge import NotFittedError
from nudge.adapter import QueryAdapter, softmax_loss_and_gradient
from nudge.teaching.synthetic import make_retrieval_problem


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def linear_problem():
    """Queries made by a known linear map: A q_i = passage_i exactly (A near the identity)."""
    rng = np.random.default_rng(0)
    d, n = 8, 300
    docs = _unit(rng.normal(size=(n, d)))
    a = np.eye(d) + 0.5 * rng.normal(size=(d, d)) / np.sqrt(d)
    queries = docs @ np.linalg.inv(a).T
    train = (queries[:200], [[i] for i in range(200)])
    val = (queries[200:], [[i] for i in range(200, n)])
    return docs, a, train, val


def _relative_error(w, a):
    """Distance of ``w`` from ``a`` after scaling ``w`` to ``a``'s norm (cosine ignores scale)."""
    return np.linalg.norm(w / np.linalg.norm(w) * np.linalg.norm(a) - a) / np.linalg.norm(a)


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    d = 6
    w, q, p = rng.normal(size=(d, d)), rng.normal(size=(5, d)), _unit(rng.normal(size=(5, d)))
    mask = np.zeros((5, 5), dtype=bool)
    mask[0, 3] = True
    for m in (None, mask):
        loss, grad = softmax_loss_and_gradient(w, q, p, 20.0, m)
        num = np.zeros_like(w)
        for i in range(d):
            for j in range(d):
                step = np.zeros_like(w)
                step[i, j] = 1e-6
                up = softmax_loss_and_gradient(w + step, q, p, 20.0, m)[0]
                down = softmax_loss_and_gradient(w - step, q, p, 20.0, m)[0]
                num[i, j] = (up - down) / 2e-6
        np.testing.assert_allclose(grad, num, atol=1e-6)
        assert loss > 0


def test_squared_loss_recovers_the_known_map_exactly(linear_problem):
    docs, a, train, val = linear_problem
    adapter = QueryAdapter(loss="squared", alphas=(0.0,)).fit(docs, train, val)
    np.testing.assert_allclose(adapter.matrix_, a, atol=1e-9)
    assert adapter.val_score_ == 1.0 and adapter.alpha_ == 0.0


def test_softmax_loss_moves_towards_the_known_map(linear_problem):
    """The in-batch softmax loss is a ranking loss: its optimum is not A itself, but training
    brings W (up to scale) much closer to A than the identity it starts from, and retrieval
    of the held-out queries becomes perfect."""
    docs, a, train, val = linear_problem
    start = QueryAdapter().fit(docs, train, val).history_["val_hit@1"][0]
    adapter = QueryAdapter(learning_rate=0.03, max_epochs=60, patience=60).fit(docs, train, val)
    assert start < 0.95 and adapter.val_score_ == 1.0
    assert _relative_error(adapter.matrix_, a) < 0.7 * _relative_error(np.eye(8), a)
    mapped = adapter.transform_queries(val[0])
    top = np.argmax(mapped @ docs.T, axis=1)
    assert np.array_equal(top, np.arange(200, 300))


def test_early_stopping_keeps_the_best_validation_epoch():
    p = make_retrieval_problem(n_docs=300, dim=16, n_train=300, n_val=80, n_test=10, seed=3)
    adapter = QueryAdapter(max_epochs=12, patience=3).fit(p.embeddings, p.train, p.val)
    h = adapter.history_
    assert h["epoch"][0] == 0 and np.isnan(h["train_loss"][0])
    assert adapter.val_score_ == max(h["val_hit@1"])
    assert h["val_hit@1"][adapter.best_epoch_] == adapter.val_score_
    assert h["val_hit@1"].index(adapter.val_score_) == adapter.best_epoch_  # the first best epoch
    assert len(h["epoch"]) - 1 <= 12
    if len(h["epoch"]) - 1 < 12:  # stopped early: patience epochs without a better score
        assert h["epoch"][-1] - adapter.best_epoch_ == 3
    finite = [v for v in h["train_loss"][1:]]
    assert all(np.isfinite(finite))


def test_documents_untouched_inputs_unmodified_and_seeded():
    p = make_retrieval_problem(n_docs=200, dim=16, n_train=150, n_val=50, n_test=20, seed=4)
    docs, q = p.embeddings.copy(), p.train.embeddings.copy()
    first = QueryAdapter(seed=7, max_epochs=5).fit(p.embeddings, p.train, p.val)
    again = QueryAdapter(seed=7, max_epochs=5).fit(p.embeddings, p.train, p.val)
    assert np.array_equal(p.embeddings, docs) and np.array_equal(p.train.embeddings, q)
    np.testing.assert_array_equal(first.matrix_, again.matrix_)
    out = first.transform_queries(p.test.embeddings.astype(np.float32))
    assert out.dtype == np.float32 and out.shape == p.test.embeddings.shape
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert first.n_documents_ == 200 and first.n_features_in_ == 16


def test_identity_when_validation_never_improves():
    """With one validation question already answered at rank 1, nothing beats the identity."""
    p = make_retrieval_problem(n_docs=100, dim=16, n_train=60, n_val=40, n_test=10, seed=5)
    top = np.argmax(p.val.embeddings @ p.embeddings.T, axis=1)
    right = [i for i, a in enumerate(p.val.answers) if top[i] in a]
    val = p.val.subset(right[:1])
    adapter = QueryAdapter(max_epochs=4, patience=2).fit(p.embeddings, p.train, val)
    assert adapter.best_epoch_ == 0
    np.testing.assert_array_equal(adapter.matrix_, np.eye(16))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"loss": "hinge"}, "loss must be"),
        ({"batch_size": 1}, "batch_size must be at least 2"),
        ({"batch_size": 0}, "batch_size"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"scale": float("nan")}, "scale"),
        ({"l2": -1.0}, "l2"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"seed": 1.5}, "seed"),
        ({"loss": "squared", "alphas": []}, "alphas"),
        ({"loss": "squared", "alphas": [-1]}, "alphas"),
    ],
)
def test_bad_parameters_name_the_argument(params, match):
    p = make_retrieval_problem(n_docs=50, dim=8, n_train=20, n_val=10, n_test=5, seed=0)
    with pytest.raises(ValueError, match=match):
        QueryAdapter(**params).fit(p.embeddings, p.train, p.val)


def test_bad_input():
    p = make_retrieval_problem(n_docs=50, dim=8, n_train=20, n_val=10, n_test=5, seed=0)
    with pytest.raises(ValueError, match="val is required"):
        QueryAdapter().fit(p.embeddings, p.train, None)
    with pytest.raises(ValueError, match="train"):
        QueryAdapter().fit(p.embeddings, (p.train.embeddings[:, :4], p.train.answers), p.val)
    with pytest.raises(NotFittedError):
        QueryAdapter().transform_queries(p.test.embeddings)
    fitted = QueryAdapter(max_epochs=1).fit(p.embeddings, p.train, p.val)
    with pytest.raises(ValueError, match="queries has dimension 4"):
        fitted.transform_queries(p.test.embeddings[:, :4])
    assert "QueryAdapter(loss='squared')" == repr(QueryAdapter(loss="squared"))


def test_auto_keeps_the_better_validation_score():
    p = make_retrieval_problem(n_docs=200, dim=16, n_train=200, n_val=60, n_test=10, seed=6)
    soft = QueryAdapter(max_epochs=6).fit(p.embeddings, p.train, p.val)
    square = QueryAdapter(loss="squared").fit(p.embeddings, p.train, p.val)
    auto = QueryAdapter(loss="auto", max_epochs=6).fit(p.embeddings, p.train, p.val)
    best = soft if soft.val_score_ >= square.val_score_ else square
    assert auto.loss_ == best.loss_ and auto.val_score_ == max(soft.val_score_, square.val_score_)
    np.testing.assert_array_equal(auto.matrix_, best.matrix_)
    assert soft.loss_ == "softmax" and square.loss_ == "squared"
