"""All phases in one scikit-learn style estimator, ``Nudge(method="N").fit(...)`` (notebook 05).

``__init__`` only stores parameters; ``fit`` validates, computes the directions (MaxS-EFT),
chooses gamma on the validation queries (MaxA-EFT) and returns ``self``; learned state ends in
``_``. ``transform`` applies the movement to the embeddings the estimator was fitted on (checked
by a SHA-256 fingerprint), and ``save``/``load`` keep a fitted result with its metadata.

The pipeline itself is :func:`fit_nudge`, shared with the nudge-ft drop-in
(:mod:`nudge.production.compat`) and with fitting against a vector store
(:mod:`nudge.production.remote`): they differ only in how they read the documents.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np

from ._corpus import DEFAULT_CHUNK_SIZE, MatrixCorpus, fingerprint, normalise_rows
from ._io import load_artifact, row_fingerprints, save_artifact
from ._validation import FLOAT_DTYPES, check_gamma, check_matrix, check_positive_int
from ._version import __version__
from .apply import check_method, move_rows
from .diagnostics import FitDiagnostics, FitWarning, curve_shape, fit_warnings, gamma_rule, issue, move_sizes
from .directions import moved_rows, nudge_n_geometry, query_sums_csr, unit_rows
from .gamma import REFERENCE_GRID, ValidationContext, build_context, choose_gamma
from .pairs import GRADE_THRESHOLD, as_query_set, binarise, validate_query_set

__all__ = [
    "Corpus",
    "NotFittedError",
    "Nudge",
    "NudgeFit",
    "NudgeParams",
    "check_fitted_embeddings",
    "check_params",
    "choose_method",
    "fit_nudge",
]

log = logging.getLogger(__name__)
_FORMAT = "nudge-fit/1"
GAMMA_CHOICES = ("middle", "smallest")


class NotFittedError(ValueError):
    """Raised when a method needs a fitted estimator."""


# ---------------------------------------------------------------------------------- parameters
class NudgeParams(NamedTuple):
    """Checked parameters of a NUDGE fit (see :class:`Nudge` for their meaning)."""

    method: str  # "M" or "N"
    gamma: float | None  # fixed step size, or None to choose it
    k: int
    grid: tuple[float, ...] | None  # NUDGE-N's grid when gamma is chosen, else None
    chunk_size: int
    val_batch_size: int
    gamma_choice: str
    grade_threshold: float = GRADE_THRESHOLD  # labels with grade > this are relevant (training and gamma)


def check_params(
    method: object = "N",
    *,
    gamma: object = None,
    k: object = 1,
    grid=None,
    chunk_size: object = DEFAULT_CHUNK_SIZE,
    val_batch_size: object = 256,
    gamma_choice: object = "middle",
    grade_threshold: object = GRADE_THRESHOLD,
) -> NudgeParams:
    """Check :class:`Nudge`'s parameters; ``ValueError`` naming the first bad one."""
    method = check_method(method)
    gamma = None if gamma is None else check_gamma(gamma, method=method)
    if method == "M" and grid is not None:
        raise ValueError("grid applies to NUDGE-N only: NUDGE-M chooses gamma exactly, without a grid")
    checked_grid = None
    if method == "N" and gamma is None:
        checked_grid = REFERENCE_GRID if grid is None else tuple(float(g) for g in np.ravel(grid))
        if len(checked_grid) == 0:
            raise ValueError("grid is empty: give at least one gamma value")
        for g in checked_grid:
            check_gamma(g, "grid value", method="N")
    if gamma_choice not in GAMMA_CHOICES:
        raise ValueError(f"gamma_choice must be 'middle' or 'smallest', got {gamma_choice!r}")
    if isinstance(grade_threshold, bool) or not isinstance(grade_threshold, (int, float, np.floating, np.integer)):
        raise ValueError(f"grade_threshold must be a number, got {grade_threshold!r}")
    if not np.isfinite(grade_threshold):
        raise ValueError(f"grade_threshold must be finite, got {grade_threshold!r}")
    return NudgeParams(
        method=method,
        gamma=gamma,
        k=check_positive_int(k, "k"),
        grid=checked_grid,
        chunk_size=check_positive_int(chunk_size, "chunk_size"),
        val_batch_size=check_positive_int(val_batch_size, "val_batch_size"),
        gamma_choice=gamma_choice,
        grade_threshold=float(grade_threshold),
    )


# ---------------------------------------------------------------------------------- the pipeline
class Corpus(Protocol):
    """What :func:`fit_nudge` reads of the documents (numbered ``0 .. n_docs - 1``)."""

    def rows(self, indices: np.ndarray) -> np.ndarray:
        """L2-normalised embeddings of the sorted documents ``indices`` (c,): shape (c, d)."""

    def top_scores(self, queries: np.ndarray, exclude: np.ndarray, k: int) -> np.ndarray:
        """Per query (n_q, d), the best ``k`` scores among the documents not in the sorted
        ``exclude``: shape (n_q, k), descending, ``-inf`` padded."""


@dataclass(frozen=True)
class NudgeFit:
    """What :func:`fit_nudge` learns: ``params`` (checked) and the attributes of a fitted
    :class:`Nudge` of the same names without the trailing ``_`` (``support`` (m,), ``query_sums``
    (m, d) float64, ``directions`` (m, d), ``moved`` (m',), ...), with documents numbered as in
    the corpus that was read."""

    params: NudgeParams
    gamma: float
    support: np.ndarray
    query_sums: np.ndarray
    directions: np.ndarray
    moved: np.ndarray
    val_score: float | None
    validation_curve: dict | None
    best_region: tuple[float, float] | None
    diagnostics: FitDiagnostics | None = None


def _choose(ctx: ValidationContext, params: NudgeParams):
    return choose_gamma(ctx, params.method, params.k, params.grid, params.gamma_choice)


def fit_nudge(
    params: NudgeParams,
    train,
    val,
    corpus: Corpus,
    *,
    n_docs: int,
    dim: int,
    dtype: np.dtype,
    names: tuple[str, str] = ("train", "val"),
    select: Callable[[ValidationContext, NudgeParams], tuple] = _choose,
) -> NudgeFit:
    """The NUDGE fit pipeline: directions from ``train``, gamma from ``val``, the moved documents.

    1. check the training queries (n_train, d) and their answers (document numbers), sum the
       queries per document and take the unit directions (phase 3);
    2. unless ``params.gamma`` is fixed: check the validation queries (n_val, d), build the
       :class:`nudge.gamma.ValidationContext` from ``corpus`` and choose gamma (phase 4);
    3. find the documents that move at that gamma.

    Parameters
    ----------
    params : NudgeParams
        From :func:`check_params`.
    train, val : QuerySet, (embeddings, answers) tuple or {"q_embs", "q_ans_indx"} dict
        Labelled queries; ``val`` may be None when ``params.gamma`` is set.
    corpus : Corpus
        The documents: ``n_docs`` rows of dimension ``dim`` and dtype ``dtype``.
    names : (str, str)
        The names of ``train`` and ``val`` in error messages.
    select : callable, optional
        ``select(ctx, params) -> (gamma, score, curve, best region[, facts])``; default
        :func:`nudge.gamma.choose_gamma` (``facts`` feed the diagnostics' curve fields).

    Labels are binarised here (:func:`nudge.pairs.binarise`): an answer is relevant when its
    grade is above ``params.grade_threshold``; training and validation queries left without one
    are left out, counted in ``diagnostics`` and warned about. The returned ``diagnostics``
    (:class:`nudge.diagnostics.FitDiagnostics`) explain the fit; its warnings are issued as
    :class:`nudge.diagnostics.FitWarning`.
    """
    thr = params.grade_threshold
    train_qs, t_dropped = binarise(as_query_set(train, names[0]), names[0], thr)
    if t_dropped.size and len(train_qs) == 0:
        raise ValueError(f"{names[0]} has no query with a relevant document (grade > {thr:g})")
    tq, tflat, toff = validate_query_set(train_qs, names[0], n_docs=n_docs, dim=dim, dtype=dtype)
    support, sums = query_sums_csr(tq, tflat, toff)
    directions = unit_rows(sums).astype(dtype)
    log.info("NUDGE-%s: %d of %d documents have training queries", params.method, support.size, n_docs)
    gamma, score, curve, region, facts = params.gamma, None, None, None, None
    v_dropped, n_val, reachable = np.empty(0, np.int64), 0, None
    if gamma is None:
        if val is None:
            raise ValueError(f"{names[1]} is required to choose gamma; pass validation queries or set gamma=")
        val_qs, v_dropped = binarise(as_query_set(val, names[1]), names[1], thr)
        if v_dropped.size and len(val_qs) == 0:
            raise ValueError(f"{names[1]} has no query with a relevant document (grade > {thr:g}) to choose gamma on")
        vq, vflat, voff = validate_query_set(val_qs, names[1], n_docs=n_docs, dim=dim, dtype=dtype)
        ctx = build_context(
            vq, vflat, voff, support, directions, corpus, k=params.k, val_batch_size=params.val_batch_size
        )
        chosen = select(ctx, params)
        gamma, score, curve, region = chosen[:4]
        facts = chosen[4] if len(chosen) > 4 else None
        e_support = ctx.tracked_rows[ctx.support_cols]
        n_val = vq.shape[0]
        in_support = np.isin(vflat, support)
        reachable = int(np.count_nonzero(np.add.reduceat(in_support.astype(np.int64), voff[:-1])))
    else:
        e_support = corpus.rows(support) if params.method == "N" else None
    log.info("NUDGE-%s: gamma = %.6g (validation score %s)", params.method, gamma, score)
    gamma = float(gamma)
    moved = moved_rows(params.method, gamma, support, directions, e_support)
    diagnostics = _diagnostics(
        params, gamma, score, facts, n_docs=n_docs, n_train=tq.shape[0], n_train_dropped=int(t_dropped.size),
        n_val=n_val, n_val_dropped=int(v_dropped.size), reachable=reachable, support=support, moved=moved,
        directions=directions, e_support=e_support, tflat=tflat, sums=sums,
    )  # fmt: skip
    for text in diagnostics.warnings:
        issue(f"NUDGE-{params.method}: {text}", FitWarning)
    return NudgeFit(
        params=params,
        gamma=gamma,
        support=support,
        query_sums=sums,
        directions=directions,
        moved=moved,
        val_score=None if score is None else float(score),
        validation_curve=curve,
        best_region=region,
        diagnostics=diagnostics,
    )


def _diagnostics(params: NudgeParams, gamma: float, score, facts, *, n_docs, n_train, n_train_dropped, n_val,
                 n_val_dropped, reachable, support, moved, directions, e_support, tflat, sums,
                 ) -> FitDiagnostics:  # fmt: skip
    """The :class:`FitDiagnostics` of a fit (see :func:`fit_nudge`)."""
    fixed = params.gamma is not None
    zero_is_best = None if facts is None else bool(facts["zero_is_best"])
    cos_angle = None
    if params.method == "N" and gamma > 0 and support.size:
        cos_angle = nudge_n_geometry(e_support, directions)[0]
    sizes = move_sizes(params.method, gamma, cos_angle, support.size)
    largest, doc, n_questions = 0.0, None, 0
    if moved.size and sizes.size:
        weight = np.einsum("ij,ij->i", sums, sums)  # ||G_i||^2: grows with the document's training questions
        best = np.lexsort((-weight, -sizes))[0]  # the largest move; among equal ones, the largest query sum
        largest, doc = float(sizes[best]), int(support[best])
        n_questions = int(np.count_nonzero(tflat == doc))
    val_score = None if score is None else float(score)
    return FitDiagnostics(
        method=params.method,
        gamma=gamma,
        gamma_fixed=fixed,
        k=params.k,
        grade_threshold=params.grade_threshold,
        n_train=n_train,
        n_train_dropped=n_train_dropped,
        n_val=n_val,
        n_val_dropped=n_val_dropped,
        n_val_reachable=reachable,
        score_at_zero=None if facts is None else float(facts["score_at_zero"]),
        val_score=val_score,
        best_regions=() if facts is None else tuple(facts["best_regions"]),
        curve_shape=None if facts is None else curve_shape(facts["best_regions"], zero_is_best, facts["constant"]),
        zero_is_best=zero_is_best,
        n_documents=n_docs,
        n_support=int(support.size),
        n_moved=int(moved.size),
        largest_move=largest,
        largest_move_document=doc,
        largest_move_questions=n_questions,
        gamma_rule=gamma_rule(params.method, params.gamma_choice),
        warnings=fit_warnings(
            method=params.method,
            gamma_fixed=fixed,
            n_train_dropped=n_train_dropped,
            n_val=n_val,
            n_val_dropped=n_val_dropped,
            n_val_reachable=reachable,
            val_score=val_score,
            zero_is_best=zero_is_best,
            grade_threshold=params.grade_threshold,
        ),
    )


# ---------------------------------------------------------------------------------- the estimator
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
        ties with a competitor; "middle" keeps a margin on both sides. Either way, when the best
        region starts at 0 (moving helps no validation question) gamma is 0: nothing moves.
    grade_threshold : float
        Graded labels (:attr:`nudge.QuerySet.grades`) are binarised for what NUDGE needs (the
        query sums of training answers, the validation top-``k`` share): an answer counts when
        its grade is above this (default 0: BEIR's grade 0 means "judged not relevant").
        Queries left without an answer are left out and counted in ``diagnostics_``. Metrics
        (:mod:`nudge.metrics`) use the grades themselves.

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
    diagnostics_ : FitDiagnostics or None
        What the fit saw and did, in words with ``print(model.diagnostics_)``: the validation
        curve's shape, the gamma = 0 rule, how many validation questions could gain, warnings
        (:mod:`nudge.diagnostics`). Not saved: None after :meth:`load`.
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
        grade_threshold: float = GRADE_THRESHOLD,
    ) -> None:
        self.method = method
        self.gamma = gamma
        self.k = k
        self.grid = grid
        self.chunk_size = chunk_size
        self.val_batch_size = val_batch_size
        self.gamma_choice = gamma_choice
        self.grade_threshold = grade_threshold

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
            "grade_threshold": self.grade_threshold,
        }

    def __repr__(self) -> str:
        defaults = Nudge().get_params()
        shown = []
        for name, value in self.get_params().items():
            if name == "method" or not _same(value, defaults[name]):
                shown.append(f"{name}={_short_repr(value)}")
        return f"Nudge({', '.join(shown)})"

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
        params = check_params(**self.get_params())
        e = check_matrix(embeddings, "embeddings", finite=False, nonzero_rows=False)
        if params.gamma is not None:  # no corpus pass to choose gamma: check (and normalise) every row
            normalise_rows(e, out, chunk_size=params.chunk_size)
        corpus = MatrixCorpus(e, chunk_size=params.chunk_size, out=out)
        fit = fit_nudge(params, train, val, corpus, n_docs=e.shape[0], dim=e.shape[1], dtype=e.dtype)
        self.method_ = params.method
        self.k_ = params.k
        self.gamma_ = fit.gamma
        self.support_ = fit.support
        self.query_sums_ = fit.query_sums
        self.directions_ = fit.directions
        self.moved_ = fit.moved
        self.val_score_ = fit.val_score
        self.validation_curve_ = fit.validation_curve
        self.best_region_ = fit.best_region
        self.diagnostics_ = fit.diagnostics
        self.n_documents_, self.n_features_in_ = e.shape
        self.dtype_ = e.dtype
        self.embeddings_sha256_ = fingerprint(e)
        # Per-row fingerprints of the ORIGINAL (normalised) rows this model may move: a store's
        # current vectors are checked against them before anything is written (nudge.production.stores).
        self.support_fingerprints_ = row_fingerprints(corpus.rows(self.support_))
        return self

    # ------------------------------------------------------------------ applying
    def _check_fitted(self) -> None:
        if not hasattr(self, "gamma_"):
            raise NotFittedError("this Nudge is not fitted yet: call fit() or Nudge.load() first")

    def check_embeddings(self, embeddings: np.ndarray, source: str = "this NUDGE") -> np.ndarray:
        """Refuse embeddings other than the fitted ones (shape, dtype, SHA-256 fingerprint).

        ``source`` names the fitted result in the message (e.g. the file it was loaded from).
        Returns ``embeddings`` as a checked ndarray.
        """
        self._check_fitted()
        return check_fitted_embeddings(embeddings, self, source)

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
        gamma = self.gamma_ if gamma is None else check_gamma(gamma, method=self.method_)
        e = self.check_embeddings(embeddings)
        out = np.empty_like(e)
        normalise_rows(e, out, chunk_size=self.chunk_size)
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
                k: (list(map(float, np.ravel(v))) if k == "grid" and v is not None else v)
                for k, v in self.get_params().items()
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
        """Read a result written by :meth:`save`, checking every field.

        When ``embeddings`` are given they are checked against the stored fingerprint now, so
        a stale artefact is refused before anything is applied, and the stored list of moved
        documents is checked against them.
        """
        meta, arrays = load_artifact(path, _FORMAT, kind="a saved NUDGE result")
        params = _saved_params(meta, path)
        est = cls(**params._asdict())
        est.__dict__.update(_saved_state(meta, arrays, path))
        est.diagnostics_ = None
        if (params.method, params.k) != (est.method_, est.k_) or params.gamma not in (None, est.gamma_):
            raise _field_error(path, "params", "disagrees with the stored method, k or gamma")
        est.directions_ = unit_rows(est.query_sums_).astype(est.dtype_)
        est.support_fingerprints_ = _saved_fingerprints(arrays, est.support_.size, path)
        if embeddings is not None:
            e = est.check_embeddings(embeddings, source=repr(str(path)))
            expected = moved_rows(
                est.method_, est.gamma_, est.support_, est.directions_, MatrixCorpus(e).rows(est.support_)
            )
            if not np.array_equal(expected, est.moved_):
                raise _field_error(path, "moved", "does not list the documents this gamma moves")
        return est


def check_fitted_embeddings(embeddings: np.ndarray, fitted, source: str = "the model") -> np.ndarray:
    """Refuse embeddings other than the ones ``fitted`` was fitted on (shape, dtype, SHA-256).

    The one stale-embeddings check of the kit: :meth:`Nudge.check_embeddings` and the store path
    call it. ``fitted`` needs ``n_documents_``, ``n_features_in_`` and ``embeddings_sha256_``
    (``dtype_`` is checked when present); ``source`` names it in the message.

    Parameters
    ----------
    embeddings : ndarray, shape (N, d)

    Returns
    -------
    ndarray, shape (N, d): ``embeddings`` as a checked array (not copied).
    """
    e = check_matrix(embeddings, "embeddings", finite=False, nonzero_rows=False)
    shape = (fitted.n_documents_, fitted.n_features_in_)
    if e.shape != shape:
        raise ValueError(f"embeddings have shape {e.shape} but {source} was fitted on shape {shape}")
    dtype = getattr(fitted, "dtype_", None)
    if dtype is not None and e.dtype != dtype:
        raise ValueError(f"embeddings have dtype {e.dtype} but {source} was fitted on {dtype}")
    if fingerprint(e) != fitted.embeddings_sha256_:
        raise ValueError(
            f"embeddings are not the ones {source} was fitted on (SHA-256 fingerprint differs): "
            "the fitted result is stale; fit again on the current embeddings"
        )
    return e


# ---------------------------------------------------------------------------------- helpers
def _same(a, b) -> bool:
    """Parameter equality that also works for arrays (``grid=np.linspace(...)``)."""
    if a is None or b is None:
        return a is b
    if isinstance(a, (np.ndarray, list, tuple)) or isinstance(b, (np.ndarray, list, tuple)):
        return np.shape(a) == np.shape(b) and bool(np.all(np.asarray(a) == np.asarray(b)))
    return bool(a == b)


def _short_repr(value) -> str:
    if isinstance(value, (np.ndarray, list, tuple)) and np.size(value) > 6:
        flat = np.ravel(value)
        return f"<{flat.size} values from {flat[0]:g} to {flat[-1]:g}>"
    return repr(value.tolist() if isinstance(value, np.ndarray) else value)


def _field_error(path, field: str, what: str) -> ValueError:
    return ValueError(f"{str(path)!r} is not a valid saved NUDGE result: field {field!r} {what}")


def _saved_params(meta: dict, path) -> NudgeParams:
    params = meta.get("params")
    if isinstance(params, dict) and "grade_threshold" not in params:  # saved before graded labels
        params = {**params, "grade_threshold": GRADE_THRESHOLD}
    if not isinstance(params, dict) or set(params) != set(Nudge().get_params()):
        raise _field_error(path, "params", f"must hold exactly {sorted(Nudge().get_params())}")
    try:
        checked = check_params(**params)
    except ValueError as exc:
        raise _field_error(path, "params", f"is invalid: {exc}") from None
    return checked._replace(grid=params["grid"] if params["grid"] is None else tuple(params["grid"]))


def _saved_fingerprints(arrays: dict, n_support: int, path) -> np.ndarray | None:
    """The per-row fingerprints of the support's original rows (absent in models saved before them)."""
    fp = arrays.get("support_fingerprints")
    if fp is None:
        return None
    if fp.dtype != np.float64 or fp.shape != (n_support, 16) or not np.isfinite(fp).all():
        raise _field_error(path, "support_fingerprints", f"must be a finite float64 array of shape {(n_support, 16)}")
    return fp


def _saved_state(meta: dict, arrays: dict, path) -> dict:
    """The fitted attributes stored in an artefact, each checked (``ValueError`` naming the field)."""

    def check(field: str, ok: bool, what: str) -> None:
        if not ok:
            raise _field_error(path, field, what + (f", got {meta[field]!r}" if field in meta else ""))

    def integer(field: str) -> int:
        value = meta.get(field)
        check(field, isinstance(value, int) and not isinstance(value, bool) and value >= 1, "must be an integer >= 1")
        return value

    method, dtype_name, digest = meta.get("method"), meta.get("dtype"), meta.get("embeddings_sha256")
    check("method", method in ("M", "N"), "must be 'M' or 'N'")
    try:
        gamma = check_gamma(meta.get("gamma"), "gamma", method=method)
    except ValueError as exc:
        raise _field_error(path, "gamma", f"is invalid: {exc}") from None
    check("dtype", dtype_name in [d.name for d in FLOAT_DTYPES], "must be 'float32' or 'float64'")
    dtype = np.dtype(dtype_name)
    if method == "M" and 1.0 + gamma > float(np.finfo(dtype).max):
        raise _field_error(path, "gamma", f"is too large for {dtype} output: {gamma:g}")
    n_docs, n_features, k = integer("n_documents"), integer("n_features"), integer("k")
    check(
        "embeddings_sha256", isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest), "must be 64 hex digits"
    )
    score, region = meta.get("val_score"), meta.get("best_region")
    real = (int, float)
    check("val_score", score is None or (type(score) in real and 0 <= score <= 1), "must be null or in [0, 1]")
    region_ok = isinstance(region, list) and len(region) == 2 and all(type(v) in real for v in region)
    check("best_region", region is None or (region_ok and 0 <= region[0] <= region[1]), "must be null or [start, end]")

    def indices(field: str) -> np.ndarray:
        a = arrays.get(field)
        ok = a is not None and a.ndim == 1 and (a.size == 0 or a.dtype.kind in "iu")
        check(field, ok and (a.size == 0 or (0 <= a[0] and a[-1] < n_docs and np.all(np.diff(a) > 0))),
              f"must be sorted, distinct document indices in [0, {n_docs - 1}]")  # fmt: skip
        return a.astype(np.int64)

    support, moved = indices("support"), indices("moved")
    sums = arrays.get("query_sums")
    shape_ok = sums is not None and sums.dtype == np.float64 and sums.shape == (support.size, n_features)
    check("query_sums", shape_ok, f"must be a float64 array of shape {(support.size, n_features)}")
    check(
        "query_sums",
        np.isfinite(sums).all() and np.all(np.einsum("ij,ij->i", sums, sums) > 0),
        "must hold finite, non-zero rows",
    )
    check("moved", np.setdiff1d(moved, support).size == 0, "lists documents without training queries")
    expected_m = support if gamma > 0 else support[:0]
    if (gamma == 0 and moved.size) or (method == "M" and not np.array_equal(moved, expected_m)):
        raise _field_error(path, "moved", "does not list the documents this gamma moves")
    curve = None
    if "curve_gamma" in arrays or "curve_score" in arrays:
        g, c = arrays.get("curve_gamma"), arrays.get("curve_score")
        ok = g is not None and c is not None and g.ndim == 1 and g.shape == c.shape and np.isfinite(g).all()
        check("curve_gamma", ok, "and 'curve_score' must be 1-D arrays of equal length")
        curve = {"gamma": g, "score": c}
    return {
        "method_": method,
        "k_": k,
        "gamma_": gamma,
        "n_documents_": n_docs,
        "n_features_in_": n_features,
        "dtype_": dtype,
        "embeddings_sha256_": digest,
        "val_score_": None if score is None else float(score),
        "best_region_": None if region is None else tuple(map(float, region)),
        "support_": support,
        "query_sums_": sums,
        "moved_": moved,
        "validation_curve_": curve,
    }


def choose_method(models: dict[str, Nudge]) -> str:
    """``"M"`` or ``"N"``: the fitted model with the higher validation score; an exact tie goes to NUDGE-N.

    The rule notebook 08 uses (its section 5 and its existing-test-set variant): NUDGE-N keeps unit
    length, so it is safe with any index, and wins when validation cannot tell them apart.

    Parameters
    ----------
    models : dict
        ``{"M": fitted Nudge("M"), "N": fitted Nudge("N")}``, both fitted with gamma chosen on the
        same validation set (``val_score_`` set).
    """
    if not isinstance(models, dict) or set(models) != {"M", "N"}:
        raise ValueError(f"models must be a dict with the keys 'M' and 'N', got {models!r}")
    scores = {m: getattr(models[m], "val_score_", None) for m in ("M", "N")}
    missing = [m for m, v in scores.items() if v is None]
    if missing:
        raise ValueError(f"models[{missing[0]!r}] has no validation score: fit it with gamma chosen on validation")
    return "N" if scores["N"] >= scores["M"] else "M"
