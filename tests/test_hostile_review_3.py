"""Regression tests for the hostile review of "bring your own vectors and splits" (issue 14): each test
replays one finding of the tester's report (their scripts: a small BEIR folder with vectors by id, a pair
table, `nudge fit/update/evaluate`)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from nudge import load_embeddings
from nudge.production.cli import main

DIM = 16


def one_line(capsys, command: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"nudge {command}: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def make_beir(folder: Path, *, n_docs=60, n_train=40, n_test=15, seed=0, twins=(), qid=lambda i: f"Q{i}",
              did=lambda i: f"D{i}", start=0) -> np.ndarray:  # fmt: skip
    """The tester's mk.py: a BEIR folder (train and test qrels) and, in FOLDER_vec, vectors by id."""
    rng = np.random.default_rng(seed)
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    docs = rng.normal(size=(n_docs, DIM))
    texts = [f"document number {i} about topic {i * 7 % 13}" for i in range(n_docs)]
    for a, b in twins:
        texts[b], docs[b] = texts[a], docs[a]
    with open(folder / "corpus.jsonl", "w") as fh:
        for i, t in enumerate(texts):
            fh.write(json.dumps({"_id": did(i), "title": "", "text": t}) + "\n")
    nq = n_train + n_test
    rel = rng.integers(0, n_docs, size=nq)
    queries = docs[rel] + 0.9 * rng.normal(size=(nq, DIM))
    with open(folder / "queries.jsonl", "w") as fh:
        for i in range(nq):
            fh.write(json.dumps({"_id": qid(i), "text": f"question {start + i} asking about {rel[i]}"}) + "\n")
    for name, rows in (("train", range(n_train)), ("test", range(n_train, nq))):
        with open(folder / "qrels" / f"{name}.tsv", "w") as fh:
            fh.write("query-id\tcorpus-id\tscore\n")
            for i in rows:
                fh.write(f"{qid(i)}\t{did(rel[i])}\t1\n")
    vec = folder.with_name(folder.name + "_vec")
    vec.mkdir(exist_ok=True)
    np.savez(vec / "docs.npz", ids=np.array([did(i) for i in range(n_docs)]), vectors=docs.astype(np.float32))
    np.savez(vec / "queries.npz", ids=np.array([qid(i) for i in range(nq)]), vectors=queries.astype(np.float32))
    return rel


def vectors(folder: Path) -> list[str]:
    vec = folder.with_name(folder.name + "_vec")
    return ["--doc-vectors", str(vec / "docs.npz"), "--query-vectors", str(vec / "queries.npz")]


def fit(data: Path, out: Path, *extra: str) -> None:
    assert main(["fit", str(data), "--out", str(out), "--method", "M", "--split", "train", "--test-split", "test",
                 *vectors(data), *extra]) == 0  # fmt: skip


@pytest.fixture(scope="module")
def beir_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile3")
    make_beir(root / "b1")
    fit(root / "b1", root / "run")
    return root


@pytest.fixture
def run(beir_run, tmp_path):
    return shutil.copytree(beir_run / "run", tmp_path / "run")


# ------------------------------------------- 1: update takes vectors for reused ids from the run's files
def write_pairs(path: Path, rows) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["query", "document"])
        w.writerows(rows)


def test_a_pair_table_update_never_looks_its_row_ids_up_in_the_run_files(tmp_path, capsys):
    data = tmp_path / "b"  # the run's files name documents d0001 ... and questions q0001 ..., as a table's rows
    make_beir(data, qid=lambda i: f"q{i + 1:04d}", did=lambda i: f"d{i + 1:04d}")
    fit(data, tmp_path / "run")
    run = tmp_path / "run"
    week = tmp_path / "week1.csv"  # new texts: before the fix they took the run's d0001 ... vectors (cosine 1.0)
    write_pairs(week, [(f"new week question {i}", f"a brand new passage {i}") for i in range(10)])
    capsys.readouterr()
    assert main(["update", str(run), str(week)]) == 2
    assert "is a pair table: its ids (q0001, d0001, ...) are numbered by row order" in one_line(capsys, "update")
    assert json.loads((run / "run.json").read_text())["updates"] == []


def test_a_beir_update_reusing_the_runs_test_ids_is_refused(beir_run, run, tmp_path, capsys):
    # the tester's sfwk3: new texts under the run's hold-out test ids; their vectors are the test questions'
    week = tmp_path / "week"
    make_beir(week, n_train=0, n_test=15, seed=5, qid=lambda i: f"Q{40 + i}", did=lambda i: f"N{i}", start=900)
    (week / "qrels" / "train.tsv").unlink()
    assert main(["update", str(run), str(week), *vectors(week)]) == 2
    err = one_line(capsys, "update")
    assert "15 question id(s) are ids of this run's hold-out test questions, first 'Q40'" in err


def test_a_beir_update_giving_a_training_id_another_text_is_refused(run, tmp_path, capsys):
    week = tmp_path / "week"
    make_beir(week, n_train=0, n_test=10, seed=6, qid=lambda i: f"Q{i}", did=lambda i: f"N{i}", start=500)
    (week / "qrels" / "train.tsv").unlink()
    assert main(["update", str(run), str(week), *vectors(week)]) == 2
    assert "question id(s) are already questions of this run with another text, first 'Q" in one_line(capsys, "update")


def test_fit_refuses_precomputed_vectors_keyed_by_row_numbers_of_a_pair_table(tmp_path, capsys):
    table = tmp_path / "pairs.csv"
    write_pairs(table, [(f"question {i}", f"passage {i % 7}") for i in range(20)])
    np.savez(tmp_path / "d.npz", ids=np.array([f"d{i:04d}" for i in range(1, 8)]), vectors=np.eye(7, DIM))
    np.savez(tmp_path / "q.npz", ids=np.array([f"q{i:04d}" for i in range(1, 21)]), vectors=np.ones((20, DIM)))
    argv = ["--doc-vectors", str(tmp_path / "d.npz"), "--query-vectors", str(tmp_path / "q.npz")]
    assert main(["fit", str(table), "--out", str(tmp_path / "r"), *argv]) == 2
    err = one_line(capsys, "fit")
    assert "a pair table has no id columns" in err and "save_llamaindex" in err


# --------------------------------------- 2: update accepted vector files of any model (same dimension)
def test_update_refuses_given_vectors_that_differ_from_the_runs_own(run, beir_run, tmp_path, capsys):
    week = tmp_path / "week"
    make_beir(week, n_train=0, n_test=10, seed=7, qid=lambda i: f"W{i}", did=lambda i: f"N{i}", start=700)
    (week / "qrels" / "train.tsv").unlink()
    vec = beir_run / "b1_vec"
    rng = np.random.default_rng(3)
    for name, extra in (("docs", week.with_name("week_vec") / "docs.npz"),
                        ("queries", week.with_name("week_vec") / "queries.npz")):  # fmt: skip
        ours, theirs = np.load(vec / f"{name}.npz"), np.load(extra)
        ids = np.concatenate([ours["ids"], theirs["ids"]])
        np.savez(tmp_path / f"same_{name}.npz", ids=ids, vectors=np.concatenate([ours["vectors"], theirs["vectors"]]))
        np.savez(tmp_path / f"random_{name}.npz", ids=ids, vectors=rng.normal(size=(len(ids), DIM)))
        np.savez(tmp_path / f"new_{name}.npz", ids=theirs["ids"], vectors=theirs["vectors"])
    for kind, message in (("random", "these vectors are not from the model the run was fit with"),
                          ("new", "hold no vector of the run's documents or questions")):  # fmt: skip
        argv = ["--doc-vectors", str(tmp_path / f"{kind}_docs.npz"), "--query-vectors",
                str(tmp_path / f"{kind}_queries.npz")]  # fmt: skip
        assert main(["update", str(run), str(week), *argv]) == 2
        assert message in one_line(capsys, "update")
    argv = ["--doc-vectors", str(tmp_path / "same_docs.npz"), "--query-vectors", str(tmp_path / "same_queries.npz")]
    assert main(["update", str(run), str(week), *argv]) == 0


# ------------------------------ 3: BEIR documents were matched by text: labels moved to a twin document
def test_a_beir_test_set_keeps_its_labels_on_its_own_document_ids_not_a_twin(tmp_path, capsys):
    data = tmp_path / "b"
    rel = make_beir(data, n_docs=60, twins=[(i, i + 30) for i in range(30)])  # D30..D59 copy D0..D29's text
    labelled = [j for j in rel[40:] if j >= 30]  # test questions labelled with the second twin
    assert labelled
    fit(data, tmp_path / "run")
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert "test" in run
    from nudge.production.cli import _corpus_texts, _load_run_data, _test_set

    _, doc_ids = load_embeddings(tmp_path / "run" / "documents.npz")
    base = _load_run_data(run)
    view = _test_set(run["test"], _corpus_texts(tmp_path / "run", run, base, doc_ids)).view
    for q, j in zip([f"Q{i}" for i in range(40, 55)], rel[40:], strict=True):
        assert list(view.relevant[q]) == [f"D{j}"]  # before the fix: D{j - 30} for j >= 30


# ------------------------------------------- 4: an NFD copy of a test question passed the test check
def test_an_nfd_copy_of_a_test_question_is_recognised(tmp_path, capsys):
    import unicodedata

    from nudge.production.streaming import normalise_text, pair_key

    assert normalise_text("caf\u0065\u0301 au lait") == normalise_text("caf\u00e9 au lait")
    assert pair_key("caf\u00e9", "x", nfc=False) != pair_key("cafe\u0301", "x", nfc=False)  # the old rule
    data = tmp_path / "b"
    make_beir(data)
    # test questions with accents (NFC in the data); the week asks them again in NFD
    queries = [json.loads(line) for line in (data / "queries.jsonl").read_text().splitlines()]
    for obj in queries:
        obj["text"] = obj["text"].replace("question", "qu\u00e9stion")
    (data / "queries.jsonl").write_text("".join(json.dumps(o) + "\n" for o in queries))
    fit(data, tmp_path / "run")
    week = tmp_path / "week.csv"
    write_pairs(week, [(unicodedata.normalize("NFD", queries[40 + i]["text"]), f"new passage {i}") for i in range(5)])
    capsys.readouterr()
    assert main(["update", str(tmp_path / "run"), str(week), "--embedder", "tessera"]) == 2
    assert "are hold-out test questions of this run (same text)" in one_line(capsys, "update")


# ------------------------- 5: update and --test FOLDER always read qrels/test.tsv, whatever the folder held
def test_update_reads_the_named_qrels_and_never_picks_one_of_several_silently(run, tmp_path, capsys):
    week = tmp_path / "week"  # train.tsv holds the week's 10 new pairs, test.tsv 5 others
    make_beir(week, n_train=10, n_test=5, seed=8, qid=lambda i: f"W{i}", did=lambda i: f"N{i}", start=800)
    vec = week.with_name("week_vec")
    argv = []  # the run's vectors plus the week's, as a team would append them
    for name, flag in (("docs", "--doc-vectors"), ("queries", "--query-vectors")):
        a = np.load(Path(json.loads((run / "run.json").read_text())["vectors"][
            "documents" if name == "docs" else "queries"]["vectors"]))  # fmt: skip
        b = np.load(vec / f"{name}.npz")
        np.savez(tmp_path / f"{name}.npz", ids=np.concatenate([a["ids"], b["ids"]]),
                 vectors=np.concatenate([a["vectors"], b["vectors"]]))  # fmt: skip
        argv += [flag, str(tmp_path / f"{name}.npz")]
    assert main(["update", str(run), str(week), *argv]) == 2  # before the fix: test.tsv read, silently
    err = one_line(capsys, "update")
    assert "holds 2 qrels files (test, train): say which to read with --split NAME" in err
    assert main(["update", str(run), str(week), "--split", "train", *argv]) == 0
    out = capsys.readouterr().out
    assert "10 new labelled questions" in out
    record = json.loads((run / "run.json").read_text())["updates"][0]
    assert record["beir_split"] == ["train"] and len(record["train"] + record["val"]) == 10


def test_a_test_folder_with_several_qrels_needs_its_split(beir_run, tmp_path, capsys):
    data = beir_run / "b1"
    test = tmp_path / "t"
    make_beir(test, n_train=5, n_test=5, seed=9, qid=lambda i: f"T{i}", did=lambda i: f"D{i}", start=300)
    argv = ["fit", str(data), "--out", str(tmp_path / "r"), "--split", "train", "--test", str(test), "--embedder",
            "tessera"]  # fmt: skip
    assert main(argv) == 2
    assert "--test " in (err := one_line(capsys, "fit")) and "say which to read with --test-folder-split" in err
    assert main([*argv[:-2], "--test-folder-split", "train", *_test_vectors(
        tmp_path, beir_run / "b1_vec", test.with_name("t_vec"))]) == 0  # fmt: skip
    record = json.loads((tmp_path / "r" / "run.json").read_text())["test"]
    assert record["beir_split"] == ["train"] and len(json.loads((tmp_path / "r" / "run.json").read_text())[
        "split"]["test"]) == 5  # fmt: skip


def _test_vectors(tmp_path: Path, ours: Path, theirs: Path) -> list[str]:
    argv = []
    for name, flag in (("docs", "--doc-vectors"), ("queries", "--query-vectors")):
        a, b = np.load(ours / f"{name}.npz"), np.load(theirs / f"{name}.npz")
        keep = ~np.isin(b["ids"], a["ids"])
        np.savez(tmp_path / f"all_{name}.npz", ids=np.concatenate([a["ids"], b["ids"][keep]]),
                 vectors=np.concatenate([a["vectors"], b["vectors"][keep]]))  # fmt: skip
        argv += [flag, str(tmp_path / f"all_{name}.npz")]
    return argv


# ------------------------------------- 6: a --test set identical to DATA was only noted, evaluate inflated
def test_a_test_set_sharing_its_questions_with_data_is_refused(tmp_path, capsys):
    from nudge.teaching.bundled import data_dir

    pairs = data_dir() / "examples" / "support_pairs.csv"
    out = tmp_path / "r"
    assert main(["fit", str(pairs), "--test", str(pairs), "--out", str(out), "--embedder", "tessera"]) == 2
    err = one_line(capsys, "fit")
    assert "test questions have the same text as a training or validation question of DATA" in err
    assert "remove them from the test set or from DATA" in err and not out.exists()


# ------------------------------------------ 7: a pair given twice with two grades: the first kept, silently
def test_conflicting_grades_of_one_pair_are_an_error_with_file_and_line(tmp_path, capsys):
    from nudge.production.datasets import load_beir

    data = tmp_path / "b"
    make_beir(data)
    qrels = data / "qrels" / "train.tsv"
    lines = qrels.read_text().splitlines()
    q, d, _ = lines[1].split("\t")
    qrels.write_text("\n".join([lines[0], f"{q}\t{d}\t0", *lines[1:]]) + "\n")  # grade 0, then 1
    _, report = load_beir(data, "train")
    assert not report.ok
    conflict = [p for p in report.errors if p.kind == "conflicting_grade"]
    assert [(p.file, p.line) for p in conflict] == [("qrels/train.tsv", 3)]
    assert "conflicting grades" in report.summary()
    assert main(["fit", str(data), "--split", "train", "--out", str(tmp_path / "r"), *vectors(data)]) == 2
    assert "another grade 1 (first 0)" in capsys.readouterr().err


# ------------------------ 8: every file of a BEIR folder was fingerprinted: a .DS_Store locked the run
def test_only_the_files_read_are_fingerprinted_and_older_runs_still_load(tmp_path, capsys):
    import hashlib

    data = tmp_path / "b"
    make_beir(data)
    out = data / "run"  # a run inside its own data folder (the tester's b2)
    fit(data, out)
    (data / ".DS_Store").write_bytes(b"\0\1")
    (data / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\n")
    (data / "embeddings").mkdir()
    (data / "embeddings" / "x.npy").write_bytes(b"x")
    capsys.readouterr()
    assert main(["evaluate", str(out), "--show", "0"]) == 0  # before the fix: "changed since `nudge fit`"
    (data / "qrels" / "train.tsv").write_text((data / "qrels" / "train.tsv").read_text() + "Q0\tD1\t1\n")
    assert main(["evaluate", str(out), "--show", "0"]) == 2
    assert "changed since `nudge fit`" in one_line(capsys, "evaluate")
    # a run written before (its fingerprint over every file of the folder) still loads while the folder is as it was
    old = tmp_path / "old"
    make_beir(old)
    h = hashlib.sha256()
    for p in sorted(p for p in old.rglob("*") if p.is_file()):
        h.update(f"{p.relative_to(old).as_posix()}\0{p.stat().st_size}\0".encode())
        h.update(p.read_bytes())
    fit(old, tmp_path / "oldrun")
    record = json.loads((tmp_path / "oldrun" / "run.json").read_text())
    record["data_sha256"] = record["test"]["sha256"] = h.hexdigest()
    (tmp_path / "oldrun" / "run.json").write_text(json.dumps(record))
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "oldrun"), "--show", "0"]) == 0


# ---------------------------------------------- 9: .npz ids stored as bytes became "b'D0'"
def test_npz_ids_stored_as_bytes_are_read_as_utf8(tmp_path):
    from nudge.production.embedders import load_vectors

    np.savez(tmp_path / "v.npz", ids=np.array([b"D0", "caf\u00e9".encode()]), vectors=np.eye(2, 3))
    _, ids = load_vectors(tmp_path / "v.npz")
    assert ids == ["D0", "caf\u00e9"]  # before the fix: ["b'D0'", "b'caf\\xc3\\xa9'"]
    np.savez(tmp_path / "bad.npz", ids=np.array([b"\xff"]), vectors=np.eye(1, 3))
    with pytest.raises(ValueError, match=r"holds bytes .* that are not UTF-8 text"):
        load_vectors(tmp_path / "bad.npz")


def test_a_state_written_before_nfc_keeps_its_non_nfc_pairs_counted(run, tmp_path, capsys):
    import unicodedata

    from nudge.production.streaming import NudgeState, pair_key

    week = tmp_path / "week"
    make_beir(week, n_train=10, n_test=0, seed=11, qid=lambda i: f"W{i}", did=lambda i: f"N{i}", start=600)
    for name in ("queries.jsonl", "corpus.jsonl"):  # NFD texts with accents
        rows = [json.loads(line) for line in (week / name).read_text().splitlines()]
        for r in rows:
            r["text"] = unicodedata.normalize("NFD", r["text"].replace("about", "\u00e0 propos"))
        (week / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    (week / "qrels" / "test.tsv").unlink()
    argv = []
    for name, side, flag in (("docs", "documents", "--doc-vectors"), ("queries", "queries", "--query-vectors")):
        a = np.load(json.loads((run / "run.json").read_text())["vectors"][side]["vectors"])
        b = np.load(week.with_name("week_vec") / f"{name}.npz")
        np.savez(tmp_path / f"{name}.npz", ids=np.concatenate([a["ids"], b["ids"]]),
                 vectors=np.concatenate([a["vectors"], b["vectors"]]))  # fmt: skip
        argv += [flag, str(tmp_path / f"{name}.npz")]
    assert main(["update", str(run), str(week), *argv]) == 0
    # the state as a version before NFC wrote it: the week's pair keys of the texts as they were (NFD)
    from nudge.production.datasets import load_beir

    ds, _ = load_beir(week, "train")
    state = NudgeState.load(run / "state.npz")
    state.pair_keys = {pair_key(ds.queries[q], ds.corpus[d], nfc=False) for q in ds.relevant for d in ds.relevant[q]}
    state.save(run / "state.npz")
    copy = tmp_path / "copy"  # the same pairs in another row order (another SHA-256)
    shutil.copytree(week, copy)
    lines = (copy / "qrels" / "train.tsv").read_text().splitlines()
    (copy / "qrels" / "train.tsv").write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    capsys.readouterr()
    assert main(["update", str(run), str(copy), *argv]) == 2
    assert "all 10 pairs of" in one_line(capsys, "update")


# ------------------------------------------------------------------------------------- cosmetic
def test_a_tiny_vector_is_called_near_zero_not_all_zeros():
    from nudge.production.embedders import PrecomputedEmbedder

    v = np.eye(2, 3)
    v[1] = 1e-200
    with pytest.raises(ValueError, match=r"1 vector\(s\) are all zeros or near zero \(norm < 1e-154"):
        PrecomputedEmbedder(v, ["a", "b"], np.eye(1, 3), ["q"])


def test_validate_into_a_closed_pipe_exits_quietly(tmp_path):
    import os
    import subprocess
    import sys

    data = tmp_path / "b"
    make_beir(data, n_docs=3000, n_train=2000, n_test=0)
    qrels = data / "qrels" / "train.tsv"
    qrels.write_text(qrels.read_text() + "".join(f"X{i}\tD0\t1\n" for i in range(3000)))  # many report lines
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = f"{sys.executable} -m nudge validate {data} --split train | head -1"
    done = subprocess.run(["bash", "-c", f"set -o pipefail; {cmd}"], capture_output=True, text=True, env=env)
    assert "BrokenPipeError" not in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_run_json_without_beir_split_names_run_json(run, capsys):
    record = json.loads((run / "run.json").read_text())
    del record["beir_split"]
    (run / "run.json").write_text(json.dumps(record))
    week = run.parent / "w.csv"
    write_pairs(week, [(f"q {i}", f"p {i}") for i in range(5)])
    assert main(["update", str(run), str(week), "--embedder", "tessera"]) == 2
    assert "run.json has no 'beir_split'" in one_line(capsys, "update")
