"""Tests of the RAG step (retrieval, numbered prompt, citations) and of ``nudge ask``; the answers
come from the fake chat-completions server of tests/test_chat.py."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest
import test_chat
from conftest import REPO

from nudge import Nudge
from nudge.production.chat import ChatClient
from nudge.production.cli import main
from nudge.production.datasets import load_dataset
from nudge.production.rag import (
    SYSTEM_PROMPT,
    Citations,
    Passage,
    answer_question,
    build_messages,
    context_hit,
    format_passages,
    parse_citations,
    retrieve_passages,
)
from nudge.retrieval import search
from nudge.teaching.bundled import data_dir, load_tessera
from nudge.teaching.exercises import check_context_hit

PAIRS = data_dir() / "examples" / "support_pairs.csv"
IDS = ["d7", "d3", "d9"]
API_KEY, MODEL = test_chat.API_KEY, test_chat.MODEL
chat_service = test_chat.chat_service  # the fake chat server (a fixture)
clean_env = test_chat.clean_env  # autouse: no real key, endpoint or proxy


# ------------------------------------------------------------------------------------------ retrieval
def toy() -> tuple[np.ndarray, list[str], dict[str, str]]:
    docs = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-1.0, 0.0]], dtype=np.float32)
    ids = ["a", "b", "c", "d"]
    return docs, ids, {d: f"text of {d}" for d in ids}


def test_retrieve_passages_numbers_best_first():
    docs, ids, corpus = toy()
    before = docs.copy()
    got = retrieve_passages(np.array([0.0, 1.0], dtype=np.float32), docs, ids, corpus, k=3)
    assert [(p.number, p.doc_id, p.row) for p in got] == [(1, "c", 2), (2, "b", 1), (3, "a", 0)]
    assert [p.score for p in got] == pytest.approx([1.0, 0.8, 0.0])
    assert got[0].text == "text of c"
    np.testing.assert_array_equal(docs, before)  # input untouched


def test_retrieve_passages_follows_the_vectors_given():
    docs, ids, corpus = toy()
    moved = docs.copy()
    moved[0] = [0.0, 2.0]  # a NUDGE-M-like longer vector now wins
    got = retrieve_passages(np.array([[0.0, 1.0]], dtype=np.float32), moved, ids, corpus, k=1)
    assert [p.doc_id for p in got] == ["a"]


def test_retrieve_passages_rejects_bad_input():
    docs, ids, corpus = toy()
    with pytest.raises(ValueError, match="question_vector must have shape"):
        retrieve_passages(np.ones((2, 2), dtype=np.float32), docs, ids, corpus)
    with pytest.raises(ValueError, match="doc_ids has 3 ids but doc_embeddings has 4 rows"):
        retrieve_passages(np.ones(2, dtype=np.float32), docs, ids[:3], corpus)
    with pytest.raises(ValueError, match="corpus has no text for document 'c'"):
        retrieve_passages(np.array([0.0, 1.0], dtype=np.float32), docs, ids, {"a": "x"}, k=2)


# ------------------------------------------------------------------------------------------ prompt
def test_messages_number_the_passages_in_order():
    messages = build_messages("  How do I retry?  ", ["first passage", "second passage"])
    assert messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert messages[1]["role"] == "user"
    assert messages[1]["content"] == (
        "Passages:\n\n[1] first passage\n\n[2] second passage\n\nQuestion: How do I retry?"
    )
    assert "[1]" in SYSTEM_PROMPT


def test_format_passages_takes_passage_objects():
    ps = [Passage(1, "x", 4, 0.5, "Title\nbody "), Passage(2, "y", 0, 0.4, "other")]
    assert format_passages(ps) == "[1] Title\nbody\n\n[2] other"


@pytest.mark.parametrize(
    ("question", "passages", "message"),
    [
        ("", ["p"], "question must be a non-empty string"),
        ("q", [], "passages must be a non-empty list"),
        ("q", "p", "passages must be a non-empty list"),
        ("q", ["ok", " "], r"passages\[1\] has no text"),
    ],
)
def test_bad_prompt_input_is_named(question, passages, message):
    with pytest.raises(ValueError, match=message):
        build_messages(question, passages)


# ------------------------------------------------------------------------------------------ citations
@pytest.mark.parametrize(
    ("answer", "numbers"),
    [
        ("Use X [1]. Also [2][3].", (1, 2, 3)),
        ("See [3, 1] and [2-3].", (3, 1, 2)),
        ("[Passage 2] and [#1] and [passages 1 and 3]", (2, 1, 3)),
        ("twice [2] and [2]", (2,)),
    ],
)
def test_citations_map_to_document_ids(answer, numbers):
    c = parse_citations(answer, IDS)
    assert c.numbers == numbers
    assert c.doc_ids == tuple(IDS[n - 1] for n in numbers)
    assert c.problems == ()


def test_brackets_without_digits_are_text():
    c = parse_citations("call arr[i] or read [the docs](https://x) [1]", IDS)
    assert c == Citations((1,), ("d7",), ())


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ("bad [1.5]", "malformed citation '[1.5]' at character 4"),
        ("bad [a1]", "malformed citation '[a1]'"),
        ("reversed [3-1]", "malformed citation '[3-1]'"),
        ("huge [1-1000]", "malformed citation '[1-1000]'"),
        ("far [7]", "citation [7] at character 4 is out of range: the prompt had 3 passages"),
        ("zero [0]", "citation [0] at character 5 is out of range"),
        ("cut off [2", "unclosed citation '[2' at character 8"),
        ("I cannot answer from these passages.", "the answer cites no passage"),
    ],
)
def test_unusable_citations_are_reported_not_raised(answer, problem):
    c = parse_citations(answer, IDS)
    assert c.numbers == ()
    assert any(problem in p for p in c.problems), c.problems


def test_good_and_bad_citations_together():
    c = parse_citations("A [1]. B [4]. C [x2]. D [3]", IDS)
    assert c.numbers == (1, 3)
    assert c.doc_ids == ("d7", "d9")
    assert len(c.problems) == 2


def test_parse_citations_needs_a_string():
    with pytest.raises(ValueError, match="answer must be a string, got NoneType"):
        parse_citations(None, IDS)


# ------------------------------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def tessera():
    return load_tessera()


def tessera_passages(t, k=3):
    q = t.query_ids.index(t.split["test"][0])
    question = t.dataset.queries[t.query_ids[q]]
    return question, retrieve_passages(t.query_embeddings[q], t.doc_embeddings, t.doc_ids, t.dataset.corpus, k=k)


def test_the_prompt_reaching_the_server_holds_the_passages_in_order(chat_service, tessera):
    question, passages = tessera_passages(tessera)
    chat_service.reply = lambda body: "Do this [2]. Then that [1][9]. And [oops3]."
    result = answer_question(ChatClient(MODEL, chat_service.base_url, API_KEY), question, passages)
    sent = chat_service.requests[0]["messages"]
    assert sent == list(result.messages)
    prompt = sent[1]["content"]
    positions = [prompt.index(f"[{p.number}] {p.text.strip()}") for p in passages]
    assert positions == sorted(positions)
    assert prompt.endswith(f"Question: {question}")
    assert result.citations.numbers == (2, 1)
    assert result.citations.doc_ids == (passages[1].doc_id, passages[0].doc_id)
    assert len(result.citations.problems) == 2  # [9] out of range, [oops3] malformed
    assert result.answer.startswith("Do this [2]")


def test_answer_question_needs_passages(chat_service):
    with pytest.raises(ValueError, match="passages must be Passage objects"):
        answer_question(ChatClient(MODEL, chat_service.base_url, API_KEY), "q", ["text"])


# ------------------------------------------------------------------------------------------ nudge ask
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("ask") / "run"
    assert main(["fit", str(PAIRS), "--out", str(out), "--embedder", "tessera", "--method", "M"]) == 0
    return out


def a_question() -> str:
    return PAIRS.read_text(encoding="utf-8").splitlines()[1].split(",")[0]


def test_ask_without_endpoint_prints_the_passages(run_dir, capsys):
    capsys.readouterr()
    assert main(["ask", str(run_dir), a_question(), "--k", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n[") == 3 and "[1] d0001" in out
    assert "no chat endpoint configured: set OPENAI_API_KEY and NUDGE_CHAT_MODEL" in out


def test_ask_original_and_nudged_vectors(run_dir, capsys):
    for vectors in ("original", "nudged"):
        assert main(["ask", str(run_dir), a_question(), "--vectors", vectors, "--no-answer"]) == 0
        out = capsys.readouterr().out
        assert f"with the {vectors} vectors" in out and "no chat endpoint" not in out
        assert out.count("\n[") == 5


def test_ask_with_endpoint_prints_the_cited_answer(run_dir, chat_service, monkeypatch, capsys, caplog):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", chat_service.base_url)
    monkeypatch.setenv("NUDGE_CHAT_MODEL", MODEL)
    chat_service.reply = lambda body: "Create it in the dashboard [1] and test it locally [2] [12]."
    with caplog.at_level(logging.DEBUG):
        assert main(["ask", str(run_dir), a_question(), "--k", "3"]) == 0
    out = capsys.readouterr()
    assert f"answer from {MODEL}:\nCreate it in the dashboard [1]" in out.out
    assert "cited: [1] d0001, [2] " in out.out
    assert "citation problem: citation [12] at character" in out.out
    corpus = load_dataset(PAIRS)[0].corpus
    assert f"[1] {corpus['d0001'].strip()}\n\n[2] " in chat_service.user_prompts[0]  # the passage shown as [1]
    assert API_KEY not in out.out + out.err + caplog.text


def test_ask_rejected_key_is_one_line(run_dir, chat_service, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-the-right-one-123")
    monkeypatch.setenv("OPENAI_BASE_URL", chat_service.base_url)
    monkeypatch.setenv("NUDGE_CHAT_MODEL", MODEL)
    assert main(["ask", str(run_dir), a_question()]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nudge ask: error: the chat service at") and err.count("\n") == 1
    assert "HTTP 401" in err and "sk-not-the-right-one-123" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ask", "{run}", "a question nobody wrote down"], "the tessera embedder only knows the bundled questions"),
        (["ask", "{run}", "  "], "QUESTION is empty"),
        (["ask", "{run}", "q", "--k", "0"], "--k must be a positive integer"),
        (["ask", "{missing}", "q"], "is not a run folder"),
    ],
)
def test_ask_errors_are_one_line(run_dir, tmp_path, capsys, argv, message):
    argv = [a.format(run=run_dir, missing=tmp_path / "nothing") for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("nudge ask: error: ") and err.count("\n") == 1
    assert message in err


def test_ask_runs_as_a_command(run_dir):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-m", "nudge", "ask", str(run_dir), a_question(), "--k", "2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("top 2 passages for")
    assert "no chat endpoint configured" in done.stdout


# ------------------------------------------------------------------------------------------ notebook 10
def test_context_hit_is_the_top_k_share(tessera):
    test = tessera.query_set("test")
    hits = {k: context_hit(test, tessera.doc_embeddings, k) for k in (1, 3, 5)}
    assert hits[1].dtype == np.float64 and set(np.unique(hits[3])) <= {0.0, 1.0}
    assert hits[1].mean() <= hits[3].mean() <= hits[5].mean()
    top, _ = search(test.embeddings, tessera.doc_embeddings, k=3)
    expected = [any(d in answers for d in row) for row, answers in zip(top.tolist(), test.answers, strict=True)]
    np.testing.assert_array_equal(hits[3], np.array(expected, dtype=float))
    with pytest.raises(ValueError, match="k must be a positive integer"):
        context_hit(test, tessera.doc_embeddings, 0)


def test_check_context_hit(tessera):
    docs, train, val = tessera.doc_embeddings, tessera.query_set("train"), tessera.query_set("val")
    test = tessera.query_set("test")
    nudged = Nudge("N").fit(docs, train, val).transform(docs)
    assert check_context_hit(context_hit(test, nudged, 2).mean())
    assert "replace None" in repr(check_context_hit(None))
    assert "original vectors" in repr(check_context_hit(context_hit(test, docs, 2).mean()))
    assert "another prompt size" in repr(check_context_hit(context_hit(test, nudged, 5).mean()))
    assert not check_context_hit("half")


def test_notebook_10_sends_its_prompts_when_an_endpoint_is_configured(chat_service, monkeypatch, tmp_path):
    """The endpoint branch of notebook 10 (nbval runs it without one) against the fake server."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", chat_service.base_url)
    monkeypatch.setenv("NUDGE_CHAT_MODEL", MODEL)
    monkeypatch.setenv("PYTHONPATH", ":".join(sys.path))
    path = REPO / "notebooks" / "10_rag_answer.ipynb"
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = {
        i: "".join(o.get("text", "") for o in c.get("outputs", []))
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code"
    }
    sending = next(text for text in outputs.values() if "requests," in text)
    assert sending.count("  original: Register the URL") == 4 and sending.count("  NUDGE-M: Register the URL") == 4
    assert "cites [" in sending and "problems: []" in sending
    assert len(chat_service.requests) == 8
    prompts = chat_service.user_prompts
    assert all(p.startswith("Passages:\n\n[1] ") and "\n\n[3] " in p and "\n\n[4] " not in p for p in prompts)
    assert all(API_KEY not in text for text in outputs.values())
