"""Plot helpers run headless and draw what they promise."""

from __future__ import annotations

import matplotlib
import numpy as np

matplotlib.use("Agg")

from matplotlib.figure import Figure

from nudge.teaching.plotting import pca_2d, plot_intervals, plot_movement, plot_score_lines, toy_problem


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
    assert ax.get_legend() is not None and len(ax.lines) == 3
