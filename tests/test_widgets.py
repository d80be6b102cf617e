"""The gamma explorer: pure functions and the ipywidgets wrapper, driven headless."""

from __future__ import annotations

import struct

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


def test_plot_sits_under_a_wide_slider_and_the_questions_are_folded(explorer):
    texts = [f"question {i}" for i in range(60)]
    box = gamma_widget(explorer, question_texts=texts)
    controls, slider, plot_row, folded = box.children
    assert controls.children == (box.method, box.k)
    assert slider is box.gamma and box.gamma.layout.width == "100%"
    assert plot_row.children == (box.image, box.readout)  # right under the slider, scores beside it
    assert folded is box.accordion and box.accordion.children == (box.questions,)
    assert box.accordion.selected_index is None  # folded until opened
    width, height = struct.unpack(">II", box.image.value[16:24])  # the PNG's own size...
    assert (box.image.layout.width, box.image.layout.height) == (f"{width}px", f"{height}px")  # ...not stretched
    for value in np.linspace(box.gamma.min, box.gamma.max, 5):
        box.gamma.value = float(value)
        at = explorer.at(box.method.value, box.k.value, float(value))
        assert box.accordion.get_title(0) == (
            f"Test questions this gamma fixed ({len(at['fixed'])}) and broke ({len(at['broken'])})"
        )
        listed = box.questions.value
        assert listed.count("fixed: rank") == min(5, len(at["fixed"]))
        assert listed.count("broken: rank") == min(5, len(at["broken"]))
        for i in at["fixed"][:5]:
            assert f"{texts[i]}<br>" in listed
        assert "rank" not in box.readout.value and "peeking" in box.readout.value
        assert f"{len(at['fixed'])} test questions fixed, {len(at['broken'])} broken" in box.readout.value
    none = explorer.question_list("N", 1, 0.0)
    assert none == "No test question entered or left the top 1 at this gamma."
    r = explorer.at("M", 3, 0.2)
    assert explorer.describe("M", 3, 0.2) == explorer.summary("M", 3, 0.2, r) + "<br>" + explorer.question_list(
        "M", 3, 0.2, result=r
    )


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
