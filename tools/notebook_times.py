"""The minutes each notebook states in its first cell, computed, not typed.

::

    python tools/notebook_times.py           # the table: words, reading, quiz, exercise, total
    python tools/notebook_times.py --write   # rewrite each notebook's "*Time: about ..." sentence
    python tools/notebook_times.py --sections [NN ...]   # each notebook's ``## `` sections, minutes

How (docs/workshop/timings.json holds the inputs and says where they come from):

- reading: the words a learner reads before the quiz and the exercise (every cell's source and
  printed text output up to ``## Check your understanding`` or ``## Your turn``), divided by the
  pace of one reader who took notebooks 00-08 of an earlier version and noted their minutes;
- quiz: the quiz's questions and options, and the feedback of the right option, at the same pace;
- exercise: a timebox the instructor keeps (not a measurement).

tests/test_notebooks.py checks that every first cell states exactly what this computes.

Sections (for planning a session, docs/workshop/agenda.md): the reading part of a notebook is cut
at its ``## `` headings (a heading may sit inside a cell: the cell's source is cut at that line; a
code cell's printed output belongs to the section its source is in). The part before the first
``## `` heading (title and learning goals) is the section ``TOP``. ``section_minutes(nb, start,
stop)`` gives the reading minutes from heading ``start`` up to, not including, heading ``stop``
(``stop=None``: up to the quiz or the exercise), with the same words and pace as the whole
notebook, rounded up once for the range. The sections' words add up to ``reading_words``.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

from nudge._io import atomic_write

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
TIMINGS = ROOT / "docs" / "workshop" / "timings.json"
QUIZZES = ROOT / "nudge" / "teaching" / "quizzes"
STOP_HEADINGS = ("## Check your understanding", "## Your turn")
TIME_SENTENCE = re.compile(r"Time: about \d+ minutes[^)]*\)\.")


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def cell_words(cell: dict) -> int:
    """Whitespace-separated words of one cell's source and of its printed text outputs."""
    n = len(_text(cell.get("source")).split())
    for out in cell.get("outputs", []):
        text = out.get("text") or out.get("data", {}).get("text/plain", "")
        n += len(_text(text).split())
    return n


def reading_words(nb: dict) -> int:
    """Words from the first cell up to (not including) the quiz or the exercise heading."""
    total = 0
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown" and _text(cell["source"]).lstrip().startswith(STOP_HEADINGS):
            break
        total += cell_words(cell)
    return total


#: The name of the part before a notebook's first ``## `` heading (its title and learning goals).
TOP = "top"


def section_words(nb: dict) -> list[tuple[str, int]]:
    """(heading, words) of each ``## `` section of the reading part, in order; the first is ``TOP``.

    The words are counted as in ``reading_words`` (which they add up to); a markdown cell's source is
    cut at each line that starts with ``## ``.
    """
    found: list[tuple[str, int]] = [(TOP, 0)]
    for cell in nb["cells"]:
        source = _text(cell.get("source"))
        if cell["cell_type"] == "markdown" and source.lstrip().startswith(STOP_HEADINGS):
            break
        if cell["cell_type"] != "markdown":
            found[-1] = (found[-1][0], found[-1][1] + cell_words(cell))
            continue
        for line in source.splitlines():
            if line.startswith("## "):
                found.append((line[3:].strip(), 0))
            found[-1] = (found[-1][0], found[-1][1] + len(line.split()))
    names = [name for name, _ in found]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"nb: the heading(s) {repeated} name more than one section")
    return found


def range_words(nb: dict, start: str = TOP, stop: str | None = None) -> int:
    """Words from the section headed ``start`` up to, not including, the one headed ``stop``.

    ``start=TOP`` starts at the first cell; ``stop=None`` ends at the quiz or the exercise.
    Raises ValueError naming the heading when either is not a ``## `` heading of the reading part,
    or when ``stop`` does not come after ``start``.
    """
    found = section_words(nb)
    names = [name for name, _ in found]
    for arg, heading in (("start", start), ("stop", stop)):
        if heading is not None and heading not in names:
            raise ValueError(f"{arg}: no '## {heading}' heading before the quiz and the exercise (sections: {names})")
    first = names.index(start)
    last = len(names) if stop is None else names.index(stop)
    if last <= first:
        raise ValueError(f"stop: '## {stop}' does not come after '## {start}'")
    return sum(words for _, words in found[first:last])


def section_minutes(nb: dict, timings: dict, start: str = TOP, stop: str | None = None) -> int:
    """Reading minutes from heading ``start`` up to heading ``stop`` (``range_words`` at the
    measured pace, rounded up to a whole minute, as the notebook's reading minutes are)."""
    return math.ceil(range_words(nb, start, stop) / pace(timings))


def quiz_words(stem: str) -> int:
    """Words of the quiz's questions and options, plus the explanation of each right option."""
    path = QUIZZES / f"{stem}.json"
    if not path.exists():
        raise SystemExit(f"{path.relative_to(ROOT)}: no quiz for notebook {stem}")
    quiz = json.loads(path.read_text(encoding="utf-8"))
    n = 0
    for q in quiz["questions"]:
        n += len(q["question"].split())
        for option in q["options"]:
            n += len(option["text"].split())
            if option.get("correct"):
                n += len(option["why"].split())
    return n


def pace(timings: dict) -> float:
    """Words per minute of the measured reader (all their words over all their minutes)."""
    reader = timings["reader"]
    return sum(reader["words"].values()) / sum(reader["minutes"].values())


def times(stem: str, nb: dict, timings: dict) -> dict:
    """Reading, quiz, exercise and total minutes of one notebook (whole minutes, rounded up)."""
    wpm = pace(timings)
    boxes = timings["exercise_timebox_minutes"]
    if stem not in boxes:
        raise SystemExit(f"{TIMINGS.relative_to(ROOT)}: no exercise timebox for notebook {stem}")
    words = reading_words(nb)
    reading = math.ceil(words / wpm)
    quiz = math.ceil(quiz_words(stem) / wpm)
    exercise = int(boxes[stem])
    return {"words": words, "reading": reading, "quiz": quiz, "exercise": exercise, "total": reading + quiz + exercise}


def sentence(t: dict) -> str:
    return (
        f"Time: about {t['total']} minutes (reading and running {t['reading']}, quiz {t['quiz']}, "
        f"exercise {t['exercise']} as a timebox; computed from one reader's measured pace, see the workshop notes)."
    )


def stated(nb: dict) -> str | None:
    """The time sentence of a notebook's first cell, or None."""
    match = TIME_SENTENCE.search(_text(nb["cells"][0]["source"]))
    return match.group(0) if match else None


def all_times() -> dict[str, dict]:
    timings = json.loads(TIMINGS.read_text(encoding="utf-8"))
    result = {}
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        result[path.stem] = times(path.stem, json.loads(path.read_text(encoding="utf-8")), timings)
    return result


def write(stem: str, t: dict) -> bool:
    """Rewrite one notebook's time sentence; True when the file changed."""
    path = NOTEBOOKS / f"{stem}.ipynb"
    raw = path.read_text(encoding="utf-8")
    nb = json.loads(raw)
    old = stated(nb)
    if old is None:
        raise SystemExit(f"{path.relative_to(ROOT)}: the first cell has no 'Time: about N minutes (...).' sentence")
    new = sentence(t)
    if old == new:
        return False
    source = TIME_SENTENCE.sub(new, _text(nb["cells"][0]["source"]), count=1)
    nb["cells"][0]["source"] = source.splitlines(keepends=True)
    text = json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))
    return True


def sections_table(numbers: list[str]) -> str:
    """Each notebook's sections: words, minutes alone, and minutes from the top to the section's end."""
    timings = json.loads(TIMINGS.read_text(encoding="utf-8"))
    wpm = pace(timings)
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    unknown = sorted(set(numbers) - {p.name[:2] for p in paths})
    if unknown:
        raise SystemExit(f"--sections: no notebook numbered {', '.join(unknown)}")
    lines = [
        f"pace {wpm:.1f} words/minute; alone: the section's reading minutes; from top: the first cell up to "
        "the section's end (a range is rounded up once, see section_minutes)"
    ]
    for path in paths:
        if numbers and path.name[:2] not in numbers:
            continue
        nb = json.loads(path.read_text(encoding="utf-8"))
        t = times(path.stem, nb, timings)
        lines.append("")
        lines.append(
            f"{path.stem}: reading {t['reading']}, quiz {t['quiz']}, exercise {t['exercise']}, total {t['total']}"
        )
        lines.append(f"  {'words':>6}{'alone':>7}{'from top':>10}  section")
        cumulative = 0
        for name, words in section_words(nb):
            cumulative += words
            shown = name if name == TOP else f"## {name}"
            lines.append(f"  {words:>6}{math.ceil(words / wpm):>7}{math.ceil(cumulative / wpm):>10}  {shown}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite each notebook's time sentence")
    parser.add_argument(
        "--sections",
        nargs="*",
        metavar="NN",
        help="print the '## ' sections of the notebooks (all, or those numbered NN) with their reading minutes",
    )
    args = parser.parse_args(argv)
    if args.sections is not None:
        sys.stdout.write(sections_table(args.sections))
        return 0
    table = all_times()
    timings = json.loads(TIMINGS.read_text(encoding="utf-8"))
    lines = [f"pace {pace(timings):.1f} words/minute (one reader, notebooks 00-08 at {timings['reader']['commit']})"]
    lines.append(f"{'notebook':<28}{'words':>7}{'reading':>9}{'quiz':>6}{'exercise':>10}{'total':>7}")
    for stem, t in table.items():
        lines.append(f"{stem:<28}{t['words']:>7}{t['reading']:>9}{t['quiz']:>6}{t['exercise']:>10}{t['total']:>7}")
    lines.append(
        f"{'all':<28}{'':>7}{sum(t['reading'] for t in table.values()):>9}"
        f"{sum(t['quiz'] for t in table.values()):>6}{sum(t['exercise'] for t in table.values()):>10}"
        f"{sum(t['total'] for t in table.values()):>7}"
    )
    sys.stdout.write("\n".join(lines) + "\n")
    if args.write:
        changed = [stem for stem, t in table.items() if write(stem, t)]
        sys.stdout.write(f"rewrote {len(changed)} notebook(s): {', '.join(changed) or 'none'}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
