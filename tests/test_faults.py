"""Fault injection: child processes killed with SIGKILL at seeded points of apply, rollback, update and fit.

Each child runs with ``NUDGE_CRASH_AT="step:n"`` (``nudge._io.crash_point``), so it dies at the n-th
time it reaches a named step: between two store writes (chunks of 8 ids), after the backup is
written, inside an atomic file write (before its rename), between the renames of an update's
commit, between the files of a fit. Then the invariants are checked:

* store: every id holds either its original or exactly the nudged vector; payloads unchanged;
  running the command again completes it; a rollback restores the originals exactly;
* update: the run counts each pair once (same sums as an update that was never interrupted), the
  update is recorded once, and the run's files agree with each other;
* fit into an existing run: the run folder holds either the whole previous run or the whole new one.

The points are drawn with a fixed seed (``SEED``): a modest number, so the suite stays within a
minute or two on 2 cores. With ``NUDGE_REQUIRE_STORES=1`` a missing store client fails the tests.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shutil
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from nudge import Nudge, NudgeState
from nudge.production.cli import main
from nudge.production.stores import MilvusStore, QdrantStore, apply_nudge_to_store, rollback_store
from nudge.teaching.bundled import data_dir, load_tessera

SEED = 20261201
REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("fault_worker.py")
PAIRS = data_dir() / "examples" / "support_pairs.csv"
REQUIRE = os.environ.get("NUDGE_REQUIRE_STORES") == "1"
CLIENTS = {"qdrant": ["qdrant_client"], "milvus": ["pymilvus", "milvus_lite"]}
KILLS = {"qdrant": 4, "milvus": 2}  # apply + rollback kill scenarios per store
CHUNKS = 16  # 127 moved ids in chunks of 8


def need(kind: str) -> None:
    missing = [m for m in CLIENTS[kind] if importlib.util.find_spec(m) is None]
    if missing:
        if REQUIRE:
            pytest.fail(f"the {kind} fault tests need {missing}; NUDGE_REQUIRE_STORES=1 makes them mandatory")
        pytest.skip(f"the {kind} fault tests need {missing} (the stores extra)")


def run_child(argv: list[str], crash: str | None, cwd: Path | None = None) -> int:
    """Run ``python argv`` with ``NUDGE_CRASH_AT=crash``; kill its process group afterwards (a store server
    the child started must not outlive it). Returns the exit code (-9 when the crash point was reached)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    env.pop("NUDGE_CRASH_AT", None)
    if crash:
        env["NUDGE_CRASH_AT"] = crash
    proc = subprocess.Popen(
        [sys.executable, *argv], env=env, cwd=cwd, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        _, err = proc.communicate(timeout=180)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert b"Traceback" not in err or proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    return proc.returncode


# ------------------------------------------------------------------------------------------ stores
@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    t = load_tessera()
    work = tmp_path_factory.mktemp("faults")
    emb = t.doc_embeddings.astype(np.float32)
    models = {m: Nudge(m).fit(emb, t.query_set("train"), t.query_set("val")) for m in ("M", "N")}
    for m, model in models.items():
        model.save(work / f"model_{m}.npz")
    (work / "ids.json").write_text(json.dumps(list(t.doc_ids)))
    nudged = {m: model.transform(emb).astype(np.float32) for m, model in models.items()}
    return {"ids": list(t.doc_ids), "emb": emb, "models": models, "nudged": nudged, "work": work}


@contextmanager
def open_store(kind: str, path: Path):
    """The store on ``path``; afterwards Milvus Lite's in-process server is stopped too, so that its
    folder lock is free for the next child process (closing the client alone keeps the server)."""
    store = QdrantStore("docs", path=str(path)) if kind == "qdrant" else MilvusStore("docs", path=str(path))
    try:
        yield store
    finally:
        store.close()
        if kind == "milvus":
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(str(path))


def titles(store, ids: list[str]) -> list[str]:
    if isinstance(store, QdrantStore):
        points = store.client.retrieve("docs", ids=[store.point_id(i) for i in ids], with_payload=True)
        got = {p.payload["doc_id"]: p.payload.get("title") for p in points}
    else:
        rows = store.client.query("docs", filter=f"doc_id in {json.dumps(ids)}", output_fields=["title"])
        got = {r["doc_id"]: r.get("title") for r in rows}
    return [got.get(i) for i in ids]


@pytest.fixture(scope="module")
def templates(fitted, tmp_path_factory):
    """One pristine store per backend (with payloads), copied for every scenario."""
    base = tmp_path_factory.mktemp("templates")
    out = {}
    for kind in ("qdrant", "milvus"):
        if any(importlib.util.find_spec(m) is None for m in CLIENTS[kind]):
            continue
        path = base / ("qdrant" if kind == "qdrant" else "milvus.db")
        cls = QdrantStore if kind == "qdrant" else MilvusStore
        payloads = [{"title": f"title of {i}"} for i in fitted["ids"]]
        cls.from_embeddings("docs", fitted["ids"], fitted["emb"], path, payloads=payloads).close()
        if kind == "milvus":
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(str(path))
        out[kind] = path
    return out


def fresh(template: Path, dest: Path) -> Path:
    (shutil.copytree if template.is_dir() else shutil.copy2)(template, dest)
    return dest


def classify(got: np.ndarray, fitted, methods: tuple[str, ...]) -> np.ndarray:
    """Per row: 0 = original, i + 1 = nudged by methods[i], -1 = anything else."""
    out = np.full(got.shape[0], -1)
    out[np.all(got == fitted["emb"], axis=1)] = 0
    for i, m in enumerate(methods):
        close = np.abs(got.astype(np.float64) - fitted["nudged"][m]).max(axis=1) <= 1e-6
        out[(out == -1) & close] = i + 1
    return out


def check_store(kind, path, fitted, methods, expected_titles) -> np.ndarray:
    with open_store(kind, path) as store:
        assert store.count() == len(fitted["ids"])
        got = store.fetch(fitted["ids"])
        assert titles(store, fitted["ids"]) == expected_titles  # payloads unchanged
    state = classify(got, fitted, methods)
    assert (state >= 0).all(), f"ids holding neither the original nor a nudged vector: {np.flatnonzero(state < 0)}"
    return state


def scenarios(kind: str) -> list[tuple[str, str]]:
    rng = random.Random(f"{SEED}-{kind}")
    apply_points = ["atomic-write:1", "apply-after-backup:1"] + [f"store-write:{k}" for k in range(1, CHUNKS + 1)]
    rollback_points = [f"store-write:{k}" for k in range(1, CHUNKS + 1)]
    return [(rng.choice(apply_points), rng.choice(rollback_points)) for _ in range(KILLS[kind])]


@pytest.mark.parametrize("kind", ["qdrant", "milvus"])
def test_apply_and_rollback_killed_at_random_points(kind, fitted, templates, tmp_path):
    need(kind)
    ids, work = fitted["ids"], fitted["work"]
    expected_titles = [f"title of {i}" for i in ids]
    moved = np.zeros(len(ids), bool)
    moved[fitted["models"]["M"].moved_] = True
    for n, (apply_at, rollback_at) in enumerate(scenarios(kind)):
        case = tmp_path / f"case{n}"
        case.mkdir()
        shutil.copy(work / "ids.json", case / "ids.json")
        shutil.copy(work / "model_M.npz", case / "model_M.npz")
        path = fresh(templates[kind], case / templates[kind].name)
        rc = run_child([str(WORKER), "apply", kind, str(path), str(case), "model_M.npz"], apply_at)
        assert rc == -signal.SIGKILL, f"{apply_at}: the child was not killed (exit {rc})"
        state = check_store(kind, path, fitted, ("M",), expected_titles)
        assert not state[~moved].any()  # only moved ids were touched
        with open_store(kind, path) as store:  # running the command again completes it
            apply_nudge_to_store(store, fitted["models"]["M"], ids, backup=case / "backup.npz")
        state = check_store(kind, path, fitted, ("M",), expected_titles)
        assert (state == moved.astype(int)).all()
        rc = run_child([str(WORKER), "rollback", kind, str(path), str(case), "model_M.npz"], rollback_at)
        assert rc == -signal.SIGKILL, f"{rollback_at}: the child was not killed (exit {rc})"
        check_store(kind, path, fitted, ("M",), expected_titles)
        with open_store(kind, path) as store:
            rollback_store(store, case / "backup.npz")
            np.testing.assert_array_equal(store.fetch(ids), fitted["emb"])  # exact


@pytest.mark.parametrize("kind", ["qdrant", "milvus"])
def test_switching_models_killed_midway(kind, fitted, templates, tmp_path):
    need(kind)
    ids, work = fitted["ids"], fitted["work"]
    expected_titles = [f"title of {i}" for i in ids]
    shutil.copy(work / "ids.json", tmp_path / "ids.json")
    shutil.copy(work / "model_N.npz", tmp_path / "model_N.npz")
    path = fresh(templates[kind], tmp_path / templates[kind].name)
    with open_store(kind, path) as store:
        apply_nudge_to_store(store, fitted["models"]["M"], ids, backup=tmp_path / "backup.npz")
    point = random.Random(f"{SEED}-{kind}-switch").choice([f"store-write:{k}" for k in range(2, CHUNKS)])
    assert run_child([str(WORKER), "apply", kind, str(path), str(tmp_path), "model_N.npz"], point) == -9
    state = check_store(kind, path, fitted, ("M", "N"), expected_titles)
    assert (state == 1).any() or (state == 2).any()
    with open_store(kind, path) as store:
        apply_nudge_to_store(store, fitted["models"]["N"], ids, backup=tmp_path / "backup.npz")
    moved_n = np.zeros(len(ids), bool)
    moved_n[fitted["models"]["N"].moved_] = True
    state = check_store(kind, path, fitted, ("N",), expected_titles)
    assert (state == moved_n.astype(int)).all()
    with open_store(kind, path) as store:
        rollback_store(store, tmp_path / "backup.npz")
        np.testing.assert_array_equal(store.fetch(ids), fitted["emb"])


# ------------------------------------------------------------------------------------------ runs
def week2_csv(path: Path) -> Path:
    """Next week's pairs of the CSV's product area (some passages new to the run)."""
    import csv

    t2 = load_tessera(2)
    rows = []
    for q in t2.dataset.query_ids:
        if t2.metadata["queries"][q]["area"] == "webhooks_limits":
            rows += [(t2.dataset.queries[q], t2.dataset.corpus[d]) for d in t2.dataset.relevant[q]]
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([("query", "document"), *rows[:60]])
    return path


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    assert main(["fit", str(PAIRS), "--out", str(out), "--embedder", "tessera", "--method", "M"]) == 0
    new = week2_csv(out.parent / "week2.csv")
    ref = shutil.copytree(out, out.parent / "reference")
    assert main(["update", str(ref), str(new)]) == 0
    state = NudgeState.load(ref / "state.npz")
    return {"run": out, "new": new, "pairs": (state.n_train_pairs, state.n_val_pairs), "gamma": state.gamma_}


def check_run(run: Path, base_run, n_updates: int) -> None:
    assert main(["evaluate", str(run)]) == 0  # the run's files agree with each other
    state = NudgeState.load(run / "state.npz")
    assert (state.n_train_pairs, state.n_val_pairs) == base_run["pairs"]  # each pair counted once
    assert state.gamma_ == base_run["gamma"]
    record = json.loads((run / "run.json").read_text())
    assert len(record["updates"]) == n_updates == len(state.history)
    assert not list(run.glob(".staging-*"))


def test_update_killed_at_random_points_counts_each_pair_once(base_run, tmp_path, capsys):
    rng = random.Random(f"{SEED}-update")
    before = ["update-before-commit:1"] + [f"atomic-write:{k}" for k in range(1, 7)]  # before the commit mark
    after = [f"commit-rename:{k}" for k in range(1, 7)]  # between the renames after it
    for n, point in enumerate(rng.sample(before, 2) + rng.sample(after, 2)):
        run = shutil.copytree(base_run["run"], tmp_path / f"run{n}")
        rc = run_child(["-m", "nudge", "update", str(run), str(base_run["new"])], point)
        assert rc == -signal.SIGKILL, f"{point}: the child was not killed (exit {rc})"
        again = main(["update", str(run), str(base_run["new"])])  # the natural re-run
        err = capsys.readouterr().err
        assert again == 0 or "already added to this run" in err, err
        check_run(run, base_run, 1)
        assert main(["update", str(run), str(base_run["new"])]) == 2  # and never twice
        capsys.readouterr()


def test_fit_into_an_existing_run_killed_leaves_one_whole_run(base_run, tmp_path, capsys):
    rng = random.Random(f"{SEED}-fit")
    before = ["fit-write:1"] + [f"atomic-write:{k}" for k in range(1, 7)]
    after = [f"commit-rename:{k}" for k in range(1, 6)]
    for n, point in enumerate(rng.sample(before, 1) + rng.sample(after, 2)):
        run = shutil.copytree(base_run["run"], tmp_path / f"run{n}")
        old_id = json.loads((run / "run.json").read_text())["run_id"]
        argv = ["-m", "nudge", "fit", str(PAIRS), "--out", str(run), "--embedder", "tessera", "--seed", "3"]
        rc = run_child(argv, point)
        assert rc == -signal.SIGKILL, f"{point}: the child was not killed (exit {rc})"
        assert main(["evaluate", str(run)]) == 0, capsys.readouterr().err  # whole: old or new
        run_id = json.loads((run / "run.json").read_text())["run_id"]
        split_seed = json.loads((run / "run.json").read_text())["seed"]
        assert (run_id == old_id and split_seed == 0) or (run_id != old_id and split_seed == 3)
        previous = sorted(tmp_path.glob(f"run{n}.previous-*"))
        for p in previous:  # the set-aside copy of the previous run is whole too
            assert json.loads((p / "run.json").read_text())["run_id"] == old_id
            assert main(["evaluate", str(p)]) == 0
        capsys.readouterr()
