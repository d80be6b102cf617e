"""Drop-in replacements for the reference package ``nudge-ft``: ``NUDGEM`` and ``NUDGEN``.

Same signatures, same outputs on the same inputs (rows equal to 1e-5, same gamma), without
torch and in memory bounded by a chunk. Reproduced on purpose, as in the reference:

* document rows are L2-normalised; queries are used as given;
* NUDGE-M counts every validation (query, answer) pair separately, computes interval ends as
  ``s / (g + 1e-8)`` with ``1e8`` for "unbounded", and its sweep returns the smallest gamma of
  the best region with the reference's tie handling;
* NUDGE-N leaves a document in place when its query sum points away from it, scores validation
  by the share of answers in the top ``val_k``, and picks the first best value of the grid
  ``0, 0.02, ..., 0.48``;
* ``nontrain_embeddings`` (documents kept out of ``embeddings``) only compete for validation ranks
  (scored by cosine) and are not returned.

One deliberate difference: for ``gamma >= 2`` the reference's NUDGE-N turns every document
without training queries into a zero vector (``normalize(0) = 0`` passes its cap test); here those
documents stay as they are.

Unlike the reference, these classes print nothing (they log), never ``assert``, and reject bad
input with a ``ValueError`` naming the argument. The chosen step is kept in ``gamma_``.
"""

from __future__ import annotations

import logging

import numpy as np

from .._corpus import DEFAULT_CHUNK_SIZE, corpus_pass
from .._validation import check_gamma, check_matrix, check_positive_int
from ..apply import move_rows
from ..directions import _query_sums, unit_rows
from ..gamma import REFERENCE_GRID, best_gamma_n, best_gamma_reference, pair_intervals, prepare_validation
from ..pairs import as_query_set, validate_query_set

__all__ = ["NUDGEM", "NUDGEN", "QueriesAnswersDict"]

log = logging.getLogger(__name__)

try:  # the reference's TypedDict, for type hints
    from typing import TypedDict

    class QueriesAnswersDict(TypedDict):
        q_embs: np.ndarray
        q_ans_indx: list[list[int]]

except ImportError:  # pragma: no cover
    QueriesAnswersDict = dict  # type: ignore[misc]


class _Reference:
    method = ""

    def __init__(self, device: object = None, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        # ``device`` is accepted for signature compatibility; computation is numpy on the CPU.
        self.device = device
        self.chunk_size = chunk_size

    def _prepare(self, embeddings, train_set, val_set, nontrain_embeddings, val_batch_size, gamma, k):
        e = check_matrix(embeddings, "embeddings", finite=False, nonzero_rows=False)
        n, d = e.shape
        check_positive_int(val_batch_size, "val_batch_size")
        chunk = check_positive_int(self.chunk_size, "chunk_size")
        tq, tflat, toff = validate_query_set(
            as_query_set(train_set, "train_set"), "train_set", n_docs=n, dim=d, dtype=e.dtype
        )
        support, sums = _query_sums(tq, tflat, toff)
        directions = unit_rows(sums).astype(e.dtype)
        out = np.empty_like(e)
        ctx = None
        if gamma is None:
            vq, vflat, voff = validate_query_set(
                as_query_set(val_set, "val_set"), "val_set", n_docs=n, dim=d, dtype=e.dtype
            )
            extra = None
            if nontrain_embeddings is not None:
                nt = check_matrix(
                    nontrain_embeddings, "nontrain_embeddings", dim=d, dtype=e.dtype, finite=False, nonzero_rows=False
                )
                extra, _ = corpus_pass(nt, vq, np.empty(0, np.int64), k, chunk_size=chunk, name="nontrain_embeddings")
            ctx, _ = prepare_validation(
                e, support, directions, vq, vflat, voff,
                k=k, chunk_size=chunk, val_batch_size=val_batch_size, out=out, extra_background=extra,
            )  # fmt: skip
        else:
            corpus_pass(e, e[:0], np.empty(0, np.int64), 1, chunk_size=chunk, out=out)
        return out, support, directions, ctx


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
        if gamma is not None:
            gamma = check_gamma(gamma)
        out, support, directions, ctx = self._prepare(
            embeddings, train_set, val_set, nontrain_embeddings, val_batch_size, gamma, 1
        )
        if gamma is None:
            lo, hi, _ = pair_intervals(ctx, 1, reference=True)
            gamma = best_gamma_reference(lo, hi)
        log.info("NUDGE-M gamma = %.6g", gamma)
        self.gamma_ = float(gamma)
        move_rows(out, support, directions, self.gamma_, "M")
        return out


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
        if gamma is not None:
            gamma = check_gamma(gamma, upper=4.0)
        out, support, directions, ctx = self._prepare(
            embeddings, train_set, val_set, nontrain_embeddings, val_batch_size, gamma, k
        )
        if gamma is None:
            gamma, score, _ = best_gamma_n(ctx, REFERENCE_GRID, k, reference=True)
            log.info("NUDGE-N gamma = %.6g (validation score %.4f)", gamma, score)
        self.gamma_ = float(gamma)
        move_rows(out, support, directions, self.gamma_, "N")
        return out
