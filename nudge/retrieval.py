"""Monitoring: top-k retrieval by dot product or cosine, and each query's answer rank (notebook 05).

Memory stays bounded by ``chunk_size`` documents: no (queries x corpus) matrix is built.
Ties are broken by the lower document index, so results are deterministic.
"""

from __future__ import annotations

import numpy as np

from ._corpus import DEFAULT_CHUNK_SIZE
from ._validation import check_answers, check_matrix, check_positive_int
from .directions import unit_rows

__all__ = ["first_relevant_rank", "search"]

_METRICS = ("dot", "cosine")


def _prepare(queries, corpus, metric, chunk_size):
    if metric not in _METRICS:
        raise ValueError(f"metric must be 'dot' or 'cosine', got {metric!r}")
    c = check_matrix(corpus, "corpus", nonzero_rows=metric == "cosine")
    q = check_matrix(queries, "queries", dim=c.shape[1], dtype=c.dtype, reference="the corpus rows")
    check_positive_int(chunk_size, "chunk_size")
    if metric == "cosine":
        q = unit_rows(q).astype(c.dtype)
    return q, c


def _block(corpus, start, stop, metric):
    block = corpus[start:stop]
    return unit_rows(block).astype(corpus.dtype) if metric == "cosine" else block


def search(
    queries: np.ndarray,
    corpus: np.ndarray,
    k: int = 10,
    *,
    metric: str = "dot",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best documents for every query.

    Parameters
    ----------
    queries : ndarray, shape (n_q, d)
    corpus : ndarray, shape (N, d)
        Same dtype as ``queries``.
    k : int
        Results per query (capped at N).
    metric : {"dot", "cosine"}
        Use "dot" for NUDGE-M output (its rows are not unit length).
    chunk_size : int
        Documents scored at a time.

    Returns
    -------
    indices : ndarray of int64, shape (n_q, k)
        Best first; ties by lower index.
    scores : ndarray, shape (n_q, k)
    """
    q, c = _prepare(queries, corpus, metric, chunk_size)
    k = min(check_positive_int(k, "k"), c.shape[0])
    best_s = np.full((q.shape[0], 0), -np.inf, dtype=c.dtype)
    best_i = np.empty((q.shape[0], 0), dtype=np.int64)
    for start in range(0, c.shape[0], chunk_size):
        stop = min(start + chunk_size, c.shape[0])
        s = q @ _block(c, start, stop, metric).T
        idx = np.broadcast_to(np.arange(start, stop), s.shape)
        if s.shape[1] > k:
            part = np.argpartition(-s, k - 1, axis=1)[:, :k]
            s, idx = np.take_along_axis(s, part, 1), np.take_along_axis(idx, part, 1)
        all_s = np.concatenate([best_s, s], axis=1)
        all_i = np.concatenate([best_i, idx], axis=1)
        order = np.lexsort((all_i, -all_s), axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(all_s, order, 1), np.take_along_axis(all_i, order, 1)
    return best_i, best_s


def first_relevant_rank(
    queries: np.ndarray,
    corpus: np.ndarray,
    relevant,
    *,
    metric: str = "dot",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> np.ndarray:
    """1-based rank of the best-scoring relevant document of each query, over the whole corpus.

    The rank is ``1 +`` the number of non-relevant documents scoring strictly higher (a tie
    counts in the relevant document's favour, as in NUDGE's gamma selection). Comparing ranks before and after
    fine-tuning shows which queries got fixed and which got broken.

    Parameters
    ----------
    queries : ndarray, shape (n_q, d)
    corpus : ndarray, shape (N, d)
    relevant : list of list of int, length n_q
        Relevant document indices per query.

    Returns
    -------
    ndarray of int64, shape (n_q,)
    """
    q, c = _prepare(queries, corpus, metric, chunk_size)
    flat, offsets = check_answers(relevant, "relevant", n_queries=q.shape[0], n_docs=c.shape[0])
    rel_rows = c[flat]
    if metric == "cosine":
        rel_rows = unit_rows(rel_rows).astype(c.dtype)
    query_of_pair = np.repeat(np.arange(q.shape[0]), np.diff(offsets))
    pair_scores = np.einsum("ij,ij->i", q[query_of_pair], rel_rows)
    best = np.full(q.shape[0], -np.inf, dtype=pair_scores.dtype)
    np.maximum.at(best, query_of_pair, pair_scores)
    above = np.zeros(q.shape[0], dtype=np.int64)
    order = np.argsort(flat, kind="stable")
    sorted_docs = flat[order]
    for start in range(0, c.shape[0], chunk_size):
        stop = min(start + chunk_size, c.shape[0])
        s = q @ _block(c, start, stop, metric).T
        greater = s > best[:, None]
        # Relevant documents never count against their own query (their scores here may
        # differ from ``pair_scores`` in the last bit).
        lo, hi = np.searchsorted(sorted_docs, [start, stop])
        pairs = order[lo:hi]
        greater[query_of_pair[pairs], flat[pairs] - start] = False
        above += np.count_nonzero(greater, axis=1)
    return above + 1
