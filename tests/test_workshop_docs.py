"""The workshop documents (docs/workshop/) stay true to the notebooks, the Makefile and the CLI.

- instructor-notes.md: a section per notebook with every part; the cells it names exist; the
  self-check it discusses is the notebook's; every figure it quotes is in that notebook's
  committed outputs.
- agenda.md: each notebook row carries the minutes the notebook states in its first cell; blocks
  are the sum of their parts, start times follow, and the plans add up to 3 hours and 90 minutes.
- handout.md: every ``make`` and ``nudge`` command exists (Makefile targets on disk, the CLI's
  argparse subcommands and options); every figure is in some notebook's committed outputs; it fits
  on one printed page.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from conftest import REPO

from nudge.production.cli import build_parser
from nudge.teaching import exercises
from tools.run_notebooks import notebook_paths

DOCS = REPO / "docs" / "workshop"
NOTEBOOKS = notebook_paths()
PARTS = ("**Key message.**", "**What to say.**", "**Questions and mistakes.**", "**Discussion.**", "**Noisy numbers.**")
FIGURE = re.compile(r"(?<![\w.])[+-]?\d+\.\d+(?!\d)")
#: A difference with its interval, quoted whole: "+0.082 [+0.036, +0.129]".
INTERVAL = re.compile(r"[+-]\d+\.\d+\s+\[[+-]\d+\.\d+,\s+[+-]\d+\.\d+\]")
PLANS = {"3-hour plan": 180, "90-minute plan": 90}
#: Make targets the handout may name before the Makefile has them: they arrive with branch setup
#: (issue 15's set-up check); the test expects them to fail until then and passes once merged.
PENDING_TARGETS = {"check"}
#: One printed page: at most this many lines of at most 100 characters (A4, 10 pt monospace).
PAGE_LINES = 66


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def stated_minutes(path: Path) -> tuple[int, int | None]:
    """The minutes a notebook states in its first cell (``Time: about N minutes ...``) and, when
    the sentence breaks them down (``... quiz Q, ...``, tools/notebook_times.py), its quiz minutes."""
    first = " ".join("".join(_cells(path)[0]["source"]).split())
    found = re.search(r"Time: about (\d+) minutes([^)]*\))?", first)
    assert found, f"{path.name}: first cell states no 'Time: about N minutes' (update stated_minutes?)"
    quiz = re.search(r"\bquiz (\d+)", found.group(0))
    return int(found.group(1)), int(quiz.group(1)) if quiz else None


def test_stated_minutes_reads_both_sentences(tmp_path):
    for sentence, expected in (
        ("*Time: about 20 minutes with the exercise (estimate: ...). Everything runs offline*", (20, None)),
        ("*Time: about 31 minutes (reading and running 14, quiz 2, exercise 15 as a timebox; ...).*", (31, 2)),
    ):
        path = tmp_path / "nb.ipynb"
        path.write_text(json.dumps({"cells": [{"cell_type": "markdown", "source": [sentence]}]}))
        assert stated_minutes(path) == expected


def outputs_text(path: Path) -> str:
    """Everything a notebook's committed code cells print or display as text."""
    parts = []
    for cell in _cells(path):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append("".join(out.get("text", "")))
            elif "text/plain" in out.get("data", {}):
                parts.append("".join(out["data"]["text/plain"]))
    return "\n".join(parts)


def headings(path: Path) -> set[str]:
    return {
        m.group(1).strip()
        for cell in _cells(path)
        if cell["cell_type"] == "markdown"
        for m in re.finditer(r"^#+ (.+)$", "".join(cell["source"]), re.M)
    }


def figures(text: str) -> list[str]:
    """Decimal figures quoted in prose: inline code and indented code lines are left out."""
    prose = "\n".join(line for line in text.splitlines() if not line.startswith("    "))
    return FIGURE.findall(re.sub(r"`[^`]*`", " ", prose))


def intervals(text: str) -> list[str]:
    """Differences quoted with their interval, whitespace normalised (prose wraps inside them)."""
    return [" ".join(m.split()) for m in INTERVAL.findall(re.sub(r"`[^`]*`", " ", text))]


def printed(figure: str, text: str) -> bool:
    before = r"(?<![\d.])" if figure[0] in "+-" else r"(?<![\d.+-])"
    return re.search(before + re.escape(figure) + r"(?!\d)", text) is not None


def sections(text: str, level: str = "## ") -> dict[str, str]:
    out, name = {}, None
    for line in text.splitlines():
        if line.startswith(level):
            name = line[len(level) :].strip()
            out[name] = ""
        elif name is not None:
            out[name] += line + "\n"
    return out


@pytest.fixture(scope="module")
def notes() -> dict[str, str]:
    """Instructor-notes section per notebook stem."""
    found = {}
    for title, body in sections((DOCS / "instructor-notes.md").read_text(encoding="utf-8")).items():
        stem = re.search(r"\((\d\d_[a-z0-9_]+)\)$", title)
        if stem:
            found[stem.group(1)] = body
    return found


# ------------------------------------------------------------------------------ instructor notes
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_has_a_complete_section(notes, path):
    assert path.stem in notes, f"instructor-notes.md has no '## NN · title ({path.stem})' section"
    for part in PARTS:
        assert part in notes[path.stem], f"{path.stem}: section lacks {part}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_named_cells_exist(notes, path):
    named = re.findall(r'\*\*At "([^*]+)"\*\*', notes[path.stem])
    assert named, f"{path.stem}: 'What to say' names no cell"
    missing = set(named) - headings(path)
    assert not missing, f"{path.stem}: no heading {sorted(missing)} in the notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_section_discusses_the_notebooks_own_self_check(notes, path):
    code = "".join("".join(c["source"]) for c in _cells(path) if c["cell_type"] == "code")
    checks = set(re.findall(r"\b(check_\w+)\(", code))
    assert checks, f"{path.stem}: no self-check call found"
    for check in checks:
        assert hasattr(exercises, check)
        assert f"`{check}`" in notes[path.stem], f"{path.stem}: the notes do not discuss {check}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_quoted_figures_are_in_the_notebooks_outputs(notes, path):
    quoted = figures(notes[path.stem])
    text = outputs_text(path)
    missing = [f for f in quoted if not printed(f, text)]
    assert not missing, f"{path.stem}: quoted but not in its committed outputs: {missing}"
    flat = " ".join(text.split())
    missing = [i for i in intervals(notes[path.stem]) if i not in flat]
    assert not missing, f"{path.stem}: intervals quoted but not printed whole: {missing}"


def test_the_figure_check_can_fail():
    assert figures("gain +0.082 [+0.036, +0.129] at `gamma = 0.2`\n    e + 0.5 * g") == ["+0.082", "+0.036", "+0.129"]
    assert printed("+0.082", "x +0.082 [") and not printed("+0.082", "+0.0821")
    assert printed("0.683", "hit@1 0.683 ") and not printed("0.683", "-0.683") and not printed("0.68", "0.683")
    assert intervals("NUDGE-M +0.041 [+0.010,\n  +0.077], and `+0.1 [+0.0, +0.2]`") == ["+0.041 [+0.010, +0.077]"]


# ------------------------------------------------------------------------------------- agenda
def _plan_rows(body: str) -> list[list[str]]:
    rows = []
    for line in body.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if cells[0] != "start":
                rows.append(cells)
    return rows


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return 60 * int(hours) + int(minutes)


@pytest.fixture(scope="module")
def agenda() -> dict[str, str]:
    return sections((DOCS / "agenda.md").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def stated() -> dict[str, tuple[int, int | None]]:
    return {p.name[:2]: stated_minutes(p) for p in NOTEBOOKS}


@pytest.mark.parametrize("plan", PLANS)
def test_agenda_plan_adds_up(agenda, stated, plan):
    rows = _plan_rows(agenda[plan])
    assert rows[-1][1] == "End" and _minutes(rows[-1][0]) == PLANS[plan]
    clock, notebooks = 0, 0
    for start, block, notebook, quiz, discussion, minutes in rows[:-1]:
        assert _minutes(start) == clock, f"{plan}: {block!r} starts at {start}, expected {clock} min"
        number = re.match(r"(\d\d) · ", block)
        if number:
            notebooks += 1
            total, in_notebook_quiz = stated[number.group(1)]
            assert int(notebook) == total, (
                f"{plan}: notebook {number.group(1)} states {total} minutes, the agenda {notebook}"
            )
            if in_notebook_quiz is not None:  # the notebook's minutes already count its quiz
                assert int(quiz) == 0, f"{plan}: {block!r} counts the quiz twice (the notebook states quiz minutes)"
            assert int(minutes) == int(notebook) + int(quiz) + int(discussion), f"{plan}: {block!r}"
        else:
            assert not (notebook or quiz or discussion), f"{plan}: {block!r} is not a notebook"
        clock += int(minutes)
    assert clock == PLANS[plan] and notebooks >= 3


def test_optional_notebooks_cite_their_stated_minutes(agenda, stated):
    rows = [r for r in _plan_rows(agenda["Optional notebooks"]) if r[0] != "notebook"]
    assert rows
    for notebook, minutes, _ in rows:
        assert int(minutes) == stated[notebook[:2]][0], notebook


def test_every_notebook_is_in_the_agenda(agenda, stated):
    named = {m for body in agenda.values() for m in re.findall(r"^\| (?:\d:\d\d \| )?(\d\d) · ", body, re.M)}
    assert named == set(stated)


# ------------------------------------------------------------------------------------ handout
HANDOUT = (DOCS / "handout.md").read_text(encoding="utf-8")


def _commands(program: str) -> list[list[str]]:
    """``make ...`` / ``nudge ...`` lines of the handout's code blocks and inline code."""
    found = [line.strip() for line in HANDOUT.splitlines() if line.startswith("    ")]
    found += re.findall(r"`([^`]+)`", HANDOUT)
    return [c.split() for c in found if c.split()[:1] == [program]]


def _make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", text, re.M))


@pytest.mark.parametrize("target", sorted({c[1] for c in _commands("make")}))
def test_handout_make_targets_exist(target):
    if target in PENDING_TARGETS and target not in _make_targets():
        pytest.xfail(f"`make {target}` arrives with the set-up check (branch setup)")
    assert target in _make_targets(), f"the handout names `make {target}`, which the Makefile lacks"


def test_handout_nudge_commands_exist():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices
    commands = _commands("nudge")
    assert len(commands) >= 6
    for words in commands:
        if not words[1].islower():  # `nudge COMMAND --help`: a placeholder
            assert words[1] == "COMMAND"
            continue
        assert words[1] in sub, f"no `nudge {words[1]}`"
        options = sub[words[1]]._option_string_actions
        for word in (w.strip("()[],") for w in words[2:]):
            if word.startswith("--"):
                assert word in options, f"`nudge {words[1]}` has no option {word}"
    assert {w[1] for w in commands} >= set(sub), "the handout leaves a `nudge` command out"


def test_handout_figures_are_in_the_notebooks_outputs():
    text = "\n".join(outputs_text(p) for p in NOTEBOOKS)
    quoted = figures(HANDOUT)
    assert len(quoted) >= 20
    missing = [f for f in quoted if not printed(f, text)]
    assert not missing, f"quoted in the handout but in no notebook's outputs: {missing}"
    flat = " ".join(text.split())
    quoted = intervals(HANDOUT)
    assert len(quoted) >= 10
    missing = [i for i in quoted if i not in flat]
    assert not missing, f"intervals quoted in the handout but printed whole by no notebook: {missing}"


def test_handout_is_one_page():
    lines = sum(max(1, math.ceil(len(line) / 100)) for line in HANDOUT.splitlines())
    assert lines <= PAGE_LINES, f"the handout prints on {lines} lines of 100 characters, over {PAGE_LINES}"


def test_handout_has_the_six_phases_and_both_formulas():
    phases = re.findall(r"^(\d)\. ", HANDOUT, re.M)
    assert phases == ["1", "2", "3", "4", "5", "6"]
    assert "e_i + gamma * g_i" in HANDOUT and "arccos(1 - gamma/2)" in HANDOUT


def test_readme_points_to_the_workshop():
    assert "docs/workshop/" in (REPO / "README.md").read_text(encoding="utf-8")
