"""Every notebook has a quiz and a worked solution, and each solution passes the notebook's own self-check.

A solution (``docs/workshop/solutions/NN_topic.py``) replaces the source of the notebook's cell
tagged ``exercise``; the notebook is then executed top to bottom (in a temporary folder, two
notebooks at a time, leaving out the few slow cells listed in SKIPPED_CELLS), and the exercise
cell's result, a :class:`nudge.teaching.exercises.Check`, must read "Correct".
"""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import REPO

from nudge.teaching.quiz import load_quiz
from tools.run_notebooks import notebook_paths

NOTEBOOKS = notebook_paths()
IDS = [p.stem for p in NOTEBOOKS]
SOLUTIONS = REPO / "docs" / "workshop" / "solutions"
PASSED = "✅ Correct: "  # how a passed Check prints (Check.__repr__)
# Cells left out of these runs (nbval still runs every cell): slow, and defining nothing that the
# solution or a later cell uses. A solution that needs one of them fails here with a NameError.
SKIPPED_CELLS = {
    "02_embedding": {"02-09": "loads the optional local model (PyTorch) only to compare vectors"},
    "09_when_to_use_nudge": {  # the exercise cell defines everything it needs
        "cell-15": "the learning curve on the bundled data (about 25 s)",
        "cell-16": "the learning curve on SciFact (about a minute)",
        "cell-17": "the plot of those learning curves",
        "cell-17a": "what validation chose from the smallest subsets of those learning curves",
    },
}


def _cells(path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _last_line(text: str) -> str:
    return [line for line in text.splitlines() if line.strip()][-1].strip()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_notebook_has_a_quiz_and_a_solution(path):
    assert load_quiz(path.stem).notebook == path.stem
    assert (SOLUTIONS / f"{path.stem}.py").is_file(), f"no solution file docs/workshop/solutions/{path.stem}.py"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_quiz_cells_come_after_the_summary_and_the_exercise_is_tagged(path):
    cells = _cells(path)
    text = ["".join(c["source"]) for c in cells]
    summary = next(i for i, t in enumerate(text) if "## Summary" in t)
    quiz = next(i for i, t in enumerate(text) if t.startswith("## Check your understanding"))
    turn = next(i for i, t in enumerate(text) if t.startswith("## Your turn"))
    assert summary < quiz < turn, "## Summary, then ## Check your understanding, then ## Your turn"
    calls = [i for i, t in enumerate(text) if cells[i]["cell_type"] == "code" and "show_quiz(" in t]
    assert calls == [quiz + 1], "one code cell right after the quiz heading calls show_quiz"
    assert f'show_quiz("{path.stem}")' in text[quiz + 1]
    tagged = [i for i, c in enumerate(cells) if "exercise" in c.get("metadata", {}).get("tags", [])]
    last_code = max(i for i, c in enumerate(cells) if c["cell_type"] == "code")
    assert tagged == [last_code], "exactly one cell is tagged exercise: the last code cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_solution_file_explains_itself_and_ends_with_the_self_check(path):
    solution = SOLUTIONS / f"{path.stem}.py"
    if not solution.is_file():
        pytest.fail(f"no solution file for {path.stem}")
    text = solution.read_text(encoding="utf-8")
    assert text.startswith("# "), "the solution starts with a comment saying what it does and why"
    exercise = "".join(_cells(path)[-1]["source"])
    assert re.search(r"\bcheck_\w+\(", _last_line(exercise))
    assert _last_line(text) == _last_line(exercise), "the solution ends with the exercise's own self-check call"
    assert "answer = None" not in text


def _run_with_solution(path, folder) -> str:
    """Execute ``path`` with its exercise cell replaced by the solution; the exercise cell's text result."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    skip = SKIPPED_CELLS.get(path.stem, {})
    missing = set(skip) - {c.get("id") for c in nb.cells}
    if missing:
        return f"cells to skip not found (update SKIPPED_CELLS): {sorted(missing)}"
    nb.cells = [c for c in nb.cells if c.get("id") not in skip]
    (cell,) = [c for c in nb.cells if "exercise" in c.get("metadata", {}).get("tags", [])]
    cell.source = (SOLUTIONS / f"{path.stem}.py").read_text(encoding="utf-8")
    # The kernel runs in a temporary folder (files the notebook writes stay there) and imports this repo.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    try:
        client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
        client.execute(env=env)
    except CellExecutionError as err:
        return f"the notebook raised: {err}"
    results = [o for o in cell.outputs if o.get("output_type") == "execute_result"]
    return "".join(results[-1]["data"].get("text/plain", "")) if results else "the exercise cell returned nothing"


@pytest.fixture(scope="module")
def solved(tmp_path_factory) -> dict:
    """Each notebook that has a solution, executed with it (a bounded pool of 2: CI has 2 cores)."""
    todo = [p for p in NOTEBOOKS if (SOLUTIONS / f"{p.stem}.py").is_file()]
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {p.stem: pool.submit(_run_with_solution, p, tmp_path_factory.mktemp(p.stem)) for p in todo}
        return {stem: f.result() for stem, f in futures.items()}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_solution_passes_the_self_check(path, solved):
    if path.stem not in solved:
        pytest.fail(f"no solution file for {path.stem}")
    assert solved[path.stem].startswith(PASSED), solved[path.stem][:2000]
