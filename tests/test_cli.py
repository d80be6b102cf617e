"""The command line end to end: fit, evaluate, load / apply / rollback on real stores, update with
next week's pairs; help texts; one-line errors."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from nudge import Nudge, NudgeState, load_embeddings
from nudge.production.cli import build_parser, main, parse_store
from nudge.production.datasets import load_dataset
from nudge.teaching.bundled import data_dir, load_tessera, tessera_embedder

PAIRS = data_dir() / "examples" / "support_pairs.csv"
REQUIRE_STORES = os.environ.get("NUDGE_REQUIRE_STORES") == "1"
CLIENT_MODULES = {"qdrant": ["qdrant_client"], "milvus": ["pymilvus", "milvus_lite"]}
COMMANDS = ("fit", "evaluate", "load", "apply", "rollback", "update")


def need_client(backend: str) -> None:
    """Skip (or, under NUDGE_REQUIRE_STORES=1, fail) when the backend's client is not installed."""
    missing = [m for m in CLIENT_MODULES[backend] if importlib.util.find_spec(m) is None]
    if missing:
        message = f"the {backend} CLI tests need {', '.join(missing)} (the stores extra): pip install -e '.[stores]'"
        if REQUIRE_STORES:
            pytest.fail(f"{message}; NUDGE_REQUIRE_STORES=1 makes them mandatory")
        pytest.skip(message)


def one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"nudge {command}: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


# ------------------------------------------------------------------------------- runs and data
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["fit", str(PAIRS), "--out", str(out), "--embedder", "tessera", "--method", "M"]) == 0
    return out


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A small first week (70% held out), so some documents have no training question and stay put.
    (With 80% held out, moving helps no validation question: by the gamma = 0 rule nothing moves.)"""
    out = tmp_path_factory.mktemp("cli") / "small"
    argv = ["fit", str(PAIRS), "--out", str(out), "--embedder", "tessera", "--method", "M", "--test-fraction", "0.7"]
    assert main(argv) == 0
    return out


def copy_run(run, tmp_path):
    return shutil.copytree(run, tmp_path / "run")


def week2_rows(known: bool) -> list[tuple[str, str]]:
    """(question, passage) pairs of next week's questions of the CSV's product area, whose passages
    are all in the CSV's corpus (``known``) or not all (some are new to the run)."""
    t2 = load_tessera(2)
    corpus = set(load_dataset(PAIRS)[0].corpus.values())
    rows = []
    for q in t2.dataset.query_ids:
        if t2.metadata["queries"][q]["area"] != "webhooks_limits":
            continue
        docs = [t2.dataset.corpus[d] for d in t2.dataset.relevant[q]]
        if all(d in corpus for d in docs) == known:
            rows += [(t2.dataset.queries[q], d) for d in docs]
    return rows


def write_pairs(path, rows) -> str:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["query", "document"])
        writer.writerows(rows)
    return str(path)


@pytest.fixture(scope="module")
def week2_csv(tmp_path_factory):
    rows = week2_rows(known=True)
    assert len({q for q, _ in rows}) >= 10
    return write_pairs(tmp_path_factory.mktemp("week2") / "week2.csv", rows)


# ------------------------------------------------------------------------------- fit and evaluate
def test_fit_writes_consistent_artefacts(run_dir, capsys):
    run = json.loads((run_dir / "run.json").read_text())
    assert {len(run["split"][p]) for p in ("train", "val", "test")} == {162, 40, 50}
    assert run["embedder_option"] == "tessera" and run["updates"] == []
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


# ------------------------------------------------------------------------------- stores
class Stores:
    """Reads a collection the CLI wrote, closing the client again (Qdrant's local mode locks its folder)."""

    def __init__(self, backend: str, tmp_path) -> None:
        self.backend = backend
        self.location = tmp_path / ("qdrant" if backend == "qdrant" else "milvus.db")
        self.spec = f"{backend}:{self.location}"

    def vectors(self, ids, collection: str = "docs") -> np.ndarray:
        from nudge.production.stores import MilvusStore, QdrantStore

        if self.backend == "qdrant":
            with QdrantStore(collection, path=str(self.location)) as store:
                return store.fetch(ids)
        from pymilvus import MilvusClient

        client = MilvusClient(str(self.location))
        try:
            client.load_collection(collection)
            return MilvusStore(collection, client=client).fetch(ids)
        finally:
            client.close()


@pytest.mark.parametrize("backend", ["qdrant", "milvus"])
def test_load_apply_rollback_and_apply_after_update(backend, small_run, week2_csv, tmp_path, capsys):
    need_client(backend)
    run = copy_run(small_run, tmp_path)
    stores = Stores(backend, tmp_path)
    where = ["--store", stores.spec, "--collection", "docs"]
    docs, ids = load_embeddings(run / "documents.npz")
    model = Nudge.load(run / "nudge_model.npz", embeddings=docs)
    moved = sorted(ids[i] for i in model.moved_)
    assert 0 < len(moved) < len(ids)  # some documents stay put

    assert main(["load", str(run), *where]) == 0
    assert f"loaded {len(ids)} vectors" in capsys.readouterr().out
    np.testing.assert_array_equal(stores.vectors(ids), docs)

    assert main(["apply", str(run), *where, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"would write {len(moved)} vectors" in out and "nothing was written" in out
    np.testing.assert_array_equal(stores.vectors(ids), docs)
    assert not (run / "store_backup.npz").exists()

    assert main(["apply", str(run), *where]) == 0
    out = capsys.readouterr().out
    assert f"wrote {len(moved)} vectors ({len(moved)} moved" in out and "max displacement" in out
    after = stores.vectors(ids)
    changed = sorted(ids[i] for i in np.flatnonzero(np.any(after != docs, axis=1)))
    assert changed == moved  # only the moved ids were written
    nudged, nudged_ids = load_embeddings(run / "nudged_documents.npz")
    assert nudged_ids == ids
    np.testing.assert_allclose(after, nudged, rtol=0, atol=1e-6)
    assert (run / "store_backup.npz").is_file()

    assert main(["apply", str(run), *where]) == 0  # idempotent
    assert "wrote 0 vectors" in capsys.readouterr().out
    np.testing.assert_array_equal(stores.vectors(ids), after)

    assert main(["update", str(run), week2_csv]) == 0  # same corpus: the backup stays valid
    capsys.readouterr()
    new = Nudge.load(run / "nudge_model.npz", embeddings=docs)
    assert main(["apply", str(run), *where]) == 0
    assert "apply: NUDGE-M" in capsys.readouterr().out
    nudged, _ = load_embeddings(run / "nudged_documents.npz")
    np.testing.assert_allclose(stores.vectors(ids), nudged, rtol=0, atol=1e-6)
    untouched = np.setdiff1d(np.arange(len(ids)), new.moved_)
    np.testing.assert_array_equal(stores.vectors(ids)[untouched], docs[untouched])

    assert main(["rollback", str(run), *where]) == 0
    assert "rollback:" in capsys.readouterr().out
    np.testing.assert_array_equal(stores.vectors(ids), docs)


def test_load_never_removes_a_backup_and_advises_nothing_that_loses_data(small_run, tmp_path, capsys):
    need_client("qdrant")
    run = copy_run(small_run, tmp_path)
    stores = Stores("qdrant", tmp_path)
    where = ["--store", stores.spec, "--collection", "docs"]
    docs, ids = load_embeddings(run / "documents.npz")
    assert main(["load", str(run), *where]) == 0
    assert main(["apply", str(run), *where]) == 0
    backup = (run / "store_backup.npz").read_bytes()
    capsys.readouterr()
    assert main(["load", str(run), *where]) == 2
    err = capsys.readouterr().err
    assert "exists already" in err and "--add-missing" in err and "payloads too" in err
    # a scratch store with the same collection name: the real store's backup is not touched
    scratch = ["--store", f"qdrant:{tmp_path / 'scratch'}", "--collection", "docs"]
    assert main(["load", str(run), *scratch]) == 0
    assert main(["load", str(run), *scratch, "--replace"]) == 0
    assert main(["apply", str(run), *scratch]) == 2  # the backup belongs to the other store: refused, kept
    assert "belongs to the qdrant store at qdrant:" in capsys.readouterr().err
    assert (run / "store_backup.npz").read_bytes() == backup
    assert main(["rollback", str(run), *where]) == 0
    np.testing.assert_array_equal(stores.vectors(ids), docs)


def test_after_an_update_adds_documents_load_add_missing_keeps_payloads(small_run, tmp_path, capsys):
    need_client("qdrant")
    from nudge.production.stores import QdrantStore

    run = copy_run(small_run, tmp_path)
    stores = Stores("qdrant", tmp_path)
    where = ["--store", stores.spec, "--collection", "docs"]
    assert main(["load", str(run), *where]) == 0
    _, first_ids = load_embeddings(run / "documents.npz")
    with QdrantStore("docs", path=str(stores.location)) as store:  # a payload the CLI knows nothing about
        store.client.set_payload("docs", {"title": "kept"}, points=[store.point_id(i) for i in first_ids])
    assert main(["apply", str(run), *where]) == 0
    rows = week2_rows(known=False)[:30]
    assert main(["update", str(run), write_pairs(tmp_path / "new.csv", rows)]) == 0
    out = capsys.readouterr().out
    assert "--add-missing" in out and "--replace" not in out
    assert main(["apply", str(run), *where]) == 2
    assert "--add-missing" in capsys.readouterr().err
    assert main(["load", str(run), *where, "--add-missing"]) == 0
    assert "added" in capsys.readouterr().out
    assert main(["apply", str(run), *where]) == 0
    _, ids = load_embeddings(run / "documents.npz")
    nudged, _ = load_embeddings(run / "nudged_documents.npz")
    np.testing.assert_allclose(stores.vectors(ids), nudged, rtol=0, atol=1e-6)
    with QdrantStore("docs", path=str(stores.location)) as store:
        points = store.client.retrieve("docs", ids=[store.point_id(i) for i in first_ids], with_payload=True)
        assert all(p.payload.get("title") == "kept" for p in points) and len(points) == len(first_ids)


# ------------------------------------------------------------------------------- update
def run_pairs(run, run_json):
    """The run's own training and validation pairs (query vectors, answer ids)."""
    base = load_dataset(run_json["data"])[0]
    queries, qids = load_embeddings(run / "queries.npz")
    row = {q: i for i, q in enumerate(qids)}
    return {
        part: (
            queries[[row[q] for q in run_json["split"][part]]],
            [list(base.relevant[q]) for q in run_json["split"][part]],
        )
        for part in ("train", "val")
    }


def new_pairs(path, update, texts_to_ids):
    """The pairs of an update file, split as the update recorded, answers as run ids."""
    new = load_dataset(path)[0]
    emb = tessera_embedder()
    out = {}
    for part in ("train", "val"):
        q = update[part]
        vectors = emb.embed_queries([new.queries[i] for i in q])
        out[part] = (vectors, [[texts_to_ids[new.corpus[d]] for d in new.relevant[i]] for i in q])
    return out


def test_update_equals_a_fresh_state_fed_all_pairs_at_once(run_dir, week2_csv, tmp_path, capsys):
    run = copy_run(run_dir, tmp_path)
    before = json.loads((run / "run.json").read_text())
    docs, ids = load_embeddings(run / "documents.npz")
    old_nudged, _ = load_embeddings(run / "nudged_documents.npz")
    old_model = Nudge.load(run / "nudge_model.npz", embeddings=docs)

    assert main(["update", str(run), week2_csv, "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "new labelled questions" in out and "0 new documents" in out
    assert f"gamma {old_model.gamma_:.4g} -> " in out and "validation score" in out and "on 40 questions" in out

    after = json.loads((run / "run.json").read_text())
    (update,) = after["updates"]
    assert after["split"] == before["split"] and update["seed"] == 3 and update["added_documents"] == []
    assert not set(update["train"]) & set(update["val"])
    docs_after, ids_after = load_embeddings(run / "documents.npz")
    assert ids_after == ids
    np.testing.assert_array_equal(docs_after, docs)  # always the ORIGINAL vectors
    nudged, nudged_ids = load_embeddings(run / "nudged_documents.npz")
    assert nudged_ids == ids and not np.array_equal(nudged, old_nudged)
    model = Nudge.load(run / "nudge_model.npz", embeddings=docs)
    np.testing.assert_array_equal(model.transform(docs), nudged)
    state = NudgeState.load(run / "state.npz")
    assert state.gamma_ == model.gamma_ == update["gamma"]

    base = load_dataset(before["data"])[0]
    texts_to_ids = {t: d for d, t in base.corpus.items()}
    mine, theirs = run_pairs(run, before), new_pairs(week2_csv, update, texts_to_ids)
    fresh = NudgeState("M", k=1)
    fresh.add_pairs(
        train=(np.concatenate([mine["train"][0], theirs["train"][0]]), mine["train"][1] + theirs["train"][1]),
        val=(np.concatenate([mine["val"][0], theirs["val"][0]]), mine["val"][1] + theirs["val"][1]),
    )
    fresh.fit_gamma(docs, ids)
    assert fresh.gamma_ == state.gamma_ and fresh.val_score_ == state.val_score_
    assert state.n_val_queries == len(before["split"]["val"]) + len(update["val"])
    for a, b in zip(fresh.query_sums(), state.query_sums(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(fresh.apply(docs, ids), nudged)

    assert main(["update", str(run), week2_csv]) == 2  # the same pairs twice would count twice
    assert "already added" in one_line_error(capsys, "update")
    assert main(["evaluate", str(run)]) == 0


def test_update_appends_new_documents(run_dir, tmp_path, capsys):
    run = copy_run(run_dir, tmp_path)
    docs, ids = load_embeddings(run / "documents.npz")
    rows = week2_rows(known=False)
    csv_path = write_pairs(tmp_path / "new.csv", rows)
    new = load_dataset(csv_path)[0]
    old_texts = set(load_dataset(PAIRS)[0].corpus.values())
    unseen = [d for d, t in new.corpus.items() if t not in old_texts]
    assert unseen

    assert main(["update", str(run), csv_path]) == 0
    assert f"{len(unseen)} new documents" in capsys.readouterr().out
    grown, grown_ids = load_embeddings(run / "documents.npz")
    assert grown_ids == ids + [f"update1-{d}" for d in unseen]
    np.testing.assert_array_equal(grown[: len(ids)], docs)
    np.testing.assert_array_equal(
        grown[len(ids) :], tessera_embedder().embed_documents([new.corpus[d] for d in unseen])
    )
    added = json.loads((run / "added_documents.json").read_text())
    assert added == {f"update1-{d}": new.corpus[d] for d in unseen}
    model = Nudge.load(run / "nudge_model.npz", embeddings=grown)
    nudged, nudged_ids = load_embeddings(run / "nudged_documents.npz")
    assert nudged_ids == grown_ids
    np.testing.assert_array_equal(model.transform(grown), nudged)
    assert main(["evaluate", str(run)]) == 0


# ------------------------------------------------------------------------------- help and errors
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_explains_itself(command, capsys):
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: nudge {command}")
    expected = {
        "fit": ["--out", "--embedder", "--method"],
        "evaluate": ["--k", "--show"],
        "load": ["--store", "--collection", "--replace", "qdrant:FOLDER", "milvus:FILE.db"],
        "apply": ["--store", "--collection", "--dry-run", "--backup", "rollback"],
        "rollback": ["--store", "--collection", "--backup"],
        "update": ["NEW_PAIRS", "--val-fraction", "--seed", "gamma", "ORIGINAL"],
    }[command]
    assert all(word in out for word in expected), out


def test_help_and_version_from_the_module_entry_point():
    done = subprocess.run([sys.executable, "-m", "nudge", "--help"], capture_output=True, text=True, check=True)
    assert "usage: nudge" in done.stdout and all(c in done.stdout for c in COMMANDS)
    done = subprocess.run([sys.executable, "-m", "nudge", "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("nudge ")
    bad = subprocess.run([sys.executable, "-m", "nudge", "frobnicate"], capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


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
        (["fit", str(PAIRS), "--out", "x", "--embedder", "tessera", "--val-fraction", "2"], "--val-fraction must lie"),
        (["evaluate", "nowhere"], "run folder 'nowhere' does not exist"),
        (["load", "nowhere", "--store", "qdrant:q", "--collection", "c"], "run folder 'nowhere' does not exist"),
        (["apply", "nowhere", "--store", "qdrant:q", "--collection", "c"], "run folder 'nowhere' does not exist"),
        (["rollback", "nowhere", "--store", "qdrant:q", "--collection", "c"], "run folder 'nowhere' does not exist"),
        (["update", "nowhere", str(PAIRS)], "run folder 'nowhere' does not exist"),
    ],
)
def test_errors_are_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = one_line_error(capsys, argv[0])
    assert message in err


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("bogus", "--store must be qdrant:FOLDER, qdrant+http://HOST:PORT, milvus:FILE.db or milvus+http://HOST:PORT"),
        ("qdrant:", "--store 'qdrant:' names no local FOLDER"),
        ("milvus:store", "--store 'milvus:store': Milvus Lite needs a file ending in .db"),
        ("milvus+ftp://host", "--store 'milvus+ftp://host': a milvus server is given as milvus+http://HOST:PORT"),
        ("qdrant+http://", "a qdrant server is given as"),
        ("faiss:index", "--store must be"),
    ],
)
def test_a_bad_store_is_named(spec, message, run_dir, capsys):
    with pytest.raises(ValueError, match="--store"):
        parse_store(spec)
    for command in ("load", "apply", "rollback"):
        assert main([command, str(run_dir), "--store", spec, "--collection", "docs"]) == 2
        assert message in one_line_error(capsys, command)


def test_store_specs_parse():
    assert parse_store("qdrant:some/folder").path.name == "folder"
    assert parse_store("qdrant+http://localhost:6333").url == "http://localhost:6333"
    spec = parse_store("milvus:store.db")
    assert (spec.kind, spec.path.name, spec.url) == ("milvus", "store.db", None)
    assert parse_store("milvus+https://example.org:19530").url == "https://example.org:19530"


def test_missing_files_and_stores_are_one_line_errors(run_dir, tmp_path, capsys):
    need_client("qdrant")
    run = copy_run(run_dir, tmp_path)
    store = ["--store", f"qdrant:{tmp_path / 'q'}", "--collection", "docs"]
    assert main(["apply", str(run), *store]) == 2  # no such local store yet
    assert "does not exist; load the run's vectors with `nudge load`" in one_line_error(capsys, "apply")
    assert main(["load", str(run), *store]) == 0
    assert main(["apply", str(run), "--store", store[1], "--collection", "other"]) == 2
    assert "collection 'other' does not exist" in one_line_error(capsys, "apply")
    assert main(["rollback", str(run), *store]) == 2
    assert "store_backup.npz' does not exist" in one_line_error(capsys, "rollback")
    assert main(["update", str(run), str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv' does not exist" in one_line_error(capsys, "update")
    (run / "documents.npz").unlink()
    for argv in (["evaluate", str(run)], ["apply", str(run), *store], ["update", str(run), str(PAIRS)]):
        assert main(argv) == 2
        assert "has no documents.npz" in one_line_error(capsys, argv[0])
    (run / "run.json").write_text("{not json")
    assert main(["evaluate", str(run)]) == 2
    assert "is not valid JSON" in one_line_error(capsys, "evaluate")
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "is not a run folder" in one_line_error(capsys, "evaluate")


def test_update_needs_two_questions(run_dir, tmp_path, capsys):
    run = copy_run(run_dir, tmp_path)
    path = write_pairs(tmp_path / "one.csv", week2_rows(known=True)[:1])
    assert main(["update", str(run), path]) == 2
    assert "at least 2 are needed" in one_line_error(capsys, "update")
    assert not (run / "state.npz").exists()
