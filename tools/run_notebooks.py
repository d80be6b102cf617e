"""Developer tool: execute the notebooks in place and keep their committed outputs clean.

``python tools/run_notebooks.py run [NOTEBOOK ...]`` executes each notebook top to bottom in its
own folder with the ``python3`` kernel, then strips what must not be committed (widget state,
execution timestamps) and writes it back atomically. ``python tools/run_notebooks.py check``
lists problems (the test suite runs the same check). ``make notebooks`` runs both.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from nudge._io import atomic_write

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
MACHINE_PATH = re.compile(r"(/work/|/root/|/home/|/tmp/|/Users/|[A-Z]:\\\\)")
TIMING = re.compile(r"\b(Wall time|CPU times|\d+(\.\d+)? ?(ms|µs|seconds?) (elapsed|per loop))\b")


def notebook_paths(names: list[str] | None = None) -> list[Path]:
    if names:
        return [Path(n).resolve() for n in names]
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def clean(nb: dict) -> dict:
    """Remove widget state, widget views and execution timing metadata; join split stream outputs; pin the
    kernelspec to python3.

    A widget view in a saved notebook names a widget model that exists only while its kernel runs:
    opened before running, JupyterLab shows "Error displaying widget: model not found" instead of the
    output's text form, and its random model id changes on every run. The text form is kept.
    """
    nb.setdefault("metadata", {}).pop("widgets", None)
    nb["metadata"]["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("execution", None)
        if cell["cell_type"] == "code":
            for out in cell.get("outputs", []):
                out.get("metadata", {}).pop("execution", None)
                if "text/plain" in out.get("data", {}):
                    out["data"].pop(WIDGET_VIEW, None)
            cell["outputs"] = _merged_streams(cell.get("outputs", []))
    return nb


def _merged_streams(outputs: list) -> list:
    """Join consecutive stream outputs of the same name (stdout/stderr): how the kernel chunks
    printed text varies from run to run, and the committed file should not."""
    merged: list = []
    for out in outputs:
        prev = merged[-1] if merged else None
        if out.get("output_type") == "stream" and prev is not None and prev.get("output_type") == "stream":
            if prev.get("name") == out.get("name"):
                text = "".join(prev.get("text", "")) + "".join(out.get("text", ""))
                prev["text"] = text.splitlines(keepends=True)
                continue
        merged.append(out)
    return merged


def run(path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    data = clean(json.loads(nbformat.writes(nb)))
    text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def problems(path: Path) -> list[str]:
    """What is wrong with a committed notebook (empty list: nothing)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    found = []
    name = path.name
    if "widgets" in nb.get("metadata", {}):
        found.append(f"{name}: saved widget state in metadata.widgets")
    if nb.get("metadata", {}).get("kernelspec", {}).get("name") != "python3":
        found.append(f"{name}: kernelspec name is not python3")
    count = 0
    for i, cell in enumerate(nb["cells"]):
        text = "".join(cell.get("source", ""))
        if cell["cell_type"] != "code":
            continue
        count += 1
        if cell.get("execution_count") != count:
            found.append(f"{name} cell {i}: execution_count {cell.get('execution_count')}, expected {count} (run all)")
        if re.search(r"^\s*(def|class) ", text, re.M):
            found.append(f"{name} cell {i}: defines a function or class; put library code in nudge/")
        if len(_merged_streams([dict(o) for o in cell.get("outputs", [])])) != len(cell.get("outputs", [])):
            found.append(f"{name} cell {i}: printed text split over several stream outputs (run the tool to join them)")
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                found.append(f"{name} cell {i}: raised {out.get('ename')}: {out.get('evalue', '')[:200]}")
            blob = json.dumps({k: v for k, v in out.items() if k != "data"} | {"data": _text_data(out)})
            if MACHINE_PATH.search(blob):
                found.append(f"{name} cell {i}: output contains a machine path")
            if TIMING.search(blob):
                found.append(f"{name} cell {i}: output contains a timing")
            if "application/vnd.jupyter.widget-state+json" in blob:
                found.append(f"{name} cell {i}: output carries widget state")
            if WIDGET_VIEW in out.get("data", {}):
                found.append(f"{name} cell {i}: output carries a widget view (run the tool: it keeps the text form)")
    return found


def _text_data(out: dict) -> dict:
    return {k: v for k, v in out.get("data", {}).items() if not k.startswith("image/")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/run_notebooks.py", description=__doc__)
    parser.add_argument("command", choices=["run", "check"])
    parser.add_argument("notebooks", nargs="*")
    args = parser.parse_args(argv)
    paths = notebook_paths(args.notebooks)
    if args.command == "run":
        for p in paths:
            print(f"running {p.name}", flush=True)
            run(p)
    issues = [msg for p in paths for msg in problems(p)]
    for msg in issues:
        print(msg)
    return 1 if issues else 0


if __name__ == "__main__":
    sys.exit(main())
