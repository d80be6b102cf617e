"""Your own splits from the CLI: BEIR --split / --test-split, --test FILE, what run.json records (validated
field by field), `nudge validate`, data errors pointing to it, and the progress-bar default."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from typing import ClassVar

import pytest

from nudge import load_embeddings
from nudge.production.cli import main
from nudge.production.datasets import load_dataset, load_pairs
from nudge.teaching.bundled import data_dir, load_tessera

TESSERA = data_dir() / "tessera"
NEVER_ASKED = TESSERA / "tessera_never_asked.json"
PAIRS = data_dir() / "examples" / "support_pairs.csv"
EMB = ["--embedder", "tessera"]


def one_line(capsys, command: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"nudge {command}: error: ") and err.count("\n") == 1, err
    return err


@pytest.fixture(scope="module")
def beir(tmp_path_factory):
    """The bundled week-1 data as a BEIR folder: qrels/train.tsv = its train and val questions, qrels/test.tsv =
    its test questions."""
    t = load_tessera(1)
    ds = t.dataset
    folder = tmp_path_factory.mktemp("beir") / "tessera"
    (folder / "qrels").mkdir(parents=True)
    with open(folder / "corpus.jsonl", "w") as fh:
        for d, text in ds.corpus.items():
            fh.write(json.dumps({"_id": d, "title": "", "text": text}) + "\n")
    with open(folder / "queries.jsonl", "w") as fh:
        for q, text in ds.queries.items():
            fh.write(json.dumps({"_id": q, "text": text}) + "\n")
    for name, parts in (("train", ("train", "val")), ("test", ("test",))):
        with open(folder / "qrels" / f"{name}.tsv", "w") as fh:
            fh.write("query-id\tcorpus-id\tscore\n")
            for part in parts:
                for q in t.split[part]:
                    for d in ds.relevant[q]:
                        fh.write(f"{q}\t{d}\t1\n")
    return folder, t


def run_json(out):
    return json.loads((out / "run.json").read_text())


def test_split_train_and_test_split_test(beir, tmp_path, capsys):
    folder, t = beir
    out = tmp_path / "r"
    argv = ["fit", str(folder), "--split", "train", "--test-split", "test", "--out", str(out), *EMB, "--seed", "3"]
    assert main(argv) == 0
    printed = capsys.readouterr()
    run = run_json(out)
    train_q = set(t.split["train"]) | set(t.split["val"])
    assert set(run["split"]["train"]) | set(run["split"]["val"]) == train_q
    assert len(run["split"]["val"]) == round(0.2 * len(train_q))  # 80/20, nothing carved for testing
    assert run["split"]["test"] == [q for q in t.dataset.queries if q in set(t.split["test"])]
    assert run["beir_split"] == ["train"] and run["test_fraction"] is None and run["val_fraction"] == 0.2
    assert run["test"]["kind"] == "split" and run["test"]["beir_split"] == ["test"]
    assert (
        run["test"]["data"] == str(folder.resolve()) and run["test"]["sha256"] != run["data_sha256"]
    )  # the files each reads: qrels test / train
    # each count names its own source
    assert "621 train and 155 val from qrels/train.tsv; 194 test from qrels/test.tsv (--test-split test)" in printed.out
    assert "rule: the first grid value (in grid order) with the best validation score" in printed.out
    assert main(["evaluate", str(out), "--show", "0"]) == 0
    assert f"{len(t.split['test'])} hold-out test questions" in capsys.readouterr().out
    # the same seed splits the same way; another seed another way
    again = tmp_path / "again"
    assert main([a if a != str(out) else str(again) for a in argv]) == 0
    assert run_json(again)["split"] == run["split"]


def test_split_alone_carves_the_test_from_that_split(beir, tmp_path, capsys):
    folder, t = beir
    out = tmp_path / "r"
    assert main(["fit", str(folder), "--split", "train", "--out", str(out), *EMB]) == 0
    run = run_json(out)
    assert "test" not in run and run["beir_split"] == ["train"] and run["test_fraction"] == 0.2
    labelled = set(t.split["train"]) | set(t.split["val"])
    assert set(run["split"]["test"]) <= labelled and run["split"]["test"]
    assert main(["evaluate", str(out), "--show", "0"]) == 0


def test_a_beir_folder_without_split_reads_test_and_records_it(beir, tmp_path, capsys):
    folder, t = beir
    out = tmp_path / "r"
    assert main(["fit", str(folder), "--out", str(out), *EMB]) == 0
    printed = capsys.readouterr()
    assert "note: without --split only qrels/test.tsv is read" in printed.err
    assert "--split train --test-split test" in printed.err
    assert "124 train, 31 val, 39 test, all from qrels/test.tsv (split by question, seeded)" in printed.out
    run = run_json(out)
    assert run["beir_split"] == ["test"]
    assert set().union(*map(set, run["split"].values())) == set(t.split["test"])


def test_test_file_is_the_hold_out_and_data_is_only_split_in_two(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["fit", str(TESSERA / "tessera.json"), "--test", str(NEVER_ASKED), "--out", str(out), *EMB]) == 0
    run = run_json(out)
    data, _ = load_dataset(TESSERA / "tessera.json")
    test, _ = load_dataset(NEVER_ASKED)
    assert len(run["split"]["train"]) + len(run["split"]["val"]) == len(data.relevant)
    assert run["split"]["test"] == ["test:" + q for q in test.answered_query_ids]
    assert run["test"]["kind"] == "file" and run["test"]["data"] == str(NEVER_ASKED.resolve())
    _, qids = load_embeddings(out / "queries.npz")
    assert qids[-len(run["split"]["test"]) :] == run["split"]["test"]
    capsys.readouterr()
    assert main(["evaluate", str(out), "--show", "1"]) == 0
    assert f"{len(test.relevant)} hold-out test questions" in capsys.readouterr().out


def test_a_test_pair_file_adds_its_documents_to_the_corpus(tmp_path, capsys):
    """A CSV test set names documents by text: known texts map to the run's documents, new ones join the corpus."""
    t2 = load_tessera(2)
    data, _ = load_dataset(PAIRS)
    rows = [(t2.dataset.queries[q], t2.dataset.corpus[d]) for q in t2.dataset.query_ids[:30]
            for d in t2.dataset.relevant[q]]  # fmt: skip
    test_csv = tmp_path / "test.csv"
    with open(test_csv, "w", newline="") as fh:
        csv.writer(fh).writerows([("query", "document"), *rows])
    out = tmp_path / "r"
    assert main(["fit", str(PAIRS), "--test", str(test_csv), "--out", str(out), *EMB]) == 0
    _, doc_ids = load_embeddings(out / "documents.npz")
    new_texts = {d for _, d in rows} - set(data.corpus.values())
    added = json.loads((out / "added_documents.json").read_text())
    assert set(added.values()) == new_texts and all(d.startswith("test-") for d in added)
    assert doc_ids == data.doc_ids + list(added)
    assert main(["evaluate", str(out), "--show", "0"]) == 0


def test_test_questions_of_the_training_data_are_refused_or_reported(beir, tmp_path, capsys):
    folder, _ = beir
    argv = ["fit", str(folder), "--split", "train", "--test-split", "train", "--out", str(tmp_path / "r"), *EMB]
    assert main(argv) == 2
    assert "test question(s) are also labelled in DATA's training qrels" in one_line(capsys, "fit")
    # the same text under another id: kept when a few (real benchmarks have some: at most 1%), and said
    dup = tmp_path / "dup.csv"
    data, _ = load_dataset(PAIRS)
    t2 = load_tessera(2).dataset
    q = data.answered_query_ids[0]
    rows = [(data.queries[q], data.corpus[next(iter(data.relevant[q]))])]
    rows += [(t2.queries[p], t2.corpus[d]) for p in t2.answered_query_ids[:100] for d in t2.relevant[p]]
    with open(dup, "w", newline="") as fh:
        csv.writer(fh).writerows([("query", "document"), *rows])
    assert main(["fit", str(PAIRS), "--test", str(dup), "--out", str(tmp_path / "d"), *EMB]) == 0
    assert "note: 1 test question(s) have the same text as a training or validation question" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--test-fraction", "0.3", "--test", str(NEVER_ASKED)], "--test-fraction carves a hold-out test out of DATA"),
        (["--split", "train"], "--split picks qrels files of a BEIR folder, but DATA"),
        (["--test-split", "test"], "--test-split picks qrels files of a BEIR folder"),
        (["--test", "nope.json"], "--test 'nope.json' does not exist"),
    ],
)
def test_bad_split_options_are_one_line(tmp_path, capsys, extra, message):
    assert main(["fit", str(PAIRS), "--out", str(tmp_path / "r"), *EMB, *extra]) == 2
    assert message in one_line(capsys, "fit")


def test_unknown_qrels_and_both_test_options(beir, tmp_path, capsys):
    folder, _ = beir
    assert main(["fit", str(folder), "--split", "dev", "--out", str(tmp_path / "r"), *EMB]) == 2
    assert "no qrels/dev.tsv" in one_line(capsys, "fit")
    argv = ["--test-split", "test", "--test", str(NEVER_ASKED)]
    assert main(["fit", str(folder), "--out", str(tmp_path / "r"), *EMB, *argv]) == 2
    assert "--test-split and --test exclude each other" in one_line(capsys, "fit")


def test_run_json_split_records_are_validated(beir, tmp_path, capsys):
    folder, _ = beir
    out = tmp_path / "r"
    assert main(["fit", str(folder), "--split", "train", "--test-split", "test", "--out", str(out), *EMB]) == 0
    good = run_json(out)
    for edit, message in (
        (lambda r: r.update(beir_split="train"), "beir_split must be a non-empty list of qrels names"),
        (lambda r: r.update(val_fraction=1.5), "val_fraction must be a number strictly between 0 and 1"),
        (lambda r: r["test"].update(kind="other"), "test.kind must be 'split' (--test-split) or 'file'"),
        (lambda r: r["test"].pop("sha256"), "test.sha256 must be a non-empty string"),
        (lambda r: r["test"].update(beir_split=[]), "test.beir_split must be a non-empty list"),
        (lambda r: r["test"].update(sha256="0" * 64), "changed since `nudge fit` (SHA-256 differs from run.json test"),
        (lambda r: r.update(test=[]), "test must be an object"),
    ):
        broken = json.loads(json.dumps(good))
        edit(broken)
        (out / "run.json").write_text(json.dumps(broken))
        assert main(["evaluate", str(out)]) == 2
        assert message in one_line(capsys, "evaluate")


def test_an_edited_prefix_is_caught(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["fit", str(TESSERA / "tessera.json"), "--test", str(NEVER_ASKED), "--out", str(out), *EMB]) == 0
    run = run_json(out)
    run["split"]["test"][0] = run["split"]["test"][0].removeprefix("test:")
    (out / "run.json").write_text(json.dumps(run))
    assert main(["evaluate", str(out)]) == 2
    assert "not a question of the given test set" in one_line(capsys, "evaluate")


# ------------------------------------------------------------------------------- validate
@pytest.fixture
def bad_csv(tmp_path):
    path = tmp_path / "bad.csv"
    lines = ["query,document", "q1,d1", ",d2", "q3,", "q4,d4", "q5,d5", '"q6,d6,x', "q7,d7,extra"]
    path.write_text("\n".join(lines[:-2] + lines[-1:]) + "\n")
    return path


def test_validate_prints_every_row_with_file_and_line(tmp_path, capsys):
    path = tmp_path / "many.csv"
    rows = ["query,document"] + [f"q{i}," for i in range(12)] + ["q,d"]
    path.write_text("\n".join(rows) + "\n")
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "12 error(s)" in out and "first 5 shown" not in out
    for line in range(2, 14):
        assert f"many.csv line {line}: the document is empty" in out
    assert "loaded: 1 queries (1 labelled), 1 documents, 1 relevant pairs" in out


def test_validate_ok_and_beir_split(beir, capsys):
    folder, _ = beir
    assert main(["validate", str(PAIRS)]) == 0
    assert ": OK" in capsys.readouterr().out
    assert main(["validate", str(folder), "--split", "train"]) == 0
    assert "(split train): OK" in capsys.readouterr().out
    assert main(["validate", str(PAIRS), "--split", "train"]) == 2
    assert "--split picks qrels files" in one_line(capsys, "validate")


def test_fit_errors_name_the_rows_and_point_to_validate(bad_csv, tmp_path, capsys):
    assert main(["fit", str(bad_csv), "--out", str(tmp_path / "r"), *EMB]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nudge fit: error: Validation report for bad.csv: 3 error(s)")
    for row in ("bad.csv line 3: the query is empty", "bad.csv line 4: the document is empty", "bad.csv line 7:"):
        assert row in err
    assert err.rstrip().endswith(f"every row with its file and line: `nudge validate {bad_csv}`")
    assert not (tmp_path / "r").exists()


def test_update_errors_point_to_validate(bad_csv, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["fit", str(PAIRS), "--out", str(out), *EMB]) == 0
    assert main(["update", str(out), str(bad_csv)]) == 2
    assert f"`nudge validate {bad_csv}`" in capsys.readouterr().err


def test_load_pairs_on_a_folder_points_to_load_beir(tmp_path):
    with pytest.raises(ValueError, match=r"is a folder; load_pairs reads one .csv/.tsv/.jsonl file. Read a BEIR "
                       r"folder with load_beir\(folder, split=...\)"):  # fmt: skip
        load_pairs(tmp_path)


# ------------------------------------------------------------------------------- progress bars
class _FakeModel:
    made: ClassVar[list[dict]] = []

    def __init__(self, *args, **kwargs) -> None:
        _FakeModel.made.append(kwargs)
        raise ValueError("fake model: stop here")


def test_local_model_bars_are_off_unless_progress(monkeypatch, tmp_path, capsys):
    from nudge.production import embedders

    monkeypatch.setattr(embedders, "SentenceTransformerEmbedder", _FakeModel)
    _FakeModel.made.clear()
    assert main(["fit", str(PAIRS), "--out", str(tmp_path / "a"), "--embedder", "local"]) == 2
    assert main(["fit", str(PAIRS), "--out", str(tmp_path / "b"), "--embedder", "local", "--progress"]) == 2
    assert main(["fit", str(PAIRS), "--out", str(tmp_path / "c")]) == 2  # local is the default
    assert [m["progress"] for m in _FakeModel.made] == [False, True, False]


@pytest.mark.slow
def test_real_local_fit_prints_no_progress_bars(tmp_path):
    if importlib.util.find_spec("sentence_transformers") is None:
        if os.environ.get("NUDGE_REQUIRE_EMBED"):
            pytest.fail("NUDGE_REQUIRE_EMBED is set but sentence-transformers is not installed")
        pytest.skip('the local model needs the embed extra: pip install -e ".[embed]"')
    data, _ = load_dataset(PAIRS)
    small = tmp_path / "small.csv"
    with open(small, "w", newline="") as fh:
        rows = [(data.queries[q], data.corpus[d]) for q in data.answered_query_ids[:12] for d in data.relevant[q]]
        csv.writer(fh).writerows([("query", "document"), *rows])
    env = {**os.environ, "PYTHONPATH": str(data_dir().parent)}
    done = subprocess.run([sys.executable, "-m", "nudge", "fit", str(small), "--out", str(tmp_path / "r"),
                           "--embedder", "local"], capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "%|" not in done.stderr and "Batches" not in done.stderr, done.stderr
    assert len(done.stderr.splitlines()) <= 2, done.stderr
    shutil.rmtree(tmp_path / "r")


# ------------------------------------------------------------------------------- the prototyper's report
def test_out_parents_are_created_and_a_missing_data_path_is_named(tmp_path, capsys):
    out = tmp_path / "runs" / "deep" / "r"
    assert main(["fit", str(PAIRS), "--out", str(out), *EMB]) == 0
    assert (out / "run.json").is_file() and not any(p.name.startswith(".") for p in out.parent.iterdir())
    capsys.readouterr()
    (tmp_path / "afile").write_text("x")
    assert main(["fit", str(PAIRS), "--out", str(tmp_path / "afile" / "r"), *EMB]) == 2
    assert "is a file, so no folder can be made inside it" in one_line(capsys, "fit")
    missing = str(tmp_path / "nowhere")
    for command in (["fit", missing, "--split", "train", "--out", str(tmp_path / "m"), *EMB], ["validate", missing]):
        assert main(command) == 2
        assert f"path {missing!r} does not exist (DATA)" in one_line(capsys, command[0])


@pytest.fixture
def graded_zero(beir, tmp_path):
    """The BEIR copy with two extra questions whose only label is grade 0, one in train and one in test."""
    folder, _ = beir
    copy = tmp_path / "zero"
    shutil.copytree(folder, copy)
    with open(copy / "queries.jsonl", "a") as fh:
        fh.write(json.dumps({"_id": "z-train", "text": "judged, nothing relevant"}) + "\n")
        fh.write(json.dumps({"_id": "z-test", "text": "also judged, nothing relevant"}) + "\n")
    doc = json.loads((copy / "corpus.jsonl").read_text().splitlines()[0])["_id"]
    for name, q in (("train", "z-train"), ("test", "z-test")):
        with open(copy / "qrels" / f"{name}.tsv", "a") as fh:
            fh.write(f"{q}\t{doc}\t0\n")
    return copy


def test_questions_with_only_grade_zero_are_named_by_fit_and_evaluate(graded_zero, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["fit", str(graded_zero), "--split", "train", "--test-split", "test", "--out", str(out), *EMB]) == 0
    printed = capsys.readouterr().out
    assert (
        "left out: 1 question(s) of qrels/train.tsv have no relevant document (only grade-0 labels, or none): "
        f"'z-train'; `nudge validate {graded_zero} --split train` lists them" in printed
    )
    assert "left out: 1 question(s) of --test-split test have no relevant document" in printed and "'z-test'" in printed
    assert main(["evaluate", str(out), "--show", "0"]) == 0
    printed = capsys.readouterr().out
    assert "left out: 1 question(s) of --test-split test" in printed and "'z-test'" in printed


def test_validate_checks_every_split_and_summarises_information(graded_zero, tmp_path, capsys):
    only_train = tmp_path / "only_train"
    shutil.copytree(graded_zero, only_train)
    (only_train / "qrels" / "test.tsv").unlink()
    assert main(["validate", str(only_train)]) == 0
    out = capsys.readouterr().out
    assert "(split train): OK" in out and "split 'test'" not in out
    assert main(["validate", str(graded_zero)]) == 0
    out = capsys.readouterr().out
    assert "(split test): OK" in out and "(split train): OK" in out
    assert "documents never answered" in out and "first 5 shown" in out
    assert "errors are listed in full; information lists its first 5 entries" in out
    assert main(["validate", str(graded_zero), "--all"]) == 0
    every = capsys.readouterr().out
    assert "first 5 shown" not in every and len(every.splitlines()) > len(out.splitlines()) + 50
    assert main(["validate", str(graded_zero), "--max-lines", "1"]) == 0
    assert "first 1 shown" in capsys.readouterr().out


def test_fit_data_errors_are_short(tmp_path, capsys):
    path = tmp_path / "many.csv"
    path.write_text("\n".join(["query,document"] + [f"q{i}," for i in range(12)] + ["q,d"]) + "\n")
    assert main(["fit", str(path), "--out", str(tmp_path / "r"), *EMB]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 7 and "12 error(s), the rows concerned are skipped; the first 5:" in err
    assert err.rstrip().endswith(f"`nudge validate {path}`")
