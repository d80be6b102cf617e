"""The committed notebooks are clean, complete and follow the series' conventions.

nbval (configured in pyproject.toml) re-runs every notebook and compares outputs; these tests
check what nbval does not: structure, widget state, machine paths, timings.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import REPO

from tools.run_notebooks import WIDGET_VIEW, clean, notebook_paths, problems

NOTEBOOKS = notebook_paths()
EXPECTED = {"00", "01", "02", "03", "04", "05", "06", "07", "08"}


def test_the_series_is_complete():
    assert {p.name[:2] for p in NOTEBOOKS} >= EXPECTED
    assert all(re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", p.name) for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_is_clean(path):
    assert problems(path) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_structure(path):
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    first = "".join(cells[0]["source"])
    assert cells[0]["cell_type"] == "markdown" and "Learning goals" in first
    text = "\n".join("".join(c["source"]) for c in cells)
    assert "## Summary" in text and "## Your turn" in text
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    assert any(re.search(r"^import nudge|^from nudge", c, re.M) for c in code)
    assert "check_" in code[-1], "the last cell is the exercise's self-check"
    for c in code:  # short cells
        assert len(c.splitlines()) <= 25, f"a code cell of {len(c.splitlines())} lines"
    marked = [c for c in code if "NBVAL_" in c]
    for c in marked:  # nbval reads the marker only alone on the first line; the next line says why
        assert re.match(r"# NBVAL_(IGNORE_OUTPUT|SKIP)\n# \(not compared by the notebook tests: \w", c), c[:120]


def test_nbval_sanitisers_are_explicit():
    cfg = (REPO / "notebooks" / "nbval_sanitize.cfg").read_text()
    assert "regex:" in cfg and "replace:" in cfg


def _output_text(nb: dict) -> str:
    out = []
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            out.append("".join(o.get("text", "")))
            out.append("".join(o.get("data", {}).get("text/plain", "")))
    return "\n".join(out)


def _shown(value, text: str) -> bool:
    """Whether ``value`` appears in ``text`` as the notebooks print it."""
    if isinstance(value, str):
        return value in text
    if isinstance(value, (int, np.integer)):
        return re.search(rf"(?<![\d.]){int(value)}(?![\d.])", text) is not None
    if isinstance(value, (float, np.floating)):
        forms = {f"{value:.3f}", f"{value:+.3f}", f"{value:.4f}", f"{value:.1%}", f"{value:.0%}"}
        return any(re.search(rf"(?<![\d.]){re.escape(f)}(?!\d)", text) for f in forms)
    vector = np.asarray(value, dtype=float)  # a vector answer: its first entries, as numpy prints them
    return any(f"{x:.4f}" in text or f"{x:.8f}" in text for x in vector[:3])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_no_output_gives_the_exercise_away(path):
    """The value a notebook's own self-check accepts is not printed anywhere in that notebook."""
    from nudge.teaching.exercises import accepted_answer

    nb = json.loads(path.read_text())
    name = re.search(r"\b(check_\w+)\(", "".join(nb["cells"][-1]["source"])).group(1)
    value = accepted_answer(name)
    for cell in nb["cells"][:-1]:
        cell_text = _output_text({"cells": [cell]})
        assert not _shown(value, cell_text), f"{path.name}: an output shows {name}'s accepted answer {value!r}"


def test_the_giveaway_check_can_fail():
    assert _shown(0.6907, "hit@1 0.691") and _shown(27, "27 questions") and _shown("ops-001", "ops-001!")
    assert not _shown(27, "line 1027") and not _shown(0.6907, "0.6912")


def test_clean_joins_split_stream_outputs():
    out = lambda name, text: {"output_type": "stream", "name": name, "text": [text]}  # noqa: E731
    cell = {
        "cell_type": "code",
        "metadata": {},
        "outputs": [out("stdout", "a\n"), out("stdout", "b\n"), out("stderr", "w\n")],
    }
    nb = clean({"metadata": {"widgets": {}}, "cells": [cell]})
    assert "widgets" not in nb["metadata"]
    assert nb["cells"][0]["outputs"] == [
        {"output_type": "stream", "name": "stdout", "text": ["a\n", "b\n"]},
        {"output_type": "stream", "name": "stderr", "text": ["w\n"]},
    ]


def test_clean_keeps_a_widgets_text_form_not_its_view():
    """Saved, a widget view names a model that is gone: JupyterLab would show 'model not found'."""
    view = {"model_id": "abc", "version_major": 2, "version_minor": 0}
    out = {"output_type": "display_data", "metadata": {}, "data": {"text/plain": ["[a widget]"], WIDGET_VIEW: view}}
    alone = {"output_type": "display_data", "metadata": {}, "data": {WIDGET_VIEW: view}}
    cell = {"cell_type": "code", "metadata": {}, "outputs": [out, alone]}
    nb = clean({"metadata": {}, "cells": [cell]})
    assert nb["cells"][0]["outputs"][0]["data"] == {"text/plain": ["[a widget]"]}
    assert WIDGET_VIEW in nb["cells"][0]["outputs"][1]["data"]  # nothing else to show: kept, and flagged


def test_one_rule_of_significance_everywhere():
    """Notebooks, demo and datasheet state the kit's one rule (nudge.evaluation.RULE), never a second one."""
    from nudge.evaluation import RULE

    texts = {p.name: "\n".join("".join(c["source"]) for c in json.loads(p.read_text())["cells"]) for p in NOTEBOOKS}
    texts["demo.py"] = (REPO / "nudge" / "teaching" / "demo.py").read_text()
    texts["data/README.md"] = (REPO / "data" / "README.md").read_text()
    for name, text in texts.items():
        flat = " ".join(text.split()).lower()
        for other in ("borderline", "interval contains 0 is not one", "excludes 0 and p < 0.05"):
            assert other not in flat, f"{name} states another rule: {other!r}"
    assert "excludes 0" in RULE
    flat01 = " ".join(texts["01_training_pairs.ipynb"].split())
    assert "excludes 0" in flat01 and "not** evidence" in flat01 and "sign test" in flat01


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_first_cell_states_the_computed_minutes(path):
    """Reading, quiz and exercise minutes as tools/notebook_times.py computes them from the notebook
    as committed (run `python tools/notebook_times.py --write` after changing a notebook or a quiz)."""
    from tools import notebook_times

    nb = json.loads(path.read_text())
    timings = json.loads(notebook_times.TIMINGS.read_text())
    expected = notebook_times.sentence(notebook_times.times(path.stem, nb, timings))
    assert notebook_times.stated(nb) == expected, f"{path.name}: run python tools/notebook_times.py --write"


def test_reader_pace_is_computed_from_the_recorded_minutes_and_words():
    from tools import notebook_times

    timings = json.loads(notebook_times.TIMINGS.read_text())
    reader = timings["reader"]
    assert set(reader["minutes"]) == set(reader["words"])
    assert notebook_times.pace(timings) == sum(reader["words"].values()) / sum(reader["minutes"].values())
    # a notebook twice as long takes about twice the reading minutes; the quiz and exercise do not count
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": "word " * 600},
            {"cell_type": "markdown", "source": "## Your turn x y"},
        ]
    }
    assert notebook_times.reading_words(nb) == 600


def test_notebook_09_is_skipped_not_failed_without_scifact(tmp_path):
    """On a laptop without SciFact, `make test` skips notebook 09 (its committed SciFact tables cannot
    be compared) and says why; with NUDGE_REQUIRE_SCIFACT=1 (CI) that is an error instead."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "NUDGE_REQUIRE_SCIFACT"}
    env["NUDGE_SCIFACT_DIR"] = str(tmp_path)  # an empty folder: no SciFact here
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "notebooks/09_when_to_use_nudge.ipynb"]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "skipped" in done.stdout and "SciFact not found" in done.stdout and "passed" not in done.stdout
    env["NUDGE_REQUIRE_SCIFACT"] = "1"
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "NUDGE_REQUIRE_SCIFACT=1" in done.stdout + done.stderr
