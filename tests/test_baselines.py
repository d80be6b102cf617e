"""The popularity control and the guide's formula: hand-computed cases, brute force, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from nudge import NotFittedError
from nudge.baselines import CONTROL_FACTORS, GUIDE_GRID, GuideNudge, PopularityControl, guide_directions
from nudge.evaluation import evaluate_embeddings
from nudge.pairs import QuerySet

DOCS = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])


def test_control_on_a_hand_computed_problem():
    train = QuerySet(np.array([[0.7, 0.7]]), [[1]])  # only passage 1 has a training question
    # q = (1, 0), answer 1: scores 1 (doc 0) vs 0.8 f (doc 1): first iff f >= 1.25
    # q = (0, 1), answer 2: scores 1 (doc 2) vs 0.6 f (doc 1): first iff f <= 1 / 0.6
    val = QuerySet(np.array([[1.0, 0.0], [0.0, 1.0]]), [[1], [2]])
    control = PopularityControl(factors=[1.0, 1.2, 1.25, 1.5, 2.0]).fit(DOCS, train, val)
    np.testing.assert_array_equal(control.scores_, [0.5, 0.5, 1.0, 1.0, 0.5])
    assert control.factor_ == 1.25 and control.val_score_ == 1.0
    np.testing.assert_array_equal(control.support_, [1])
    np.testing.assert_array_equal(control.moved_, [1])
    out = control.transform(DOCS)
    np.testing.assert_array_equal(out, [[1.0, 0.0], [1.0, 0.75], [0.0, 1.0]])
    np.testing.assert_array_equal(control.transform(DOCS, factor=1.0), DOCS)  # factor 1: no change
    only_one = PopularityControl(factors=[1.0]).fit(DOCS, train, val)
    assert only_one.factor_ == 1.0 and only_one.moved_.size == 0


def test_guide_on_a_hand_computed_problem():
    # passage 0 = (1, 0) with two questions: (0, 2) and (1, 1)
    train = QuerySet(np.array([[0.0, 2.0], [1.0, 1.0]]), [[0], [0]])
    support, directions = guide_directions(DOCS, train.embeddings, train.answers)
    expected = np.array([-1.0, 2.0]) / np.sqrt(5) + np.array([0.0, 1.0])  # normalize(q - e), summed
    np.testing.assert_array_equal(support, [0])
    np.testing.assert_allclose(directions, [expected])
    # q = (0.6, 0.8), answer 0: doc 0 scores 0.6 + g * d . q, doc 1 scores 0.96, doc 2 scores 0.8
    val = QuerySet(np.array([[0.6, 0.8]]), [[0]])
    slope = expected @ [0.6, 0.8]
    needed = (0.96 - 0.6) / slope
    grid = [0.0, round(needed - 0.01, 4), round(needed + 0.01, 4), 1.0]
    guide = GuideNudge(grid=grid).fit(DOCS, train, val)
    np.testing.assert_array_equal(guide.scores_, [0, 0, 1, 1])
    assert guide.gamma_ == grid[2]
    np.testing.assert_allclose(guide.transform(DOCS), [DOCS[0] + grid[2] * expected, DOCS[1], DOCS[2]])
    np.testing.assert_array_equal(guide.transform(DOCS, gamma=0.0), DOCS)  # gamma 0: no change


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    docs = rng.normal(size=(60, 12))
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    answers = [[int(i)] if i % 7 else [int(i), int(i + 1) % 60] for i in rng.integers(0, 40, 120)]
    queries = np.stack([docs[a].sum(0) + 0.9 * rng.normal(size=12) for a in answers])
    qs = QuerySet(queries, answers)
    return docs, qs.subset(np.arange(80)), qs.subset(np.arange(80, 120))


@pytest.mark.parametrize("cls", [PopularityControl, GuideNudge])
def test_validation_scores_equal_a_direct_evaluation_at_every_grid_value(problem, cls):
    docs, train, val = problem
    grid = [1.0, 1.05, 1.1, 1.3, 2.0] if cls is PopularityControl else [0.0, 0.01, 0.05, 0.2]
    model = cls(grid).fit(docs, train, val)
    for value, score in zip(grid, model.scores_, strict=True):
        kw = {"factor": value} if cls is PopularityControl else {"gamma": value}
        assert score == evaluate_embeddings(model.transform(docs, **kw), val)["hit@1"]
    assert model.val_score_ == model.scores_.max()
    best = int(np.argmax(model.scores_))
    assert (model.factor_ if cls is PopularityControl else model.gamma_) == grid[best]
    np.testing.assert_array_equal(model.support_, np.unique([d for a in train.answers for d in a]))


@pytest.mark.parametrize("cls", [PopularityControl, GuideNudge])
def test_inputs_are_not_modified_and_rows_are_normalised_first(problem, cls):
    docs, train, val = problem
    long_docs = (docs * 3.0).astype(np.float32)
    train32 = QuerySet(train.embeddings.astype(np.float32), train.answers)
    val32 = QuerySet(val.embeddings.astype(np.float32), val.answers)
    copies = long_docs.copy(), train32.embeddings.copy(), val32.embeddings.copy()
    model = cls().fit(long_docs, train32, val32)
    out = model.transform(long_docs)
    np.testing.assert_array_equal(long_docs, copies[0])
    np.testing.assert_array_equal(train32.embeddings, copies[1])
    np.testing.assert_array_equal(val32.embeddings, copies[2])
    assert out.dtype == np.float32 and out is not long_docs
    unmoved = np.setdiff1d(np.arange(60), model.support_)
    np.testing.assert_allclose(np.linalg.norm(out[unmoved], axis=1), 1.0, rtol=1e-6)
    same = cls().fit(docs.astype(np.float32), train32, val32)
    np.testing.assert_allclose(out, same.transform(docs.astype(np.float32)), atol=1e-6)


def test_default_grids():
    assert CONTROL_FACTORS[0] == 1.0 and CONTROL_FACTORS[-1] == 2.0 and len(CONTROL_FACTORS) == 201
    assert GUIDE_GRID[0] == 0.0 and GUIDE_GRID[-1] == 1.0 and len(GUIDE_GRID) == 1001
    assert repr(PopularityControl()) == "PopularityControl()" and repr(GuideNudge([0.1])) == "GuideNudge(grid=[0.1])"


def test_bad_input(problem):
    docs, train, val = problem
    with pytest.raises(ValueError, match=r"factors must hold finite values >= 1.0"):
        PopularityControl(factors=[0.5, 1.0]).fit(docs, train, val)
    with pytest.raises(ValueError, match=r"factors is empty"):
        PopularityControl(factors=[]).fit(docs, train, val)
    with pytest.raises(ValueError, match=r"grid must hold finite values >= 0.0"):
        GuideNudge(grid=[np.nan]).fit(docs, train, val)
    with pytest.raises(ValueError, match=r"grid must be a sequence of numbers"):
        GuideNudge(grid="0.1").fit(docs, train, val)
    for cls in (PopularityControl, GuideNudge):
        with pytest.raises(ValueError, match=r"val is required"):
            cls().fit(docs, train, None)
        with pytest.raises(NotFittedError, match=r"not fitted yet"):
            cls().transform(docs)
        with pytest.raises(ValueError, match=r"train answers\[0\] contains document index 99"):
            cls().fit(docs, QuerySet(train.embeddings[:1], [[99]]), val)
        with pytest.raises(ValueError, match=r"doc_embeddings contains NaN"):
            bad = docs.copy()
            bad[3, 0] = np.nan
            cls().fit(bad, train, val)
        with pytest.raises(ValueError, match=r"val embeddings has dimension 3"):
            cls().fit(docs, train, QuerySet(np.ones((1, 3)), [[0]]))
        model = cls().fit(docs, train, val)
        with pytest.raises(ValueError, match=r"was fitted on shape \(60, 12\)"):
            model.transform(docs[:10])
        with pytest.raises(ValueError, match=r"not the ones this \w+ was fitted on"):
            model.transform(docs[::-1].copy())
    model = PopularityControl().fit(docs, train, val)
    with pytest.raises(ValueError, match=r"factor must be a finite number >= 0"):
        model.transform(docs, factor=-1)
