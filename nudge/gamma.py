"""Phase 4: MaxA-EFT, choosing the step size gamma on validation queries (notebook 04).

The directions are fixed (phase 3); only the step size is chosen, to maximise a validation
metric. The metric is the reference package's: for each validation query, the number of its
relevant documents in the top ``k`` divided by ``min(#relevant, k)``, averaged over queries
(top-1 accuracy for ``k = 1``; a document ties in its favour).

* NUDGE-M: every score is a line in gamma, so the set of gammas where a (query, answer) pair
  counts is a union of closed intervals. The best gamma is found *exactly* by a sweep over the
  interval end points (for ``k = 1`` one interval per pair, in closed form).
* NUDGE-N: rows rotate, scores are not linear in gamma; gamma is chosen on a grid. Scores of
  moved rows decompose as ``cos(theta) (q . e) + sin(theta) (q . u)``, so each grid value costs
  only elementwise work on (validation x moved) blocks.

Both start from :class:`ValidationContext`: one pass over the corpus finds, for every
validation query, the best scores among documents that neither move nor answer any validation
query (they cannot change with gamma); everything after that touches only the moved rows and the
validation answers. No (validation x corpus) matrix is ever built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import reduce

import numpy as np

from ._corpus import DEFAULT_CHUNK_SIZE, corpus_pass, normalise_block
from .directions import nudge_n_coefficients, nudge_n_geometry

__all__ = [
    "REFERENCE_GRID",
    "ValidationContext",
    "best_gamma_m",
    "best_gamma_n",
    "choose_gamma",
    "curve_m",
    "curve_n",
    "pair_intervals",
    "prepare_validation",
    "query_intervals",
    "validation_context",
]

#: The reference package's NUDGE-N grid: 0, 0.02, ..., 0.48 (computed the same way, bit for bit).
REFERENCE_GRID = tuple(0.02 * x for x in range(25))
_REFERENCE_EPS = 1e-8
_REFERENCE_LARGE = 1e8


@dataclass
class ValidationContext:
    """Everything gamma selection needs, in memory bounded by the moved rows and the answers.

    Attributes
    ----------
    queries : ndarray, shape (n_val, d)
        Validation query embeddings.
    offsets : ndarray of int64, shape (n_val + 1,)
        CSR offsets of the answers (pairs of query ``i`` are ``offsets[i]:offsets[i+1]``).
    answer_pos : ndarray of int64, shape (n_pairs,)
        For every validation pair, the position of its answer in ``special``.
    special : ndarray of int64, shape (c,)
        Sorted document indices scored explicitly: support documents and validation answers.
    special_rows : ndarray, shape (c, d)
        Their L2-normalised embeddings.
    support_pos : ndarray of int64, shape (m,)
        Positions in ``special`` of the support documents (in support order).
    directions : ndarray, shape (m, d)
        Unit query-sum directions of the support documents.
    background : ndarray, shape (n_val, k)
        Best scores of all other documents per validation query (descending, ``-inf`` padded).
    k : int
        Depth of ``background`` (the largest k this context can evaluate).
    val_batch_size : int
        Validation queries per block.
    """

    queries: np.ndarray
    offsets: np.ndarray
    answer_pos: np.ndarray
    special: np.ndarray
    special_rows: np.ndarray
    support_pos: np.ndarray
    directions: np.ndarray
    background: np.ndarray
    k: int
    val_batch_size: int = 256
    _geometry: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @property
    def n_queries(self) -> int:
        return self.queries.shape[0]

    def geometry(self) -> tuple[np.ndarray, np.ndarray]:
        """NUDGE-N's ``cos_angle`` (m,) and unit normals (m, d) of the support rows (cached)."""
        if self._geometry is None:
            e = self.special_rows[self.support_pos]
            self._geometry = nudge_n_geometry(e, self.directions)
        return self._geometry

    def blocks(self, exact: bool = True):
        """Yield ``(rows, S, T)`` per block of validation queries.

        ``S`` (b x c) are scores against the special documents, ``T`` (b x c) the scores
        against their directions (zero outside the support); float64 when ``exact``, else in the
        input dtype (the reference package's arithmetic).
        """
        for r0 in range(0, self.n_queries, self.val_batch_size):
            r1 = min(r0 + self.val_batch_size, self.n_queries)
            q = self.queries[r0:r1]
            s = q @ self.special_rows.T
            if exact:
                s = s.astype(np.float64)
            t = np.zeros_like(s)
            t[:, self.support_pos] = q @ self.directions.T
            yield slice(r0, r1), s, t

    def query_weights(self, k: int) -> tuple[np.ndarray, int]:
        """Integer weight per pair so the weighted count is exact; and the common scale.

        A pair of query ``i`` weighs ``L / min(|A_i|, k)`` with ``L = lcm(1..k)``; the metric is
        ``weighted count / (L * n_val)``.
        """
        scale = reduce(math.lcm, range(1, k + 1), 1)
        n_ans = np.diff(self.offsets)
        per_query = scale // np.minimum(n_ans, k)
        return np.repeat(per_query, n_ans), scale


def prepare_validation(
    embeddings: np.ndarray,
    support: np.ndarray,
    directions: np.ndarray,
    val_queries: np.ndarray,
    val_flat: np.ndarray,
    val_offsets: np.ndarray,
    *,
    k: int = 1,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    val_batch_size: int = 256,
    out: np.ndarray | None = None,
    want_hash: bool = False,
    extra_background: np.ndarray | None = None,
) -> tuple[ValidationContext, str | None]:
    """Run the corpus pass and collect what gamma selection needs (inputs already checked).

    ``extra_background`` (n_val, j) adds scores of documents kept outside ``embeddings``
    (the reference package's ``nontrain_embeddings``). ``out`` and ``want_hash`` are passed to
    the corpus pass so one pass also writes the normalised output and the fingerprint.
    """
    special = np.union1d(support, val_flat)
    background, digest = corpus_pass(
        embeddings, val_queries, special, k, chunk_size=chunk_size, out=out, want_hash=want_hash
    )
    if extra_background is not None:
        both = np.concatenate([background, extra_background.astype(background.dtype)], axis=1)
        background = -np.sort(-both, axis=1)[:, :k]
    rows = out[special] if out is not None else normalise_block(embeddings[special])
    ctx = ValidationContext(
        queries=val_queries,
        offsets=val_offsets,
        answer_pos=np.searchsorted(special, val_flat),
        special=special,
        special_rows=rows,
        support_pos=np.searchsorted(special, support),
        directions=directions.astype(val_queries.dtype, copy=False),
        background=background,
        k=k,
        val_batch_size=val_batch_size,
    )
    return ctx, digest


def validation_context(embeddings: np.ndarray, model, queries, k: int = 1, **kwargs) -> ValidationContext:
    """A :class:`ValidationContext` for a fitted :class:`nudge.Nudge` and any labelled queries.

    Convenience for notebooks and tools: checks ``queries`` (a QuerySet, tuple or dict) against
    ``embeddings`` and prepares the context for ``model``'s support and directions.
    """
    from .pairs import as_query_set, validate_query_set

    e = np.asarray(embeddings)
    q, flat, off = validate_query_set(
        as_query_set(queries, "queries"), "queries", n_docs=e.shape[0], dim=e.shape[1], dtype=e.dtype
    )
    ctx, _ = prepare_validation(e, model.support_, model.directions_, q, flat, off, k=k, **kwargs)
    return ctx


# --------------------------------------------------------------------------------------------
# NUDGE-M: exact intervals
# --------------------------------------------------------------------------------------------


def _pair_lines(ctx: ValidationContext, rows: slice, s: np.ndarray, t: np.ndarray, k: int):
    """Intercepts ``b`` and slopes ``c`` of every competitor line relative to each pair's answer.

    A competitor ``j`` is above answer ``a`` at gamma iff ``b_j + gamma * c_j > 0`` with
    ``b_j = s_j - s_a`` and ``c_j = t_j - t_a``. Columns: the special documents (the answer's own
    column gives ``b = c = 0``, which never counts) then ``k`` background documents (slope 0).
    """
    p0, p1 = ctx.offsets[rows.start], ctx.offsets[rows.stop]
    counts = np.diff(ctx.offsets[rows.start : rows.stop + 1])
    r = np.repeat(np.arange(rows.stop - rows.start), counts)
    a = ctx.answer_pos[p0:p1]
    s_a = s[r, a][:, None]
    t_a = t[r, a][:, None]
    bg = ctx.background[rows][r, :k].astype(s.dtype)
    b = np.concatenate([s[r] - s_a, bg - s_a], axis=1)
    c = np.concatenate([t[r] - t_a, np.broadcast_to(-t_a, bg.shape)], axis=1)
    return b, c, slice(p0, p1)


def pair_intervals(ctx: ValidationContext, k: int = 1, *, reference: bool = False):
    """Closed gamma intervals in which each validation pair's answer is in the top ``k``.

    Parameters
    ----------
    ctx : ValidationContext
        From :func:`prepare_validation` with ``ctx.k >= k``.
    k : int
        Depth: the answer counts while fewer than ``k`` documents score strictly higher.
    reference : bool
        Reproduce the reference package's arithmetic (``k = 1`` only): ``s / (g + 1e-8)`` and
        ``1e8`` for "no upper bound".

    Returns
    -------
    lo, hi : ndarray of float64, shape (n_intervals,)
        Interval end points (``hi`` may be ``inf``).
    pair : ndarray of int64, shape (n_intervals,)
        Which validation pair each interval belongs to (a pair may have 0, 1 or several).
    """
    if k > ctx.k:
        raise ValueError(f"k={k} exceeds the depth {ctx.k} this validation context was prepared for")
    if reference and k != 1:
        raise ValueError("reference=True reproduces the reference package, which only supports k=1")
    if k == 1 and not reference:
        return _pair_intervals_top1(ctx)
    los, his, pairs = [], [], []
    # Scores are computed in the input dtype (float32 scores carry float32 accuracy whatever
    # the arithmetic after them), like the reference does.
    for rows, s, t in ctx.blocks(exact=False):
        b, c, psl = _pair_lines(ctx, rows, s, t, k)
        pair_ids = np.arange(psl.start, psl.stop)
        if k == 1:
            lo, hi, ok = _intervals_top1(b, c, reference=reference)
            los.append(lo[ok])
            his.append(hi[ok])
            pairs.append(pair_ids[ok])
        else:
            for i in range(b.shape[0]):
                lo, hi = _intervals_topk(b[i], c[i], k)
                los.append(lo)
                his.append(hi)
                pairs.append(np.full(lo.size, pair_ids[i]))
    if not los:
        empty = np.empty(0)
        return empty, empty, np.empty(0, dtype=np.int64)
    return np.concatenate(los), np.concatenate(his), np.concatenate(pairs)


def _pair_intervals_top1(ctx: ValidationContext):
    """Top-1 intervals with the flat competitors folded into one line per pair.

    Documents that do not move (validation answers outside the support, and the background)
    are horizontal lines: only the highest one other than the pair's own answer can bound the
    interval. So the per-pair work is over the moved documents only.
    """
    dtype = ctx.queries.dtype
    m = ctx.support_pos.size
    is_support = np.zeros(ctx.special.size, dtype=bool)
    is_support[ctx.support_pos] = True
    flat_cols = np.flatnonzero(~is_support)
    # one matrix product per block: [support rows; directions; flat rows]
    stacked = np.concatenate([ctx.special_rows[ctx.support_pos], ctx.directions, ctx.special_rows[flat_cols]])
    support_index = np.full(ctx.special.size, -1, dtype=np.int64)
    support_index[ctx.support_pos] = np.arange(ctx.support_pos.size)
    flat_index = np.full(ctx.special.size, -1, dtype=np.int64)
    flat_index[flat_cols] = np.arange(flat_cols.size)
    los, his, pairs = [], [], []
    for r0 in range(0, ctx.n_queries, ctx.val_batch_size):
        r1 = min(r0 + ctx.val_batch_size, ctx.n_queries)
        scores = ctx.queries[r0:r1] @ stacked.T
        s_sup, t_sup, s_flat = scores[:, :m], scores[:, m : 2 * m], scores[:, 2 * m :]
        bg = ctx.background[r0:r1, 0].astype(dtype)
        # the two best flat scores per query (a flat answer must not compete with itself)
        if flat_cols.size >= 2:
            top2 = np.argpartition(-s_flat, 1, axis=1)[:, :2]
            v2 = np.take_along_axis(s_flat, top2, 1)
            swap = v2[:, 1] > v2[:, 0]
            top2[swap] = top2[swap][:, ::-1]
            v2[swap] = v2[swap][:, ::-1]
        else:
            top2 = np.full((r1 - r0, 2), -1, dtype=np.int64)
            v2 = np.full((r1 - r0, 2), -np.inf, dtype=dtype)
            if flat_cols.size == 1:
                top2[:, 0], v2[:, 0] = 0, s_flat[:, 0]
        p0, p1 = ctx.offsets[r0], ctx.offsets[r1]
        r = np.repeat(np.arange(r1 - r0), np.diff(ctx.offsets[r0 : r1 + 1]))
        a = ctx.answer_pos[p0:p1]
        a_sup, a_flat = support_index[a], flat_index[a]
        moving = a_sup >= 0
        s_a = np.where(
            moving, s_sup[r, np.maximum(a_sup, 0)], s_flat[r, np.maximum(a_flat, 0)] if flat_cols.size else 0
        )
        t_a = np.where(moving, t_sup[r, np.maximum(a_sup, 0)], 0).astype(dtype)
        best_flat = np.where(top2[r, 0] == a_flat, v2[r, 1], v2[r, 0])
        b_flat = np.maximum(best_flat, bg[r]) - s_a
        # lines of the moved documents: above the answer iff b + gamma * (t_j - t_a) > 0
        b = s_sup[r] - s_a[:, None]
        g = t_a[:, None] - t_sup[r]
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = b / g
            flat_alpha = b_flat / t_a
        zero = dtype.type(0)
        lo = np.max(np.where(g > zero, alpha, zero), axis=1, initial=0.0)
        hi = np.min(np.where(g < zero, alpha, np.inf), axis=1, initial=np.inf)
        lo = np.where(t_a > 0, np.maximum(lo, flat_alpha), lo).astype(np.float64)
        hi = np.where(t_a < 0, np.minimum(hi, flat_alpha), hi).astype(np.float64)
        blocked = np.any((g == zero) & (b > zero), axis=1) | ((t_a == 0) & (b_flat > 0))
        ok = ~blocked & (hi >= lo)
        los.append(lo[ok])
        his.append(hi[ok])
        pairs.append(np.arange(p0, p1)[ok])
    return np.concatenate(los), np.concatenate(his), np.concatenate(pairs)


def _intervals_top1(b: np.ndarray, c: np.ndarray, *, reference: bool):
    """Per row, the interval where no competitor is strictly above (``b + gamma c <= 0`` for all)."""
    # b + gamma c <= 0 : c < 0 -> gamma >= b/(-c) (lower bound); c > 0 -> gamma <= -b/c (upper).
    # The reference writes g = -c and alpha = b / (g + eps).
    g = -c
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = b / (g + b.dtype.type(_REFERENCE_EPS)) if reference else b / g
    large = b.dtype.type(_REFERENCE_LARGE if reference else np.inf)
    zero = b.dtype.type(0)
    lo = np.maximum(np.max(np.where(g > zero, alpha, zero), axis=1), zero).astype(np.float64)
    hi = np.min(np.where(g < zero, alpha, large), axis=1).astype(np.float64)
    if reference:
        hi = np.minimum(hi, large)
    blocked = np.any((g == 0) & (b > 0), axis=1)
    ok = ~blocked & (hi >= lo)
    return lo, hi, ok


def _intervals_topk(b: np.ndarray, c: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Closed intervals of gamma >= 0 where fewer than ``k`` lines ``b + gamma c`` are > 0.

    Each condition ``b_j + gamma c_j > 0`` is open in gamma, so the count is lower
    semi-continuous and the accepted set is closed: a finite union of closed intervals.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        r = -b / c
    flat = c == 0
    base = int(np.count_nonzero(flat & (b > 0)))
    up = c > 0  # above for gamma > r
    dn = c < 0  # above for gamma < r
    r_up = r[up]
    base += int(np.count_nonzero(r_up < 0))
    r_up = np.sort(r_up[r_up >= 0])
    r_dn = r[dn]
    r_dn = np.sort(r_dn[r_dn > 0])
    pts = np.unique(np.concatenate([[0.0], r_up, r_dn]))
    n_dn = r_dn.size
    at_pt = base + np.searchsorted(r_up, pts, "left") + (n_dn - np.searchsorted(r_dn, pts, "right"))
    after = base + np.searchsorted(r_up, pts, "right") + (n_dn - np.searchsorted(r_dn, pts, "right"))
    ok_pt = at_pt < k
    ok_seg = after < k  # open segment (pts[i], pts[i+1]) or (pts[-1], inf)
    # Accepted runs start and end at points (the set is closed); walk the alternation
    # point_0, seg_0, point_1, seg_1, ... and cut it into maximal accepted runs.
    seq = np.empty(2 * pts.size, dtype=bool)
    seq[0::2] = ok_pt
    seq[1::2] = ok_seg
    edges = np.diff(np.concatenate([[False], seq, [False]]).astype(np.int8))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1  # last accepted element of each run
    lo = pts[starts // 2]
    hi = np.where(ends % 2 == 0, pts[ends // 2], np.append(pts[1:], np.inf)[ends // 2])
    return lo, hi


def best_gamma_from_intervals(lo: np.ndarray, hi: np.ndarray, weights: np.ndarray) -> tuple[float, int, float]:
    """Smallest gamma covered by the largest total weight of closed intervals.

    Parameters
    ----------
    lo, hi : ndarray, shape (n,)
        Closed intervals ``[lo, hi]``.
    weights : ndarray of int64, shape (n,)
        Positive integer weights (integers keep ties exact).

    Returns
    -------
    gamma : float
        Left end of the best region (0 when no interval exists).
    total : int
        Total weight covering ``gamma``.
    region_end : float
        Right end of the best region ``[gamma, region_end]``.
    """
    if lo.size == 0:
        return 0.0, 0, math.inf
    vals = np.concatenate([lo, hi])
    kind = np.concatenate([np.zeros(lo.size, np.int8), np.ones(hi.size, np.int8)])  # starts first
    w = np.concatenate([weights, -weights])
    order = np.lexsort((kind, vals))
    cover = np.cumsum(w[order])
    i = int(np.argmax(cover))
    total = int(cover[i])
    if total <= 0:
        return 0.0, 0, math.inf
    return float(vals[order[i]]), total, float(vals[order[i + 1]])


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


def pick_in_region(start: float, end: float, choice: str = "middle") -> float:
    """A gamma inside the best region ``[start, end]``.

    ``"smallest"`` is the reference's choice: the left end, where at least one validation answer
    only ties with a competitor, so float rounding can lose it. ``"middle"`` (default of
    :class:`nudge.Nudge`) stays clear of both ends: the midpoint of a finite region; for an
    unbounded region ``[start, inf)`` it is ``1.5 * start`` (0 when ``start`` is 0: every gamma
    scores the same, so nothing moves).
    """
    if choice == "smallest":
        return start
    if choice != "middle":
        raise ValueError(f"gamma_choice must be 'middle' or 'smallest', got {choice!r}")
    return 1.5 * start if math.isinf(end) else 0.5 * (start + end)


def query_intervals(ctx: ValidationContext, k: int = 1, *, intervals=None):
    """Weighted closed intervals whose covering weight at gamma is the validation score.

    A query with one answer contributes its pair's intervals with weight ``L``. A query with
    several answers contributes its *level sets*: where at least ``j`` of its answers are in the
    top ``k``, for ``j = 1 .. min(|A|, k)``, each with weight ``L / min(|A|, k)``; so a query
    never counts more than once (two answers tied at the top count once).

    Returns
    -------
    lo, hi : ndarray of float64
    weights : ndarray of int64
    scale : int
        ``L``; the score at gamma is ``covering weight / (L * n_val)``.
    """
    lo, hi, pair = intervals if intervals is not None else pair_intervals(ctx, k)
    w, scale = ctx.query_weights(k)
    n_ans = np.diff(ctx.offsets)
    query = np.searchsorted(ctx.offsets, pair, side="right") - 1
    single = n_ans[query] == 1
    out_lo, out_hi, out_w = [lo[single]], [hi[single]], [w[pair[single]]]
    multi = np.flatnonzero(~single)
    if multi.size:
        order = multi[np.argsort(query[multi], kind="stable")]
        bounds = np.flatnonzero(np.diff(query[order])) + 1
        for group in np.split(order, bounds):
            cap = min(int(n_ans[query[group[0]]]), k)
            for level_lo, level_hi in _level_sets(lo[group], hi[group], cap):
                out_lo.append(level_lo)
                out_hi.append(level_hi)
                out_w.append(np.full(level_lo.size, w[pair[group[0]]]))
    return np.concatenate(out_lo), np.concatenate(out_hi), np.concatenate(out_w).astype(np.int64), scale


def _level_sets(lo: np.ndarray, hi: np.ndarray, cap: int):
    """For closed intervals, yield ``(starts, ends)`` of ``{count >= j}`` for ``j = 1..cap``."""
    vals = np.concatenate([lo, hi])
    step = np.concatenate([np.ones(lo.size, np.int64), -np.ones(hi.size, np.int64)])
    order = np.lexsort((-step, vals))  # at equal values, starts before ends (closed intervals)
    vals, step = vals[order], step[order]
    count = np.cumsum(step)
    before = count - step
    for j in range(1, cap + 1):
        starts = vals[(step > 0) & (before == j - 1) & (count == j)]
        ends = vals[(step < 0) & (before == j) & (count == j - 1)]
        yield starts, ends


def best_gamma_m(ctx: ValidationContext, k: int = 1, choice: str = "middle", *, intervals=None):
    """Exact NUDGE-M gamma: ``(gamma, validation score, best region (start, end))``.

    ``intervals`` may pass the result of :func:`query_intervals` to avoid recomputing it.
    """
    lo, hi, w, scale = intervals if intervals is not None else query_intervals(ctx, k)
    start, total, end = best_gamma_from_intervals(lo, hi, w)
    return pick_in_region(start, end, choice), total / (scale * ctx.n_queries), (start, end)


def curve_m(ctx: ValidationContext, gammas: np.ndarray, k: int = 1, *, intervals=None) -> np.ndarray:
    """Exact NUDGE-M validation score at each gamma (shape ``gammas.shape``).

    ``intervals`` may pass the result of :func:`query_intervals` to avoid recomputing it.
    """
    gammas = np.asarray(gammas, dtype=np.float64)
    lo, hi, w, scale = intervals if intervals is not None else query_intervals(ctx, k)
    o_lo, o_hi = np.argsort(lo, kind="stable"), np.argsort(hi, kind="stable")
    c_lo = np.concatenate([[0], np.cumsum(w[o_lo])])
    c_hi = np.concatenate([[0], np.cumsum(w[o_hi])])
    started = c_lo[np.searchsorted(lo[o_lo], gammas, "right")]
    ended = c_hi[np.searchsorted(hi[o_hi], gammas, "left")]
    return (started - ended) / (scale * ctx.n_queries)


def choose_gamma(ctx: ValidationContext, method: str, k: int, grid=REFERENCE_GRID, choice: str = "middle"):
    """Gamma for ``method`` on ``ctx``: ``(gamma, score, curve, best region or None)``.

    NUDGE-M: exact, ``choice`` inside the best region, the curve on 201 points up to
    ``max(0.5, 2 gamma)``; NUDGE-N: the first best value of ``grid``, the curve on the grid.
    """
    if method == "M":
        intervals = query_intervals(ctx, k)
        gamma, score, region = best_gamma_m(ctx, k, choice, intervals=intervals)
        grid_m = np.unique(np.append(np.linspace(0.0, max(0.5, 2 * gamma), 201), gamma))
        return gamma, score, {"gamma": grid_m, "score": curve_m(ctx, grid_m, k, intervals=intervals)}, region
    gamma, score, scores = best_gamma_n(ctx, grid, k)
    return gamma, score, {"gamma": np.asarray(grid, dtype=np.float64), "score": scores}, None


# --------------------------------------------------------------------------------------------
# NUDGE-N: grid
# --------------------------------------------------------------------------------------------


def _hits_n(ctx: ValidationContext, gammas, k: int, *, reference: bool = False) -> np.ndarray:
    """Weighted hit totals (int64, one per gamma) of NUDGE-N's validation metric.

    A pair counts when its answer scores at least the ``k``-th best score of its query (ties
    count in the answer's favour, as for NUDGE-M); a query's count is capped at
    ``min(|A|, k)``. Rows inside the cap become exactly ``G/||G||``, so documents with the same
    query sum tie exactly; their scores are taken from ``q . G/||G||`` so the tie stays exact.

    With ``reference=True`` the top ``k`` are taken as the reference package's ``topk`` does on
    large inputs: exact ties go to the lower document index.
    """
    dtype = ctx.queries.dtype
    cos_angle, normal = ctx.geometry()
    coeffs = []
    for g in gammas:
        a, b = nudge_n_coefficients(cos_angle, g)
        inside = (cos_angle >= 1.0 - g / 2.0) if g > 0 else np.zeros(cos_angle.shape, bool)
        coeffs.append((a.astype(dtype), b.astype(dtype), np.flatnonzero(inside)))
    normal = normal.astype(dtype)
    w_pair, _ = ctx.query_weights(k)
    totals = np.zeros(len(gammas), dtype=np.int64)
    n_special = ctx.special.size
    col_in_support = np.full(n_special, -1, dtype=np.int64)
    col_in_support[ctx.support_pos] = np.arange(ctx.support_pos.size)
    fixed_cols = np.flatnonzero(col_in_support < 0)
    for rows, s, t in ctx.blocks(exact=False):
        nb = rows.stop - rows.start
        p0, p1 = ctx.offsets[rows.start], ctx.offsets[rows.stop]
        n_ans = np.diff(ctx.offsets[rows.start : rows.stop + 1])
        r = np.repeat(np.arange(nb), n_ans)
        cap = np.minimum(n_ans, k)
        q_weight = np.zeros(nb, dtype=np.int64)
        q_weight[r] = w_pair[p0:p1]
        a_col = ctx.answer_pos[p0:p1]
        a_sup = col_in_support[a_col]
        moving = a_sup >= 0
        fixed_answer_score = s[r, a_col]
        s_sup = np.ascontiguousarray(s[:, ctx.support_pos])
        t_sup = np.ascontiguousarray(t[:, ctx.support_pos])
        w_sup = ctx.queries[rows] @ normal.T
        # Candidates that do not move: the other special documents and the background.
        fixed_s = np.concatenate([s[:, fixed_cols], ctx.background[rows, :k]], axis=1)
        if fixed_s.shape[1] > k:
            fixed_s = -np.partition(-fixed_s, k - 1, axis=1)[:, :k]
        if reference:
            is_ans = np.zeros((nb, n_special), dtype=bool)
            is_ans[r, a_col] = True
            ref_fixed = np.concatenate([s[:, fixed_cols], ctx.background[rows, :k]], axis=1)
            ref_fixed_ans = np.concatenate([is_ans[:, fixed_cols], np.zeros((nb, k), bool)], axis=1)
            ref_sup_ans = is_ans[:, ctx.support_pos]
        buf = np.empty_like(s_sup)
        for gi, (a, b, inside) in enumerate(coeffs):
            np.multiply(s_sup, a, out=buf)
            buf += w_sup * b
            if inside.size:
                buf[:, inside] = t_sup[:, inside]
            if reference:
                # Columns: support documents in index order, then fixed ones; a stable sort
                # keeps the lower index first among exact ties.
                both = np.concatenate([buf, ref_fixed], axis=1)
                both_ans = np.concatenate([ref_sup_ans, ref_fixed_ans], axis=1)
                top = np.argsort(-both, axis=1, kind="stable")[:, :k]
                hits = np.take_along_axis(both_ans, top, 1).sum(axis=1)
                totals[gi] += int((np.minimum(hits, cap) * q_weight).sum())
                continue
            if k == 1:
                kth = np.max(fixed_s, axis=1)
                if buf.shape[1]:
                    np.maximum(kth, buf.max(axis=1), out=kth)
            else:
                both = np.concatenate([buf, fixed_s], axis=1)
                kth = -np.partition(-both, k - 1, axis=1)[:, k - 1]
            score = fixed_answer_score.copy()
            score[moving] = buf[r[moving], a_sup[moving]]
            hits = np.bincount(r, weights=score >= kth[r], minlength=nb).astype(np.int64)
            totals[gi] += int((np.minimum(hits, cap) * q_weight).sum())
    return totals


def curve_n(ctx: ValidationContext, gammas, k: int = 1) -> np.ndarray:
    """NUDGE-N validation score at each gamma (shape (len(gammas),))."""
    if k > ctx.k:
        raise ValueError(f"k={k} exceeds the depth {ctx.k} this validation context was prepared for")
    totals = _hits_n(ctx, list(gammas), k)
    _, scale = ctx.query_weights(k)
    return totals / (scale * ctx.n_queries)


def best_gamma_n(
    ctx: ValidationContext, grid=REFERENCE_GRID, k: int = 1, *, reference: bool = False
) -> tuple[float, float, np.ndarray]:
    """NUDGE-N grid search: the first grid gamma with the best score, the score, all scores.

    ``reference=True`` breaks exact score ties by document index, as the reference package.
    """
    grid = list(grid)
    totals = _hits_n(ctx, grid, k, reference=reference)
    i = int(np.argmax(totals))
    _, scale = ctx.query_weights(k)
    scores = totals / (scale * ctx.n_queries)
    return float(grid[i]), float(scores[i]), scores
