"""Property-based fuzzing (hypothesis) of the dataset loaders: CSV/TSV and JSONL pair files and LlamaIndex
JSON. Whatever the bytes, a loader returns a dataset with a report, or raises ``ValueError`` with a
message: never another exception, never a traceback from deep inside."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nudge.production.cli import main
from nudge.production.datasets import load_dataset

EXAMPLES = int(os.environ.get("NUDGE_FUZZ_EXAMPLES", "60"))  # more for a longer search
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
CELL = st.one_of(TEXT, st.sampled_from(["", " ", '"', '""', "query", "document", "grade", "\\", "\r", "nan", "-1"]))


def load(name: str, data: bytes):
    """load_dataset on ``data`` saved as ``name``: returns the dataset, or the ValueError's message."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        try:
            dataset, report = load_dataset(path)
        except ValueError as exc:
            assert str(exc).strip(), "a ValueError without a message"
            return str(exc)
        report.summary()  # the report renders
        assert set(dataset.relevant) <= set(dataset.queries)
        assert all(d in dataset.corpus for docs in dataset.relevant.values() for d in docs)
        return dataset


@SETTINGS
@given(st.binary(max_size=400))
def test_any_bytes(data):
    for name in ("pairs.csv", "pairs.tsv", "pairs.jsonl", "data.json"):
        load(name, data)


@SETTINGS
@given(st.lists(st.lists(CELL, min_size=0, max_size=4), max_size=8), st.sampled_from([",", "\t", ";"]))
def test_csv_tables(rows, sep):
    header = [["query", "document"], ["question", "answer", "grade"], ["q"], []][len(rows) % 4]
    text = "\n".join(sep.join(f'"{c}"' if i % 2 else c for i, c in enumerate(r)) for r in [header, *rows])
    load("pairs.csv" if sep != "\t" else "pairs.tsv", text.encode("utf-8", "surrogatepass"))


JSON_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=True), TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)),
    max_leaves=8,
)
PAIR_KEYS = st.sampled_from(["query", "question", "document", "answer", "passage", "positive", "grade", "x"])


@SETTINGS
@given(st.lists(st.one_of(st.dictionaries(PAIR_KEYS, JSON_VALUE, max_size=4), JSON_VALUE), max_size=6))
def test_jsonl_lines(objects):
    load("pairs.jsonl", "\n".join(json.dumps(o) for o in objects).encode())


LLAMA_KEYS = st.sampled_from(["queries", "corpus", "relevant_docs", "mode", "extra"])


@SETTINGS
@given(
    st.dictionaries(
        LLAMA_KEYS,
        st.one_of(JSON_VALUE, st.dictionaries(TEXT, st.one_of(TEXT, st.lists(TEXT, max_size=3)), max_size=3)),
        max_size=5,
    )
)
def test_llamaindex_files(obj):
    load("data.json", json.dumps(obj).encode())


def test_the_cli_reports_a_bad_file_in_full_with_line_numbers(tmp_path, capsys):
    path = tmp_path / "pairs.csv"
    path.write_text('query,document\nhow do I,\n,"a passage"\nok,fine\n', encoding="utf-8")
    assert main(["fit", str(path), "--out", str(tmp_path / "run"), "--embedder", "tessera"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nudge fit: error: Validation report") and err.count("\n") > 2, err
    assert "line 2" in err or ":2" in err, err
    assert not (tmp_path / "run").exists()
