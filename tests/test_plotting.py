"""Plot helpers run headless and draw what they promise."""

from __future__ import annotations

import matplotlib
import numpy as np

matplotlib.use("Agg")

from matplotlib.figure import Figure

from nudge.teaching.plotting import (
    answer_interval,
    pca_2d,
    plane_2d,
    plot_intervals,
    plot_movement,
    plot_score_lines,
    toy_problem,
)


def test_pca_2d_is_deterministic_and_shape_preserving():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 8)), rng.normal(size=(3, 8))
    pa, pb = pca_2d(a, b)
    assert pa.shape == (5, 2) and pb.shape == (3, 2)
    qa, _ = pca_2d(a, b)
    np.testing.assert_array_equal(pa, qa)
    # the first axis carries the most variance
    both = np.vstack([pa, pb])
    assert both[:, 0].var() >= both[:, 1].var()


def test_toy_problem_is_on_the_unit_circle():
    docs, questions, answers = toy_problem()
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1)
    np.testing.assert_allclose(np.linalg.norm(questions, axis=1), 1)
    assert len(answers) == len(questions) == 12


def test_plots_draw_on_the_given_axes():
    docs, questions, answers = toy_problem()
    ax = Figure().add_subplot()
    assert plot_movement(docs, docs * 1.1, questions, [a[0] for a in answers], ax=ax) is ax
    assert len(ax.collections) == 3  # questions, before, after
    ax = Figure().add_subplot()
    plot_intervals(np.array([0.0, 0.2]), np.array([0.5, np.inf]), chosen=0.3, ax=ax)
    assert len(ax.lines) == 3  # two bars and the chosen gamma
    ax = Figure().add_subplot()
    plot_score_lines(np.array([0.5, 0.4, 0.1]), np.array([0.0, 0.5, 0.0]), answer=1, ax=ax, gamma_max=1.0)
    assert ax.get_legend() is not None and len(ax.lines) == 4  # flat competitor, one more, answer, lo


def test_answer_interval_and_the_competitors_that_set_it():
    scores, slopes = np.array([0.5, 0.4, 0.1, 0.3]), np.array([0.0, 0.5, 0.0, 1.0])
    lo, hi, j_lo, j_hi = answer_interval(scores, slopes, 1)
    assert np.isclose(lo, 0.2) and j_lo == 0 and j_hi == 3 and np.isclose(hi, 0.2)  # doc 3 catches up at 0.2 too
    lo, hi, j_lo, j_hi = answer_interval(np.array([0.5, 0.4, 0.1]), np.array([0.0, 0.5, 0.8]), 1)
    assert np.isclose(lo, 0.2) and np.isclose(hi, 1.0) and (j_lo, j_hi) == (0, 2)
    lo, hi, _, _ = answer_interval(np.array([0.5, 0.4]), np.array([0.0, 0.0]), 1)
    assert lo > hi  # a flat line above a flat answer: never first
    ax = Figure().add_subplot()
    plot_score_lines(np.array([0.5, 0.4, 0.1]), np.array([0.0, 0.5, 0.8]), answer=1, ax=ax)
    assert ax.get_xlim()[1] > 1.0  # both ends of [0.2, 1.0] are on the axis
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("sets lo" in t and "does not move" in t for t in labels) and any("sets hi" in t for t in labels)
    ax = Figure().add_subplot()
    plot_score_lines(np.array([0.5, 0.4, 0.1]), np.array([0.0, 0.5, 0.8]), answer=1, ax=ax, relative=True)
    np.testing.assert_allclose(ax.lines[-3].get_ydata(), 0)  # the answer is the zero line


def test_score_lines_draw_the_same_documents_in_both_views():
    """Plain and relative views of one question label the same competitors (they once differed)."""
    rng = np.random.default_rng(3)
    scores, slopes = rng.uniform(0.2, 0.6, 40), np.where(rng.random(40) < 0.5, 0.0, rng.uniform(0.0, 0.5, 40))
    answer = int(np.argmax(slopes))
    names = [f"doc {j}" for j in range(40)]
    drawn = []
    for relative in (False, True):
        ax = Figure().add_subplot()
        plot_score_lines(scores, slopes, answer, labels=names, ax=ax, relative=relative)
        drawn.append({t.get_text() for t in ax.get_legend().get_texts()})
    assert drawn[0] == drawn[1] and len(drawn[0]) >= 5


def test_plane_2d_keeps_moves_in_the_plane_true_to_length():
    rng = np.random.default_rng(1)
    e = rng.normal(size=16)
    e /= np.linalg.norm(e)
    g = rng.normal(size=16)
    moved = e + 0.3 * g / np.linalg.norm(g)
    pe, pm = plane_2d(e, g, e, moved)
    np.testing.assert_allclose(pe, [[1.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(pm - pe), 0.3)
    try:
        plane_2d(e, 2 * e, e)
    except ValueError as exc:
        assert "g" in str(exc)
    else:
        raise AssertionError("a parallel g must be refused")
