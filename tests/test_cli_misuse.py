"""The command line under misuse: arguments and files are named before any work, nothing is counted
twice, data the run was fitted on is fingerprinted, and a refit never destroys the previous run."""

from __future__ import annotations

import csv
import json
import os
import shutil

import numpy as np
import pytest

from nudge import NudgeState
from nudge.production import cli
from nudge.production.cli import main
from nudge.teaching.bundled import data_dir, load_tessera

PAIRS = data_dir() / "examples" / "support_pairs.csv"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("misuse") / "run"
    assert main(["fit", str(PAIRS), "--out", str(out), "--embedder", "tessera", "--method", "M"]) == 0
    return out


def error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def no_embedding(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the embedder was created although the arguments were wrong")

    monkeypatch.setattr(cli, "_embedder", refuse)


def test_bad_arguments_are_named_before_any_work(tmp_path, capsys, monkeypatch):
    no_embedding(monkeypatch)
    (tmp_path / "file").write_text("x")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    header_only = tmp_path / "header.csv"
    header_only.write_text("query,document\n")
    cases = [
        (["--out", str(tmp_path / "file")], "--out"),
        (["--out", str(tmp_path / "other")], "--out"),
        (["--out", str(tmp_path / "new"), "--seed", "-5"], "--seed must be a whole number >= 0, got -5"),
        (["--out", str(tmp_path / "new"), "--k", "0"], "--k must be"),
    ]
    for extra, message in cases:
        assert main(["fit", str(PAIRS), "--embedder", "tessera", *extra]) == 2
        assert message in error(capsys)
    assert main(["fit", str(header_only), "--out", str(tmp_path / "new"), "--embedder", "tessera"]) == 2
    assert "header.csv has 0 labelled question(s)" in error(capsys)
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine" and not (tmp_path / "new").exists()


def test_a_model_from_another_run_is_named(run, tmp_path, capsys):
    with PAIRS.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    small = tmp_path / "small.csv"  # another corpus: the first 60 pairs
    with small.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows[:61])
    assert main(["fit", str(small), "--out", str(tmp_path / "small"), "--embedder", "tessera"]) == 0
    target = shutil.copytree(run, tmp_path / "run")
    shutil.copy(tmp_path / "small" / "nudge_model.npz", target / "nudge_model.npz")
    capsys.readouterr()
    for argv in (["evaluate", str(target)], ["update", str(target), str(small)]):
        assert main(argv) == 2
        err = error(capsys)
        assert "nudge_model.npz" in err and "was not fitted on this run's documents.npz" in err


def test_pairs_already_counted_are_not_counted_again(run, tmp_path, capsys):
    target = shutil.copytree(run, tmp_path / "run")
    assert main(["update", str(target), str(PAIRS)]) == 2  # the run's own data: nothing new
    assert "already counted in this run" in error(capsys)
    assert not (target / "state.npz").exists()
    t2 = load_tessera(2)
    qs = [q for q in t2.dataset.query_ids if t2.metadata["queries"][q]["area"] == "webhooks_limits"][:10]
    rows = [f'"{t2.dataset.queries[q]}","{t2.dataset.corpus[d]}"' for q in qs for d in t2.dataset.relevant[q]]
    week = tmp_path / "week.csv"
    week.write_text("query,document\n" + "\n".join(rows) + "\n", encoding="utf-8")
    assert main(["update", str(target), str(week)]) == 0
    counted = NudgeState.load(target / "state.npz")
    copy = tmp_path / "week-copy.csv"  # same pairs: another row order and a trailing newline
    copy.write_text("query,document\n" + "\n".join(reversed(rows)) + "\n\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["update", str(target), str(copy)]) == 2
    assert "already counted in this run" in error(capsys)
    state = NudgeState.load(target / "state.npz")
    assert (state.n_train_pairs, state.n_val_pairs) == (counted.n_train_pairs, counted.n_val_pairs)
    test_before = json.loads((run / "run.json").read_text())["split"]["test"]
    assert json.loads((target / "run.json").read_text())["split"]["test"] == test_before


def test_a_resorted_data_file_is_detected(run, tmp_path, capsys):
    data = tmp_path / "pairs.csv"
    shutil.copy(PAIRS, data)
    target = tmp_path / "run"
    assert main(["fit", str(data), "--out", str(target), "--embedder", "tessera"]) == 0
    header, *rows = data.read_text(encoding="utf-8").splitlines()
    data.write_text("\n".join([header, *sorted(rows)]) + "\n", encoding="utf-8")
    capsys.readouterr()
    for argv in (["evaluate", str(target)], ["update", str(target), str(PAIRS)]):
        assert main(argv) == 2
        err = error(capsys)
        assert "pairs.csv" in err and "changed since `nudge fit`" in err


def test_a_refit_sets_the_previous_run_aside_and_a_failed_one_changes_nothing(run, tmp_path, capsys, monkeypatch):
    target = shutil.copytree(run, tmp_path / "run")
    before = {p.name: p.read_bytes() for p in target.iterdir() if p.is_file() and not p.name.startswith(".")}

    def boom(self, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cli.Nudge, "save", boom)
    assert main(["fit", str(PAIRS), "--out", str(target), "--embedder", "tessera", "--seed", "1"]) == 2
    assert "No space left on device" in error(capsys)
    assert {p.name: p.read_bytes() for p in target.iterdir() if p.is_file() and not p.name.startswith(".")} == before
    assert main(["evaluate", str(target)]) == 0
    monkeypatch.undo()
    capsys.readouterr()
    assert main(["fit", str(PAIRS), "--out", str(target), "--embedder", "tessera", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    previous = sorted(tmp_path.glob("run.previous-*"))
    assert previous and "set aside" in out
    assert {p.name: p.read_bytes() for p in previous[-1].iterdir() if p.is_file()} == before
    assert json.loads((target / "run.json").read_text())["seed"] == 1


def test_a_backup_of_another_run_is_refused_and_kept(run, tmp_path, capsys):
    if os.environ.get("NUDGE_REQUIRE_STORES") != "1":
        pytest.importorskip("qdrant_client")
    other = tmp_path / "other"
    assert main(["fit", str(PAIRS), "--out", str(other), "--embedder", "tessera", "--seed", "2"]) == 0
    mine = shutil.copytree(run, tmp_path / "run")
    where = ["--store", f"qdrant:{tmp_path / 'q'}", "--collection", "docs"]
    assert main(["load", str(mine), *where]) == 0 and main(["apply", str(mine), *where]) == 0
    backup = mine / "store_backup.npz"
    kept = backup.read_bytes()
    capsys.readouterr()
    for command in ("rollback", "apply"):
        assert main([command, str(other), *where, "--backup", str(backup)]) == 2
        assert "belongs to another run" in error(capsys)
    assert backup.read_bytes() == kept
    assert main(["rollback", str(mine), *where]) == 0


def test_a_backup_of_an_older_version_needs_force(tmp_path):
    from nudge._io import save_artifact
    from nudge.production.stores import InMemoryStore, rollback_store

    t = load_tessera()
    ids, emb = list(t.doc_ids), t.doc_embeddings
    store = InMemoryStore.from_embeddings(ids, emb)
    store.upsert(ids[:2], -emb[:2])
    meta = {"format": "nudge-store-backup/1", "embeddings_sha256": "x", "dimension": emb.shape[1], "store": "?"}
    save_artifact(tmp_path / "old.npz", meta, {"ids": np.array(ids[:2]), "vectors": emb[:2]})
    with pytest.raises(ValueError, match=r"older version of the kit.*force=True"):
        rollback_store(store, tmp_path / "old.npz")
    rollback_store(store, tmp_path / "old.npz", force=True)
    np.testing.assert_array_equal(store.fetch(ids), emb)
