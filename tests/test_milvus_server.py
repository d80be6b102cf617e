"""The store path against a running Milvus standalone server (not Milvus Lite): issue 12.

The same tests as ``test_stores.py`` (apply only the moved rows, backup, idempotence, rollback,
metric refusal) and ``test_remote.py`` (fit from the store without loading the corpus) run here on
a collection of a real server, through ``MilvusStore(uri=...)``; the CLI's load / apply / rollback
/ update cycle runs against ``milvus+http://...``; and the server is SIGKILLed in the middle of an
apply, restarted, and the apply re-run and rolled back.

The server comes from ``tools/milvus_server.py``, which sets ``NUDGE_MILVUS_URI`` (and
``NUDGE_MILVUS_DIR``, its data folder, which the restart test needs) for the command it runs::

    python tools/milvus_server.py run --isolated -- python -m pytest tests/test_milvus_server.py

(``make test-milvus``). Without a server these tests skip, naming that command; CI sets
``NUDGE_REQUIRE_MILVUS_SERVER=1``, which makes them fail instead. Collections are made with
random names and dropped afterwards; any Milvus 2.3+ server works (``NUDGE_MILVUS_URI``), only
the restart test needs the local one.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

# The behaviours, exactly as the embedded stores are tested: their modules' tests run here again,
# on the server backend below (tests/ is on sys.path, as pytest imports these modules itself).
import test_cli as cli_tests
import test_remote as remote_tests
import test_stores as stores_tests
from test_cli import small_run, week2_csv  # noqa: F401 (fixtures of the CLI runs)

from nudge import Nudge, load_embeddings
from nudge.production.cli import main
from nudge.teaching.bundled import load_tessera
from tools import milvus_server

REPO = Path(__file__).resolve().parents[1]
REQUIRE = os.environ.get("NUDGE_REQUIRE_MILVUS_SERVER") == "1"
URI = os.environ.get("NUDGE_MILVUS_URI", "")
SERVER_DIR = os.environ.get("NUDGE_MILVUS_DIR", "")
START = (
    "python tools/milvus_server.py run --isolated -- python -m pytest tests/test_milvus_server.py (make test-milvus)"
)
FIRST_CALL_S = 90  # the first request after a (re)start can take 20-30 s


def need_server() -> str:
    """The server's URI; skip (or, under NUDGE_REQUIRE_MILVUS_SERVER=1, fail) when none is given."""
    missing = [m for m in ("pymilvus",) if importlib.util.find_spec(m) is None]
    if missing:
        message = "the Milvus server tests need pymilvus: pip install -e '.[stores]'"
    elif not URI:
        message = f"no Milvus server (NUDGE_MILVUS_URI is not set); start one and run these tests with: {START}"
    else:
        return URI
    if REQUIRE:
        pytest.fail(f"{message}; NUDGE_REQUIRE_MILVUS_SERVER=1 makes them mandatory")
    pytest.skip(message)


@contextlib.contextmanager
def deadline(seconds: int, what: str):
    """Fail (instead of hanging) when ``what`` takes longer than ``seconds``."""

    def expired(*_):
        raise TimeoutError(f"{what} took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ------------------------------------------------------------------------------- the server backend
class ServerBackend(stores_tests.Backend):
    """``test_stores.Backend`` on a Milvus server: collections with random names, dropped at the end."""

    def __init__(self, uri: str) -> None:
        from pymilvus import MilvusClient

        self.name, self._corpus, self.made = "milvus", {}, []
        with deadline(FIRST_CALL_S, f"the first request to the Milvus server at {uri}"):
            self.client = MilvusClient(uri=uri)
            self.client.list_collections()

    def make(self, ids, vectors, metric: str = "dot", payloads=None):
        store = super().make(ids, vectors, metric, payloads)
        self.made.append(store.collection)
        return store

    def reconnect(self) -> None:
        """A new client (after the server was restarted under the old one)."""
        from pymilvus import MilvusClient

        with contextlib.suppress(Exception):
            self.client.close()
        self.client = MilvusClient(uri=URI)

    def close(self) -> None:
        for name in self.made:
            with contextlib.suppress(Exception):  # the server may have been restarted: best effort
                self.client.drop_collection(name)
        self.client.close()


@pytest.fixture(scope="module")
def backend():
    b = ServerBackend(need_server())
    yield b
    b.close()


@pytest.fixture(scope="module")
def data():
    """The bundled corpus and questions, with the keys ``test_stores`` and ``test_remote`` use."""
    t = load_tessera()
    ids = list(t.doc_ids)
    train, val = t.query_set("train"), t.query_set("val")
    return {
        "ids": ids,
        "emb": t.doc_embeddings,
        "train": train,
        "val": val,
        "test": t.query_set("test"),
        "titles": [t.metadata["documents"][d]["title"] for d in ids],
        "train_ids": remote_tests.id_pairs(train, ids),
        "val_ids": remote_tests.id_pairs(val, ids),
    }


@pytest.fixture(scope="module")
def models(data):
    """``test_stores``'s models (by method) and ``test_remote``'s (by method and k)."""
    fitted = {(m, k): Nudge(m, k=k).fit(data["emb"], data["train"], data["val"]) for m, k in remote_tests.CASES}
    return {**fitted, "M": fitted[("M", 1)], "N": fitted[("N", 1)]}


# ------------------------------------------------------------------------------- the store adapter
test_stores_follow_the_interface = stores_tests.test_stores_follow_the_interface
test_missing_ids_are_named = stores_tests.test_missing_ids_are_named
test_nothing_is_lost = stores_tests.test_nothing_is_lost  # only moved rows, idempotent, rollback exact
test_reapplying_another_nudge = stores_tests.test_reapplying_another_nudge_restores_what_it_no_longer_moves
test_nudge_m_is_refused_unless_scored_by_ip = stores_tests.test_nudge_m_is_refused_unless_scored_by_inner_product
test_nudge_n_is_fine_with_a_cosine_collection = stores_tests.test_nudge_n_is_fine_with_a_cosine_collection
test_dry_run_writes_nothing = stores_tests.test_dry_run_writes_nothing
test_backup_is_written_before_the_store_changes = (
    stores_tests.test_backup_is_written_atomically_before_the_store_changes
)
test_ids_with_awkward_characters_round_trip = stores_tests.test_ids_with_awkward_characters_round_trip

# ------------------------------------------------------------------------------- fit from the store
test_fit_gives_the_in_memory_gamma_and_vectors = remote_tests.test_same_gamma_and_vectors_as_the_in_memory_fit
test_apply_and_rollback_a_store_fit = remote_tests.test_the_usual_apply_and_rollback_work_with_a_store_fit
test_fit_refuses_nudge_m_unless_scored_by_ip = (
    remote_tests.test_nudge_m_is_refused_unless_the_store_scores_by_inner_product
)
test_fit_nudge_n_with_cosine_and_l2 = remote_tests.test_nudge_n_is_fine_with_cosine_and_l2_stores
test_fit_names_missing_documents = remote_tests.test_missing_documents_are_named
test_fit_again_after_an_apply = remote_tests.test_fitting_again_after_an_apply_reads_the_originals_from_the_backup
test_second_nudge_after_an_apply = remote_tests.test_a_second_nudge_after_an_apply_equals_the_in_memory_one


# ------------------------------------------------------------------------------- the command line
def new_collection(backend) -> str:
    name = f"cli_{uuid.uuid4().hex[:12]}"
    backend.made.append(name)
    return name


def server_vectors(backend, collection: str, ids) -> np.ndarray:
    from nudge.production.stores import MilvusStore

    return MilvusStore(collection, client=backend.client).fetch(ids)


def test_cli_load_apply_rollback_and_apply_after_update(backend, small_run, week2_csv, tmp_path, capsys):  # noqa: F811
    run = cli_tests.copy_run(small_run, tmp_path)
    name = new_collection(backend)
    where = ["--store", f"milvus+{URI}", "--collection", name]
    docs, ids = load_embeddings(run / "documents.npz")
    moved = sorted(ids[i] for i in Nudge.load(run / "nudge_model.npz", embeddings=docs).moved_)
    assert 0 < len(moved) < len(ids)

    assert main(["load", str(run), *where]) == 0
    assert f"loaded {len(ids)} vectors" in capsys.readouterr().out
    np.testing.assert_array_equal(server_vectors(backend, name, ids), docs)
    assert main(["load", str(run), *where]) == 2  # an existing collection is not overwritten
    assert "exists already" in capsys.readouterr().err

    assert main(["apply", str(run), *where, "--dry-run"]) == 0
    assert f"would write {len(moved)} vectors" in capsys.readouterr().out
    np.testing.assert_array_equal(server_vectors(backend, name, ids), docs)

    assert main(["apply", str(run), *where]) == 0
    assert f"wrote {len(moved)} vectors ({len(moved)} moved" in capsys.readouterr().out
    after = server_vectors(backend, name, ids)
    assert sorted(ids[i] for i in np.flatnonzero(np.any(after != docs, axis=1))) == moved  # only moved rows
    nudged, _ = load_embeddings(run / "nudged_documents.npz")
    np.testing.assert_allclose(after, nudged, rtol=0, atol=1e-6)

    assert main(["apply", str(run), *where]) == 0  # idempotent
    assert "wrote 0 vectors" in capsys.readouterr().out

    assert main(["update", str(run), week2_csv]) == 0
    capsys.readouterr()
    new = Nudge.load(run / "nudge_model.npz", embeddings=docs)
    assert main(["apply", str(run), *where]) == 0
    capsys.readouterr()
    nudged, _ = load_embeddings(run / "nudged_documents.npz")
    got = server_vectors(backend, name, ids)
    np.testing.assert_allclose(got, nudged, rtol=0, atol=1e-6)
    untouched = np.setdiff1d(np.arange(len(ids)), new.moved_)
    np.testing.assert_array_equal(got[untouched], docs[untouched])

    assert main(["rollback", str(run), *where]) == 0
    assert "rollback:" in capsys.readouterr().out
    np.testing.assert_array_equal(server_vectors(backend, name, ids), docs)


# ------------------------------------------------------------------------------- the start/stop script
def test_stop_kills_what_ignores_sigterm_and_leaves_other_processes_alone(tmp_path):
    """Bounded stop: SIGTERM, then SIGKILL after the timeout; a record of a dead or reused pid is dropped."""
    ignores_term = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(60)"
    )
    stubborn = subprocess.Popen([sys.executable, "-c", ignores_term], stdout=subprocess.PIPE, start_new_session=True)
    assert stubborn.stdout.readline() == b"1\n"  # SIGTERM is ignored from here on
    try:
        ticks = milvus_server._stat(stubborn.pid)[1]
        record = {
            "pid": stubborn.pid,
            "start_ticks": ticks,
            "data_dir": str(tmp_path),
            "port": 1,
            "metrics_port": 2,
            "ports": {},
            "netns": "",
            "all_interfaces": False,
        }
        (tmp_path / "server.json").write_text(json.dumps({**record, "start_ticks": ticks + 1}))
        assert milvus_server.status(tmp_path) is None  # same pid, another process: not ours
        assert "no Milvus server runs" in milvus_server.stop(tmp_path, timeout=0.5)
        assert stubborn.poll() is None and not (tmp_path / "server.json").exists()

        (tmp_path / "server.json").write_text(json.dumps(record))
        assert milvus_server.status(tmp_path).pid == stubborn.pid
        began = time.monotonic()
        said = milvus_server.stop(tmp_path, timeout=1)
        assert "killed (no exit within 1 s of SIGTERM)" in said and time.monotonic() - began < 5
        assert milvus_server._stat(stubborn.pid) is None and not (tmp_path / "server.json").exists()  # killed, reaped
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(stubborn.pid, signal.SIGKILL)


def test_start_refuses_busy_ports_and_an_exposed_network(tmp_path, monkeypatch):
    if importlib.util.find_spec("milvus") is None:
        pytest.skip(f"needs the Milvus server package: {milvus_server.INSTALL_HINT}")
    with milvus_server.socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        monkeypatch.setattr(milvus_server, "external_interfaces", lambda: [])
        with pytest.raises(milvus_server.ServerError, match=rf"port\(s\) in use: .*proxy_port {port}\b"):
            milvus_server.start(tmp_path, port=port)
    monkeypatch.setattr(milvus_server, "external_interfaces", lambda: ["eth0"])
    with pytest.raises(
        milvus_server.ServerError, match=r"listens on ALL network interfaces .* eth0.* --all-interfaces"
    ):
        milvus_server.start(tmp_path)
    assert not (tmp_path / "server.json").exists()


def test_a_start_that_is_not_ready_in_time_stops_what_it_started(tmp_path):
    """``run --isolated --timeout 1``: not ready in 1 s, the server is killed, nothing is left running."""
    need_server()
    if not SERVER_DIR:
        pytest.skip(f"needs the local server's binaries (NUDGE_MILVUS_DIR): {START}")
    (tmp_path / "bin").symlink_to(Path(SERVER_DIR) / "bin")  # the unpacked binaries, not another 250 MB
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUDGE_MILVUS", "_NUDGE_MILVUS"))}
    argv = ["run", "--isolated", "--dir", str(tmp_path), "--timeout", "1", "--", "true"]
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(REPO / "tools" / "milvus_server.py"), *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done
    assert "was not ready within 1 s and was stopped" in done.stderr
    assert time.monotonic() - began < 60
    assert milvus_server.status(tmp_path) is None
    ours = [p for p in Path("/proc").glob("[0-9]*") if _cmdline(p).startswith(str(tmp_path))]
    assert ours == []


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


# ------------------------------------------------------------------------------- the server dies
def test_server_killed_during_an_apply_then_restarted(backend, small_run, tmp_path, capsys, monkeypatch):  # noqa: F811
    """SIGKILL to the server half way through writing the moved vectors (the client lives on): the
    apply stops with one line; after a restart a re-run completes, rollback is exact, nothing is lost.
    (Last in the module: it restarts the server under the other tests' shared client.)"""
    if not SERVER_DIR:
        message = f"the restart test needs the local server of tools/milvus_server.py (NUDGE_MILVUS_DIR): {START}"
        if REQUIRE:
            pytest.fail(message)
        pytest.skip(message)
    import pymilvus

    info = milvus_server.status(SERVER_DIR)
    assert info is not None, f"no server recorded in {SERVER_DIR}"
    run = cli_tests.copy_run(small_run, tmp_path)
    name = new_collection(backend)
    where = ["--store", f"milvus+{URI}", "--collection", name]
    docs, ids = load_embeddings(run / "documents.npz")
    assert main(["load", str(run), *where]) == 0
    capsys.readouterr()

    real_upsert, killed = pymilvus.MilvusClient.upsert, []

    def half_then_kill(self, collection_name, data, *args, **kwargs):
        half = len(data) // 2
        real_upsert(self, collection_name, data[:half], *args, **kwargs)
        os.kill(info.pid, signal.SIGKILL)
        assert milvus_server._wait_gone(info.pid, info.start_ticks, 10)
        killed.append(half)
        return real_upsert(self, collection_name, data[half:], *args, **kwargs)

    monkeypatch.setattr(pymilvus.MilvusClient, "upsert", half_then_kill)
    with deadline(120, "the apply against a killed server"):
        assert main(["apply", str(run), *where]) == 2
    monkeypatch.undo()
    err = cli_tests.one_line_error(capsys, "apply")
    assert killed and "writing to the store failed" in err and "run the same command again" in err, err
    assert (run / "store_backup.npz").is_file()  # written before the store changed

    restarted = milvus_server.start(
        SERVER_DIR, port=info.port, metrics_port=info.metrics_port, all_interfaces=info.all_interfaces
    )
    assert restarted.pid != info.pid
    backend.reconnect()
    with deadline(FIRST_CALL_S + 60, "the apply re-run after the restart"):
        assert main(["apply", str(run), *where]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out
    nudged, _ = load_embeddings(run / "nudged_documents.npz")
    after = server_vectors(backend, name, ids)
    np.testing.assert_allclose(after, nudged, rtol=0, atol=1e-6)
    from nudge.production.stores import MilvusStore

    store = MilvusStore(name, client=backend.client)
    assert store.count() == len(ids) and sorted(store.ids()) == sorted(ids)  # nothing lost, nothing doubled

    assert main(["rollback", str(run), *where]) == 0
    np.testing.assert_array_equal(server_vectors(backend, name, ids), docs)
    assert store.count() == len(ids)
