"""Graded labels end to end (loaders -> metrics; binarised for NUDGE) and the fit's diagnostics."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest

import nudge.plain as plain
from nudge import Nudge, QuerySet
from nudge.diagnostics import SMALL_VALIDATION, DroppedQueryWarning, FitDiagnostics, FitWarning
from nudge.evaluation import evaluate_embeddings, split_by_known
from nudge.gamma import best_regions
from nudge.metrics import NDCG_FORM, evaluate, per_query
from nudge.pairs import binarise
from nudge.teaching.synthetic import make_retrieval_problem


# ---------------------------------------------------------------------------------- graded nDCG
def test_graded_ndcg_against_hand_computed_values():
    retrieved = np.array([[0, 1, 2], [3, 0, 1], [0, 1, 2], [7, 8, 9]])
    relevant = [
        {0: 2.0, 1: 0.0, 2: 1.0},  # grades 2/1/0 at ranks 1, 3 and 2
        {0: 1.0, 1: 2.0, 5: 2.0},  # one grade-2 document is not retrieved: it still counts in the ideal
        {0: 0.5, 1: 1.0},  # a grade of 0.5 is half a gain, not a full one
        {4: 0.0},  # only grade 0: judged, nothing relevant
    ]
    m = per_query(retrieved, relevant, k=3)
    # DCG = 2/log2(2) + 0/log2(3) + 1/log2(4) = 2.5; ideal [2, 1]: 2 + 1/log2(3) = 2.6309298
    # DCG = 0 + 1/log2(3) + 2/log2(4) = 1.6309298; ideal [2, 2, 1]: 2 + 2/log2(3) + 1/2 = 3.7618595
    # DCG = 0.5 + 1/log2(3) = 1.1309298; ideal [1, 0.5]: 1 + 0.5/log2(3) = 1.3154649
    np.testing.assert_allclose(m["ndcg"][:3], [0.9502344, 0.4335435, 0.8597187], atol=1e-7)
    assert np.isnan(m["ndcg"][3]) and np.isnan(m["hit"][3])
    np.testing.assert_allclose(m["hit"][:3], [1, 1, 1])
    np.testing.assert_allclose(m["recall"][:3], [1, 2 / 3, 1])
    np.testing.assert_allclose(m["mrr"][:3], [1, 0.5, 1])
    with pytest.warns(DroppedQueryWarning, match=r"1 of 4 queries have no relevant document"):
        means = evaluate(retrieved, relevant, k=3)
    assert means["ndcg@3"] == pytest.approx((0.9502344 + 0.4335435 + 0.8597187) / 3, abs=1e-7)
    assert "gain = grade" in NDCG_FORM and "log2" in NDCG_FORM


def _old_binary_ndcg(retrieved, relevant, k):
    """The nDCG of the kit before graded labels (binary lists only), copied as it was."""
    out = []
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    for row, rel in zip(retrieved[:, :k], relevant, strict=True):
        gains = np.array([1.0 if int(d) in set(rel) else 0.0 for d in row])
        ideal = np.ones(min(len(rel), k))
        out.append((gains @ discount) / (ideal @ discount[: ideal.size]))
    return np.array(out)


def test_binary_labels_give_exactly_the_old_ndcg():
    rng = np.random.default_rng(3)
    retrieved = np.array([rng.permutation(50)[:10] for _ in range(200)])
    relevant = [sorted(rng.choice(50, size=int(rng.integers(1, 6)), replace=False).tolist()) for _ in range(200)]
    new = per_query(retrieved, relevant, k=10)["ndcg"]
    assert np.array_equal(new, _old_binary_ndcg(retrieved, relevant, 10))
    # and the same labels as {doc: 1.0} dicts
    graded = per_query(retrieved, [dict.fromkeys(r, 1.0) for r in relevant], k=10)["ndcg"]
    assert np.array_equal(new, graded)


def test_evaluate_embeddings_uses_grades_and_drops_unanswerable_questions():
    docs = np.eye(4, dtype=np.float32)
    q = np.array([[1.0, 0.5, 0.2, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=np.float32)
    graded = QuerySet(q, [[0, 1, 2], [1], [3]], [[1.0, 2.0, 0.0], [1.0], [0.0]])
    with pytest.warns(DroppedQueryWarning, match=r"1 of 3 questions have no relevant document"):
        r = evaluate_embeddings(docs, graded, k=3)
    assert r["dropped"].tolist() == [2] and r["per_query"]["ndcg@3"].shape == (2,)
    # query 0 ranks docs 0, 1, 2 with grades 1, 2, 0: DCG 1 + 2/log2(3), ideal 2 + 1/log2(3)
    expected = (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))
    assert r["per_query"]["ndcg@3"][0] == pytest.approx(expected)
    assert r["ranks"].tolist() == [1, 1]
    binary = evaluate_embeddings(docs, QuerySet(q[:2], [[0, 1], [1]]), k=3)
    assert binary["per_query"]["ndcg@3"][0] == pytest.approx((1 + 1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert binary["dropped"].size == 0


def test_split_by_known_puts_unanswerable_questions_in_neither_group():
    q = np.eye(3, dtype=np.float32)
    train = QuerySet(q[:1], [[0]])
    test = QuerySet(q, [[0], [1], [2]], [[1.0], [2.0], [0.0]])
    with pytest.warns(DroppedQueryWarning, match=r"1 of 3 test questions"):
        known, never = split_by_known(test, train)
    assert known.answers == [[0]] and never.answers == [[1]] and never.grades == [[2.0]]


def test_binarise_keeps_grades_above_the_threshold():
    q = np.zeros((3, 2), np.float32)
    qs = QuerySet(q, [[0, 1], [2], [3, 4]], [[2.0, 1.0], [0.0], [1.0, 0.5]])
    out, dropped = binarise(qs, "train")
    assert out.answers == [[0, 1], [3, 4]] and out.grades is None and dropped.tolist() == [1]
    out, dropped = binarise(qs, "train", 1.0)
    assert out.answers == [[0]] and dropped.tolist() == [1, 2]
    assert qs.answers == [[0, 1], [2], [3, 4]]  # the input is not modified
    with pytest.raises(ValueError, match=r"train grades\[0\] must hold one grade per answer"):
        binarise(QuerySet(q, [[0, 1], [2], [3]], [[1.0], [1.0], [1.0]]), "train")


def test_grade_threshold_changes_what_nudge_trains_on():
    p = make_retrieval_problem(n_docs=300, n_train=150, n_val=60, n_test=10, seed=4)
    grades = [[2.0] + [1.0] * (len(a) - 1) for a in p.train.answers]
    graded = QuerySet(p.train.embeddings, p.train.answers, grades)
    top_only = QuerySet(p.train.embeddings, [a[:1] for a in p.train.answers])
    val2 = QuerySet(p.val.embeddings, p.val.answers, [[2.0] * len(a) for a in p.val.answers])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        a = Nudge("M", grade_threshold=1.0).fit(p.embeddings, graded, val2)
        b = Nudge("M").fit(p.embeddings, top_only, p.val)
        c = Nudge("M").fit(p.embeddings, graded, p.val)
        d = Nudge("M").fit(p.embeddings, p.train, p.val)
    assert np.array_equal(a.support_, b.support_) and a.gamma_ == b.gamma_
    assert np.array_equal(c.query_sums_, d.query_sums_) and c.gamma_ == d.gamma_
    with pytest.raises(ValueError, match=r"grade_threshold must be finite"):
        Nudge("M", grade_threshold=float("nan")).fit(p.embeddings, p.train, p.val)


def test_dataset_conversion_keeps_grades_and_a_grade_zero_only_question(tmp_path):
    from nudge.production.datasets import load_pairs

    path = tmp_path / "graded.csv"
    path.write_text(
        "query,document,grade\nq one,doc a,2\nq one,doc b,1\nq two,doc a,0\nq three,doc b,1\nq three,doc c,0\n"
    )
    dataset, report = load_pairs(path)
    assert report.ok and len(report.not_relevant) == 2 and len(report.queries_without_answers) == 1
    qids, docs = dataset.query_ids, dataset.doc_ids
    answers = dataset.answers(qids, docs)  # used to raise "relevant has no documents for query ..."
    assert answers == [[0, 1], [], [1]]
    assert dataset.grades(qids) == [[2.0, 1.0], [], [1.0]]
    qs = dataset.query_set(np.eye(3, dtype=np.float32), qids, docs)
    assert qs.grades == [[2.0, 1.0], [], [1.0]]
    with pytest.raises(ValueError, match=r"query_ids names 'nope'"):
        dataset.answers(["nope"], docs)


# ---------------------------------------------------------------------------------- the gamma = 0 rule
@pytest.fixture(scope="module")
def problem():
    return make_retrieval_problem(n_docs=400, dim=24, n_train=300, n_val=80, n_test=10, seed=1)


def _still(p):
    g = plain.query_sums(p.train.embeddings, p.train.answers, len(p.embeddings))
    return np.flatnonzero(~g.any(axis=1))


def _fit(method, p, val, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = Nudge(method, **kw).fit(p.embeddings, p.train, val)
    return est, [w for w in caught if issubclass(w.category, FitWarning)]


@pytest.mark.parametrize("method", ["M", "N"])
def test_flat_from_zero_chooses_zero_and_moves_nothing(problem, method):
    """Each validation question is an unmoved document's own vector: first at gamma = 0, and
    moving other documents can only push it down: the curve is best from 0."""
    still = _still(problem)[:60]
    val = QuerySet(problem.embeddings[still].copy(), [[int(d)] for d in still])
    est, caught = _fit(method, problem, val)
    d = est.diagnostics_
    assert est.gamma_ == 0.0 and est.moved_.size == 0
    unchanged = Nudge(method, gamma=0.0).fit(problem.embeddings, problem.train).transform(problem.embeddings)
    assert np.array_equal(est.transform(problem.embeddings), unchanged)  # the (normalised) input, unmoved
    e = problem.embeddings / np.linalg.norm(problem.embeddings, axis=1, keepdims=True)
    np.testing.assert_allclose(unchanged, e, atol=1e-6)
    assert d.zero_is_best and d.score_at_zero == d.val_score == 1.0 and d.gain == 0
    assert d.curve_shape in ("flat from 0", "flat") and d.best_regions[0][0] == 0.0
    assert d.n_moved == 0 and d.largest_move == 0.0 and d.largest_move_document is None
    assert d.n_val_reachable == 0  # none of these answers has a training question
    texts = [str(w.message) for w in caught]
    assert any("gamma = 0: nothing was gained on validation" in t for t in texts)
    assert any("no validation question has an answer with training questions" in t for t in texts)
    assert not any("perfect validation score" in t for t in texts)  # 1.000 without moving is no overfit
    if method == "M":
        assert est.best_region_[0] == 0 and est.best_region_[1] > 0  # "middle" used to move here
        assert d.curve_shape == "flat from 0"
        assert Nudge("M", gamma_choice="smallest").fit(problem.embeddings, problem.train, val).gamma_ == 0.0
    assert "moving helps no validation question, so nothing moved" in d.summary()


@pytest.mark.parametrize("method", ["M", "N"])
def test_a_curve_that_rises_moves_documents(problem, method):
    est, caught = _fit(method, problem, problem.val)
    d = est.diagnostics_
    assert est.gamma_ > 0 and est.moved_.size > 0
    assert d.zero_is_best is False and d.curve_shape in ("single peak", "several peaks")
    assert d.val_score > d.score_at_zero and d.gain == pytest.approx(d.val_score - d.score_at_zero)
    assert any(lo <= est.gamma_ <= hi for lo, hi in d.best_regions)
    assert not any("gamma = 0" in str(w.message) for w in caught)


# ---------------------------------------------------------------------------------- every field
@pytest.mark.parametrize("method", ["M", "N"])
def test_every_diagnostic_field(problem, method):
    est, _ = _fit(method, problem, problem.val)
    d = est.diagnostics_
    assert isinstance(d, FitDiagnostics)
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.gamma = 1.0
    assert (d.method, d.gamma, d.gamma_fixed, d.k, d.grade_threshold) == (method, est.gamma_, False, 1, 0.0)
    assert (d.n_train, d.n_train_dropped, d.n_val, d.n_val_dropped) == (len(problem.train), 0, len(problem.val), 0)
    support = set(est.support_.tolist())
    reachable = sum(any(a in support for a in ans) for ans in problem.val.answers)
    assert d.n_val_reachable == reachable
    curve = est.validation_curve_
    if method == "M":
        assert d.score_at_zero == curve["score"][0] and d.best_regions[0] == est.best_region_
    else:
        assert d.score_at_zero == curve["score"][list(curve["gamma"]).index(0.0)]
    assert d.val_score == est.val_score_ == max(curve["score"])
    assert (d.n_documents, d.n_support, d.n_moved) == (len(problem.embeddings), est.support_.size, est.moved_.size)
    # the largest move, measured on the output
    e = problem.embeddings / np.linalg.norm(problem.embeddings, axis=1, keepdims=True)
    change = np.linalg.norm(est.transform(problem.embeddings).astype(np.float64) - e, axis=1)
    assert d.largest_move == pytest.approx(change.max(), abs=1e-5)
    assert change[d.largest_move_document] == pytest.approx(d.largest_move, abs=1e-5)
    asked = sum(d.largest_move_document in a for a in problem.train.answers)
    assert d.largest_move_questions == asked
    if method == "M":  # every moved document moves by gamma: the one with the largest query sum is named
        norms = np.linalg.norm(est.query_sums_, axis=1)
        assert norms[list(est.support_).index(d.largest_move_document)] == norms.max()
        assert d.largest_move == pytest.approx(est.gamma_)
    text = d.summary(doc_ids=[f"doc-{i}" for i in range(len(problem.embeddings))])
    assert f"document 'doc-{d.largest_move_document}'" in text and str(d) == d.summary()
    assert f"validation: {len(problem.val)} questions; {reachable} have an answer with training questions" in text
    assert d.curve_shape in text


def test_fixed_gamma_and_fit_nudge_carry_diagnostics(problem):
    est = Nudge("N", gamma=0.1).fit(problem.embeddings, problem.train)
    d = est.diagnostics_
    assert d.gamma_fixed and d.n_val == 0 and d.val_score is None and d.curve_shape is None and d.warnings == ()
    assert "gamma = 0.1 (fixed)" in d.summary()
    from nudge._corpus import MatrixCorpus
    from nudge.estimator import check_params, fit_nudge

    e = problem.embeddings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        fit = fit_nudge(check_params("M"), problem.train, problem.val, MatrixCorpus(e), n_docs=e.shape[0],
                        dim=e.shape[1], dtype=e.dtype)  # fmt: skip
    assert fit.diagnostics.gamma == fit.gamma and fit.diagnostics.n_moved == fit.moved.size


def test_a_saved_model_loads_without_diagnostics(problem, tmp_path):
    est, _ = _fit("M", problem, problem.val)
    loaded = Nudge.load(est.save(tmp_path / "m.npz"))
    assert loaded.diagnostics_ is None and loaded.gamma_ == est.gamma_


# ---------------------------------------------------------------------------------- warnings
def test_small_validation_warns_and_large_does_not(problem):
    _, caught = _fit("M", problem, problem.val)  # 80 questions
    assert not any("validation questions (fewer than" in str(w.message) for w in caught)
    small = problem.val.subset(np.arange(SMALL_VALIDATION - 1))
    est, caught = _fit("M", problem, small)
    assert any(f"only {SMALL_VALIDATION - 1} validation questions" in str(w.message) for w in caught)
    assert any("validation questions" in w for w in est.diagnostics_.warnings)


def test_a_perfect_validation_score_warns(problem):
    """Validation questions that are their answers' own query sums: some gamma ranks them all first."""
    est0, _ = _fit("M", problem, problem.val)
    docs = est0.support_[:12]
    val = QuerySet(est0.query_sums_[:12].astype(np.float32), [[int(d)] for d in docs])
    est, caught = _fit("M", problem, val)
    if est.val_score_ < 1.0:
        pytest.skip("this seed gives no perfect score")  # pragma: no cover
    assert est.gamma_ > 0 and est.diagnostics_.val_score == 1.0
    messages = [str(w.message) for w in caught]
    assert any("perfect validation score (1.000 on 12 questions)" in m for m in messages)
    assert any("only 12 validation questions" in m for m in messages)
    assert sorted(messages) == sorted(f"NUDGE-M: {w}" for w in est.diagnostics_.warnings)  # the same, once each


def test_dropped_validation_questions_are_counted(problem):
    answers = [[], [], *[list(a) for a in problem.val.answers[2:]]]
    est, caught = _fit("N", problem, QuerySet(problem.val.embeddings, answers))
    assert est.diagnostics_.n_val_dropped == 2 and est.diagnostics_.n_val == len(answers) - 2
    assert any("2 validation question(s) have no relevant document" in str(w.message) for w in caught)
    with pytest.raises(ValueError, match=r"val has no query with a relevant document"):
        Nudge("N").fit(problem.embeddings, problem.train, QuerySet(problem.val.embeddings, [[]] * len(answers)))


# ---------------------------------------------------------------------------------- best regions
def test_best_regions_against_brute_force():
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(1, 8))
        lo = rng.integers(0, 50, n).astype(np.float64)
        hi = lo + rng.integers(0, 30, n)
        w = rng.integers(1, 3, n)
        grid = np.arange(0, 90, 0.5)
        cover = np.array([w[(lo <= g) & (g <= hi)].sum() for g in grid])
        regions = best_regions(lo, hi, w)
        inside = np.array([any(a - 1e-9 <= g <= b + 1e-9 for a, b in regions) for g in grid])
        assert np.array_equal(inside, cover == cover.max()), (lo, hi, w, regions)


# ---------------------------------------------------------------------------------- the CLI
def test_cli_fit_prints_the_report_and_evaluate_states_the_ndcg(tmp_path, capsys):
    from nudge.production.cli import main
    from nudge.teaching.bundled import data_dir

    out = tmp_path / "run"
    argv = ["fit", str(data_dir() / "examples" / "support_pairs.csv"), "--out", str(out), "--embedder", "tessera"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main([*argv, "--method", "M"]) == 0
    printed = capsys.readouterr()
    assert "validation curve: " in printed.out and "have an answer with training questions" in printed.out
    assert "only 40 validation questions (fewer than 50)" in printed.out  # in the report, once
    assert not [w for w in caught if issubclass(w.category, FitWarning)] and "FitWarning" not in printed.err
    assert main(["evaluate", str(out)]) == 0
    assert NDCG_FORM in capsys.readouterr().out


def test_nudge_state_counts_training_pairs(problem):
    """NudgeState fits on one query sum per document: its report counts the state's pairs instead."""
    from nudge.production.streaming import NudgeState

    ids = [f"d{i}" for i in range(len(problem.embeddings))]

    def by_id(qs):
        return qs.embeddings, [[ids[d] for d in a] for a in qs.answers]

    state = NudgeState("M")
    state.add_pairs(train=by_id(problem.train), val=by_id(problem.val))
    direct, _ = _fit("M", problem, problem.val)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        state.fit_gamma(problem.embeddings, ids)
    d, e = state.diagnostics_, direct.diagnostics_
    assert d.train_unit == "pairs" and d.n_train == state.n_train_pairs == problem.train.n_pairs
    assert (d.gamma, d.n_moved, d.largest_move_document) == (e.gamma, e.n_moved, e.largest_move_document)
    assert d.largest_move_questions == e.largest_move_questions  # a document's pairs are its questions
    assert "training: " + str(problem.train.n_pairs) + " pairs" in d.summary()


# ---------------------------------------------------------------------------------- the prototyper's report
@pytest.mark.parametrize(("method", "kw", "rule"), [
    ("N", {}, "rule: the first grid value (in grid order) with the best validation score"),
    ("M", {}, "rule: the middle of the first best region"),
    ("M", {"gamma_choice": "smallest"}, "rule: the left end of the first best region (the reference's choice)"),
])  # fmt: skip
def test_the_summary_states_the_gamma_rule(problem, method, kw, rule):
    est, _ = _fit(method, problem, problem.val, **kw)
    text = est.diagnostics_.summary()
    assert rule in text and "gamma = 0 whenever not moving scores as well as the best" in text
    assert "rule:" not in Nudge(method, gamma=0.1).fit(problem.embeddings, problem.train).diagnostics_.summary()


def test_the_summary_names_rows_or_ids_and_why_support_documents_stayed():
    # one document's training question points away from it (e.G < 0): NUDGE-N leaves it where it is
    docs = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0.6, 0.8, 0]])
    train = QuerySet(np.array([[-1.0, 0, 0], [0, 0.9, 0.436], [0.3, 0.954, 0]]), [[0], [1], [3]])
    est = Nudge("N", gamma=0.5).fit(docs, train)
    d = est.diagnostics_
    assert (d.n_support, d.n_moved) == (3, 2)
    text = d.summary()
    assert "moved: 2 of 4 documents (3 have training questions); the other 1 stay: their query sum points away" in text
    assert f"document at row {d.largest_move_document}," in text  # a row number, said as one
    ids = ["a", "b", "c", "d"]
    named = d.with_ids(ids)
    assert f"document {ids[d.largest_move_document]!r}" in str(named) and named.summary() == d.summary(ids)
    with pytest.raises(ValueError, match="doc_ids has 2 ids but the fit saw 4 documents"):
        d.with_ids(["a", "b"])
