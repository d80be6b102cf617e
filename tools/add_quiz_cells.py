"""Developer tool: give notebooks their "Check your understanding" cells and tag their exercise cell.

``python tools/add_quiz_cells.py notebooks/03_directions.ipynb ...`` edits each notebook in place
(idempotent; the notebook must then be re-executed with ``tools/run_notebooks.py run``):

- splits the cell holding ``## Your turn`` so that ``## Your turn`` starts its own markdown cell;
- inserts, before that cell, a ``## Check your understanding`` markdown cell and one code cell
  calling :func:`nudge.teaching.quiz.show_quiz` with the notebook's file stem;
- tags the last code cell (the exercise, with its self-check call) ``"exercise"``.

No other cell is touched.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from nudge._io import atomic_write

HEADING = "## Check your understanding"
INTRO = (
    HEADING + "\n"
    "A few questions on this notebook. Choose an option under a question and press **Check**, or\n"
    "(without widgets, or on paper) call `quiz_answer(notebook, question, letter)`: either way each\n"
    "option tells you why it is right or wrong."
)
TAG = "exercise"


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def add_cells(nb: dict, stem: str) -> dict:
    cells = nb["cells"]
    nn = stem[:2]
    code_cell = {
        "cell_type": "code",
        "id": f"{nn}-quiz-show",
        "execution_count": None,
        "metadata": {},
        "outputs": [],
        "source": _lines(f'from nudge.teaching.quiz import quiz_answer, show_quiz\n\nshow_quiz("{stem}")'),
    }
    if not any("".join(c["source"]).startswith(HEADING) for c in cells):
        at = next(
            i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and "## Your turn" in "".join(c["source"])
        )
        text = "".join(cells[at]["source"])
        before, turn = text.split("## Your turn", 1)
        turn_cell = {
            "cell_type": "markdown",
            "id": f"{nn}-your-turn",
            "metadata": {},
            "source": _lines("## Your turn" + turn),
        }
        new = [
            {"cell_type": "markdown", "id": f"{nn}-quiz", "metadata": {}, "source": _lines(INTRO)},
            code_cell,
            turn_cell,
        ]
        if before.strip():
            cells[at]["source"] = _lines(before.rstrip("\n"))
            cells[at + 1 : at + 1] = new
        else:
            cells[at : at + 1] = new
    exercise = [c for c in cells if c["cell_type"] == "code"][-1]
    tags = exercise.setdefault("metadata", {}).setdefault("tags", [])
    if TAG not in tags:
        tags.append(TAG)
    return nb


def main(argv: list[str]) -> int:
    for name in argv:
        path = Path(name)
        nb = add_cells(json.loads(path.read_text(encoding="utf-8")), path.stem)
        text = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
        atomic_write(path, lambda fh, text=text: fh.write(text.encode("utf-8")))
        print(f"{path.name}: quiz cells and exercise tag in place")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
