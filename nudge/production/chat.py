"""A chat model behind any OpenAI-compatible ``POST {base_url}/chat/completions`` endpoint (notebook 10).

The last step of a retrieval-augmented answer: the passages NUDGE helps to retrieve go into a
prompt, and a chat model writes the answer. Configuration follows :class:`OpenAIEmbedder`, so one
gateway (the guide's "unified API", e.g. Apertis AI) or one local server serves both::

    export OPENAI_BASE_URL=https://your-gateway.example/v1   # up to and including /v1
    export OPENAI_API_KEY=...                                # never printed or logged
    export NUDGE_CHAT_MODEL=gpt-4o-mini                      # any chat model the endpoint lists

    client = ChatClient()                                    # or ChatClient(model, base_url, api_key)
    text = client.complete([{"role": "user", "content": "Hello"}])

Standard library HTTP only, with the embedder's retries (:func:`~nudge.production.embedders.post_json`):
429 and 5xx are retried honouring ``Retry-After``; 400, 401, 403 and 404 give one clear line at once.
"""

from __future__ import annotations

import json
import logging
import numbers
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .embedders import endpoint_settings, post_json

__all__ = ["CHAT_MODEL_VARIABLE", "ChatClient", "ChatServiceError", "chat_configured"]

#: The environment variable naming the chat model (there is no default: sending prompts is opt-in).
CHAT_MODEL_VARIABLE = "NUDGE_CHAT_MODEL"
_ROLES = frozenset({"system", "user", "assistant"})
log = logging.getLogger(__name__)


class ChatServiceError(RuntimeError):
    """The chat service refused a request, kept failing, or answered something unusable.

    Attributes
    ----------
    status : int or None
        The HTTP status of the last answer, ``None`` for connection errors and bad answers.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def chat_configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment names a chat endpoint: ``OPENAI_API_KEY`` and ``NUDGE_CHAT_MODEL`` are set.

    ``OPENAI_BASE_URL`` is optional (default OpenAI itself). Notebooks and ``nudge ask`` send
    prompts only when this is true.
    """
    env = os.environ if environ is None else environ
    return bool(env.get("OPENAI_API_KEY", "").strip()) and bool(env.get(CHAT_MODEL_VARIABLE, "").strip())


def _check_messages(messages: object) -> list[dict[str, str]]:
    if not isinstance(messages, Sequence) or isinstance(messages, (str, bytes)) or len(messages) == 0:
        raise ValueError(
            f"messages must be a non-empty list of {{'role': ..., 'content': ...}} dicts, got {type(messages).__name__}"
        )
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or set(m) != {"role", "content"}:
            raise ValueError(f"messages[{i}] must be a dict with exactly the keys 'role' and 'content', got {m!r:.80}")
        if m["role"] not in _ROLES:
            raise ValueError(f"messages[{i}]['role'] must be one of {sorted(_ROLES)}, got {m['role']!r}")
        if not isinstance(m["content"], str) or not m["content"].strip():
            raise ValueError(f"messages[{i}]['content'] must be a non-empty string")
        out.append({"role": m["role"], "content": m["content"]})
    return out


class ChatClient:
    """Answers from any OpenAI-compatible chat-completions endpoint.

    Parameters
    ----------
    model : str, optional
        Chat model name; default ``$NUDGE_CHAT_MODEL`` (a ``ValueError`` when neither is set).
    base_url : str, optional
        Up to and including ``/v1``; default ``$OPENAI_BASE_URL``, else ``https://api.openai.com/v1``.
    api_key : str, optional
        Default ``$OPENAI_API_KEY`` (a local server that checks no key accepts any value).
    temperature : float
        0 (the default) makes answers as repeatable as the service allows.
    max_tokens : int, optional
        Longest answer, in tokens; ``None`` = the service's default.
    max_retries : int
        Retries per request after the first attempt (0 = never retry).
    timeout : float
        Seconds to wait for each answer (chat models are slower than embedding models).
    sleep : callable
        ``sleep(seconds)`` used between retries; tests pass a stub so they do not wait.

    Attributes
    ----------
    model_name, base_url : str
    requests_sent : int
        HTTP requests made so far, retries included.
    tokens_used : int
        Sum of ``usage.total_tokens`` reported by the service (prompt and answer).
    """

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        max_retries: int = 5,
        timeout: float = 60.0,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        model = model if model is not None else os.environ.get(CHAT_MODEL_VARIABLE)
        if model is None or (isinstance(model, str) and not model.strip()):
            raise ValueError(
                f"no chat model: set the environment variable {CHAT_MODEL_VARIABLE} (e.g. gpt-4o-mini at OpenAI, "
                "or a name your gateway or local server lists under /v1/models) or pass model=..."
            )
        if not isinstance(model, str):
            raise ValueError(f"model must be a non-empty string, got {model!r}")
        base_url, api_key = endpoint_settings(base_url, api_key, max_retries=max_retries, timeout=timeout, sleep=sleep)
        if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not 0 <= temperature <= 2:
            raise ValueError(f"temperature must be a number from 0 to 2, got {temperature!r}")
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, numbers.Integral) or max_tokens < 1
        ):
            raise ValueError(f"max_tokens must be a positive integer or None, got {max_tokens!r}")
        self.model_name = model.strip()
        self.base_url = base_url
        self.temperature = float(temperature)
        self.max_tokens = None if max_tokens is None else int(max_tokens)
        self.max_retries = int(max_retries)
        self.timeout = float(timeout)
        self.requests_sent = 0
        self.tokens_used = 0
        self._api_key = api_key
        self._sleep = sleep
        self._url = f"{self.base_url}/chat/completions"

    def __repr__(self) -> str:  # never shows the key
        return f"{type(self).__name__}(model={self.model_name!r}, base_url={self.base_url!r})"

    def complete(self, messages: Sequence[Mapping[str, str]]) -> str:
        """Send a conversation and return the model's answer.

        Parameters
        ----------
        messages : list of dict
            ``{"role": "system" | "user" | "assistant", "content": str}``, in order.

        Returns
        -------
        str
            The text of the first choice.
        """
        payload: dict[str, Any] = {
            "model": self.model_name,
            "messages": _check_messages(messages),
            "temperature": self.temperature,
        }
        if self.max_tokens is not None:
            payload["max_tokens"] = self.max_tokens

        def sent() -> None:
            self.requests_sent += 1

        raw = post_json(
            self._url,
            payload,
            self._api_key,
            timeout=self.timeout,
            max_retries=self.max_retries,
            refused=self._refused,
            sleep=self._sleep,
            error=ChatServiceError,
            service="the chat service",
            what=f"a prompt to {self.model_name!r}",
            on_send=sent,
            logger=log,
        )
        return self._parse(raw)

    def _refused(self, status: int, detail: str) -> ChatServiceError:
        said = f" The server said: {detail}" if detail else ""
        if status == 401:
            message = (
                f"the chat service at {self.base_url} rejected the API key (HTTP 401): check OPENAI_API_KEY "
                "(or api_key=...) is a valid, unexpired key for this service (a gateway needs its own key, and "
                f"OPENAI_BASE_URL must point to it).{said}"
            )
        elif status == 403:
            message = (
                f"the API key may not use model {self.model_name!r} at {self.base_url} (HTTP 403): check the "
                f"key's permissions.{said}"
            )
        elif status == 404:
            message = (
                f"{self._url} or model {self.model_name!r} was not found (HTTP 404): base_url should end in /v1 "
                f"and {CHAT_MODEL_VARIABLE} must name a chat model that service has.{said}"
            )
        elif status == 400:
            message = (
                f"the chat service rejected the request (HTTP 400): is {self.model_name!r} a chat model, and does "
                f"the prompt fit its context window?{said}"
            )
        else:
            message = f"the chat service rejected the request (HTTP {status}).{said}"
        return ChatServiceError(" ".join(message.split()), status=status)

    def _parse(self, raw: bytes) -> str:
        def bad(what: str) -> ChatServiceError:
            return ChatServiceError(f"unusable answer from {self._url}: {what}; start of answer: {raw[:200]!r}")

        try:
            doc = json.loads(raw)
        except ValueError:
            raise bad("not JSON") from None
        choices = doc.get("choices") if isinstance(doc, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise bad("no 'choices' list")
        message = choices[0].get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):  # some servers send content as parts: [{"type": "text", "text": ...}]
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
        if not isinstance(content, str):
            refusal = message.get("refusal") if isinstance(message, dict) else None
            raise bad(f"the model refused: {refusal}" if isinstance(refusal, str) else "no text in choices[0].message")
        usage = doc.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("total_tokens"), int):
            self.tokens_used += usage["total_tokens"]
        return content
