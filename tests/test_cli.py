"""The command line: fit and evaluate end to end, help texts, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from nudge import Nudge, load_embeddings
from nudge.bundled import data_dir
from nudge.cli import main

PAIRS = data_dir() / "examples" / "support_pairs.csv"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["fit", str(PAIRS), "--out", str(out), "--embedder", "tessera", "--method", "M"]) == 0
    return out


def test_fit_writes_consistent_artefacts(run_dir, capsys):
    run = json.loads((run_dir / "run.json").read_text())
    assert {len(run["split"][p]) for p in ("train", "val", "test")} == {162, 40, 50}
    docs, doc_ids = load_embeddings(run_dir / "documents.npz")
    nudged, ids = load_embeddings(run_dir / "nudged_documents.npz")
    assert ids == doc_ids and docs.shape == nudged.shape == (33, 384)
    model = Nudge.load(run_dir / "nudge_model.npz", embeddings=docs)
    np.testing.assert_array_equal(model.transform(docs), nudged)
    assert model.method_ == "M"


def test_evaluate_prints_the_table_and_changes(run_dir, capsys):
    assert main(["evaluate", str(run_dir), "--show", "2"]) == 0
    out = capsys.readouterr().out
    assert "50 hold-out test questions" in out
    assert "no fine-tuning" in out and "NUDGE-M" in out and "ndcg@10" in out
    assert "fixed" in out and "broke" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["fit", "missing.csv", "--out", "x", "--embedder", "tessera"],
            "nudge fit: error: path 'missing.csv' does not exist",
        ),
        (
            ["fit", str(PAIRS), "--out", "x", "--embedder", "nope"],
            "nudge fit: error: --embedder must be tessera, local or openai",
        ),
        (["fit", str(PAIRS), "--out", "x", "--embedder", "tessera", "--val-fraction", "2"], "val_fraction must lie"),
    ],
)
def test_errors_are_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_evaluate_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "is not a run folder" in capsys.readouterr().err


def test_help_and_version_from_the_module_entry_point():
    for args in (["--help"], ["fit", "--help"], ["evaluate", "--help"]):
        done = subprocess.run([sys.executable, "-m", "nudge", *args], capture_output=True, text=True, check=True)
        assert "usage: nudge" in done.stdout
    done = subprocess.run([sys.executable, "-m", "nudge", "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("nudge ")
    bad = subprocess.run([sys.executable, "-m", "nudge", "frobnicate"], capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
