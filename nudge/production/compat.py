"""Drop-in replacements for the reference package ``nudge-ft``: ``NUDGEM`` and ``NUDGEN``.

Same signatures, same outputs on the same inputs (rows equal to 1e-5, same gamma), without
torch and in memory bounded by a chunk. Reproduced on purpose, as in the reference:

* document rows are L2-normalised; queries are used as given;
* NUDGE-M counts every validation (query, answer) pair separately, computes interval ends as
  ``s / (g + 1e-8)`` with ``1e8`` for "unbounded", and its sweep returns the smallest gamma of
  the best region with the reference's tie handling;
* NUDGE-N leaves a document in place when its query sum points away from it, scores validation
  by the share of answers in the top ``val_k`` with exact ties going to the lower document index
  (torch's ``topk``; the documents that neither move nor answer a validation query rank after
  the others, since only their best scores are kept), and picks the first best value of the
  grid ``0, 0.02, ..., 0.48``;
* ``nontrain_embeddings`` (documents kept out of ``embeddings``) only compete for validation ranks
  (scored by cosine) and are not returned.

One deliberate difference: for ``gamma >= 2`` the reference's NUDGE-N turns every document
without training queries into a zero vector (``normalize(0) = 0`` passes its cap test); here those
documents stay as they are.

The pipeline is the library's (:func:`nudge.estimator.fit_nudge`); only the reference's
arithmetic and tie rules live here (:func:`reference_intervals`, :func:`best_gamma_reference`,
:func:`lower_index_first`). Unlike the reference, these classes print nothing (they log),
never ``assert``, and reject bad input with a ``ValueError`` naming the argument. The chosen step
is kept in ``gamma_``.
"""

from __future__ import annotations

import logging
from functools import partial

import numpy as np

from .._corpus import DEFAULT_CHUNK_SIZE, MatrixCorpus, corpus_pass, normalise_rows
from .._validation import check_matrix, check_positive_int
from ..apply import move_rows
from ..estimator import NudgeParams, check_params, fit_nudge
from ..gamma import REFERENCE_GRID, RankedBlock, ValidationContext, nudge_n_hit_totals, top1_lines

__all__ = ["NUDGEM", "NUDGEN", "QueriesAnswersDict", "best_gamma_reference", "lower_index_first", "reference_intervals"]

log = logging.getLogger(__name__)

_REFERENCE_EPS = 1e-8  # the reference divides by (g + 1e-8) ...
_REFERENCE_LARGE = 1e8  # ... and writes 1e8 for "no upper bound"

try:  # the reference's TypedDict, for type hints
    from typing import TypedDict

    class QueriesAnswersDict(TypedDict):
        q_embs: np.ndarray
        q_ans_indx: list[list[int]]

except ImportError:  # pragma: no cover
    QueriesAnswersDict = dict  # type: ignore[misc]


class _WithNontrain(MatrixCorpus):
    """The documents, plus ``nontrain_embeddings`` that only compete for validation ranks."""

    def __init__(self, embeddings, nontrain, *, chunk_size: int, out: np.ndarray) -> None:
        super().__init__(embeddings, chunk_size=chunk_size, out=out)
        self.nontrain = nontrain

    def top_scores(self, queries, exclude, k):
        top = super().top_scores(queries, exclude, k)
        if self.nontrain is None:
            return top
        extra = corpus_pass(
            self.nontrain, queries, np.empty(0, np.int64), k, chunk_size=self.chunk_size, name="nontrain_embeddings"
        )
        return -np.sort(-np.concatenate([top, extra], axis=1), axis=1)[:, :k]


class _Reference:
    method = ""

    def __init__(self, device: object = None, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        # ``device`` is accepted for signature compatibility; computation is numpy on the CPU.
        self.device = device
        self.chunk_size = chunk_size

    def _finetune(self, embeddings, train_set, val_set, nontrain_embeddings, val_batch_size, gamma, k, select):
        e = check_matrix(embeddings, "embeddings", finite=False, nonzero_rows=False)
        params = check_params(self.method, gamma=gamma, k=k, chunk_size=self.chunk_size, val_batch_size=val_batch_size)
        nontrain = None
        if nontrain_embeddings is not None:
            nontrain = check_matrix(
                nontrain_embeddings, "nontrain_embeddings", dim=e.shape[1], dtype=e.dtype,
                finite=False, nonzero_rows=False,
            )  # fmt: skip
        out = np.empty_like(e)
        if params.gamma is not None:  # no corpus pass to choose gamma: normalise (and check) every row
            normalise_rows(e, out, chunk_size=params.chunk_size)
        corpus = _WithNontrain(e, nontrain, chunk_size=params.chunk_size, out=out)
        fit = fit_nudge(
            params, train_set, val_set, corpus,
            n_docs=e.shape[0], dim=e.shape[1], dtype=e.dtype, names=("train_set", "val_set"), select=select,
        )  # fmt: skip
        self.gamma_ = fit.gamma
        move_rows(out, fit.support, fit.directions, fit.gamma, self.method)
        return out


class NUDGEM(_Reference):
    """NUDGE-M: ``e_i + gamma * G_i / ||G_i||``, gamma chosen exactly on validation top-1."""

    method = "M"

    def finetune_embeddings(
        self,
        embeddings: np.ndarray,
        train_set: QueriesAnswersDict,
        val_set: QueriesAnswersDict,
        nontrain_embeddings: np.ndarray | None = None,
        val_batch_size: int = 256,
        gamma: float | None = None,
    ) -> np.ndarray:
        """Fine-tune ``embeddings`` (N, d) with NUDGE-M; returns a new (N, d) array.

        WARNING: the output rows are not unit length; retrieve with the dot product, not cosine.
        """
        check_positive_int(val_batch_size, "val_batch_size")
        return self._finetune(embeddings, train_set, val_set, nontrain_embeddings, val_batch_size, gamma, 1, _select_m)


class NUDGEN(_Reference):
    """NUDGE-N: unit-norm rows rotated towards ``G_i``, ``||e' - e||^2 <= gamma``, gamma by grid."""

    method = "N"

    def finetune_embeddings(
        self,
        embeddings: np.ndarray,
        train_set: QueriesAnswersDict,
        val_set: QueriesAnswersDict,
        nontrain_embeddings: np.ndarray | None = None,
        val_batch_size: int = 256,
        val_k: int = 1,
        gamma: float | None = None,
    ) -> np.ndarray:
        """Fine-tune ``embeddings`` (N, d) with NUDGE-N; returns a new (N, d) array of unit rows."""
        k = check_positive_int(val_k, "val_k")
        check_positive_int(val_batch_size, "val_batch_size")
        return self._finetune(embeddings, train_set, val_set, nontrain_embeddings, val_batch_size, gamma, k, _select_n)


# ---------------------------------------------------------------------------------- NUDGE-M
def _select_m(ctx: ValidationContext, params: NudgeParams):
    lo, hi = reference_intervals(ctx)
    gamma = best_gamma_reference(lo, hi)
    log.info("NUDGE-M gamma = %.6g", gamma)
    return gamma, None, None, None


def reference_intervals(ctx: ValidationContext) -> tuple[np.ndarray, np.ndarray]:
    """The reference's top-1 interval of every validation pair that has one: ``lo, hi`` (float64).

    Its arithmetic, in the queries' dtype: a competitor whose line meets the answer's with
    ``gain = t_a - t_j`` bounds gamma at ``gap / (gain + 1e-8)``, and 1e8 stands for "no upper
    bound". The reference bounds with every document; documents that do not move only matter
    through the best of them, except when ``-1e-8 <= t_a < 0``: the divisor is then positive, so
    the *lowest* scoring document gives a negative upper bound and the pair has no interval
    (as soon as one document scores below the answer, which a corpus of more than a few
    documents always has).
    """
    los, his = [], []
    for lines in top1_lines(ctx):
        gap, gain, t_a = lines.gap, lines.gain, lines.answer_slope
        dtype = gap.dtype.type
        eps, large, zero = dtype(_REFERENCE_EPS), dtype(_REFERENCE_LARGE), dtype(0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = gap / (gain + eps)
            flat_ratio = lines.flat_gap / (t_a + eps)
        lo = np.max(np.where(gain > zero, ratio, zero), axis=1, initial=zero)
        hi = np.min(np.where(gain < zero, ratio, large), axis=1, initial=large)
        lo = np.where(t_a > 0, np.maximum(lo, flat_ratio), lo).astype(np.float64)
        hi = np.minimum(np.where(t_a < 0, np.minimum(hi, flat_ratio), hi).astype(np.float64), large)
        blocked = np.any((gain == zero) & (gap > zero), axis=1) | ((t_a == 0) & (lines.flat_gap > 0))
        blocked |= (t_a < 0) & (t_a + eps >= 0)
        ok = ~blocked & (hi >= lo)
        los.append(lo[ok])
        his.append(hi[ok])
    return np.concatenate(los), np.concatenate(his)


def best_gamma_reference(lo: np.ndarray, hi: np.ndarray) -> float:
    """The reference package's sweep, reproduced exactly (its tie handling included).

    It counts, at each distinct end point ``v``, the intervals with ``lo <= v < hi`` and returns
    the first ``v`` with the largest positive count (0 when there is none).
    """
    if lo.size == 0:
        return 0.0
    lo_s, hi_s = np.sort(lo), np.sort(hi)
    vals = np.unique(np.concatenate([lo_s, hi_s]))
    count = np.searchsorted(lo_s, vals, "right") - np.searchsorted(hi_s, vals, "right")
    i = int(np.argmax(count))
    return float(vals[i]) if count[i] > 0 else 0.0


# ---------------------------------------------------------------------------------- NUDGE-N
def _select_n(ctx: ValidationContext, params: NudgeParams):
    rule = partial(lower_index_first, k=params.k)
    totals = nudge_n_hit_totals(ctx, REFERENCE_GRID, params.k, in_top_k=rule)
    i = max(range(len(totals)), key=totals.__getitem__)  # the first best grid value
    _, scale = ctx.query_weights(params.k)
    score = totals[i] / (scale * ctx.n_queries)
    log.info("NUDGE-N gamma = %.6g (validation score %.4f)", REFERENCE_GRID[i], score)
    return REFERENCE_GRID[i], score, None, None


def lower_index_first(block: RankedBlock, k: int) -> np.ndarray:
    """The reference's top-``k`` (torch's ``topk`` on large inputs): exact ties go to the lower
    document index. Which pairs of ``block`` count, shape (P,).

    Without a tie at a query's cut-off this is "at least the ``k``-th best score"; only the
    queries with more than ``k`` documents at or above it are ranked one by one, by counting
    (the documents outside the tracked ones come last, after every tracked document).
    """
    hit = block.answer_scores >= block.kth[block.pair_rows]
    candidates = np.unique(block.pair_rows[hit])  # ties can only turn these hits into misses
    for i in candidates[block.count_at_least_kth(candidates) > k]:
        row = block.row(i)
        for p in np.flatnonzero(block.pair_rows == i):
            s_a, col = block.answer_scores[p], block.answer_cols[p]
            hit[p] = np.count_nonzero(row > s_a) + np.count_nonzero(row[:col] == s_a) < k
    return hit
