"""Bad input gets a ValueError that names the argument and says what was wrong."""

from __future__ import annotations

import numpy as np
import pytest

from nudge import NUDGEM, NUDGEN, Nudge, apply_nudge
from nudge.teaching.synthetic import make_retrieval_problem


@pytest.fixture(scope="module")
def problem():
    return make_retrieval_problem(n_docs=60, dim=8, n_train=30, n_val=10, n_test=5, seed=3)


def fit(problem, method="M", embeddings=None, train=None, val=None, **params):
    e = problem.embeddings if embeddings is None else embeddings
    train = problem.train if train is None else train
    val = problem.val if val is None else val
    return Nudge(method, **params).fit(e, train, val)


def with_answers(qs, answers):
    return (qs.embeddings, answers)


@pytest.mark.parametrize(
    ("embeddings", "message"),
    [
        (np.zeros(5, np.float32), r"embeddings must be a 2-D array .* 1-D"),
        (np.zeros((2, 3, 4), np.float32), r"embeddings must be a 2-D array .* 3-D"),
        (np.zeros((0, 8), np.float32), r"embeddings is empty: it has 0 rows"),
        (np.ones((60, 8), np.int64), r"embeddings must have dtype float32 or float64; got int64"),
        ("not an array", r"embeddings must be a 2-D numpy array, got str"),
    ],
)
def test_bad_embeddings(problem, embeddings, message):
    with pytest.raises(ValueError, match=message):
        fit(problem, embeddings=embeddings)


@pytest.mark.parametrize("method", ["M", "N"])
@pytest.mark.parametrize(
    ("value", "what"), [(np.nan, "NaN or infinite"), (np.inf, "NaN or infinite"), (0.0, "zero norm")]
)
def test_nan_inf_and_zero_rows_in_documents(problem, method, value, what):
    e = problem.embeddings.copy()
    e[17] = value
    with pytest.raises(ValueError, match=rf"embeddings .*{what}.*17"):
        fit(problem, method, embeddings=e)


def test_nan_and_zero_rows_in_queries(problem):
    q = problem.train.embeddings.copy()
    q[4, 2] = np.nan
    with pytest.raises(ValueError, match=r"train embeddings contains NaN or infinite values \(first in row 4\)"):
        fit(problem, train=(q, problem.train.answers))
    q = problem.val.embeddings.copy()
    q[2] = 0
    with pytest.raises(ValueError, match=r"val embeddings has rows with zero norm \(rows 2\)"):
        fit(problem, val=(q, problem.val.answers))


def test_wrong_dimension_and_dtype(problem):
    q = problem.train.embeddings
    with pytest.raises(
        ValueError, match=r"train embeddings has dimension 7 but the document embeddings have dimension 8"
    ):
        fit(problem, train=(q[:, :7].copy(), problem.train.answers))
    with pytest.raises(
        ValueError, match=r"train embeddings has dtype float64 but the document embeddings have dtype float32"
    ):
        fit(problem, train=(q.astype(np.float64), problem.train.answers))


@pytest.mark.parametrize(
    ("answers_edit", "message"),
    [
        (lambda a: a[:-1], r"train answers has 29 answer lists but there are 30 queries"),
        (lambda a: [[] for _ in a], r"train has no query with a relevant document \(grade > 0\)"),
        (
            lambda a: [[60], *a[1:]],
            r"train answers\[0\] contains document index 60, which is out of range \(valid: 0 to 59\)",
        ),
        (lambda a: [a[0], [-1], *a[2:]], r"train answers\[1\] contains document index -1, which is negative"),
        (lambda a: [[3, 5, 3], *a[1:]], r"train answers\[0\] lists document 3 more than once"),
        (lambda a: [[1.5], *a[1:]], r"train answers\[0\] must contain integer document indices; got float64"),
        (lambda a: [3, *a[1:]], r"train answers\[0\] must be a list of document indices, got int 3"),
        (lambda a: [[1, [2, 3]], *a[1:]], r"train answers\[0\] must be a flat list of document indices"),
        (lambda a: "0 1 2", r"train answers must be a list with one list of document indices per query, got str"),
    ],
)
def test_bad_answer_lists(problem, answers_edit, message):
    answers = [list(a) for a in problem.train.answers]
    with pytest.raises(ValueError, match=message):
        fit(problem, train=(problem.train.embeddings, answers_edit(answers)))


def test_an_empty_answer_list_is_left_out_and_counted(problem):
    """An empty list is "judged, nothing relevant": the query is left out, counted and warned about."""
    from nudge.diagnostics import FitWarning

    answers = [[], *[list(a) for a in problem.train.answers[1:]]]
    with pytest.warns(FitWarning, match=r"1 training question\(s\) have no relevant document"):
        est = fit(problem, train=(problem.train.embeddings, answers))
    assert est.diagnostics_.n_train_dropped == 1 and est.diagnostics_.n_train == len(answers) - 1


def test_zero_length_sets(problem):
    empty = (problem.train.embeddings[:0], [])
    with pytest.raises(ValueError, match=r"train embeddings is empty: it has 0 rows"):
        fit(problem, train=empty)
    with pytest.raises(ValueError, match=r"val embeddings is empty: it has 0 rows"):
        fit(problem, val=empty)


def test_query_set_types(problem):
    with pytest.raises(ValueError, match=r"train is a dict but lacks the key\(s\) \['q_ans_indx'\]"):
        fit(problem, train={"q_embs": problem.train.embeddings})
    with pytest.raises(ValueError, match=r"val must be a QuerySet, a \(embeddings, answers\) tuple or a dict"):
        fit(problem, val=[1, 2, 3])
    with pytest.raises(ValueError, match=r"val is required to choose gamma"):
        Nudge("N").fit(problem.embeddings, problem.train)


@pytest.mark.parametrize(
    ("method", "gamma", "message"),
    [
        ("N", 4.0, r"gamma must be < 4.0 for NUDGE-N"),
        ("N", -0.1, r"gamma must be a finite number >= 0, got -0.1"),
        ("M", -1.0, r"gamma must be a finite number >= 0, got -1.0"),
        ("M", float("nan"), r"gamma must be a finite number >= 0, got nan"),
        ("M", "0.1", r"gamma must be a real number, got str"),
        ("M", True, r"gamma must be a real number, got bool"),
    ],
)
def test_gamma_out_of_range(problem, method, gamma, message):
    with pytest.raises(ValueError, match=message):
        Nudge(method, gamma=gamma).fit(problem.embeddings, problem.train)


def test_bad_parameters(problem):
    with pytest.raises(ValueError, match=r"method must be 'M' \(NUDGE-M\) or 'N' \(NUDGE-N\), got 'X'"):
        fit(problem, "X")
    with pytest.raises(ValueError, match=r"k must be a positive integer, got 0"):
        fit(problem, k=0)
    with pytest.raises(ValueError, match=r"grid applies to NUDGE-N only"):
        fit(problem, "M", grid=[0.1])
    with pytest.raises(ValueError, match=r"grid value must be < 4.0"):
        fit(problem, "N", grid=[0.1, 5.0])
    with pytest.raises(ValueError, match=r"grid is empty"):
        fit(problem, "N", grid=[])
    with pytest.raises(ValueError, match=r"gamma_choice must be 'middle' or 'smallest', got 'left'"):
        fit(problem, "M", gamma_choice="left")
    with pytest.raises(ValueError, match=r"chunk_size must be a positive integer, got -5"):
        fit(problem, chunk_size=-5)


def test_compat_classes_validate_too(problem):
    train, val = problem.train.to_dict(), problem.val.to_dict()
    e = problem.embeddings
    with pytest.raises(ValueError, match=r"val_batch_size must be a positive integer, got 0"):
        NUDGEM().finetune_embeddings(e, train, val, val_batch_size=0)
    with pytest.raises(ValueError, match=r"val_k must be a positive integer, got 0"):
        NUDGEN().finetune_embeddings(e, train, val, val_k=0)
    with pytest.raises(ValueError, match=r"nontrain_embeddings has dimension 3"):
        NUDGEM().finetune_embeddings(e, train, val, nontrain_embeddings=np.ones((4, 3), np.float32))
    bad = dict(train, q_ans_indx=[[0, 0], *train["q_ans_indx"][1:]])
    with pytest.raises(ValueError, match=r"train_set answers\[0\] lists document 0 more than once"):
        NUDGEN().finetune_embeddings(e, bad, val)


def test_apply_nudge_validates(problem):
    e = problem.embeddings
    d = np.full((2, 8), 1 / np.sqrt(8), dtype=np.float32)
    with pytest.raises(ValueError, match=r"support must be 1-D with one index per direction row \(2\)"):
        apply_nudge(e, np.array([1, 2, 3]), d, 0.1, "M")
    with pytest.raises(ValueError, match=r"support holds indices outside \[0, 59\]"):
        apply_nudge(e, np.array([1, 60]), d, 0.1, "M")
    with pytest.raises(ValueError, match=r"support lists a document more than once"):
        apply_nudge(e, np.array([1, 1]), d, 0.1, "N")


@pytest.mark.parametrize("method", ["M", "N"])
def test_inputs_are_never_modified(problem, method):
    e = problem.embeddings * 2.0  # unnormalised: normalisation must happen on a copy
    q_train, q_val = problem.train.embeddings.copy(), problem.val.embeddings.copy()
    answers = [list(a) for a in problem.train.answers]
    snapshot = (e.copy(), q_train.copy(), q_val.copy(), [list(a) for a in answers])
    est = Nudge(method).fit(e, (q_train, answers), (q_val, problem.val.answers))
    est.transform(e)
    (NUDGEM() if method == "M" else NUDGEN()).finetune_embeddings(
        e, {"q_embs": q_train, "q_ans_indx": answers}, {"q_embs": q_val, "q_ans_indx": problem.val.answers}
    )
    np.testing.assert_array_equal(e, snapshot[0])
    np.testing.assert_array_equal(q_train, snapshot[1])
    np.testing.assert_array_equal(q_val, snapshot[2])
    assert answers == snapshot[3]


@pytest.mark.parametrize("method", ["M", "N"])
def test_bad_document_row_is_named_when_gamma_is_fixed(problem, method):
    e = problem.embeddings.copy()
    row = int(problem.train.answers[0][0])  # a document that moves
    e[row] = np.nan
    with pytest.raises(ValueError, match=rf"embeddings contains NaN or infinite values \(first in row {row}\)"):
        Nudge(method, gamma=0.1).fit(e, problem.train)
    with pytest.raises(ValueError, match=rf"first in row {row}"):
        (NUDGEM() if method == "M" else NUDGEN()).finetune_embeddings(
            e, problem.train.to_dict(), problem.val.to_dict(), gamma=0.1
        )
