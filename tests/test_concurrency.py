"""Two commands on one run at once: the run folder's lock makes the second wait, so no week is lost and
nothing is counted twice; two applies on one store end with the store exactly nudged."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nudge import NudgeState, load_embeddings
from nudge.production.cli import main
from nudge.teaching.bundled import data_dir, load_tessera

REPO = Path(__file__).resolve().parents[1]
PAIRS = data_dir() / "examples" / "support_pairs.csv"
REQUIRE = os.environ.get("NUDGE_REQUIRE_STORES") == "1"


def start(argv: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    env.pop("NUDGE_CRASH_AT", None)
    return subprocess.Popen(
        [sys.executable, "-m", "nudge", *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(procs: list[subprocess.Popen]) -> list[tuple[int, str]]:
    out = []
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert "Traceback" not in err, err
        out.append((p.returncode, err))
    return out


def write_week(path: Path, part: int) -> Path:
    """Half ``part`` (0 or 1) of next week's questions of the CSV's product area, as pairs."""
    t2 = load_tessera(2)
    qs = [q for q in t2.dataset.query_ids if t2.metadata["queries"][q]["area"] == "webhooks_limits"]
    rows = [(t2.dataset.queries[q], t2.dataset.corpus[d]) for q in qs[part::2] for d in t2.dataset.relevant[q]]
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([("query", "document"), *rows])
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("conc") / "run"
    assert main(["fit", str(PAIRS), "--out", str(out), "--embedder", "tessera", "--method", "M"]) == 0
    return out


def test_two_updates_at_once_both_count(run, tmp_path):
    a, b = write_week(tmp_path / "a.csv", 0), write_week(tmp_path / "b.csv", 1)
    ref = shutil.copytree(run, tmp_path / "ref")
    assert main(["update", str(ref), str(a)]) == 0 and main(["update", str(ref), str(b)]) == 0
    expected = NudgeState.load(ref / "state.npz")
    target = shutil.copytree(run, tmp_path / "run")
    results = finish([start(["update", str(target), str(a)]), start(["update", str(target), str(b)])])
    assert [rc for rc, _ in results] == [0, 0], results
    state = NudgeState.load(target / "state.npz")
    assert (state.n_train_pairs, state.n_val_pairs) == (expected.n_train_pairs, expected.n_val_pairs)
    assert len(json.loads((target / "run.json").read_text())["updates"]) == 2 == len(state.history)
    assert main(["evaluate", str(target)]) == 0


def test_the_same_update_twice_at_once_counts_once(run, tmp_path):
    a = write_week(tmp_path / "a.csv", 0)
    target = shutil.copytree(run, tmp_path / "run")
    results = finish([start(["update", str(target), str(a)]), start(["update", str(target), str(a)])])
    assert sorted(rc for rc, _ in results) == [0, 2], results
    assert "already added to this run" in max(results)[1]
    assert len(NudgeState.load(target / "state.npz").history) == 1


def test_two_applies_at_once_on_one_store(run, tmp_path):
    if importlib.util.find_spec("qdrant_client") is None:
        if REQUIRE:
            pytest.fail("qdrant-client is missing; NUDGE_REQUIRE_STORES=1 makes the store tests mandatory")
        pytest.skip("needs qdrant-client (the stores extra)")
    from nudge.production.stores import QdrantStore

    target = shutil.copytree(run, tmp_path / "run")
    where = ["--store", f"qdrant:{tmp_path / 'q'}", "--collection", "docs"]
    assert main(["load", str(target), *where]) == 0
    results = finish([start(["apply", str(target), *where]), start(["apply", str(target), *where])])
    assert [rc for rc, _ in results] == [0, 0], results
    nudged, ids = load_embeddings(target / "nudged_documents.npz")
    with QdrantStore("docs", path=str(tmp_path / "q")) as store:
        np.testing.assert_allclose(store.fetch(ids), nudged, rtol=0, atol=1e-6)
