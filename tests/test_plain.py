"""NUDGE on one page (nudge/plain.py) agrees with the fast library, nudge.Nudge with k=1.

Float64 input: same gamma to 1e-9 relative and same rows to 1e-9 (measured: a few 1e-15).
Float32 input: plain.py always computes in float64, while nudge.Nudge scores float32 input in
float32 (like nudge-ft). NUDGE-M's gamma is a ratio of score differences, b / g, so the library's
float32 gamma carries a relative error of about 1e-7 * |score| / |b|: measured 1.7e-6 on the
bundled data, up to 6e-6 on the synthetic problems below. The float32 NUDGE-M tests therefore
compare gamma to 1e-4 relative, and the rows against the library's rows at plain.py's gamma; the
float64 tests show that the difference is the library's float32 arithmetic and nothing else.
NUDGE-N picks a grid value, which is the same in both dtypes here.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import pytest

from nudge import Nudge, QuerySet, plain
from nudge.teaching.bundled import load_tessera
from nudge.teaching.synthetic import make_retrieval_problem

PLAIN = Path(plain.__file__)
MAX_LINES = 180


def pair(qs: QuerySet) -> tuple:
    return qs.embeddings, qs.answers


def as64(qs: QuerySet) -> QuerySet:
    return QuerySet(qs.embeddings.astype(np.float64), qs.answers)


def both(docs, train, val, method):
    """(plain rows, plain gamma, fitted library estimator) on the same problem."""
    new, gamma = plain.fit(docs, train.embeddings, train.answers, val.embeddings, val.answers, method=method)
    est = Nudge(method, **({"gamma_choice": "smallest"} if method == "M" else {})).fit(docs, train, val)
    return new, gamma, est


def assert_agree(docs, train, val, method):
    """The float64 contract: same gamma (1e-9 relative) and same rows (1e-9)."""
    new, gamma, est = both(docs, train, val, method)
    assert gamma == pytest.approx(est.gamma_, rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(new, est.transform(docs), rtol=0, atol=1e-9)
    return new, gamma, est


@pytest.fixture(scope="module")
def tessera():
    t = load_tessera()
    return t.doc_embeddings, t.query_set("train"), t.query_set("val")


# ---- the bundled data ------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["M", "N"])
def test_bundled_data_float64(tessera, method):
    docs, train, val = tessera
    _, gamma, est = assert_agree(docs.astype(np.float64), as64(train), as64(val), method)
    assert gamma > 0 and est.moved_.size > 0  # something moves: the comparison is not vacuous


@pytest.mark.parametrize("method", ["M", "N"])
def test_bundled_data_float32(tessera, method):
    docs, train, val = tessera
    assert docs.dtype == np.float32
    new, gamma, est = both(docs, train, val, method)
    if method == "N":
        assert gamma == est.gamma_
    else:
        assert gamma == pytest.approx(est.gamma_, rel=1e-4)
    np.testing.assert_allclose(new, est.transform(docs, gamma=gamma), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(new, est.transform(docs), rtol=1e-5, atol=1e-6)


# ---- seeded random problems ------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("method", ["M", "N"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_random_problems(seed, method, dtype):
    p = make_retrieval_problem(n_docs=300, dim=16, n_train=200, n_val=80, seed=seed, dtype=dtype)
    if dtype == np.float64:
        assert_agree(p.embeddings, p.train, p.val, method)
        return
    new, gamma, est = both(p.embeddings, p.train, p.val, method)
    assert gamma == (pytest.approx(est.gamma_, rel=1e-4) if method == "M" else est.gamma_)
    np.testing.assert_allclose(new, est.transform(p.embeddings, gamma=gamma), rtol=1e-6, atol=1e-6)


# ---- edge cases ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small():
    return make_retrieval_problem(n_docs=200, dim=12, n_train=120, n_val=60, seed=3, dtype=np.float64)


@pytest.mark.parametrize("method", ["M", "N"])
def test_documents_without_training_queries_stay_put(small, method):
    new, gamma, est = assert_agree(small.embeddings, small.train, small.val, method)
    G = plain.query_sums(small.train.embeddings, small.train.answers, len(small.embeddings))
    still = np.flatnonzero(~G.any(axis=1))
    val_answers = {a for answers in small.val.answers for a in answers}
    assert still.size > 0 and val_answers & set(still.tolist()) and val_answers - set(still.tolist())
    assert gamma > 0
    assert np.array_equal(new[still], plain.unit(small.embeddings)[still])
    assert not np.isin(est.moved_, still).any()


def test_nudge_n_leaves_query_sums_pointing_away_or_parallel(small):
    e = small.embeddings
    G = plain.query_sums(small.train.embeddings, small.train.answers, len(e))
    away, parallel = np.flatnonzero(~G.any(axis=1))[:2]
    extra = np.stack([-e[away] + 0.1 * e[parallel], e[parallel]])  # e . G < 0, then G = e
    train = QuerySet(
        np.concatenate([small.train.embeddings, extra]), [*small.train.answers, [int(away)], [int(parallel)]]
    )
    new, gamma, est = assert_agree(e, train, small.val, "N")
    assert gamma > 0
    assert e[away] @ extra[0] < 0 and away not in est.moved_
    assert np.array_equal(new[away], e[away])
    np.testing.assert_allclose(new[parallel], e[parallel], atol=1e-12)


def test_nudge_n_rows_within_reach_become_exactly_the_query_direction():
    """Documents 0 and 1 answer the same training query, so they get the same G; once G is within
    reach both rows are exactly G/||G||, and a validation query answered by one of them ties."""
    docs = plain.unit(np.array([[1.0, 0.3, 0], [1, -0.3, 0.1], [1, 0.001, 0], [0, 0, 1]]))
    train = QuerySet(np.array([[1.0, 0, 0]]), [[0, 1]])
    val = QuerySet(np.array([[1.0, 0, 0], [0.2, 0.1, 1]]), [[0], [3]])
    new, gamma, est = assert_agree(docs, train, val, "N")
    assert gamma == plain.GRID[5] and est.val_score_ == 1.0  # 0.1: the first grid value within reach
    x = np.array([[1.0, 0, 0], [1, 0, 0]])
    assert np.array_equal(new[:2], x)
    assert np.array_equal(plain.nudge_n(docs, plain.query_sums(*pair(train), len(docs)), 0.3)[:2], x)


def _never_first(e, still, n):
    """Validation queries whose (unmoved) answer is always beaten by another unmoved document."""
    return QuerySet(e[still[1 : n + 1]].copy(), [[int(a)] for a in still[n + 1 : 2 * n + 1]])


def test_flat_validation_curve_zero(small):
    e = small.embeddings
    G = plain.query_sums(small.train.embeddings, small.train.answers, len(e))
    still = np.flatnonzero(~G.any(axis=1))
    val = _never_first(e, still, 10)
    for method in "MN":
        _, gamma, est = assert_agree(e, small.train, val, method)
        assert gamma == 0.0 and est.val_score_ == 0.0
    assert {plain.top1_score(plain.nudge_m(e, G, g), val.embeddings, val.answers) for g in (0, 1, 10)} == {0.0}


def test_flat_validation_curve_nonzero_for_nudge_n(small):
    """Half the queries are their unmoved answer (first at every gamma), half never first."""
    e = small.embeddings
    G = plain.query_sums(small.train.embeddings, small.train.answers, len(e))
    still = np.flatnonzero(~G.any(axis=1))
    blocked = _never_first(e, still, 10)
    val = QuerySet(
        np.concatenate([blocked.embeddings, e[still[:10]]]), [*blocked.answers, *[[int(a)] for a in still[:10]]]
    )
    curve = [plain.top1_score(plain.nudge_n(e, G, g), val.embeddings, val.answers) for g in plain.GRID]
    assert set(curve) == {0.5}
    _, gamma, est = assert_agree(e, small.train, val, "N")
    assert gamma == 0.0 and set(est.validation_curve_["score"]) == {0.5}


def test_a_query_with_two_answers_tied_first_counts_once():
    """Answers 0 and 1 (the same vector) tie first for gamma in [0, 1]; two other queries are
    first from gamma = 1.25 on. Counting (query, answer) pairs would make the two regions tie
    and pick 0; counting queries, as the library does, picks 1.25."""
    docs = np.array([[1.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    train = QuerySet(np.array([[1.0, 0, 0]]), [[2]])  # only document 2 moves, along x
    val = QuerySet(np.array([[1.0, 0, 0], [0.8, -0.1, 0.3], [0.8, -0.2, 0.3]]), [[0, 1], [2], [2]])
    _, gamma, _ = assert_agree(docs, train, val, "M")
    assert gamma == pytest.approx(1.25)
    s, t = val.embeddings @ plain.unit(docs).T, val.embeddings @ plain.unit(plain.query_sums(*pair(train), 4)).T
    assert plain.interval(s[0], t[0], 0) == plain.interval(s[0], t[0], 1) == (0.0, 1.0)


def test_no_document_moves_when_every_query_sum_cancels():
    docs = np.eye(3)
    train = QuerySet(np.array([[1.0, 0, 0], [-1, 0, 0]]), [[0], [0]])  # G_0 = 0
    val = QuerySet(np.array([[1.0, 0.5, 0]]), [[1]])
    assert plain.fit(docs, *pair(train), *pair(val), method="M")[1] == 0.0
    assert_agree(docs, train, val, "N")
    assert_agree(docs, train, val, "M")


# ---- the file itself -------------------------------------------------------------------------


def test_plain_is_numpy_only_short_and_named():
    text = PLAIN.read_text()
    tree = ast.parse(text)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "plain.py must not import from the package"
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            assert top == "numpy" or top in sys.stdlib_module_names, name
    assert len(text.splitlines()) <= MAX_LINES
    first = ast.get_docstring(tree).splitlines()[0]
    assert "notebooks 03 and 04" in first
    assert "reference" not in text.lower()  # in this repo that word means the nudge-ft package


def test_inputs_are_not_modified_and_bad_input_is_refused(small):
    docs = small.embeddings * 2.0  # not unit length: plain.fit normalises a copy
    before = docs.copy(), small.train.embeddings.copy(), small.val.embeddings.copy()
    for method in "MN":
        plain.fit(docs, *pair(small.train), *pair(small.val), method=method)
    for old, now in zip(before, (docs, small.train.embeddings, small.val.embeddings), strict=True):
        assert np.array_equal(old, now)
    with pytest.raises(ValueError, match="method"):
        plain.fit(docs, *pair(small.train), *pair(small.val), method="X")
    with pytest.raises(ValueError, match="train_answers"):
        plain.fit(docs, small.train.embeddings, small.train.answers[:-1], *pair(small.val))
    with pytest.raises(ValueError, match="val_answers"):
        plain.fit(docs, *pair(small.train), small.val.embeddings, [[len(docs)]] * len(small.val))
    with pytest.raises(ValueError, match="val_queries"):
        plain.fit(docs, *pair(small.train), small.val.embeddings[:, :3], small.val.answers)
