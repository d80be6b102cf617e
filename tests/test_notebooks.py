"""The committed notebooks are clean, complete and follow the series' conventions.

nbval (configured in pyproject.toml) re-runs every notebook and compares outputs; these tests
check what nbval does not: structure, widget state, machine paths, timings.
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import REPO

from tools.run_notebooks import notebook_paths, problems

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
