"""Dataset loaders: LlamaIndex JSON, BEIR folders, (query, document) pair files, and their reports."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from conftest import SCIFACT

from nudge.production.datasets import (
    Problem,
    RetrievalDataset,
    ValidationReport,
    load_beir,
    load_dataset,
    load_llamaindex,
    load_pairs,
    save_llamaindex,
)


def where(problems: list[Problem]) -> list[tuple[str | None, int | None]]:
    """(key, line) of each problem, in report order."""
    return [(p.key, p.line) for p in problems]


def write(path: Path, text: str, newline: str = "\n", encoding: str = "utf-8") -> Path:
    path.write_bytes(text.replace("\n", newline).encode(encoding))
    return path


# --------------------------------------------------------------------------------------------
# RetrievalDataset and ValidationReport
# --------------------------------------------------------------------------------------------


@pytest.fixture
def small() -> RetrievalDataset:
    return RetrievalDataset(
        queries={"q1": "Wo ist das Café?", "q2": "naïve Bayes", "q3": "unlabelled"},
        corpus={"d1": "Das Café ist am Marktplatz.", "d2": "Bayes' rule", "d3": "never relevant", "d4": "priors"},
        relevant={"q1": {"d1": 1.0}, "q2": {"d2": 2.0, "d4": 1.0}},
    )


def test_dataset_ids_keep_insertion_order(small):
    assert small.query_ids == ["q1", "q2", "q3"]
    assert small.doc_ids == ["d1", "d2", "d3", "d4"]
    assert small.answered_query_ids == ["q1", "q2"]


def test_answers_index_rows_of_the_given_doc_order(small):
    assert small.answers() == [[0], [1, 3]]
    assert small.answers(["q2", "q1"], ["d4", "d3", "d2", "d1"]) == [[2, 0], [3]]


def test_answers_of_a_query_without_answers_and_errors_for_unknown_ids(small):
    # a query of the dataset without a relevant document gets [] (left out of fits and evaluations, counted)
    assert small.answers(["q1", "q3"])[1] == [] and small.grades(["q1", "q3"])[1] == []
    with pytest.raises(ValueError, match="query_ids names 'q9', which is not a query of the dataset"):
        small.answers(["q1", "q9"])
    with pytest.raises(ValueError, match="unknown document id 'd4'"):
        small.answers(["q2"], ["d1", "d2"])
    with pytest.raises(ValueError, match="query_ids must be a sequence of string ids"):
        small.answers("q1")


def test_subset_keeps_given_order_all_documents_and_copies(small):
    sub = small.subset(["q3", "q2"])
    assert sub.query_ids == ["q3", "q2"]
    assert sub.relevant == {"q2": {"d2": 2.0, "d4": 1.0}}
    assert sub.corpus == small.corpus and sub.corpus is not small.corpus
    assert sub.relevant["q2"] is not small.relevant["q2"]
    assert small.query_ids == ["q1", "q2", "q3"]  # unchanged
    with pytest.raises(ValueError, match="unknown query id"):
        small.subset(["q9"])
    with pytest.raises(ValueError, match="more than once"):
        small.subset(["q1", "q1"])


def test_stats_counts(small):
    assert small.stats() == {
        "queries": 3,
        "documents": 4,
        "pairs": 3,
        "answered_documents": 3,
        "queries_with_multiple_relevant": 1,
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"queries": ["q"]}, "queries must be a dict"),
        ({"corpus": {"d1": 3}}, "corpus must map string ids to string texts"),
        ({"relevant": {"qx": {"d1": 1.0}}}, "relevant names query id 'qx'"),
        ({"relevant": {"q1": {"dx": 1.0}}}, "names document id 'dx'"),
        ({"relevant": {"q1": {}}}, r"relevant\['q1'\] must be a non-empty dict"),
        ({"relevant": {"q1": {"d1": 0.0}}}, "finite grade > 0"),
        ({"relevant": {"q1": {"d1": True}}}, "finite grade > 0"),
    ],
)
def test_dataset_rejects_inconsistent_input(kwargs, message):
    args = {"queries": {"q1": "a"}, "corpus": {"d1": "b"}, "relevant": {"q1": {"d1": 1.0}}} | kwargs
    with pytest.raises(ValueError, match=message):
        RetrievalDataset(**args)


def test_report_ok_errors_and_summary():
    report = ValidationReport(source="x.csv")
    report.documents_never_answered.append(
        Problem("x.csv", 4, "document 'd1' is relevant to no query", "document_never_answered", "d1")
    )
    report.duplicates.append(Problem("x.csv", 5, "pair repeats line 2; counted once", "duplicate_pair", "q1"))
    assert report.ok
    report.raise_if_errors()  # no error: nothing raised
    report.duplicates.append(Problem("x.csv", 9, "query id 'q1' appears again", "duplicate_id", "q1"))
    for n in range(7):
        report.bad_rows.append(Problem("x.csv", 10 + n, f"bad thing {n}", "bad_row"))
    assert not report.ok
    assert len(report.errors) == 8
    text = str(report)
    assert text.startswith("Validation report for x.csv: 8 error(s)")
    assert "x.csv line 9: query id 'q1' appears again" in text
    assert "bad rows (7, first 5 shown):" in text
    assert "x.csv line 14: bad thing 4" in text and "bad thing 5" not in text
    assert "x.csv line 4: document 'd1'" in text
    with pytest.raises(ValueError, match="8 error"):
        report.raise_if_errors()


# --------------------------------------------------------------------------------------------
# LlamaIndex
# --------------------------------------------------------------------------------------------

LLAMA_GOOD = {
    "queries": {"q1": "Qu'est-ce qu'un embedding ?", "q2": "Größe des Korpus", "q3": "東京の天気"},
    "corpus": {"n1": "Un embedding est un vecteur.", "n2": "Der Korpus ist groß.", "n3": "晴れ", "n4": "spare"},
    "relevant_docs": {"q1": ["n1"], "q2": ["n2", "n1"], "q3": ["n3"]},
    "mode": "text",
}

# line numbers matter: the report must point at them
LLAMA_BAD = """{
  "queries": {
    "q1": "first query",
    "q2": "",
    "q3": 42,
    "q1": "again",
    "q4": "no answers here",
    "q5": "first query"
  },
  "corpus": {
    "n1": "doc one",
    "n2": "   ",
    "n3": "doc three",
    "n4": "never answered"
  },
  "relevant_docs": {
    "q1": [
      "n1",
      "n9",
      "n1",
      7
    ],
    "q2": ["n3"],
    "qx": ["n3"],
    "q5": "n3",
    "q1": ["n3"],
    "q3": ["n2"]
  }
}
"""


def test_llamaindex_loads_utf8_in_file_order(tmp_path):
    path = write(tmp_path / "qa.json", json.dumps(LLAMA_GOOD, indent=4))
    ds, report = load_llamaindex(path)
    assert report.ok
    assert ds.query_ids == ["q1", "q2", "q3"]
    assert ds.queries["q3"] == "東京の天気"
    assert ds.relevant == {"q1": {"n1": 1.0}, "q2": {"n2": 1.0, "n1": 1.0}, "q3": {"n3": 1.0}}
    assert where(report.documents_never_answered) == [("n4", 11)]
    assert ds.stats()["queries_with_multiple_relevant"] == 1


def test_llamaindex_reports_every_problem_with_its_line(tmp_path):
    ds, report = load_llamaindex(write(tmp_path / "bad.json", LLAMA_BAD))
    assert ds.queries == {"q1": "first query", "q4": "no answers here", "q5": "first query"}
    assert ds.corpus == {"n1": "doc one", "n3": "doc three", "n4": "never answered"}
    assert ds.relevant == {"q1": {"n1": 1.0}}
    assert where(report.empty_texts) == [("q2", 4), ("n2", 12)]
    assert [(p.line, p.reason) for p in report.bad_rows] == [
        (5, "queries['q3'] must be a string, got int"),
        (21, "relevant_docs['q1'] contains 7, not a string id"),
        (25, "relevant_docs['q5'] must be a list of document ids, got str"),
    ]
    dups = [(p.kind, p.key, p.line) for p in report.duplicates]
    assert dups == [
        ("duplicate_id", "q1", 6),
        ("duplicate_pair", "q1", 20),
        ("duplicate_id", "q1", 26),
        ("duplicate_text", "q5", 8),
    ]
    assert where(report.unknown_ids) == [("n9", 19), ("q2", 23), ("qx", 24), ("q3", 27), ("n2", 27)]
    assert "was not loaded: its text is empty (bad.json line 4)" in report.unknown_ids[1].reason
    assert "is not in the 'queries' section" in report.unknown_ids[2].reason
    assert where(report.queries_without_answers) == [("q4", 7), ("q5", 8)]
    assert where(report.documents_never_answered) == [("n3", 13), ("n4", 14)]
    assert not report.ok
    with pytest.raises(ValueError, match=r"bad\.json line 5: queries\['q3'\] must be a string"):
        report.raise_if_errors()


def test_llamaindex_round_trip(tmp_path):
    ds, _ = load_llamaindex(write(tmp_path / "qa.json", json.dumps(LLAMA_GOOD)))
    out = save_llamaindex(ds, tmp_path / "copy.json")
    assert out == tmp_path / "copy.json"
    text = out.read_text(encoding="utf-8")
    assert '\n  "queries": {\n    "q1": "Qu\'est-ce qu\'un embedding ?",' in text
    assert "東京の天気" in text  # written as UTF-8, not \\u escapes
    assert list(json.loads(text)) == ["queries", "corpus", "relevant_docs"]
    again, report = load_llamaindex(out)
    assert report.ok
    assert again == ds
    assert again.query_ids == ds.query_ids and again.doc_ids == ds.doc_ids
    assert list(again.relevant) == list(ds.relevant) and list(again.relevant["q2"]) == ["n2", "n1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.json", "qa.json"]  # no temporary file left


def test_save_llamaindex_refuses_to_drop_grades_silently(tmp_path, small):
    with pytest.raises(ValueError, match=r"1 label.*drop_grades=True"):
        save_llamaindex(small, tmp_path / "g.json")
    assert not (tmp_path / "g.json").exists()
    save_llamaindex(small, tmp_path / "g.json", drop_grades=True)
    again, _ = load_llamaindex(tmp_path / "g.json")
    assert again.relevant["q2"] == {"d2": 1.0, "d4": 1.0}
    with pytest.raises(ValueError, match=r"folder .* does not exist"):
        save_llamaindex(small, tmp_path / "missing" / "g.json", drop_grades=True)
    with pytest.raises(ValueError, match="dataset must be a RetrievalDataset"):
        save_llamaindex({"queries": {}}, tmp_path / "g.json")


def test_llamaindex_rejects_other_files(tmp_path):
    with pytest.raises(ValueError, match=r"x\.json line 2: not valid JSON"):
        load_llamaindex(write(tmp_path / "x.json", '{"queries": {},\n "corpus": {,}}'))
    with pytest.raises(ValueError, match=r"missing key\(s\) \['relevant_docs'\]"):
        load_llamaindex(write(tmp_path / "y.json", '{"queries": {}, "corpus": {}}'))
    with pytest.raises(ValueError, match="'corpus' must be a JSON object"):
        load_llamaindex(write(tmp_path / "z.json", '{"queries": {}, "corpus": [], "relevant_docs": {}}'))
    with pytest.raises(ValueError, match="does not exist"):
        load_llamaindex(tmp_path / "absent.json")


# --------------------------------------------------------------------------------------------
# BEIR
# --------------------------------------------------------------------------------------------


def make_beir(folder: Path) -> Path:
    folder.mkdir()
    (folder / "qrels").mkdir()
    corpus = [
        {"_id": "d1", "title": "Ärzte", "text": "Über die Behandlung."},
        {"_id": "d2", "title": "", "text": "no title here"},
        {"_id": "d3", "title": "only", "text": "three"},
        {"_id": "d1", "title": "dup", "text": "duplicate id"},
        {"_id": "d4", "title": " ", "text": "  "},
        {"_id": 5, "text": "integer id, no title"},
    ]
    lines = [json.dumps(c, ensure_ascii=False) for c in corpus]
    lines.insert(3, "{not json")
    write(folder / "corpus.jsonl", "\n".join(lines) + "\n")
    queries = [
        {"_id": "q1", "text": "Wie behandeln Ärzte?"},
        {"_id": "q2", "text": "graded"},
        {"_id": "q3", "text": "train only"},
        {"_id": "q4", "text": "zero only"},
        {"_id": "q5"},
    ]
    write(folder / "queries.jsonl", "\n".join(json.dumps(q, ensure_ascii=False) for q in queries) + "\n")
    write(
        folder / "qrels" / "test.tsv",
        "query-id\tcorpus-id\tscore\n"  # line 1
        "q1\td1\t1\n"  # 2
        "q2\td2\t2\n"  # 3
        "q2\td3\t1\n"  # 4
        "q2\td2\t1\n"  # 5 repeat with another grade
        "q4\td1\t0\n"  # 6 not relevant
        "qx\td1\t1\n"  # 7 unknown query
        "q1\td9\t1\n"  # 8 unknown document
        "q1\td4\t1\n"  # 9 document with empty text
        "q1\n"  # 10 too few fields
        "q1\td3\thigh\n"  # 11 bad score
        "\n"  # 12 blank: ignored
        "q5\td3\t1\n"  # 13 query whose row was unreadable
        "q2\t5\t3\n",  # 14 integer _id matches
    )
    write(folder / "qrels" / "train.tsv", "query-id\tcorpus-id\tscore\nq3\td3\t1\n")
    return folder


def test_beir_keeps_graded_relevance_and_reports_with_lines(tmp_path):
    ds, report = load_beir(make_beir(tmp_path / "beir"))
    assert ds.query_ids == ["q1", "q2", "q4"]
    assert ds.doc_ids == ["d1", "d2", "d3", "5"]
    assert ds.corpus["d1"] == "Ärzte Über die Behandlung."
    assert ds.corpus["d2"] == "no title here"
    assert ds.corpus["d3"] == "only three"
    assert ds.corpus["5"] == "integer id, no title"
    assert ds.relevant == {"q1": {"d1": 1.0}, "q2": {"d2": 2.0, "d3": 1.0, "5": 3.0}}
    assert [(p.file, p.line) for p in report.bad_rows] == [
        ("qrels/test.tsv", 10),
        ("qrels/test.tsv", 11),
        ("queries.jsonl", 5),
        ("corpus.jsonl", 4),
    ]
    assert "expected 3 tab-separated fields" in report.bad_rows[0].reason
    assert "score 'high' is not a finite number" in report.bad_rows[1].reason
    assert report.bad_rows[2].reason == "query 'q5': no 'text' field"
    assert [(p.kind, p.key, p.file, p.line) for p in report.duplicates] == [
        ("duplicate_id", "d1", "corpus.jsonl", 5),
        ("conflicting_grade", "q2", "qrels/test.tsv", 5),
    ]
    assert "another grade 1 (first 2): keep one row with the right grade" in report.duplicates[1].reason
    assert where(report.empty_texts) == [("d4", 6)]
    assert where(report.unknown_ids) == [("qx", 7), ("d9", 8), ("d4", 9), ("q5", 13)]
    assert "is not in queries.jsonl" in report.unknown_ids[0].reason
    assert "its text is empty (corpus.jsonl line 6)" in report.unknown_ids[2].reason
    assert "its row is unreadable (queries.jsonl line 5)" in report.unknown_ids[3].reason
    assert where(report.not_relevant) == [("q4", 6)]
    assert where(report.queries_without_answers) == [("q4", 4)]
    assert where(report.queries_not_in_qrels) == [("q3", 3)]
    assert where(report.documents_never_answered) == []
    assert not report.ok


def test_beir_several_splits(tmp_path):
    folder = make_beir(tmp_path / "beir")
    ds, report = load_beir(folder, split=["test", "train"])
    assert ds.query_ids == ["q1", "q2", "q3", "q4"]
    assert ds.relevant["q3"] == {"d3": 1.0}
    assert report.queries_not_in_qrels == []
    train, _ = load_beir(folder, "train")
    assert train.query_ids == ["q3"] and train.stats()["pairs"] == 1


def test_beir_rejects_missing_files_and_splits(tmp_path):
    folder = make_beir(tmp_path / "beir")
    with pytest.raises(ValueError, match=r"split 'dev': no qrels/dev\.tsv .*available: \['test', 'train'\]"):
        load_beir(folder, "dev")
    with pytest.raises(ValueError, match="split must be a split name"):
        load_beir(folder, [])
    with pytest.raises(ValueError, match="lists a split twice"):
        load_beir(folder, ["test", "test"])
    (folder / "queries.jsonl").unlink()
    with pytest.raises(ValueError, match=r"has no queries\.jsonl"):
        load_beir(folder)


def test_beir_qrels_without_header_line(tmp_path):
    folder = make_beir(tmp_path / "beir")
    write(folder / "qrels" / "train.tsv", "q3\td3\t1\nq1\td2\t1\n")
    ds, report = load_beir(folder, "train")
    assert ds.relevant == {"q3": {"d3": 1.0}, "q1": {"d2": 1.0}}
    assert [p for p in report.bad_rows if p.file.startswith("qrels")] == []


@pytest.fixture(scope="module")
def scifact_folder() -> Path:
    if not (SCIFACT / "qrels" / "test.tsv").is_file():
        pytest.skip(f"SciFact data not found at {SCIFACT} (it ships with the workplace's shared/ folder)")
    return SCIFACT


@pytest.mark.parametrize(
    ("split", "n_queries", "n_pairs", "n_repeats"),
    [("test", 300, 339, 1), ("train", 809, 919, 0)],
)
def test_scifact_figures(scifact_folder, split, n_queries, n_pairs, n_repeats):
    start = time.perf_counter()
    ds, report = load_beir(scifact_folder, split)
    seconds = time.perf_counter() - start
    assert seconds < 3.0, f"loading SciFact took {seconds:.2f} s"
    stats = ds.stats()
    assert (stats["queries"], stats["documents"], stats["pairs"]) == (n_queries, 5183, n_pairs)
    assert report.ok, str(report)
    repeats = [p for p in report.duplicates if p.kind == "duplicate_pair"]
    assert len(repeats) == n_repeats
    assert len(report.queries_not_in_qrels) == 1109 - n_queries
    assert len(report.documents_never_answered) == 5183 - stats["answered_documents"]
    if split == "test":  # the qrels file has 340 rows: query 1245 lists document 7662395 twice
        assert (repeats[0].key, repeats[0].line) == ("1245", 299)


def test_scifact_matches_the_shipped_embeddings(scifact_folder):
    ds, _ = load_beir(scifact_folder, "test")
    emb = scifact_folder / "embeddings" / "all-MiniLM-L6-v2"
    corpus_ids = (emb / "corpus_ids.txt").read_text().split()
    assert ds.doc_ids == corpus_ids
    first = json.loads((scifact_folder / "corpus.jsonl").open().readline())
    assert ds.corpus[first["_id"]] == first["title"] + " " + first["text"]
    expected: dict[str, set[int]] = {}
    for line in (scifact_folder / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        q, d, _ = line.split("\t")
        expected.setdefault(q, set()).add(corpus_ids.index(d))
    rows = ds.answers(list(expected), corpus_ids)
    assert [set(r) for r in rows] == list(expected.values())


# --------------------------------------------------------------------------------------------
# (query, document) pairs
# --------------------------------------------------------------------------------------------

PAIRS_CSV = (
    "Question,Answer,Grade,note\n"  # 1
    'Wo ist das Café?,"Am Markt, neben der Kirche.",1,x\n'  # 2
    'naïve Bayes?,"Line one\nline two, with comma",2,\n'  # 3-4
    "  Wo ist das Café?  ,Ganz woanders,1,\n"  # 5  same query after stripping
    "Wo ist das Café?,Ganz woanders ,3,\n"  # 6  repeat of line 5 (document stripped)
    ",empty query,1,\n"  # 7
    "missing document\n"  # 8
    "too,many,1,,extra\n"  # 9
    "bad grade,doc,high,\n"  # 10
    "naïve Bayes?,Ganz woanders,0,\n"  # 11 not relevant
    "\n"  # 12 blank
    "empty grade,doc,,\n"  # 13
    '"""Quoted"" query",plain,1,\n'  # 14
    '"multi-line\nquery",,1,\n'  # 15-16: reported at its first line
)


def test_pairs_csv_with_crlf_bom_quotes_and_problems(tmp_path):
    path = write(tmp_path / "pairs.csv", PAIRS_CSV, newline="\r\n", encoding="utf-8-sig")
    ds, report = load_pairs(path)
    assert ds.queries == {"q0001": "Wo ist das Café?", "q0002": "naïve Bayes?", "q0003": '"Quoted" query'}
    assert ds.corpus == {
        "d0001": "Am Markt, neben der Kirche.",
        "d0002": "Line one\nline two, with comma",
        "d0003": "Ganz woanders",
        "d0004": "plain",
    }
    assert ds.relevant == {
        "q0001": {"d0001": 1.0, "d0003": 1.0},
        "q0002": {"d0002": 2.0},
        "q0003": {"d0004": 1.0},
    }
    assert [(p.line, p.reason) for p in report.bad_rows] == [
        (8, "no document field"),
        (9, "5 fields but the header has 4 (a comma inside a text? quote that text)"),
        (10, "grade 'high' is not a finite number"),
        (13, "grade '' is not a finite number"),
    ]
    # an empty query or document is counted under "empty texts", as the summary's table says
    assert [(p.line, p.reason, p.kind) for p in report.empty_texts] == [
        (7, "the query is empty", "empty_text"),
        (15, "the document is empty", "empty_text"),
    ]
    assert [(p.kind, p.line) for p in report.duplicates] == [("conflicting_grade", 6)]
    assert "repeats pairs.csv line 5 with another grade 3 (first 1)" in report.duplicates[0].reason
    assert where(report.not_relevant) == [("q0002", 11)]
    assert report.queries_without_answers == [] and report.documents_never_answered == []
    assert report.unknown_ids == []
    summary = report.summary()
    assert re.search(r"bad rows +4\n", summary) and re.search(r"empty texts +2\n", summary)


def test_negative_and_nan_grades_are_errors_with_file_and_line(tmp_path):
    _, report = load_pairs(write(tmp_path / "g.csv", "query,document,grade\na,b,1\nc,d,-1\ne,f,nan\ng,h,0\n"))
    assert [(p.file, p.line, p.reason) for p in report.bad_rows] == [
        ("g.csv", 3, "grade '-1' is negative: grades are >= 0 (0 = not relevant)"),
        ("g.csv", 4, "grade 'nan' is not a finite number"),
    ]
    assert where(report.not_relevant) == [("q0002", 5)] and not report.ok
    _, report = load_pairs(write(tmp_path / "g.jsonl", '{"query": "a", "document": "b", "grade": -0.5}\n'))
    negative = "grade -0.5 is negative: grades are >= 0 (0 = not relevant)"
    assert [(p.line, p.reason) for p in report.bad_rows] == [(1, negative)]
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    write(folder / "corpus.jsonl", '{"_id": "d1", "text": "x"}\n')
    write(folder / "queries.jsonl", '{"_id": "q1", "text": "y"}\n')
    write(folder / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t-1\n")
    _, report = load_beir(folder)
    assert [(p.file, p.line) for p in report.bad_rows] == [("qrels/test.tsv", 2)] and not report.ok
    assert "negative" in report.bad_rows[0].reason


def test_pairs_csv_header_variants_and_semicolons(tmp_path):
    ds, report = load_pairs(write(tmp_path / "a.csv", "QUERY ; Passage\nq one;p one\nq two;p one\n"))
    assert report.ok
    assert ds.queries == {"q0001": "q one", "q0002": "q two"}
    assert ds.relevant == {"q0001": {"d0001": 1.0}, "q0002": {"d0001": 1.0}}
    ds, _ = load_pairs(write(tmp_path / "b.tsv", "query\tpositive\nq\tp, with comma\n"))
    assert ds.corpus == {"d0001": "p, with comma"}
    with pytest.raises(ValueError, match=r"must name a query column .* found \['query', 'text'\]"):
        load_pairs(write(tmp_path / "c.csv", "query,text\na,b\n"))
    with pytest.raises(ValueError, match="several query columns"):
        load_pairs(write(tmp_path / "d.csv", "query,question,document\na,b,c\n"))
    with pytest.raises(ValueError, match=r"e\.csv line 2: malformed CSV.*no other row of the file was checked"):
        load_pairs(write(tmp_path / "e.csv", 'query,document\n"never closed,doc\nq,d\n'))
    with pytest.raises(ValueError, match="the file is empty"):
        load_pairs(write(tmp_path / "f.csv", "\n\n"))
    with pytest.raises(ValueError, match=r"g\.csv line 2: not valid UTF-8.*CSV UTF-8"):
        load_pairs(write(tmp_path / "g.csv", "query,document\nCafé,x\n", encoding="latin-1"))


def test_pairs_jsonl(tmp_path):
    lines = [
        '{"query": "Qué es NUDGE?", "document": "Un método de ajuste."}',  # 1
        '{"Question": "Qué es NUDGE?", "Answer": "Otra respuesta", "grade": 2}',  # 2
        "",  # 3
        "not json",  # 4
        '["a", "list"]',  # 5
        '{"query": "no doc"}',  # 6
        '{"query": "  ", "document": "x"}',  # 7
        '{"query": "q", "passage": "p", "positive": "p2"}',  # 8
        '{"query": 3, "document": "x"}',  # 9
        '{"query": "Qué es NUDGE?", "document": "Un método de ajuste.", "grade": 1}',  # 10 repeat
        '{"query": "q", "document": "p", "grade": null}',  # 11
    ]
    ds, report = load_pairs(write(tmp_path / "pairs.jsonl", "\n".join(lines) + "\n"))
    assert ds.queries == {"q0001": "Qué es NUDGE?"}
    assert ds.relevant == {"q0001": {"d0001": 1.0, "d0002": 2.0}}
    assert [(p.line, p.reason) for p in report.bad_rows] == [
        (4, "not valid JSON: Expecting value (column 1)"),
        (5, "expected a JSON object, got list"),
        (6, "no document field (one of ['document', 'answer', 'passage', 'positive'])"),
        (8, "several document fields ['passage', 'positive']; keep one"),
        (9, "the query must be a text, got int"),
        (11, "grade None is not a finite number"),
    ]
    assert [(p.line, p.reason) for p in report.empty_texts] == [(7, "the query is empty")]
    assert [(p.kind, p.line) for p in report.duplicates] == [("duplicate_pair", 10)]
    assert not report.ok


def test_pairs_ids_widen_past_9999(tmp_path):
    rows = "".join(f"query {i},doc\n" for i in range(10_000))
    ds, report = load_pairs(write(tmp_path / "many.csv", "query,document\n" + rows))
    assert report.ok
    assert ds.query_ids[0] == "q00001" and ds.query_ids[-1] == "q10000"
    assert ds.doc_ids == ["d0001"]


def test_pairs_rejects_unknown_extension(tmp_path):
    with pytest.raises(ValueError, match=r"cannot tell the format from the extension '\.txt'"):
        load_pairs(write(tmp_path / "pairs.txt", "query,document\na,b\n"))
    with pytest.raises(ValueError, match=r"extension '\.json'"):
        load_pairs(write(tmp_path / "pairs.json", "{}"))


# --------------------------------------------------------------------------------------------
# dispatch
# --------------------------------------------------------------------------------------------


def test_load_dataset_dispatches_on_the_path(tmp_path):
    folder = make_beir(tmp_path / "beir")
    ds, _ = load_dataset(folder, split="train")
    assert ds.query_ids == ["q3"]
    ds, _ = load_dataset(write(tmp_path / "qa.json", json.dumps(LLAMA_GOOD)))
    assert ds.query_ids == ["q1", "q2", "q3"]
    ds, _ = load_dataset(write(tmp_path / "p.csv", "query,document\na,b\n"))
    assert ds.relevant == {"q0001": {"d0001": 1.0}}
    ds, _ = load_dataset(write(tmp_path / "p.jsonl", '{"query": "a", "document": "b"}\n'))
    assert ds.relevant == {"q0001": {"d0001": 1.0}}
    with pytest.raises(ValueError, match="cannot tell the layout"):
        load_dataset(write(tmp_path / "p.parquet", ""))
    with pytest.raises(ValueError, match="does not exist"):
        load_dataset(tmp_path / "nothing.csv")
