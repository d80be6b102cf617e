"""Developer tool: write the demo's result tables into README.md (``python tools/readme_tables.py``).

The README shows the tables ``make demo`` prints (known and never-asked test questions). Each sits
in a fenced block right after a marker line ``<!-- demo:GROUP -->``; this tool recomputes them and
rewrites those blocks, and ``tests/test_readme.py`` fails when the README and the code disagree.

The section "Your own vectors and test set" shows what ``nudge evaluate`` prints after its SciFact
commands (``<!-- scifact:cli-N -->``, ``<!-- scifact:cli-M -->``) and what its Python script prints
(``<!-- scifact:script-output -->``); :func:`scifact_outputs` recomputes them from the SciFact folder
(rewritten when that folder is present; checked by ``tests/test_own_data_scifact.py``).
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


SCIFACT_MARKERS = ("cli-N", "cli-M", "script-output")
SCIFACT_README_FOLDER = 'os.environ.get("NUDGE_SCIFACT_DIR", "../shared/data/scifact")'  # how the README's script
# names the folder: replaced whole by the folder run on, so $NUDGE_SCIFACT_DIR cannot swap in another one


def scifact_block(text: str, marker: str) -> str:
    """The fenced block after ``<!-- scifact:MARKER -->`` (its code, without the fences)."""
    match = re.search(rf"<!-- scifact:{marker} -->\n```[a-z]*\n(.*?)\n?```", text, flags=re.S)
    if match is None:
        raise ValueError(f"README.md has no fenced block after '<!-- scifact:{marker} -->'")
    return match.group(1)


def scifact_outputs(folder: Path, text: str | None = None) -> dict[str, str]:
    """Marker -> what the README's SciFact commands (evaluate's table) and script print on ``folder``."""
    import contextlib
    import io
    import tempfile

    from nudge.production.cli import main

    text = README.read_text() if text is None else text
    v = folder / "embeddings" / "all-MiniLM-L6-v2"
    vectors = ["--doc-vectors", str(v / "corpus.npy"), "--doc-ids", str(v / "corpus_ids.txt"),
               "--query-vectors", str(v / "queries.npy"), "--query-ids", str(v / "query_ids.txt")]  # fmt: skip
    out: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in ("N", "M"):
            run = str(Path(tmp) / method)
            fit = ["fit", str(folder), "--split", "train", "--test-split", "test", "--method", method, "--out", run,
                   *vectors, "--vectors-model", "all-MiniLM-L6-v2"]  # fmt: skip
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
                if main(fit) != 0 or main(["evaluate", run, "--show", "0"]) != 0:
                    raise RuntimeError(f"the README's SciFact commands failed (--method {method})")
            lines = buf.getvalue().splitlines()
            start = next(i for i, line in enumerate(lines) if line.startswith("no fine-tuning")) - 2
            out[f"cli-{method}"] = "\n".join(lines[start : start + 4])
    script = scifact_block(text, "script")
    if SCIFACT_README_FOLDER not in script:
        raise ValueError(f"README.md's SciFact script no longer names its folder as {SCIFACT_README_FOLDER}")
    script = script.replace(SCIFACT_README_FOLDER, repr(str(folder)))
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(script, "README.md (scifact:script)", "exec"), {"__name__": "readme_scifact"})
    out["script-output"] = buf.getvalue().rstrip("\n")
    return out


def write(path: Path = README, scifact: Path | None = None) -> None:
    text = path.read_text()
    blocks(text)  # every marker present
    for marker, table in tables().items():
        pattern = rf"(<!-- demo:{marker} -->\n```\n).*?(\n```)"
        text = re.sub(pattern, lambda m, t=table: m.group(1) + t + m.group(2), text, flags=re.S)
    if scifact is not None and (scifact / "qrels" / "test.tsv").is_file():
        for marker, block in scifact_outputs(scifact, text).items():
            pattern = rf"(<!-- scifact:{marker} -->\n```\n).*?(```)"
            text = re.sub(pattern, lambda m, b=block: m.group(1) + b + "\n" + m.group(2), text, flags=re.S)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(path)


if __name__ == "__main__":
    write(scifact=README.parent.parent / "shared" / "data" / "scifact")
    sys.exit(0)
