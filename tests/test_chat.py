"""Tests of ChatClient against a fake OpenAI-compatible ``/v1/chat/completions`` server on 127.0.0.1:
the protocol, retries of 429/5xx (honouring Retry-After), one-line refusals, and a key that never
shows up in reprs, errors, output or logs. The server is reused by tests/test_rag.py."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nudge.production.chat import ChatClient, ChatServiceError, chat_configured

API_KEY = "sk-chat-test-9f8e7d6c5b4a"
MODEL = "fake-chat-1"
TINY = 0.01  # seconds: the real sleep in retry tests, so they stay fast


def cite_first_two(body: dict) -> str:
    """The default fake model: answers citing passages [1] and [2]."""
    return "Register the URL in the dashboard [1]. Retries follow a schedule [2]."


class FakeChat:
    """State of the fake chat server: what it received and what it should answer next."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.times: list[float] = []
        self.injected: deque = deque()  # (status, headers, body) served before normal answers
        self.reply: Callable[[dict], object] = cite_first_two
        self.base_url = ""

    def inject(self, status: int, *, headers=None, body=None, times: int = 1) -> None:
        for _ in range(times):
            self.injected.append((status, headers or {}, body or {"error": {"message": "boom"}}))

    @property
    def user_prompts(self) -> list[str]:
        return [r["messages"][-1]["content"] for r in self.requests]


def make_handler(service: FakeChat) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def _send(self, status: int, doc: object, headers: dict | None = None) -> None:
            raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
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
                service.times.append(time.monotonic())
                action = service.injected.popleft() if service.injected else None
            if self.path != "/v1/chat/completions":
                return self._send(404, {"error": {"message": f"no route {self.path}"}})
            if self.headers.get("Authorization") != f"Bearer {API_KEY}":
                given = self.headers.get("Authorization", "").removeprefix("Bearer ")
                # like OpenAI, echo (part of) the key it got: the client must not repeat it
                return self._send(401, {"error": {"message": f"Incorrect API key provided: {given}."}})
            if action is not None:
                status, headers, doc = action
                return self._send(status, doc, headers)
            reply = service.reply(body)
            if isinstance(reply, bytes):
                return self._send(200, reply)
            message = {"role": "assistant", "content": reply}
            return self._send(
                200,
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "model": body["model"],
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                },
            )

    return Handler


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """Tests never see the developer's real key, endpoint, model or proxy."""
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "NUDGE_CHAT_MODEL", "NUDGE_EMBEDDING_MODEL"):
        monkeypatch.delenv(var, raising=False)
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def chat_service(request) -> FakeChat:
    state = FakeChat()
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
def client(chat_service, sleeps) -> ChatClient:
    def sleep(seconds: float) -> None:  # record the wait the client chose, then wait a tiny real time
        sleeps.append(seconds)
        time.sleep(TINY)

    return ChatClient(MODEL, chat_service.base_url, API_KEY, sleep=sleep, timeout=5.0)


HELLO = [{"role": "user", "content": "Hello"}]


# ------------------------------------------------------------------------------------------ protocol
def test_sends_the_chat_completions_protocol(client, chat_service):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
    assert client.complete(messages) == cite_first_two({})
    assert chat_service.requests == [{"model": MODEL, "messages": messages, "temperature": 0.0}]
    headers = chat_service.headers[0]
    assert headers["Authorization"] == f"Bearer {API_KEY}"
    assert headers["Content-Type"] == "application/json"
    assert client.requests_sent == 1
    assert client.tokens_used == 15


def test_max_tokens_and_temperature_are_sent(chat_service):
    c = ChatClient(MODEL, chat_service.base_url, API_KEY, temperature=0.3, max_tokens=50)
    c.complete(HELLO)
    assert chat_service.requests[0]["max_tokens"] == 50
    assert chat_service.requests[0]["temperature"] == 0.3


def test_content_given_as_parts_is_joined(client, chat_service):
    chat_service.reply = lambda body: [{"type": "text", "text": "A [1]"}, {"type": "text", "text": " B"}]
    assert client.complete(HELLO) == "A [1] B"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "not JSON"),
        (b'{"choices": []}', "no 'choices' list"),
        (b'{"choices": [{"message": {"content": null}}]}', r"no text in choices\[0\].message"),
        (b'{"choices": [{"message": {"content": null, "refusal": "no"}}]}', "the model refused: no"),
    ],
)
def test_unusable_answers_give_one_clear_error(client, chat_service, raw, message):
    chat_service.reply = lambda body: raw
    with pytest.raises(ChatServiceError, match=message):
        client.complete(HELLO)


# ------------------------------------------------------------------------------------------ retries
def test_429_with_retry_after_is_honoured(client, chat_service, sleeps):
    chat_service.inject(429, headers={"Retry-After": "0.05"})
    assert client.complete(HELLO) == cite_first_two({})
    assert sleeps == [0.05]
    assert client.requests_sent == 2
    assert len(chat_service.requests) == 2


def test_500_and_503_are_retried_with_backoff(client, chat_service, sleeps):
    chat_service.inject(500)
    chat_service.inject(503)
    assert client.complete(HELLO) == cite_first_two({})
    assert sleeps == [1.0, 2.0]  # no Retry-After: exponential backoff
    assert len(chat_service.requests) == 3
    assert chat_service.requests[0] == chat_service.requests[2]  # the same prompt again


def test_gives_up_after_max_retries_with_one_line(chat_service, sleeps):
    c = ChatClient(MODEL, chat_service.base_url, API_KEY, max_retries=2, sleep=sleeps.append)
    chat_service.inject(500, times=5)
    with pytest.raises(ChatServiceError) as info:
        c.complete(HELLO)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("the chat service failed 3 time(s) in a row")
    assert "HTTP 500" in message
    assert info.value.status == 500
    assert sleeps == [1.0, 2.0]


def test_retries_are_logged_without_the_key(client, chat_service, caplog):
    chat_service.inject(429, headers={"Retry-After": "0"}, body={"error": {"message": f"slow down {API_KEY}"}})
    with caplog.at_level(logging.DEBUG):
        client.complete(HELLO)
    assert "retrying in 0.0 s" in caplog.text
    assert [r.name for r in caplog.records] == ["nudge.production.chat"]
    assert "slow down ***" in caplog.text and API_KEY not in caplog.text


# ------------------------------------------------------------------------------------------ refusals
def test_401_gives_one_clear_line_without_the_key(chat_service, sleeps, capsys, caplog):
    wrong = "sk-wrong-key-5566778899"
    c = ChatClient(MODEL, chat_service.base_url, wrong, sleep=sleeps.append)
    with caplog.at_level(logging.DEBUG), pytest.raises(ChatServiceError) as info:
        c.complete(HELLO)
    message = str(info.value)
    assert "\n" not in message
    assert "rejected the API key (HTTP 401)" in message and "OPENAI_API_KEY" in message
    assert "Incorrect API key provided: ***" in message  # the server echoed the key: redacted
    assert wrong not in message and wrong not in repr(info.value)
    assert info.value.status == 401
    assert sleeps == []  # never retried
    out = capsys.readouterr()
    assert wrong not in out.out + out.err + caplog.text


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, "HTTP 400): is 'fake-chat-1' a chat model"),
        (403, "may not use model 'fake-chat-1'"),
        (404, "was not found (HTTP 404)"),
    ],
)
def test_refusals_are_one_line_and_not_retried(client, chat_service, sleeps, status, expected):
    chat_service.inject(status, body={"error": {"message": "context length exceeded\nsecond line"}})
    with pytest.raises(ChatServiceError) as info:
        client.complete(HELLO)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)
    assert "The server said: context length exceeded" in str(info.value)
    assert sleeps == []


def test_wrong_base_url_gives_404_advice(chat_service, sleeps):
    c = ChatClient(MODEL, chat_service.base_url.removesuffix("/v1"), API_KEY, sleep=sleeps.append)
    with pytest.raises(ChatServiceError, match="base_url should end in /v1"):
        c.complete(HELLO)


# ------------------------------------------------------------------------------------------ configuration
def test_configuration_from_environment(monkeypatch, chat_service):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", chat_service.base_url + "/")
    monkeypatch.setenv("NUDGE_CHAT_MODEL", "env-chat-model")
    assert chat_configured()
    c = ChatClient()
    assert c.model_name == "env-chat-model"
    assert c.base_url == chat_service.base_url
    c.complete(HELLO)
    assert chat_service.requests[0]["model"] == "env-chat-model"


def test_repr_never_shows_the_key(client):
    assert API_KEY not in repr(client) and API_KEY not in str(vars(client).get("model_name"))
    assert repr(client) == f"ChatClient(model={MODEL!r}, base_url={client.base_url!r})"


def test_chat_configured_needs_key_and_model():
    assert not chat_configured({})
    assert not chat_configured({"OPENAI_API_KEY": "k"})
    assert not chat_configured({"NUDGE_CHAT_MODEL": "m"})
    assert not chat_configured({"OPENAI_API_KEY": " ", "NUDGE_CHAT_MODEL": "m"})
    assert chat_configured({"OPENAI_API_KEY": "k", "NUDGE_CHAT_MODEL": "m"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": None}, "no chat model: set the environment variable NUDGE_CHAT_MODEL"),
        ({"model": " "}, "no chat model"),
        ({"model": 3}, "model must be a non-empty string"),
        ({"base_url": "ftp://x"}, "base_url must be an http:// or https:// URL"),
        ({"api_key": ""}, "no API key: set the environment variable OPENAI_API_KEY"),
        ({"temperature": 3}, "temperature must be a number from 0 to 2"),
        ({"max_tokens": 0}, "max_tokens must be a positive integer"),
        ({"max_retries": -1}, "max_retries must be an integer >= 0"),
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"sleep": 2}, "sleep must be a function"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    options = {"model": MODEL, "base_url": "http://127.0.0.1:9/v1", "api_key": API_KEY} | kwargs
    with pytest.raises(ValueError, match=message):
        ChatClient(**options)


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ("Hello", "messages must be a non-empty list"),
        ([], "messages must be a non-empty list"),
        ([{"role": "user"}], r"messages\[0\] must be a dict with exactly the keys"),
        ([{"role": "robot", "content": "x"}], r"messages\[0\]\['role'\] must be one of"),
        ([{"role": "user", "content": " "}], r"messages\[0\]\['content'\] must be a non-empty string"),
    ],
)
def test_bad_messages_are_refused_before_sending(client, chat_service, messages, message):
    with pytest.raises(ValueError, match=message):
        client.complete(messages)
    assert chat_service.requests == []
