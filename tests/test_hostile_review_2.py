"""Regression tests for the third hostile review of the store/update paths (docs/reliability.md):
each test replays one finding of the tester's report as they ran it."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from nudge import load_embeddings
from nudge.production.cli import main
from nudge.teaching.bundled import data_dir

PAIRS = data_dir() / "examples" / "support_pairs.csv"
TESSERA = ["--embedder", "tessera"]


def need(module: str) -> None:
    if os.environ.get("NUDGE_REQUIRE_STORES") != "1":
        pytest.importorskip(module)


def one_line(capsys, command: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"nudge {command}: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def fit(out, data=PAIRS, *extra) -> None:
    assert main(["fit", str(data), "--out", str(out), *TESSERA, "--method", "M", *extra]) == 0


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile2") / "run"
    fit(out)
    return out


@pytest.fixture
def run(base_run, tmp_path):
    return shutil.copytree(base_run, tmp_path / "run")


# ------------------------------------------------------- 1: a forced apply keeps what it overwrites
def test_a_forced_apply_keeps_what_it_overwrites_in_a_restorable_file(run, tmp_path, capsys):
    need("qdrant_client")
    from nudge.production.stores import QdrantStore

    (tmp_path / "st").mkdir()
    folder = tmp_path / "st" / "q"
    where = ["--store", f"qdrant:{folder}", "--collection", "docs"]
    assert main(["load", str(run), *where]) == 0
    assert main(["apply", str(run), *where]) == 0
    docs, ids = load_embeddings(run / "documents.npz")
    theirs = -docs[ids.index("d0005")][None, :]
    with QdrantStore("docs", path=str(folder)) as store:
        store.upsert(["d0005"], theirs)
    capsys.readouterr()
    assert main(["apply", str(run), *where, "--force"]) == 0
    kept = run / "store_backup.overwritten-1.npz"
    out = capsys.readouterr().out
    assert f"kept in {kept}" in out and "rollback" in out
    assert main(["apply", str(run), *where]) == 0  # a later plain apply replaces nothing of it
    assert kept.is_file()
    assert main(["rollback", str(run), *where, "--backup", str(kept)]) == 0
    with QdrantStore("docs", path=str(folder)) as store:
        np.testing.assert_array_equal(store.fetch(["d0005"]), theirs.astype(np.float32))
