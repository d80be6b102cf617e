"""All phases in one scikit-learn style estimator, ``Nudge(method="N").fit(...)`` (notebook 05).

``__init__`` only stores parameters; ``fit`` validates, computes the directions (MaxS-EFT),
chooses gamma on the validation queries (MaxA-EFT) and returns ``self``; learned state ends in
``_``. ``transform`` applies the movement to the embeddings the estimator was fitted on (checked
by a SHA-256 fingerprint), and ``save``/``load`` keep a fitted result with its metadata.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from . import __version__
from ._corpus import DEFAULT_CHUNK_SIZE, corpus_pass, fingerprint, normalise_block
from ._io import load_artifact, row_fingerprints, save_artifact
from ._validation import check_gamma, check_matrix, check_positive_int
from .apply import check_method, move_rows
from .directions import _query_sums, moved_rows, unit_rows
from .gamma import REFERENCE_GRID, choose_gamma, prepare_validation
from .pairs import as_query_set, validate_query_set

__all__ = ["NotFittedError", "Nudge"]

log = logging.getLogger(__name__)
_FORMAT = "nudge-fit/1"


class NotFittedError(ValueError):
    """Raised when a method needs a fitted estimator."""


class Nudge:
    """NUDGE fine-tuning of document embeddings, scikit-learn style.

    Parameters
    ----------
    method : {"N", "M"}
        ``"N"`` (NUDGE-N: unit-norm output, bounded change, gamma by grid search) or ``"M"``
        (NUDGE-M: bounded step, unnormalised output, gamma chosen exactly).
    gamma : float, optional
        Fix the step size instead of choosing it on validation queries.
    k : int
        Gamma maximises the validation share of answers in the top ``k``
        (``hits / min(#relevant, k)`` per query). ``k = 1`` is the reference's top-1 accuracy.
    grid : sequence of float, optional
        NUDGE-N's gamma grid; default the reference grid 0, 0.02, ..., 0.48. Pass e.g.
        ``np.linspace(0, 0.6, 121)`` for a finer one.
    chunk_size : int
        Documents per chunk of the corpus pass (bounds working memory).
    val_batch_size : int
        Validation queries per block.
    gamma_choice : {"middle", "smallest"}
        NUDGE-M: where to take gamma inside the best region (every gamma there scores the same
        on validation). "smallest" is the reference's choice, where a validation answer only
        ties with a competitor; "middle" keeps a margin on both sides.

    Attributes
    ----------
    method_ : str
        "M" or "N".
    gamma_ : float
        The step size in use.
    support_ : ndarray of int64, shape (m,)
        Documents with training queries (non-zero query sum).
    moved_ : ndarray of int64, shape (m',)
        Documents that actually change at ``gamma_`` (a subset of ``support_``).
    directions_ : ndarray, shape (m, d)
        Unit query-sum directions ``G_i / ||G_i||`` of ``support_``.
    query_sums_ : ndarray of float64, shape (m, d)
        The sums ``G_i`` themselves.
    val_score_ : float or None
        Validation score at ``gamma_`` (None when gamma was fixed).
    validation_curve_ : dict or None
        ``{"gamma": (g,), "score": (g,)}``: validation score against gamma (exact for NUDGE-M).
    best_region_ : tuple of float or None
        NUDGE-M only: ``(start, end)``, every gamma in between scores ``val_score_``.
    n_documents_, n_features_in_ : int
        Shape of the fitted embeddings.
    dtype_ : numpy dtype
    embeddings_sha256_ : str
        Fingerprint of the fitted embeddings; ``transform`` refuses others.
    support_fingerprints_ : ndarray of float64, shape (m, 16), or None
        Per-row fingerprints of the ORIGINAL rows of ``support_`` (``nudge._io.row_fingerprints``):
        a store apply checks the stored vectors against them before writing (None for models saved
        by older versions).
    """

    def __init__(
        self,
        method: str = "N",
        *,
        gamma: float | None = None,
        k: int = 1,
        grid=None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        val_batch_size: int = 256,
        gamma_choice: str = "middle",
    ) -> None:
        self.method = method
        self.gamma = gamma
        self.k = k
        self.grid = grid
        self.chunk_size = chunk_size
        self.val_batch_size = val_batch_size
        self.gamma_choice = gamma_choice

    # ------------------------------------------------------------------ parameters
    def get_params(self, deep: bool = True) -> dict:
        return {
            "method": self.method,
            "gamma": self.gamma,
            "k": self.k,
            "grid": self.grid,
            "chunk_size": self.chunk_size,
            "val_batch_size": self.val_batch_size,
            "gamma_choice": self.gamma_choice,
        }

    def __repr__(self) -> str:
        changed = {k: v for k, v in self.get_params().items() if v != Nudge().get_params()[k] or k == "method"}
        return f"Nudge({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def _checked_params(self):
        method = check_method(self.method)
        gamma = None
        if self.gamma is not None:
            gamma = check_gamma(self.gamma, upper=4.0 if method == "N" else None)
        k = check_positive_int(self.k, "k")
        grid = None
        if method == "N" and gamma is None:
            grid = REFERENCE_GRID if self.grid is None else tuple(float(g) for g in np.ravel(self.grid))
            if len(grid) == 0:
                raise ValueError("grid is empty: give at least one gamma value")
            for g in grid:
                check_gamma(g, "grid value", upper=4.0)
        if self.gamma_choice not in ("middle", "smallest"):
            raise ValueError(f"gamma_choice must be 'middle' or 'smallest', got {self.gamma_choice!r}")
        if method == "M" and self.grid is not None:
            raise ValueError("grid applies to NUDGE-N only: NUDGE-M chooses gamma exactly, without a grid")
        return (
            method,
            gamma,
            k,
            grid,
            check_positive_int(self.chunk_size, "chunk_size"),
            check_positive_int(self.val_batch_size, "val_batch_size"),
        )

    # ------------------------------------------------------------------ fitting
    def fit(self, embeddings: np.ndarray, train, val=None) -> Nudge:
        """Learn directions from ``train`` and gamma from ``val``.

        Parameters
        ----------
        embeddings : ndarray, shape (N, d), float32 or float64
            Document embeddings from the base model (normalised internally; not modified).
        train : QuerySet, (embeddings, answers) tuple or {"q_embs", "q_ans_indx"} dict
            Training queries, shape (n_train, d), with their relevant document indices.
        val : same types, optional
            Validation queries used only to choose gamma; required unless ``gamma`` is set.

        Returns
        -------
        self
        """
        self._fit(embeddings, train, val, out=None)
        return self

    def fit_transform(self, embeddings: np.ndarray, train, val=None) -> np.ndarray:
        """``fit`` then ``transform`` in a single pass over the corpus; returns a new array."""
        e = check_matrix(embeddings, "embeddings", finite=False, nonzero_rows=False)
        out = np.empty_like(e)
        self._fit(e, train, val, out=out)
        move_rows(out, self.support_, self.directions_, self.gamma_, self.method_)
        return out

    def _fit(self, embeddings, train, val, out):
        method, gamma, k, grid, chunk_size, val_batch_size = self._checked_params()
        e = check_matrix(embeddings, "embeddings", finite=False, nonzero_rows=False)
        n, d = e.shape
        tq, tflat, toff = validate_query_set(as_query_set(train, "train"), "train", n_docs=n, dim=d, dtype=e.dtype)
        support, sums = _query_sums(tq, tflat, toff)
        directions = unit_rows(sums).astype(e.dtype)
        log.info("NUDGE-%s: %d of %d documents have training queries", method, support.size, n)
        curve = region = score = None
        if gamma is None:
            if val is None:
                raise ValueError("val is required to choose gamma; pass validation queries or set gamma=")
            vq, vflat, voff = validate_query_set(as_query_set(val, "val"), "val", n_docs=n, dim=d, dtype=e.dtype)
            ctx, digest = prepare_validation(
                e, support, directions, vq, vflat, voff,
                k=k, chunk_size=chunk_size, val_batch_size=val_batch_size, out=out, want_hash=True,
            )  # fmt: skip
            gamma, score, curve, region = choose_gamma(ctx, method, k, grid, self.gamma_choice)
            e_support = ctx.special_rows[ctx.support_pos]
        else:
            _, digest = corpus_pass(e, e[:0], np.empty(0, np.int64), 1, chunk_size=chunk_size, out=out, want_hash=True)
            e_support = out[support] if out is not None else normalise_block(e[support])
        log.info("NUDGE-%s: gamma = %.6g (validation score %s)", method, gamma, score)

        self.method_ = method
        self.k_ = k
        self.gamma_ = float(gamma)
        self.support_ = support
        self.query_sums_ = sums
        self.directions_ = directions
        self.val_score_ = None if score is None else float(score)
        self.validation_curve_ = curve
        self.best_region_ = region
        self.n_documents_, self.n_features_in_ = n, d
        self.dtype_ = e.dtype
        self.embeddings_sha256_ = digest
        self.moved_ = moved_rows(method, self.gamma_, support, directions, e_support)
        self.support_fingerprints_ = row_fingerprints(e_support)
        return self

    # ------------------------------------------------------------------ applying
    def _check_fitted(self) -> None:
        if not hasattr(self, "gamma_"):
            raise NotFittedError("this Nudge is not fitted yet: call fit() or Nudge.load() first")

    def transform(self, embeddings: np.ndarray, gamma: float | None = None) -> np.ndarray:
        """Fine-tuned copy of ``embeddings`` (the fitted ones: checked by fingerprint).

        Parameters
        ----------
        embeddings : ndarray, shape (N, d)
            The same document embeddings that were fitted.
        gamma : float, optional
            Use another step size than ``gamma_`` (e.g. to explore in a notebook).

        Returns
        -------
        ndarray, shape (N, d)
            NUDGE-N rows are unit length; NUDGE-M rows are not (use the dot product).
        """
        self._check_fitted()
        gamma = self.gamma_ if gamma is None else check_gamma(gamma, upper=4.0 if self.method_ == "N" else None)
        e = check_matrix(embeddings, "embeddings", finite=False, nonzero_rows=False)
        if e.shape != (self.n_documents_, self.n_features_in_):
            raise ValueError(
                f"embeddings have shape {e.shape} but this NUDGE was fitted on shape "
                f"{(self.n_documents_, self.n_features_in_)}"
            )
        if e.dtype != self.dtype_:
            raise ValueError(f"embeddings have dtype {e.dtype} but this NUDGE was fitted on {self.dtype_}")
        out = np.empty_like(e)
        _, digest = corpus_pass(e, e[:0], np.empty(0, np.int64), 1, chunk_size=self.chunk_size, out=out, want_hash=True)
        if digest != self.embeddings_sha256_:
            raise ValueError(
                "embeddings are not the ones this NUDGE was fitted on (SHA-256 fingerprint differs): "
                "the fitted result is stale; fit again on the current embeddings"
            )
        move_rows(out, self.support_, self.directions_, gamma, self.method_)
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted result to ``path`` (``.npz``) atomically; returns the path."""
        self._check_fitted()
        meta = {
            "format": _FORMAT,
            "nudge_version": __version__,
            "method": self.method_,
            "gamma": self.gamma_,
            "k": self.k_,
            "n_documents": self.n_documents_,
            "n_features": self.n_features_in_,
            "dtype": np.dtype(self.dtype_).name,
            "embeddings_sha256": self.embeddings_sha256_,
            "val_score": self.val_score_,
            "best_region": self.best_region_,
            "params": {
                k: (list(map(float, v)) if k == "grid" and v is not None else v) for k, v in self.get_params().items()
            },
        }
        arrays = {"support": self.support_, "query_sums": self.query_sums_, "moved": self.moved_}
        if getattr(self, "support_fingerprints_", None) is not None:
            arrays["support_fingerprints"] = self.support_fingerprints_
        if self.validation_curve_ is not None:
            arrays["curve_gamma"] = self.validation_curve_["gamma"]
            arrays["curve_score"] = self.validation_curve_["score"]
        return save_artifact(path, meta, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike, embeddings: np.ndarray | None = None) -> Nudge:
        """Read a result written by :meth:`save`.

        When ``embeddings`` are given they are checked against the stored fingerprint now, so
        a stale artefact is refused before anything is applied.
        """
        meta, arrays = load_artifact(path, _FORMAT, kind="a saved NUDGE result")
        params = meta["params"]
        est = cls(**params)
        est.method_ = meta["method"]
        est.k_ = meta["k"]
        est.gamma_ = float(meta["gamma"])
        est.n_documents_ = int(meta["n_documents"])
        est.n_features_in_ = int(meta["n_features"])
        est.dtype_ = np.dtype(meta["dtype"])
        est.embeddings_sha256_ = meta["embeddings_sha256"]
        est.val_score_ = meta["val_score"]
        est.best_region_ = None if meta["best_region"] is None else tuple(meta["best_region"])
        est.support_ = arrays["support"].astype(np.int64)
        est.query_sums_ = arrays["query_sums"]
        est.directions_ = unit_rows(est.query_sums_).astype(est.dtype_)
        est.moved_ = arrays["moved"].astype(np.int64)
        est.support_fingerprints_ = arrays.get("support_fingerprints")
        est.validation_curve_ = (
            {"gamma": arrays["curve_gamma"], "score": arrays["curve_score"]} if "curve_gamma" in arrays else None
        )
        if embeddings is not None:
            e = check_matrix(embeddings, "embeddings", finite=False, nonzero_rows=False)
            if e.shape != (est.n_documents_, est.n_features_in_) or fingerprint(e) != est.embeddings_sha256_:
                raise ValueError(
                    f"embeddings do not match the ones {str(path)!r} was fitted on (shape or "
                    "SHA-256 fingerprint differs): the saved result is stale; fit again"
                )
        return est
