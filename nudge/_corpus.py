"""One chunked pass over the document embeddings.

The pass is the only place that touches every document: it L2-normalises each chunk (rows
that are already unit length are kept bit for bit), optionally writes the normalised rows to
an output array, and keeps, for every validation query, the
best scores among the documents that are *not* listed in ``exclude``. Working memory is
bounded by ``chunk_size`` rows (plus one (n_queries x chunk_size) score block).
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ._validation import check_row_norms

DEFAULT_CHUNK_SIZE = 4096


def unit_tolerance(dtype: np.dtype) -> float:
    """Rows whose norm is within this of 1 count as unit length and are left untouched."""
    return 16 * float(np.finfo(dtype).eps)


def normalise_block(block: np.ndarray, name: str = "embeddings", offset: int = 0) -> np.ndarray:
    """L2-normalise the rows of ``block``; returns ``block`` itself when all rows are unit length.

    Raises ``ValueError`` (naming absolute row ``offset + i``) on NaN/inf or zero rows.
    """
    # A fast pass in the input dtype flags candidates; they are re-checked in float64.
    sq = np.einsum("ij,ij->i", block, block)
    check_row_norms(sq, name, offset, block=block)
    maybe = np.flatnonzero(np.abs(sq - 1.0) > unit_tolerance(block.dtype))
    if maybe.size == 0:
        return block
    exact = np.sqrt(np.einsum("ij,ij->i", block[maybe], block[maybe], dtype=np.float64))
    off = maybe[np.abs(exact - 1.0) > unit_tolerance(block.dtype)]
    if off.size == 0:
        return block
    out = block.copy()
    norms = exact[np.abs(exact - 1.0) > unit_tolerance(block.dtype)]
    out[off] = (block[off] / norms[:, None]).astype(block.dtype, copy=False)
    return out


def fingerprint(embeddings: np.ndarray, workers: int | None = None) -> str:
    """SHA-256 fingerprint of an embedding matrix: shape, dtype and bytes in C order.

    A two-level hash: the rows are cut into blocks of about 8 MiB, each block is hashed with
    SHA-256 (in ``workers`` threads, default one per core: hashlib releases the GIL), and the
    block digests are hashed together with the shape and dtype. The block size is fixed, so the
    result depends only on the array's content.
    """
    workers = workers or os.cpu_count() or 1
    rows = max(1, _HASH_BLOCK_BYTES // max(1, embeddings.itemsize * embeddings.shape[1]))
    starts = range(0, embeddings.shape[0], rows)

    def digest(start: int) -> bytes:
        return hashlib.sha256(np.ascontiguousarray(embeddings[start : start + rows])).digest()

    if len(starts) > 1 and workers > 1:
        digests = list(_hash_pool(workers).map(digest, starts))
    else:
        digests = [digest(start) for start in starts]
    h = hashlib.sha256(f"nudge-fingerprint/1|{embeddings.shape}|{embeddings.dtype.str}|".encode())
    for d in digests:
        h.update(d)
    return h.hexdigest()


_HASH_BLOCK_BYTES = 8 * 2**20
_POOLS: dict[int, ThreadPoolExecutor] = {}


def _hash_pool(workers: int) -> ThreadPoolExecutor:
    """A long-lived pool of hashing threads (starting threads on every call costs time)."""
    if workers not in _POOLS:
        _POOLS[workers] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nudge-hash")
    return _POOLS[workers]


def corpus_pass(
    embeddings: np.ndarray,
    queries: np.ndarray,
    exclude: np.ndarray,
    k: int,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    out: np.ndarray | None = None,
    name: str = "embeddings",
) -> np.ndarray:
    """Score every query against every non-excluded document, keeping the top ``k`` scores.

    Parameters
    ----------
    embeddings : ndarray, shape (N, d)
        Document embeddings (normalised on the fly; not modified).
    queries : ndarray, shape (n_q, d)
        Query embeddings, same dtype.
    exclude : ndarray of int64, shape (c,)
        Sorted document indices to leave out.
    k : int
        How many best scores to keep per query.
    chunk_size : int
        Documents per chunk.
    out : ndarray, shape (N, d), optional
        Receives the normalised documents.

    Returns
    -------
    ndarray, shape (n_q, k)
        Best scores of the other documents per query, descending, padded with ``-inf``.
    """
    best = np.full((queries.shape[0], k), -np.inf, dtype=queries.dtype)
    best = _scan(embeddings, queries, exclude, k, chunk_size, out, name, best)
    if k > 1:
        best = -np.sort(-best, axis=1)
    return best


def normalise_rows(
    embeddings: np.ndarray, out: np.ndarray | None = None, *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> None:
    """Check every row (NaN/inf, zero) in chunks and write the normalised rows to ``out`` if given."""
    no_queries = embeddings[:0]
    _scan(embeddings, no_queries, np.empty(0, np.int64), 1, chunk_size, out, "embeddings", None)


class MatrixCorpus:
    """Documents held as one (N, d) matrix: how :func:`nudge.estimator.fit_nudge` reads them.

    ``top_scores`` is the chunked corpus pass; when ``out`` is given that pass also writes the
    normalised documents into it.
    """

    def __init__(self, embeddings: np.ndarray, *, chunk_size: int = DEFAULT_CHUNK_SIZE, out=None) -> None:
        self.embeddings, self.chunk_size, self.out = embeddings, chunk_size, out

    def rows(self, indices: np.ndarray) -> np.ndarray:
        """Normalised rows ``indices``, shape (len(indices), d) (bit for bit those of the pass)."""
        return normalise_block(self.embeddings[indices])

    def top_scores(self, queries: np.ndarray, exclude: np.ndarray, k: int) -> np.ndarray:
        """Per query, the ``k`` best scores of the documents not in ``exclude``: (n_q, k)."""
        return corpus_pass(self.embeddings, queries, exclude, k, chunk_size=self.chunk_size, out=self.out)


def _scan(embeddings, queries, exclude, k, chunk_size, out, name, best):
    n, nq = embeddings.shape[0], queries.shape[0]
    # One score buffer for all chunks: a fresh (n_queries x chunk) array per chunk would cost
    # page faults on every chunk.
    buffer = np.empty((nq, min(chunk_size, n)), dtype=queries.dtype) if best is not None else None
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        block = normalise_block(embeddings[start:stop], name, start)
        if out is not None:
            out[start:stop] = block
        if best is None:
            continue
        scores = buffer if stop - start == buffer.shape[1] else np.empty((nq, stop - start), dtype=queries.dtype)
        np.matmul(queries, block.T, out=scores)
        lo, hi = np.searchsorted(exclude, [start, stop])
        if hi > lo:
            scores[:, exclude[lo:hi] - start] = -np.inf
        if k == 1:
            np.maximum(best[:, 0], scores.max(axis=1), out=best[:, 0])
        else:
            best = merge_top(best, scores, k)
    return best


def merge_top(best: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """Top ``k`` values per row of ``best`` and ``scores`` together (unsorted)."""
    if scores.shape[1] > k:
        scores = -np.partition(-scores, k - 1, axis=1)[:, :k]
    both = np.concatenate([best, scores], axis=1)
    return -np.partition(-both, k - 1, axis=1)[:, :k]
