"""The gamma explorer: pure functions and the ipywidgets wrapper, driven headless."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from nudge import Nudge
from nudge.evaluation import evaluate_embeddings
from nudge.teaching.synthetic import make_retrieval_problem
from nudge.teaching.widgets import GammaExplorer, gamma_widget


@pytest.fixture(scope="module")
def problem():
    return make_retrieval_problem(n_docs=300, dim=16, n_train=200, n_val=60, n_test=60, seed=2)


@pytest.fixture(scope="module")
def explorer(problem):
    return GammaExplorer(problem.embeddings, problem.train, problem.val, problem.test, ks=(1, 3), n_points=41)


def test_scores_match_the_estimator_and_a_direct_evaluation(explorer, problem):
    for method in ("M", "N"):
        model = Nudge(method).fit(problem.embeddings, problem.train, problem.val)
        at = explorer.at(method, 1, model.gamma_)
        assert at["val"] == pytest.approx(model.val_score_)
        direct = evaluate_embeddings(model.transform(problem.embeddings), problem.test)
        assert at["test"] == pytest.approx(direct["hit@1"])
        np.testing.assert_array_equal(at["ranks_after"], direct["ranks"])
        curves = explorer.curves(method, 1)
        assert curves["val"].max() == pytest.approx(model.val_score_)
        assert curves["gamma"][0] == 0 and model.gamma_ in curves["gamma"]


def test_fixed_and_broken_are_rank_changes(explorer):
    at = explorer.at("M", 1, 0.3)
    before, after = at["ranks_before"], at["ranks_after"]
    assert set(at["fixed"]) == set(np.flatnonzero((before > 1) & (after == 1)))
    assert set(at["broken"]) == set(np.flatnonzero((before == 1) & (after > 1)))
    assert explorer.at("N", 1, 0.0)["fixed"].size == 0


def test_plot_draws_both_curves_and_both_markers(explorer):
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    explorer.plot("N", 3, 0.1, ax=ax)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["validation", "hold-out test"]
    assert any(label.startswith("chosen gamma") for label in labels)
    assert "current gamma = 0.1" in labels
    assert explorer.render_png("N", 3, 0.1)[:8] == b"\x89PNG\r\n\x1a\n"


def test_widget_callbacks_over_the_whole_slider_range(explorer):
    box = gamma_widget(explorer, question_texts=[f"question {i}" for i in range(60)])
    assert box.method.value == "N" and box.gamma.value == pytest.approx(explorer.model("N", 1).gamma_)
    seen_images, seen_readouts = set(), set()
    for value in np.linspace(box.gamma.min, box.gamma.max, 6):
        box.gamma.value = float(value)
        assert f"gamma = {float(value):.4g}" in box.readout.value
        assert "peeking" in box.readout.value  # the test curve is for learning, not for choosing
        seen_images.add(box.image.value)
        seen_readouts.add(box.readout.value)
    assert len(seen_images) == 6 and len(seen_readouts) == 6


def test_switching_method_and_k_resets_the_slider(explorer):
    box = gamma_widget(explorer)
    box.method.value = "M"
    assert box.gamma.max == pytest.approx(explorer.gamma_range("M"))
    assert box.gamma.value == pytest.approx(explorer.model("M", 1).gamma_, abs=box.gamma.step)
    assert "NUDGE-M" in box.readout.value
    box.k.value = 3
    assert box.gamma.value == pytest.approx(explorer.model("M", 3).gamma_, abs=box.gamma.step)
    assert "top 3" in box.readout.value


def test_bad_ks_are_refused(problem):
    with pytest.raises(ValueError, match=r"ks must hold positive integers"):
        GammaExplorer(problem.embeddings, problem.train, problem.val, problem.test, ks=(0,))
