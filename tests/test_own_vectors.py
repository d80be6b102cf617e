"""Bring your own vectors, by id: PrecomputedEmbedder's checks (every bad input gives a one-line
error naming the file and the first ids), and `nudge fit/evaluate/update/apply` on such runs."""

from __future__ import annotations

import importlib.util
import json
import shutil

import numpy as np
import pytest

from nudge import load_embeddings
from nudge.production.cli import main
from nudge.production.datasets import load_dataset
from nudge.production.embedders import PrecomputedEmbedder, load_vectors, read_ids
from nudge.teaching.bundled import data_dir

TESSERA = data_dir() / "tessera"
DATA = TESSERA / "tessera.json"
WEEK2 = TESSERA / "tessera_week2.json"
V = TESSERA / "embeddings" / "all-MiniLM-L6-v2"
FILES = ["--doc-vectors", str(V / "corpus.npy"), "--doc-ids", str(V / "corpus_ids.txt"),
         "--query-vectors", str(V / "queries.npy"), "--query-ids", str(V / "query_ids.txt")]  # fmt: skip


def one_line(capsys, command: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"nudge {command}: error: ") and err.count("\n") == 1, err
    return err


def arrays(n=4, d=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), [f"x{i}" for i in range(n)]


# ------------------------------------------------------------------------------- the API
def test_vectors_are_looked_up_by_id_as_unit_rows():
    docs, doc_ids = arrays()
    queries, query_ids = arrays(2, seed=1)
    emb = PrecomputedEmbedder(docs, doc_ids, queries, query_ids, "m")
    got = emb.document_vectors(["x2", "x0"])
    want = docs[[2, 0]] / np.linalg.norm(docs[[2, 0]], axis=1, keepdims=True)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert got.dtype == np.float32 and emb.dim == 3 and emb.model_name == "m"
    assert emb.unused(["x0", "x1"], ["x0"]) == (2, 1)
    before = docs.copy()
    emb.document_vectors(["x1"])
    np.testing.assert_array_equal(docs, before)  # input never modified


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d, i: (d, i[:-1]), "4 vectors but 3 ids"),
        (lambda d, i: (d, [*i[:-1], "x0"]), "1 id(s) appear more than once, first 'x0'"),
        (lambda d, i: (np.where(np.arange(4)[:, None] == 2, np.nan, d), i), "NaN or infinite values, first ids 'x2'"),
        (lambda d, i: (np.where(np.arange(4)[:, None] == 1, np.inf, d), i), "first ids 'x1'"),
        (lambda d, i: (np.where(np.arange(4)[:, None] == 3, 0.0, d), i), "all zeros (no direction), first ids 'x3'"),
        (lambda d, i: (d[0], i), "expected a non-empty 2-D array"),
        (lambda d, i: (d.astype(str), i), "expected a non-empty 2-D array of numbers"),
        (lambda d, i: (d, [*i[:-1], ""]), "ids must be non-empty strings"),
        (lambda d, i: (d, "x0x1"), "must be a sequence of strings"),
    ],
)
def test_bad_document_vectors_name_the_source_and_the_ids(change, message):
    docs, ids = change(*arrays())
    queries, query_ids = arrays(2, seed=1)
    with pytest.raises(ValueError, match=r"^corpus\.npy: ") as info:
        PrecomputedEmbedder(docs, ids, queries, query_ids, doc_source="corpus.npy")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_dimensions_must_agree():
    docs, ids = arrays(d=3)
    queries, query_ids = arrays(2, d=4)
    with pytest.raises(ValueError, match=r"dimension 3 but the query vectors .* dimension 4"):
        PrecomputedEmbedder(docs, ids, queries, query_ids)


def test_missing_ids_on_either_side_are_named():
    docs, ids = arrays()
    queries, query_ids = arrays(2)
    emb = PrecomputedEmbedder(docs, ids, queries, query_ids, doc_source="D.npy", query_source="Q.npy")
    with pytest.raises(ValueError, match=r"^D.npy: 2 of the 4 documents of the dataset have no vector, first ids "
                       r"'a', 'b'"):  # fmt: skip
        emb.check_covers(["x0", "a", "x1", "b"], ["x0"])
    with pytest.raises(ValueError, match=r"^Q.npy: 1 of the 2 queries .* first ids 'x3'"):
        emb.check_covers(["x0"], ["x0", "x3"])
    with pytest.raises(ValueError, match="no vector for 1 query id"):
        emb.query_vectors(["nope"])


def test_files_npy_with_ids_and_npz(tmp_path):
    docs, ids = arrays()
    np.save(tmp_path / "d.npy", docs)
    (tmp_path / "d.txt").write_text("\n".join(ids) + "\n")
    np.savez(tmp_path / "q.npz", ids=np.array(ids[:2]), vectors=docs[:2])
    emb = PrecomputedEmbedder.from_files(tmp_path / "d.npy", tmp_path / "q.npz", doc_ids=tmp_path / "d.txt")
    assert emb.doc_ids == ids and emb.query_ids == ids[:2]
    (tmp_path / "d.json").write_text(json.dumps(ids))
    assert read_ids(tmp_path / "d.json") == ids


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda p: ("d.npy", None), "is a .npy array without ids: give its ids file"),
        (lambda p: ("q.npz", "d.txt"), "holding its own ids: give no separate ids file"),
        (lambda p: ("nope.npy", "d.txt"), "does not exist"),
        (lambda p: ("d.txt", None), "expected a .npy array"),
        (lambda p: ("bad.npz", None), "'vectors' is missing"),
        (lambda p: ("garbage.npy", "d.txt"), "cannot be read as a numpy .npy file"),
        (lambda p: ("obj.npy", "d.txt"), "no pickled objects allowed"),
        (lambda p: ("d.npy", "blank.txt"), "line 2 is blank"),
        (lambda p: ("d.npy", "short.txt"), "4 vectors but 3 ids"),
    ],
)
def test_bad_files_give_one_line_naming_the_file(tmp_path, setup, message):
    docs, ids = arrays()
    np.save(tmp_path / "d.npy", docs)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "garbage.npy").write_bytes(b"not numpy")
    (tmp_path / "d.txt").write_text("\n".join(ids))
    (tmp_path / "blank.txt").write_text("x0\n\nx2\nx3\n")
    (tmp_path / "short.txt").write_text("x0\nx1\nx2\n")
    np.savez(tmp_path / "q.npz", ids=np.array(ids), vectors=docs)
    np.savez(tmp_path / "bad.npz", ids=np.array(ids), vecs=docs)
    vectors, id_file = setup(tmp_path)
    with pytest.raises(ValueError) as info:
        PrecomputedEmbedder.from_files(
            tmp_path / vectors, tmp_path / "q.npz", doc_ids=None if id_file is None else tmp_path / id_file
        )
    text = str(info.value)
    assert message in text and "\n" not in text
    assert vectors in text or id_file in text


def test_load_vectors_keeps_the_stored_values(tmp_path):
    docs, ids = arrays()
    np.savez(tmp_path / "v.npz", ids=np.array(ids), vectors=docs)
    vectors, got = load_vectors(tmp_path / "v.npz")
    np.testing.assert_array_equal(vectors, docs)
    assert got == ids


# ------------------------------------------------------------------------------- the CLI
@pytest.fixture(scope="module")
def vector_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("own") / "run"
    assert (
        main(["fit", str(DATA), "--out", str(out), "--method", "M", *FILES, "--vectors-model", "all-MiniLM-L6-v2"]) == 0
    )
    return out


def test_precomputed_run_equals_the_same_vectors_embedded_by_text(vector_run, tmp_path, capsys):
    """The bundled tessera embedder looks the same vectors up by text: the two runs agree."""
    out = tmp_path / "text"
    assert main(["fit", str(DATA), "--out", str(out), "--method", "M", "--embedder", "tessera"]) == 0
    for name in ("documents.npz", "nudged_documents.npz", "queries.npz"):
        a, a_ids = load_embeddings(vector_run / name)
        b, b_ids = load_embeddings(out / name)
        assert a_ids == b_ids
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_run_json_records_the_vector_files(vector_run, capsys):
    run = json.loads((vector_run / "run.json").read_text())
    assert run["embedder_option"] == "precomputed" and run["embedder"] == "all-MiniLM-L6-v2"
    docs = run["vectors"]["documents"]
    assert docs["vectors"] == str((V / "corpus.npy").resolve())
    assert docs["ids"] == str((V / "corpus_ids.txt").resolve())
    import hashlib

    assert docs["vectors_sha256"] == hashlib.sha256((V / "corpus.npy").read_bytes()).hexdigest()
    dataset, _ = load_dataset(DATA)
    n_docs = len((V / "corpus_ids.txt").read_text().split())
    assert docs["unused"] == n_docs - len(dataset.corpus) > 0
    assert run["vectors"]["queries"]["unused"] > 0 and run["vectors"]["dim"] == 384


def test_fit_prints_the_unused_vectors(tmp_path, capsys):
    assert main(["fit", str(DATA), "--out", str(tmp_path / "r"), *FILES]) == 0
    out = capsys.readouterr().out
    assert "nothing embedded" in out and "unused (not in this run's data): 12 document and" in out


def test_evaluate_works_on_a_precomputed_run(vector_run, capsys):
    assert main(["evaluate", str(vector_run), "--show", "0"]) == 0
    assert "NUDGE-M" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--doc-vectors", str(V / "corpus.npy")], "--doc-vectors needs --query-vectors too"),
        ([*FILES, "--embedder", "local"], "--embedder local and --doc-vectors/--query-vectors exclude each other"),
        (["--doc-ids", "x.txt"], "--doc-ids names the ids of --doc-vectors, which is not given"),
        (["--vectors-model", "m"], "--vectors-model names the model"),
        ([*FILES[:2], *FILES[4:]], "corpus.npy' is a .npy array without ids"),
    ],
)
def test_bad_vector_options_are_one_line(tmp_path, capsys, argv, message):
    assert main(["fit", str(DATA), "--out", str(tmp_path / "r"), *argv]) == 2
    assert message in one_line(capsys, "fit")


def test_dataset_documents_without_vectors_are_named(tmp_path, capsys):
    ids = (V / "corpus_ids.txt").read_text().split()
    vectors = np.load(V / "corpus.npy")
    dataset, _ = load_dataset(DATA)
    drop = [i for i, d in enumerate(ids) if d in dataset.corpus][:4]
    keep = [i for i in range(len(ids)) if i not in drop]
    np.savez(tmp_path / "docs.npz", ids=np.array([ids[i] for i in keep]), vectors=vectors[keep])
    argv = ["--doc-vectors", str(tmp_path / "docs.npz"), *FILES[4:]]
    assert main(["fit", str(DATA), "--out", str(tmp_path / "r"), *argv]) == 2
    err = one_line(capsys, "fit")
    assert f"docs.npz: 4 of the {len(dataset.corpus)} documents of the dataset have no vector, first ids " in err
    assert repr(ids[drop[0]]) in err


def test_dimension_mismatch_between_files_is_named(tmp_path, capsys):
    ids = (V / "query_ids.txt").read_text().split()
    np.savez(tmp_path / "q.npz", ids=np.array(ids), vectors=np.ones((len(ids), 5)))
    argv = [*FILES[:4], "--query-vectors", str(tmp_path / "q.npz")]
    assert main(["fit", str(DATA), "--out", str(tmp_path / "r"), *argv]) == 2
    assert "have dimension 384 but the query vectors" in one_line(capsys, "fit")


def test_update_looks_new_ids_up_in_the_run_files(vector_run, tmp_path, capsys):
    run = shutil.copytree(vector_run, tmp_path / "run")
    assert main(["update", str(run), str(WEEK2)]) == 0
    out = capsys.readouterr().out
    assert "precomputed vectors (the run files), nothing embedded" in out
    record = json.loads((run / "run.json").read_text())["updates"][0]
    assert record["vectors"]["queries"]["vectors"] == str((V / "queries.npy").resolve())
    assert main(["evaluate", str(run), "--show", "0"]) == 0


def test_update_refuses_changed_vector_files_and_a_silent_model_switch(vector_run, tmp_path, capsys):
    run = shutil.copytree(vector_run, tmp_path / "run")
    copy = tmp_path / "q.npy"
    shutil.copy(V / "queries.npy", copy)
    data = json.loads((run / "run.json").read_text())
    data["vectors"]["queries"]["vectors"] = str(copy)
    (run / "run.json").write_text(json.dumps(data))
    np.save(copy, np.load(copy) * 2)  # changed since the fit
    assert main(["update", str(run), str(WEEK2)]) == 2
    assert "is missing or changed since `nudge fit`" in one_line(capsys, "update")
    # --embedder is an explicit choice, accepted only for the model --vectors-model named at fit time
    unnamed = tmp_path / "unnamed"
    assert main(["fit", str(DATA), "--out", str(unnamed), *FILES]) == 0
    capsys.readouterr()
    assert main(["update", str(unnamed), str(WEEK2), "--embedder", "tessera"]) == 2
    assert "but the run was embedded with 'precomputed'" in one_line(capsys, "update")
    assert main(["update", str(run), str(WEEK2), "--embedder", "tessera"]) == 0  # named all-MiniLM-L6-v2 at fit


def test_update_with_given_vector_files(vector_run, tmp_path, capsys):
    run = shutil.copytree(vector_run, tmp_path / "run")
    assert main(["update", str(run), str(WEEK2), *FILES]) == 0
    assert "precomputed vectors (given)" in capsys.readouterr().out


def test_update_refuses_vector_files_on_an_embedded_run(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["fit", str(DATA), "--out", str(out), "--embedder", "tessera"]) == 0
    assert main(["update", str(out), str(WEEK2), *FILES]) == 2
    assert "are for runs fit on precomputed vectors" in one_line(capsys, "update")


def test_ask_on_a_precomputed_run_needs_the_model(vector_run, capsys):
    assert main(["ask", str(vector_run), "how do I rotate a webhook secret?"]) == 2
    assert "the run was fit on precomputed vectors" in one_line(capsys, "ask")


def test_apply_on_a_precomputed_run(vector_run, tmp_path, capsys):
    if importlib.util.find_spec("qdrant_client") is None:
        pytest.skip("needs the stores extra")
    store = ["--store", f"qdrant:{tmp_path / 'qdrant'}", "--collection", "docs"]
    assert main(["load", str(vector_run), *store]) == 0
    assert main(["apply", str(vector_run), *store, "--dry-run"]) == 0
    assert "dry run: nothing was written" in capsys.readouterr().out


def test_run_json_vectors_are_validated_on_load(vector_run, tmp_path, capsys):
    run = shutil.copytree(vector_run, tmp_path / "run")
    data = json.loads((run / "run.json").read_text())
    for edit, message in (
        (lambda r: r.pop("vectors"), "vectors is missing"),
        (lambda r: r["vectors"]["documents"].update(vectors_sha256=3), "vectors.documents.vectors_sha256 must be"),
        (lambda r: r["vectors"]["queries"].update(ids_sha256=None), "must give both 'ids' and 'ids_sha256'"),
        (lambda r: r["vectors"]["queries"].update(unused=-1), "vectors.queries.unused must be a whole number"),
        (lambda r: r.update(embedder_option="magic"), "embedder_option must be one of"),
    ):
        broken = json.loads(json.dumps(data))
        edit(broken)
        (run / "run.json").write_text(json.dumps(broken))
        assert main(["evaluate", str(run)]) == 2
        assert message in one_line(capsys, "evaluate")


# ------------------------------------------------------------------------------- README script = CLI, graded
def test_readme_script_and_cli_print_the_same_figures_on_graded_data(tmp_path):
    """The README's SciFact script and commands, run on a graded BEIR copy of the bundled data (grades 1-3, some
    questions with only grade-0 labels): the script's graded query sets give the CLI's nDCG@10 exactly."""
    from nudge.teaching.bundled import load_tessera
    from tools.readme_tables import README, scifact_outputs

    t = load_tessera(1)
    ds = t.dataset
    folder = tmp_path / "graded"
    (folder / "qrels").mkdir(parents=True)
    shutil.copytree(V, folder / "embeddings" / "all-MiniLM-L6-v2")
    with open(folder / "corpus.jsonl", "w") as fh:
        fh.writelines(json.dumps({"_id": d, "title": "", "text": text}) + "\n" for d, text in ds.corpus.items())
    with open(folder / "queries.jsonl", "w") as fh:
        fh.writelines(json.dumps({"_id": q, "text": text}) + "\n" for q, text in ds.queries.items())
    docs = list(ds.corpus)
    for name, parts in (("train", ("train", "val")), ("test", ("test",))):
        with open(folder / "qrels" / f"{name}.tsv", "w") as fh:
            fh.write("query-id\tcorpus-id\tscore\n")
            for i, q in enumerate(q for part in parts for q in t.split[part]):
                if i % 17 == 5:  # judged, nothing relevant: left out by both routes
                    fh.write(f"{q}\t{next(iter(ds.relevant[q]))}\t0\n")
                    continue
                for j, d in enumerate(ds.relevant[q]):
                    fh.write(f"{q}\t{d}\t{1 + (i + j) % 3}\n")
                extra = docs[(7 * i) % len(docs)]
                if i % 3 == 0 and extra not in ds.relevant[q]:  # a second, more relevant document: graded
                    fh.write(f"{q}\t{extra}\t3\n")  # and binary nDCG differ (never a pair twice: an error)
    outputs = scifact_outputs(folder)
    script = [float(line.split()[-1]) for line in outputs["script-output"].splitlines()]
    cli = [ndcg_of(outputs["cli-M"], "no fine-tuning"), ndcg_of(outputs["cli-M"], "NUDGE-M"),
           ndcg_of(outputs["cli-N"], "NUDGE-N")]  # fmt: skip
    assert script == cli
    # the script as it was (binary QuerySet, no grades) prints other figures here: the test can fail
    old = (
        README.read_text()
        .replace(
            "return data.query_set(emb.query_vectors(ids), ids, train.doc_ids)",
            "return QuerySet(emb.query_vectors(ids), data.answers(ids, train.doc_ids))",
        )
        .replace("import os\n", "import os\nfrom nudge.pairs import QuerySet\n")
    )
    binary = scifact_outputs(folder, old)["script-output"]
    assert [float(line.split()[-1]) for line in binary.splitlines()] != cli


def ndcg_of(table: str, row: str) -> float:
    line = next(line for line in table.splitlines() if line.startswith(row))
    return float(line.split()[-2])
