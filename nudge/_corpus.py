"""One chunked pass over the document embeddings.

The pass is the only place that touches every document: it L2-normalises each chunk (rows
that are already unit length are kept bit for bit), optionally writes the normalised rows to
an output array and feeds the raw bytes to a hash, and keeps, for every validation query, the
best scores among the documents that are *not* listed in ``exclude``. Working memory is
bounded by ``chunk_size`` rows (plus one (n_queries x chunk_size) score block).
"""

from __future__ import annotations

import hashlib

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
    sq = np.einsum("ij,ij->i", block, block, dtype=np.float64)
    check_row_norms(sq, name, offset, block=block)
    norms = np.sqrt(sq)
    off = np.abs(norms - 1.0) > unit_tolerance(block.dtype)
    if not off.any():
        return block
    out = block.copy()
    out[off] = (block[off] / norms[off, None]).astype(block.dtype, copy=False)
    return out


def fingerprint(embeddings: np.ndarray, chunk_size: int = 65536) -> str:
    """SHA-256 of an embedding matrix: its shape, dtype and bytes in C order."""
    h = _new_hash(embeddings)
    for start in range(0, embeddings.shape[0], chunk_size):
        h.update(np.ascontiguousarray(embeddings[start : start + chunk_size]))
    return h.hexdigest()


def _new_hash(embeddings: np.ndarray) -> hashlib._Hash:
    h = hashlib.sha256()
    h.update(f"{embeddings.shape}|{embeddings.dtype.str}|".encode())
    return h


def corpus_pass(
    embeddings: np.ndarray,
    queries: np.ndarray,
    exclude: np.ndarray,
    k: int,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    out: np.ndarray | None = None,
    want_hash: bool = False,
    name: str = "embeddings",
) -> tuple[np.ndarray, str | None]:
    """Score every query against every non-excluded document, keeping the top ``k`` scores.

    Parameters
    ----------
    embeddings : ndarray, shape (N, d)
        Document embeddings (normalised on the fly; not modified).
    queries : ndarray, shape (n_q, d)
        Query embeddings, same dtype.
    exclude : ndarray of int64, shape (c,)
        Sorted document indices to leave out of the background scores.
    k : int
        How many best background scores to keep per query.
    chunk_size : int
        Documents per chunk.
    out : ndarray, shape (N, d), optional
        Receives the normalised documents.
    want_hash : bool
        Also return the :func:`fingerprint` of ``embeddings``.

    Returns
    -------
    background : ndarray, shape (n_q, k)
        Best background scores per query, descending, padded with ``-inf``.
    digest : str or None
        The fingerprint when ``want_hash``.
    """
    n = embeddings.shape[0]
    nq = queries.shape[0]
    best = np.full((nq, k), -np.inf, dtype=queries.dtype)
    h = _new_hash(embeddings) if want_hash else None
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        raw = embeddings[start:stop]
        if h is not None:
            h.update(np.ascontiguousarray(raw))
        block = normalise_block(raw, name, start)
        if out is not None:
            out[start:stop] = block
        if nq == 0:
            continue
        scores = queries @ block.T
        lo, hi = np.searchsorted(exclude, [start, stop])
        if hi > lo:
            scores[:, exclude[lo:hi] - start] = -np.inf
        if k == 1:
            np.maximum(best[:, 0], scores.max(axis=1), out=best[:, 0])
        else:
            best = merge_top(best, scores, k)
    if k > 1:
        best = -np.sort(-best, axis=1)
    return best, (h.hexdigest() if h is not None else None)


def merge_top(best: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """Top ``k`` values per row of ``best`` and ``scores`` together (unsorted)."""
    if scores.shape[1] > k:
        scores = -np.partition(-scores, k - 1, axis=1)[:, :k]
    both = np.concatenate([best, scores], axis=1)
    return -np.partition(-both, k - 1, axis=1)[:, :k]
