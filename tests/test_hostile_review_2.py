"""Regression tests for the third hostile review of the store/update paths (docs/reliability.md):
each test replays one finding of the tester's report as they ran it."""

from __future__ import annotations

import json
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


# ------------------------------------------------------- 2: a missing state.npz after recorded updates
WEEK2 = data_dir() / "tessera" / "tessera_week2.json"
NEVER = data_dir() / "tessera" / "tessera_never_asked.json"


def test_a_missing_state_after_updates_is_refused(run, capsys):
    assert main(["update", str(run), str(WEEK2), *TESSERA]) == 0
    before = (run / "run.json").read_text()
    (run / "state.npz").unlink()
    capsys.readouterr()
    assert main(["update", str(run), str(NEVER), *TESSERA]) == 2
    err = one_line(capsys, "update")
    assert "state.npz" in err and "update" in err
    assert (run / "run.json").read_text() == before and not (run / "state.npz").exists()


# ------------------------------------------------------- 3: data_sha256 is required
@pytest.mark.parametrize("edit", [lambda r: r.update(data_sha256=None), lambda r: r.pop("data_sha256")])
def test_run_json_without_data_sha256_is_refused(edit, run, capsys):
    record = json.loads((run / "run.json").read_text())
    edit(record)
    (run / "run.json").write_text(json.dumps(record))
    for argv in (["evaluate", str(run)], ["update", str(run), str(WEEK2), *TESSERA]):
        assert main(argv) == 2
        err = one_line(capsys, argv[0])
        assert "run.json" in err and "data_sha256" in err, err


# ------------------------------------------------------- 4: a known question keeps its split
def test_a_question_already_in_the_run_keeps_its_split(run, tmp_path, capsys):
    import csv

    from nudge.production.datasets import load_dataset

    base = load_dataset(PAIRS)[0]
    split = json.loads((run / "run.json").read_text())["split"]
    docs = sorted(base.corpus)
    rows = []
    for part in ("train", "val"):
        for q in split[part][:5]:
            other = next(d for d in docs if d not in base.relevant[q])  # a known question, another document
            rows.append((base.queries[q], base.corpus[other]))
    new = tmp_path / "known.csv"
    with new.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([("query", "document"), *rows])
    capsys.readouterr()
    assert main(["update", str(run), str(new), *TESSERA]) == 0
    assert "keep their split" in capsys.readouterr().out
    record = json.loads((run / "run.json").read_text())["updates"][-1]
    added = load_dataset(new)[0]
    got = {added.queries[q]: part for part in ("train", "val") for q in record[part]}
    for part in ("train", "val"):
        for q in split[part][:5]:
            assert got[base.queries[q]] == part


# ------------------------------------------------------- 5: invisible characters and twin documents
def test_format_characters_are_stripped_by_the_one_text_rule(tmp_path):
    from nudge.production.datasets import load_dataset
    from nudge.production.streaming import normalise_text, pair_key

    for mark in ("\u200b", "\ufeff", "\u200d", "\u2060", "\u00ad"):
        assert normalise_text(f"how do{mark} i pay{mark}") == "how do i pay"
        assert pair_key(f"q{mark}", "the doc") == pair_key("q", f"the{mark} doc")
    table = tmp_path / "twins.csv"
    table.write_text(
        "query,document\nhow do i pay,Paying an invoice is easy\n"
        "how do i pay\u200b by card,Paying an  invoice\u200b is easy\nhow do i pay\u200b,Refunds take a week\n",
        encoding="utf-8",
    )
    data = load_dataset(table)[0]
    assert len(data.corpus) == 2 and len(data.queries) == 2  # the twin document and twin question are one


# ------------------------------------------------------- 6: unclear errors
@pytest.mark.parametrize("content", ["[]", '{"collections": 5}', '{"collections": {"docs": 5}}'])
def test_a_qdrant_meta_json_of_the_wrong_shape_names_the_file_and_store(content, run, tmp_path, capsys):
    need("qdrant_client")
    where = ["--store", f"qdrant:{tmp_path / 'q'}", "--collection", "docs"]
    assert main(["load", str(run), *where]) == 0
    (tmp_path / "q" / "meta.json").write_text(content)
    capsys.readouterr()
    assert main(["apply", str(run), *where]) == 2
    err = one_line(capsys, "apply")
    assert "--store" in err and "meta.json" in err


def test_fit_k_larger_than_the_documents_is_refused(tmp_path, capsys):
    assert main(["fit", str(PAIRS), "--out", str(tmp_path / "r"), *TESSERA, "--k", "10000000"]) == 2
    err = one_line(capsys, "fit")
    assert "--k" in err and "33" in err and not (tmp_path / "r").exists()


def test_update_val_fraction_error_does_not_mention_test_fraction(run, capsys):
    assert main(["update", str(run), str(WEEK2), *TESSERA, "--val-fraction", "0.999"]) == 2
    err = one_line(capsys, "update")
    assert "--val-fraction" in err and "test_fraction" not in err
