"""Developer tool: write the demo's result tables into README.md (``python tools/readme_tables.py``).

The README shows the tables ``make demo`` prints (known and never-asked test questions). Each sits
in a fenced block right after a marker line ``<!-- demo:GROUP -->``; this tool recomputes them and
rewrites those blocks, and ``tests/test_readme.py`` fails when the README and the code disagree.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
GROUPS = {"known": "known", "never-asked": "never asked"}


def tables() -> dict[str, str]:
    """Marker name -> the table the demo prints for that group."""
    from nudge.evaluation import format_table
    from nudge.teaching.demo import INTERVAL, run

    out = run()
    return {marker: format_table(out["groups"][group], interval=INTERVAL) for marker, group in GROUPS.items()}


def blocks(text: str) -> dict[str, str]:
    """Marker name -> the fenced block that follows its marker in ``text``."""
    found = {}
    for marker in GROUPS:
        match = re.search(rf"<!-- demo:{marker} -->\n```\n(.*?)\n```", text, flags=re.S)
        if match is None:
            raise ValueError(f"README.md has no fenced block after '<!-- demo:{marker} -->'")
        found[marker] = match.group(1)
    return found


def write(path: Path = README) -> None:
    text = path.read_text()
    blocks(text)  # every marker present
    for marker, table in tables().items():
        pattern = rf"(<!-- demo:{marker} -->\n```\n).*?(\n```)"
        text = re.sub(pattern, lambda m, t=table: m.group(1) + t + m.group(2), text, flags=re.S)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(path)


if __name__ == "__main__":
    write()
    sys.exit(0)
