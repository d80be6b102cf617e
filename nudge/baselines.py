"""Two baselines to judge NUDGE by: a popularity control and the guide's formula (notebooks 03 and 05).

NUDGE moves the passages that have training questions towards those questions. Two questions
that a learner should ask of any gain it shows:

* **How much is just "this page was asked about before"?** :class:`PopularityControl` scales up
  the passages that have training questions by one factor, with no direction at all: a
  popularity prior. Whatever NUDGE gains beyond it is due to the *direction* of the move.
  NUDGE-M's rows get longer (``||e + gamma g|| > 1``), so it can exploit the same prior;
  NUDGE-N keeps every row at unit length and cannot.
* **Does the guide's simpler formula do as well?** :class:`GuideNudge` implements the practical
  guide's pseudo-code literally (a sum of unit vectors from each document to its questions, one
  step ``gamma`` for all), instead of the paper's exact solutions.

Both follow scikit-learn conventions like :class:`nudge.Nudge`: ``__init__`` stores parameters,
``fit(doc_embeddings, train, val)`` returns ``self`` with learned attributes ending in ``_``,
``transform(doc_embeddings)`` returns a new array. The factor / gamma is the grid value with the
best validation score, the score :class:`nudge.Nudge` uses for ``k = 1``: the share of
validation queries whose best relevant passage ranks first (a tie counts in its favour);
the first best grid value wins. Rows are L2-normalised first, as NUDGE does; outputs are not
unit length, so retrieve with the dot product.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._corpus import DEFAULT_CHUNK_SIZE, fingerprint, normalise_block
from ._validation import check_matrix
from .estimator import NotFittedError
from .pairs import as_query_set, validate_query_set

__all__ = ["CONTROL_FACTORS", "GUIDE_GRID", "GuideNudge", "PopularityControl", "guide_directions"]

#: Default factors of :class:`PopularityControl`: 1.000, 1.005, ..., 2.000 (201 values; 1 = no change).
CONTROL_FACTORS = tuple(round(1.0 + 0.005 * i, 3) for i in range(201))
#: Default step sizes of :class:`GuideNudge`: 0, 0.001, ..., 1.0 (1001 values). The guide's
#: directions are sums of unit vectors, as long as a passage has training questions (at most),
#: so the useful step depends on the data: 0.015 on the bundled data, about 0.45 on SciFact.
GUIDE_GRID = tuple(round(0.001 * i, 3) for i in range(1001))


def _check_grid(values, name: str, *, minimum: float) -> np.ndarray:
    if isinstance(values, (str, bytes)):
        raise ValueError(f"{name} must be a sequence of numbers, got {type(values).__name__}")
    try:
        grid = np.array(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of numbers") from None
    if grid.size == 0:
        raise ValueError(f"{name} is empty: give at least one value")
    if not np.isfinite(grid).all() or (grid < minimum).any():
        raise ValueError(
            f"{name} must hold finite values >= {minimum}, got {grid[(~np.isfinite(grid)) | (grid < minimum)][:3]}"
        )
    return grid


def _prepare(doc_embeddings, train, val):
    """Check inputs; return unit rows (a new array), train (q, flat, offsets), val (q, flat, offsets)."""
    e = check_matrix(doc_embeddings, "doc_embeddings")
    n, d = e.shape
    tr = validate_query_set(as_query_set(train, "train"), "train", n_docs=n, dim=d, dtype=e.dtype)
    va = None
    if val is not None:
        va = validate_query_set(as_query_set(val, "val"), "val", n_docs=n, dim=d, dtype=e.dtype)
    out = np.empty_like(e)
    for start in range(0, n, DEFAULT_CHUNK_SIZE):
        out[start : start + DEFAULT_CHUNK_SIZE] = normalise_block(
            e[start : start + DEFAULT_CHUNK_SIZE], "doc_embeddings", start
        )
    return out, tr, va


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    return x / np.where(norms > 0, norms, 1.0)[:, None]


def line_validation_scores(
    e: np.ndarray, rows: np.ndarray, slopes: np.ndarray, val, grid: np.ndarray, *, block: int = 256
) -> np.ndarray:
    """Validation top-1 at every step ``g`` of ``grid`` when rows ``rows`` become ``e + g * slopes``.

    Every document's score is a line in ``g``: ``q . e_j + g (q . slopes_j)``, flat for the
    documents outside ``rows``. A query counts when its best relevant document scores at least
    as high as every other document (a tie counts in its favour), as in :class:`nudge.Nudge`.

    Parameters
    ----------
    e : ndarray, shape (N, d)
        Unit document rows.
    rows : ndarray of int64, shape (m,)
        Sorted, distinct rows that move.
    slopes : ndarray, shape (m, d)
        What each moving row gains per unit of ``g``.
    val : tuple ``(queries (n, d), flat answers, offsets)`` as from ``validate_query_set``.
    grid : ndarray, shape (g,)

    Returns
    -------
    ndarray of float64, shape (g,)
        Share of validation queries answered at rank 1.
    """
    q, flat, offsets = val
    n_val, n_docs = q.shape[0], e.shape[0]
    moving = np.zeros(n_docs, dtype=bool)
    moving[rows] = True
    col = np.full(n_docs, -1, dtype=np.int64)
    col[rows] = np.arange(rows.size)
    query_of_pair = np.repeat(np.arange(n_val), np.diff(offsets))
    hits = np.zeros(grid.size, dtype=np.int64)
    for r0 in range(0, n_val, block):
        r1 = min(r0 + block, n_val)
        qb = q[r0:r1].astype(np.float64)
        p0, p1 = offsets[r0], offsets[r1]
        pr, pd = query_of_pair[p0:p1] - r0, flat[p0:p1]
        # flat documents: best relevant (aU) and best other (nU) score per query
        a_flat = np.full(r1 - r0, -np.inf)
        n_flat = np.full(r1 - r0, -np.inf)
        for c0 in range(0, n_docs, DEFAULT_CHUNK_SIZE):
            c1 = min(c0 + DEFAULT_CHUNK_SIZE, n_docs)
            s = qb @ e[c0:c1].T.astype(np.float64)
            s[:, moving[c0:c1]] = -np.inf
            inside = (pd >= c0) & (pd < c1)
            rel = np.full(s.shape, False)
            rel[pr[inside], pd[inside] - c0] = True
            np.maximum(a_flat, np.where(rel, s, -np.inf).max(axis=1), out=a_flat)
            np.maximum(n_flat, np.where(rel, -np.inf, s).max(axis=1), out=n_flat)
        if rows.size:
            s_m = qb @ e[rows].T.astype(np.float64)
            t_m = qb @ slopes.T.astype(np.float64)
            rel_m = np.zeros(s_m.shape, dtype=bool)
            mv = col[pd] >= 0
            rel_m[pr[mv], col[pd[mv]]] = True
        for gi, g in enumerate(grid):
            best_rel, best_other = a_flat, n_flat
            if rows.size:
                scores = s_m + g * t_m
                best_rel = np.maximum(best_rel, np.where(rel_m, scores, -np.inf).max(axis=1))
                best_other = np.maximum(best_other, np.where(rel_m, -np.inf, scores).max(axis=1))
            hits[gi] += int(np.count_nonzero(best_rel >= best_other))
    return hits / n_val


class _Baseline:
    """Shared fitting and applying: rows ``rows_`` become ``e + step * slopes`` (unit ``e``)."""

    def _check_fitted(self) -> None:
        if not hasattr(self, "scores_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit() first")

    def _apply(self, doc_embeddings: np.ndarray, step: float, slopes) -> np.ndarray:
        """``slopes(unit rows)`` gives the (m, d) change per unit step of the support rows."""
        e = check_matrix(doc_embeddings, "doc_embeddings")
        if e.shape != (self.n_documents_, self.n_features_in_):
            raise ValueError(
                f"doc_embeddings have shape {e.shape} but this {type(self).__name__} was fitted on "
                f"shape {(self.n_documents_, self.n_features_in_)}"
            )
        if fingerprint(e) != self.embeddings_sha256_:
            raise ValueError(
                f"doc_embeddings are not the ones this {type(self).__name__} was fitted on (SHA-256 "
                "fingerprint differs): fit again on the current embeddings"
            )
        out = np.empty_like(e)
        for start in range(0, e.shape[0], DEFAULT_CHUNK_SIZE):
            out[start : start + DEFAULT_CHUNK_SIZE] = normalise_block(
                e[start : start + DEFAULT_CHUNK_SIZE], "doc_embeddings", start
            )
        if step != 0 and self.support_.size:
            out[self.support_] = (out[self.support_] + step * slopes(out)).astype(out.dtype)
        return out

    def fit_transform(self, doc_embeddings: np.ndarray, train, val=None) -> np.ndarray:
        """``fit`` then ``transform``."""
        return self.fit(doc_embeddings, train, val).transform(doc_embeddings)


class PopularityControl(_Baseline):
    """The popularity control: scale up every passage that has training questions, no direction.

    ``e_i' = factor * e_i`` for each passage ``i`` answering at least one training question,
    ``e_i' = e_i`` otherwise (rows L2-normalised first). With the dot product, a moved passage's
    score for every query is multiplied by ``factor``: it climbs for every query it already
    matches, whatever the query asks. The factor is chosen on validation top-1.

    Parameters
    ----------
    factors : sequence of float, optional
        Factors to try, each >= 1 (1 = no fine-tuning); default :data:`CONTROL_FACTORS`
        (1.000, 1.005, ..., 2.000). The first factor with the best validation score is used.

    Attributes
    ----------
    factor_ : float
        The chosen factor.
    factors_ : ndarray, shape (g,)
        The factors tried.
    scores_ : ndarray, shape (g,)
        Validation top-1 at each factor.
    val_score_ : float
        Validation top-1 at ``factor_``.
    support_ : ndarray of int64, shape (m,)
        Passages with training questions.
    moved_ : ndarray of int64
        Passages that change: ``support_``, or none when ``factor_`` is 1.
    n_documents_, n_features_in_ : int
    embeddings_sha256_ : str
        Fingerprint of the fitted embeddings; ``transform`` refuses others.
    """

    def __init__(self, factors=None) -> None:
        self.factors = factors

    def get_params(self, deep: bool = True) -> dict:
        return {"factors": self.factors}

    def __repr__(self) -> str:
        return "PopularityControl()" if self.factors is None else f"PopularityControl(factors={self.factors!r})"

    def fit(self, doc_embeddings: np.ndarray, train, val) -> PopularityControl:
        """Find the passages with training questions and choose the factor on ``val``.

        Parameters
        ----------
        doc_embeddings : ndarray, shape (N, d)
            Base document embeddings (not modified).
        train, val : QuerySet, (embeddings, answers) tuple or {"q_embs", "q_ans_indx"} dict
            Training queries (only which passages they answer matters) and validation queries.
        """
        factors = _check_grid(CONTROL_FACTORS if self.factors is None else self.factors, "factors", minimum=1.0)
        if val is None:
            raise ValueError("val is required to choose the factor; pass validation queries")
        e, (_, tflat, _), va = _prepare(doc_embeddings, train, val)
        support = np.unique(tflat)
        scores = line_validation_scores(e, support, e[support], va, factors - 1.0)
        best = int(np.argmax(scores))
        self.factor_ = float(factors[best])
        self.factors_ = factors
        self.scores_ = scores
        self.val_score_ = float(scores[best])
        self.support_ = support
        self.moved_ = support.copy() if self.factor_ != 1.0 else np.empty(0, dtype=np.int64)
        self.n_documents_, self.n_features_in_ = e.shape
        self.embeddings_sha256_ = fingerprint(np.asarray(doc_embeddings))
        return self

    def transform(self, doc_embeddings: np.ndarray, factor: float | None = None) -> np.ndarray:
        """Normalised copy of ``doc_embeddings`` with the support rows scaled by ``factor_``.

        ``factor`` overrides the chosen factor (any real >= 0, e.g. to draw a curve).
        """
        self._check_fitted()
        factor = self.factor_ if factor is None else _check_scalar(factor, "factor")
        return self._apply(doc_embeddings, factor - 1.0, lambda unit: unit[self.support_])


def _check_scalar(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def guide_directions(
    doc_embeddings: np.ndarray, train_queries: np.ndarray, train_answers
) -> tuple[np.ndarray, np.ndarray]:
    """The guide's directions: for each passage, the sum over its training questions of
    ``normalize(query - doc)``.

    Parameters
    ----------
    doc_embeddings : ndarray, shape (N, d)
        Unit document rows (normalise first).
    train_queries : ndarray, shape (n, d)
    train_answers : list of list of int, length n

    Returns
    -------
    support : ndarray of int64, shape (m,)
        Passages with training questions, sorted.
    directions : ndarray, shape (m, d)
        Their summed unit vectors (NOT normalised again: a passage with more questions gets a
        longer direction, up to its number of questions).
    """
    e = check_matrix(doc_embeddings, "doc_embeddings")
    q = check_matrix(train_queries, "train_queries", dim=e.shape[1], dtype=e.dtype)
    _, flat, offsets = validate_query_set(
        as_query_set((q, train_answers), "train"), "train", n_docs=e.shape[0], dim=e.shape[1], dtype=e.dtype
    )
    return _guide_directions(e, q, flat, offsets)


def _guide_directions(e, q, flat, offsets):
    query_of_pair = np.repeat(np.arange(q.shape[0]), np.diff(offsets))
    unit_steps = _unit(q[query_of_pair].astype(np.float64) - e[flat].astype(np.float64))
    support, inverse = np.unique(flat, return_inverse=True)
    sums = np.zeros((support.size, e.shape[1]))
    np.add.at(sums, inverse, unit_steps)
    return support, sums


class GuideNudge(_Baseline):
    """The practical guide's update, implemented literally; gamma chosen on validation.

    The guide writes (for NUDGE-M and NUDGE-N alike)::

        direction = normalize(query - doc)      # for each training pair
        directions = sum of direction per document
        new = e + gamma * directions

    So each training pair contributes a *unit* vector from the document towards its question
    (the paper's NUDGE sums the questions themselves, ``G_i``, and then bounds the step exactly);
    the directions are summed per document and not normalised again, so a document with more
    questions moves further; one ``gamma`` serves every document, and the output is not unit
    length (retrieve with the dot product). Document rows are L2-normalised first and queries
    used as given, as NUDGE does. Gamma is chosen by grid search on validation top-1 (the
    score :class:`nudge.Nudge` uses), the first best value of ``grid``.

    Parameters
    ----------
    grid : sequence of float, optional
        Step sizes to try, each >= 0; default :data:`GUIDE_GRID` (0, 0.001, ..., 1.0).

    Attributes
    ----------
    gamma_ : float
    grid_, scores_ : ndarray, shape (g,)
        Step sizes tried and their validation top-1.
    val_score_ : float
    support_ : ndarray of int64, shape (m,)
        Passages with training questions.
    directions_ : ndarray of float64, shape (m, d)
        Summed unit vectors ``sum normalize(q - e_i)`` of ``support_``.
    moved_ : ndarray of int64
        Passages that change at ``gamma_`` (non-zero direction; none when ``gamma_`` is 0).
    n_documents_, n_features_in_ : int
    embeddings_sha256_ : str
        Fingerprint of the fitted embeddings; ``transform`` refuses others.
    """

    def __init__(self, grid=None) -> None:
        self.grid = grid

    def get_params(self, deep: bool = True) -> dict:
        return {"grid": self.grid}

    def __repr__(self) -> str:
        return "GuideNudge()" if self.grid is None else f"GuideNudge(grid={self.grid!r})"

    def fit(self, doc_embeddings: np.ndarray, train, val) -> GuideNudge:
        """Compute the guide's directions from ``train`` and choose gamma on ``val``."""
        grid = _check_grid(GUIDE_GRID if self.grid is None else self.grid, "grid", minimum=0.0)
        if val is None:
            raise ValueError("val is required to choose gamma; pass validation queries")
        e, (tq, tflat, toff), va = _prepare(doc_embeddings, train, val)
        support, directions = _guide_directions(e, tq, tflat, toff)
        scores = line_validation_scores(e, support, directions, va, grid)
        best = int(np.argmax(scores))
        self.gamma_ = float(grid[best])
        self.grid_ = grid
        self.scores_ = scores
        self.val_score_ = float(scores[best])
        self.support_ = support
        self.directions_ = directions
        nonzero = np.einsum("ij,ij->i", directions, directions) > 0
        self.moved_ = support[nonzero] if self.gamma_ > 0 else np.empty(0, dtype=np.int64)
        self.n_documents_, self.n_features_in_ = e.shape
        self.embeddings_sha256_ = fingerprint(np.asarray(doc_embeddings))
        return self

    def transform(self, doc_embeddings: np.ndarray, gamma: float | None = None) -> np.ndarray:
        """Normalised copy of ``doc_embeddings`` with ``e + gamma_ * directions_`` on the support rows.

        ``gamma`` overrides the chosen step (any real >= 0).
        """
        self._check_fitted()
        gamma = self.gamma_ if gamma is None else _check_scalar(gamma, "gamma")
        return self._apply(doc_embeddings, gamma, lambda unit: self.directions_)
