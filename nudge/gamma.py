"""Phase 4: MaxA-EFT, choosing the step size gamma on validation queries (notebook 04).

The directions are fixed (phase 3); only the step size is chosen, to maximise a validation
metric: for each validation query, the number of its relevant documents in the top ``k``
divided by ``min(#relevant, k)``, averaged over queries (top-1 accuracy for ``k = 1``; a
document ties in its favour). Scores are kept as exact integer counts, for any ``k``.

* NUDGE-M: every score is a line in gamma, so the set of gammas where a (query, answer) pair
  counts is a union of closed intervals. The best gamma is found *exactly* by a sweep over the
  interval end points (for ``k = 1`` one interval per pair, in closed form).
* NUDGE-N: rows rotate, scores are not linear in gamma; gamma is chosen on a grid. Scores of
  moved rows decompose as ``cos(theta) (q . e) + sin(theta) (q . u)``, so each grid value costs
  only elementwise work on (validation x moved) blocks.

Both start from :class:`ValidationContext`. Only the *tracked* documents (those that move and
the validation answers) are scored one by one; of all the others, which never move, only the
best ``k`` scores per validation query matter (``rest_top``), found in one pass over the corpus.
No (validation x corpus) matrix is ever built.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ._corpus import DEFAULT_CHUNK_SIZE, MatrixCorpus
from .directions import nudge_n_geometry, nudge_n_rotation

__all__ = [
    "REFERENCE_GRID",
    "RankedBlock",
    "Top1Lines",
    "ValidationContext",
    "best_gamma_from_intervals",
    "best_gamma_m",
    "best_gamma_n",
    "best_regions",
    "build_context",
    "choose_gamma",
    "curve_m",
    "curve_n",
    "grid_regions",
    "nudge_n_hit_totals",
    "pair_intervals",
    "pick_in_region",
    "query_intervals",
    "ties_favour_the_answer",
    "top1_lines",
    "validation_context",
]

#: The reference package's NUDGE-N grid: 0, 0.02, ..., 0.48 (computed the same way, bit for bit).
REFERENCE_GRID = tuple(0.02 * x for x in range(25))
_INT64_SAFE = 2**62  # weighted totals below this cannot overflow int64


@dataclass
class ValidationContext:
    """Everything gamma selection needs, in memory bounded by the moved rows and the answers.

    Attributes
    ----------
    queries : ndarray, shape (n_val, d)
        Validation query embeddings.
    offsets : ndarray of int64, shape (n_val + 1,)
        CSR offsets of the answers (pairs of query ``i`` are ``offsets[i]:offsets[i+1]``).
    tracked : ndarray of int64, shape (c,)
        Sorted indices of the documents scored one by one: those with training queries and the
        validation answers.
    tracked_rows : ndarray, shape (c, d)
        Their L2-normalised embeddings.
    answer_cols : ndarray of int64, shape (n_pairs,)
        For every validation pair, the position of its answer in ``tracked``.
    support_cols : ndarray of int64, shape (m,)
        Positions in ``tracked`` of the documents with training queries (in support order).
    directions : ndarray, shape (m, d)
        Their unit query-sum directions.
    rest_top : ndarray, shape (n_val, k)
        Per validation query, the best scores among all the *other* documents (descending,
        ``-inf`` padded): they never move, so nothing else about them matters.
    k : int
        Depth of ``rest_top`` (the largest k this context can evaluate).
    val_batch_size : int
        Validation queries per block.
    """

    queries: np.ndarray
    offsets: np.ndarray
    tracked: np.ndarray
    tracked_rows: np.ndarray
    answer_cols: np.ndarray
    support_cols: np.ndarray
    directions: np.ndarray
    rest_top: np.ndarray
    k: int
    val_batch_size: int = 256
    _geometry: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @property
    def n_queries(self) -> int:
        return self.queries.shape[0]

    def geometry(self) -> tuple[np.ndarray, np.ndarray]:
        """NUDGE-N's ``cos_angle`` (m,) and unit normals (m, d) of the support rows (cached)."""
        if self._geometry is None:
            self._geometry = nudge_n_geometry(self.tracked_rows[self.support_cols], self.directions)
        return self._geometry

    def blocks(self):
        """Yield ``(rows, S, T)`` per block of validation queries, in the input dtype.

        ``S`` (b x c) are the scores against the tracked documents, ``T`` (b x c) the scores
        against their directions (zero outside the support).
        """
        for r0 in range(0, self.n_queries, self.val_batch_size):
            r1 = min(r0 + self.val_batch_size, self.n_queries)
            q = self.queries[r0:r1]
            s = q @ self.tracked_rows.T
            t = np.zeros_like(s)
            t[:, self.support_cols] = q @ self.directions.T
            yield slice(r0, r1), s, t

    def query_weights(self, k: int) -> tuple[np.ndarray, int]:
        """Integer weight per pair so that weighted counts are exact; and the common scale.

        A pair of query ``i`` weighs ``L / min(|A_i|, k)`` with ``L`` the least common multiple
        of the values ``min(|A_i|, k)`` that occur; the metric is ``weighted count / (L * n_val)``.
        The weights are int64 when no total can overflow, else Python integers (an object
        array), so the count stays exact for any ``k``.
        """
        n_ans = np.diff(self.offsets)
        caps = np.minimum(n_ans, k)
        scale = math.lcm(*(int(c) for c in np.unique(caps)))
        if scale * max(self.n_queries, 1) < _INT64_SAFE:
            per_query = scale // caps
        else:
            per_query = np.array([scale // int(c) for c in caps], dtype=object)
        return np.repeat(per_query, n_ans), scale


def build_context(
    val_queries: np.ndarray,
    val_flat: np.ndarray,
    val_offsets: np.ndarray,
    support: np.ndarray,
    directions: np.ndarray,
    corpus,
    *,
    k: int = 1,
    val_batch_size: int = 256,
) -> ValidationContext:
    """Collect what gamma selection needs from ``corpus`` (inputs already checked).

    Parameters
    ----------
    val_queries : ndarray, shape (n_val, d)
    val_flat, val_offsets : ndarray of int64, shapes (n_pairs,) and (n_val + 1,)
        Validation answers (document indices) in CSR form.
    support : ndarray of int64, shape (m,)
        Sorted documents with training queries.
    directions : ndarray, shape (m, d)
        Their unit query-sum directions.
    corpus : object with ``rows(indices)`` and ``top_scores(queries, exclude, k)``
        See :class:`nudge.estimator.Corpus`; e.g. :class:`nudge._corpus.MatrixCorpus`.
    """
    tracked = np.union1d(support, val_flat)
    rest_top = corpus.top_scores(val_queries, tracked, k)
    return ValidationContext(
        queries=val_queries,
        offsets=val_offsets,
        tracked=tracked,
        tracked_rows=corpus.rows(tracked),
        answer_cols=np.searchsorted(tracked, val_flat),
        support_cols=np.searchsorted(tracked, support),
        directions=directions.astype(val_queries.dtype, copy=False),
        rest_top=rest_top,
        k=k,
        val_batch_size=val_batch_size,
    )


def validation_context(embeddings: np.ndarray, model, queries, k: int = 1, **kwargs) -> ValidationContext:
    """A :class:`ValidationContext` for a fitted :class:`nudge.Nudge` and any labelled queries.

    Convenience for notebooks and tools: checks ``queries`` (a QuerySet, tuple or dict) against
    ``embeddings`` (N, d) and prepares the context for ``model``'s support and directions.
    ``kwargs``: ``chunk_size``, ``val_batch_size``.
    """
    from .pairs import as_query_set, validate_query_set

    e = np.asarray(embeddings)
    q, flat, off = validate_query_set(
        as_query_set(queries, "queries"), "queries", n_docs=e.shape[0], dim=e.shape[1], dtype=e.dtype
    )
    corpus = MatrixCorpus(e, chunk_size=kwargs.get("chunk_size", DEFAULT_CHUNK_SIZE))
    batch = kwargs.get("val_batch_size", 256)
    return build_context(q, flat, off, model.support_, model.directions_, corpus, k=k, val_batch_size=batch)


# --------------------------------------------------------------------------------------------
# NUDGE-M: exact intervals
# --------------------------------------------------------------------------------------------


class Top1Lines(NamedTuple):
    """The competitors of each validation pair of one block, as lines in gamma (NUDGE-M, top 1).

    Competitor ``j`` scores above answer ``a`` at gamma iff ``gap_j > gamma * gain_j``.

    Attributes
    ----------
    pairs : ndarray of int64, shape (P,)
        Validation pair numbers.
    gap : ndarray, shape (P, m)
        ``s_j - s_a`` for every document ``j`` that moves (the answer's own column is 0).
    gain : ndarray, shape (P, m)
        ``t_a - t_j``: how fast the answer gains on ``j`` as gamma grows.
    flat_gap : ndarray, shape (P,)
        ``s_j - s_a`` of the best document that does not move (other than the answer); its
        gain is ``answer_slope``.
    answer_slope : ndarray, shape (P,)
        ``t_a`` (0 when the answer does not move).
    """

    pairs: np.ndarray
    gap: np.ndarray
    gain: np.ndarray
    flat_gap: np.ndarray
    answer_slope: np.ndarray


def top1_lines(ctx: ValidationContext):
    """Yield :class:`Top1Lines` per block of validation queries.

    Documents that do not move (validation answers outside the support, and the rest of the
    corpus) are horizontal lines: only the highest one other than the pair's own answer can bound
    the pair's interval. So the per-pair work is over the moved documents only.
    """
    dtype = ctx.queries.dtype
    m = ctx.support_cols.size
    is_support = np.zeros(ctx.tracked.size, dtype=bool)
    is_support[ctx.support_cols] = True
    flat_cols = np.flatnonzero(~is_support)
    # one matrix product per block: [support rows; directions; flat rows]
    stacked = np.concatenate([ctx.tracked_rows[ctx.support_cols], ctx.directions, ctx.tracked_rows[flat_cols]])
    support_index = np.full(ctx.tracked.size, -1, dtype=np.int64)
    support_index[ctx.support_cols] = np.arange(m)
    flat_index = np.full(ctx.tracked.size, -1, dtype=np.int64)
    flat_index[flat_cols] = np.arange(flat_cols.size)
    for r0 in range(0, ctx.n_queries, ctx.val_batch_size):
        r1 = min(r0 + ctx.val_batch_size, ctx.n_queries)
        scores = ctx.queries[r0:r1] @ stacked.T
        s_sup, t_sup, s_flat = scores[:, :m], scores[:, m : 2 * m], scores[:, 2 * m :]
        rest = ctx.rest_top[r0:r1, 0].astype(dtype)
        # the two best flat scores per query (a flat answer must not compete with itself)
        top2 = np.full((r1 - r0, 2), -1, dtype=np.int64)
        v2 = np.full((r1 - r0, 2), -np.inf, dtype=dtype)
        if flat_cols.size >= 2:
            top2 = np.argpartition(-s_flat, 1, axis=1)[:, :2]
            v2 = np.take_along_axis(s_flat, top2, 1)
            swap = v2[:, 1] > v2[:, 0]
            top2[swap] = top2[swap][:, ::-1]
            v2[swap] = v2[swap][:, ::-1]
        elif flat_cols.size == 1:
            top2[:, 0], v2[:, 0] = 0, s_flat[:, 0]
        p0, p1 = ctx.offsets[r0], ctx.offsets[r1]
        r = np.repeat(np.arange(r1 - r0), np.diff(ctx.offsets[r0 : r1 + 1]))
        a = ctx.answer_cols[p0:p1]
        a_sup, a_flat = support_index[a], flat_index[a]
        moving = a_sup >= 0
        s_flat_a = s_flat[r, np.maximum(a_flat, 0)] if flat_cols.size else np.zeros(r.size, dtype)
        if m:
            s_a = np.where(moving, s_sup[r, np.maximum(a_sup, 0)], s_flat_a)
            t_a = np.where(moving, t_sup[r, np.maximum(a_sup, 0)], 0).astype(dtype)
        else:  # no document moves (every query sum cancelled): every answer is flat
            s_a, t_a = s_flat_a, np.zeros(r.size, dtype)
        best_flat = np.where(top2[r, 0] == a_flat, v2[r, 1], v2[r, 0])
        one_each = r.size == r1 - r0  # every query has one answer: pair i is query i
        yield Top1Lines(
            pairs=np.arange(p0, p1),
            gap=(s_sup if one_each else s_sup[r]) - s_a[:, None],
            gain=t_a[:, None] - (t_sup if one_each else t_sup[r]),
            flat_gap=np.maximum(best_flat, rest[r]) - s_a,
            answer_slope=t_a,
        )


def _top1_intervals(ctx: ValidationContext):
    """Per validation pair, the interval where no competitor is strictly above the answer."""
    los, his, pairs = [], [], []
    for lines in top1_lines(ctx):
        gap, gain, t_a = lines.gap, lines.gain, lines.answer_slope
        zero = gap.dtype.type(0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = gap / gain
            flat_ratio = lines.flat_gap / t_a
        # gain > 0: the answer overtakes j from gamma = ratio on; gain < 0: j overtakes it there
        lo = np.max(np.where(gain > zero, ratio, zero), axis=1, initial=0.0)
        hi = np.min(np.where(gain < zero, ratio, np.inf), axis=1, initial=np.inf)
        lo = np.where(t_a > 0, np.maximum(lo, flat_ratio), lo).astype(np.float64)
        hi = np.where(t_a < 0, np.minimum(hi, flat_ratio), hi).astype(np.float64)
        blocked = np.any((gain == zero) & (gap > zero), axis=1) | ((t_a == 0) & (lines.flat_gap > 0))
        ok = ~blocked & (hi >= lo)
        los.append(lo[ok])
        his.append(hi[ok])
        pairs.append(lines.pairs[ok])
    return np.concatenate(los), np.concatenate(his), np.concatenate(pairs)


def pair_intervals(ctx: ValidationContext, k: int = 1):
    """Closed gamma intervals in which each validation pair's answer is in the top ``k``.

    Parameters
    ----------
    ctx : ValidationContext
        From :func:`build_context` with ``ctx.k >= k``.
    k : int
        Depth: the answer counts while fewer than ``k`` documents score strictly higher.

    Returns
    -------
    lo, hi : ndarray of float64, shape (n_intervals,)
        Interval end points (``hi`` may be ``inf``).
    pair : ndarray of int64, shape (n_intervals,)
        Which validation pair each interval belongs to (a pair may have 0, 1 or several).
    """
    if k > ctx.k:
        raise ValueError(f"k={k} exceeds the depth {ctx.k} this validation context was prepared for")
    if k == 1:
        return _top1_intervals(ctx)
    los, his, pairs = [], [], []
    # Scores in the input dtype (float32 scores carry float32 accuracy whatever the arithmetic after them).
    for rows, s, t in ctx.blocks():
        p0, p1 = ctx.offsets[rows.start], ctx.offsets[rows.stop]
        r = np.repeat(np.arange(rows.stop - rows.start), np.diff(ctx.offsets[rows.start : rows.stop + 1]))
        a = ctx.answer_cols[p0:p1]
        s_a, t_a = s[r, a][:, None], t[r, a][:, None]
        rest = ctx.rest_top[rows][r, :k].astype(s.dtype)
        # competitor j is above the answer at gamma iff gap_j + gamma * slope_j > 0
        gap = np.concatenate([s[r] - s_a, rest - s_a], axis=1)
        slope = np.concatenate([t[r] - t_a, np.broadcast_to(-t_a, rest.shape)], axis=1)
        for i, pair in enumerate(range(p0, p1)):
            lo, hi = _intervals_topk(gap[i], slope[i], k)
            los.append(lo)
            his.append(hi)
            pairs.append(np.full(lo.size, pair))
    if not los:
        empty = np.empty(0)
        return empty, empty, np.empty(0, dtype=np.int64)
    return np.concatenate(los), np.concatenate(his), np.concatenate(pairs)


def _intervals_topk(gap: np.ndarray, slope: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Closed intervals of gamma >= 0 where fewer than ``k`` lines ``gap + gamma * slope`` are > 0.

    Each condition ``gap_j + gamma slope_j > 0`` is open in gamma, so the count is lower
    semi-continuous and the accepted set is closed: a finite union of closed intervals.
    Competitors scoring ``-inf`` (padding) are never above.
    """
    real = np.isfinite(gap)
    gap, slope = gap[real], slope[real]
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = -gap / slope
    flat = slope == 0
    base = int(np.count_nonzero(flat & (gap > 0)))
    up = slope > 0  # above for gamma > cross
    dn = slope < 0  # above for gamma < cross
    cross_up = cross[up]
    base += int(np.count_nonzero(cross_up < 0))
    cross_up = np.sort(cross_up[cross_up >= 0])
    cross_dn = cross[dn]
    cross_dn = np.sort(cross_dn[cross_dn > 0])
    pts = np.unique(np.concatenate([[0.0], cross_up, cross_dn]))
    n_dn = cross_dn.size
    at_pt = base + np.searchsorted(cross_up, pts, "left") + (n_dn - np.searchsorted(cross_dn, pts, "right"))
    after = base + np.searchsorted(cross_up, pts, "right") + (n_dn - np.searchsorted(cross_dn, pts, "right"))
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
    weights : ndarray of int64 or of Python int, shape (n,)
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


def best_regions(lo: np.ndarray, hi: np.ndarray, weights: np.ndarray) -> tuple[tuple[float, float], ...]:
    """Every maximal region ``[start, end]`` covered by the largest total weight of closed intervals.

    Same sweep as :func:`best_gamma_from_intervals` (whose region is the first of these), but
    keeping all of them: one region is a single peak, several are separate peaks of equal height.
    ``((0.0, inf),)`` when no interval exists (every gamma scores 0).
    """
    if lo.size == 0:
        return ((0.0, math.inf),)
    vals = np.concatenate([lo, hi])
    kind = np.concatenate([np.zeros(lo.size, np.int8), np.ones(hi.size, np.int8)])  # starts first
    w = np.concatenate([weights, -weights])
    order = np.lexsort((kind, vals))
    cover = np.cumsum(w[order])
    total = max(int(np.max(cover)), 0)
    if total == 0:
        return ((0.0, math.inf),)
    at_max = np.array([int(c) == total for c in cover], dtype=bool) if cover.dtype == object else cover == total
    before = np.concatenate([[False], at_max[:-1]])
    starts = np.flatnonzero(at_max & ~before)
    ends = np.flatnonzero(~at_max & before)  # the event that leaves the region (an interval's end)
    v = vals[order]
    return tuple((float(v[a]), float(v[b])) for a, b in zip(starts, ends, strict=True))


def grid_regions(grid, scores) -> tuple[tuple[float, float], ...]:
    """Maximal runs of consecutive (sorted) grid values that reach the best score: ``((lo, hi), ...)``."""
    g = np.asarray(grid, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(g, kind="stable")
    g, s = g[order], s[order]
    at_max = s == s.max()
    edges = np.diff(np.concatenate([[0], at_max.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    return tuple((float(g[a]), float(g[b])) for a, b in zip(starts, stops, strict=True))


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
    weights : ndarray of int64 (or of Python int, see :meth:`ValidationContext.query_weights`)
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
                out_w.append(np.full(level_lo.size, w[pair[group[0]]], dtype=w.dtype))
    return np.concatenate(out_lo), np.concatenate(out_hi), np.concatenate(out_w), scale


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

    ``choice`` picks gamma inside the first best region (:func:`pick_in_region`), except when
    that region starts at 0: then no gamma beats not moving, and gamma is 0 (the gamma = 0 rule,
    :mod:`nudge.diagnostics`).

    ``intervals`` may pass the result of :func:`query_intervals` to avoid recomputing it.
    """
    lo, hi, w, scale = intervals if intervals is not None else query_intervals(ctx, k)
    start, total, end = best_gamma_from_intervals(lo, hi, w)
    # The gamma = 0 rule: when 0 is in the best region, moving helps no validation question: move nothing.
    gamma = 0.0 if start == 0 else pick_in_region(start, end, choice)
    return gamma, total / (scale * ctx.n_queries), (start, end)


def curve_m(ctx: ValidationContext, gammas: np.ndarray, k: int = 1, *, intervals=None) -> np.ndarray:
    """Exact NUDGE-M validation score at each gamma (shape ``gammas.shape``).

    ``intervals`` may pass the result of :func:`query_intervals` to avoid recomputing it.
    """
    gammas = np.asarray(gammas, dtype=np.float64)
    lo, hi, w, scale = intervals if intervals is not None else query_intervals(ctx, k)
    o_lo, o_hi = np.argsort(lo, kind="stable"), np.argsort(hi, kind="stable")
    zero = np.zeros(1, dtype=w.dtype)
    c_lo = np.concatenate([zero, np.cumsum(w[o_lo])])
    c_hi = np.concatenate([zero, np.cumsum(w[o_hi])])
    covered = c_lo[np.searchsorted(lo[o_lo], gammas, "right")] - c_hi[np.searchsorted(hi[o_hi], gammas, "left")]
    return _fractions(covered, scale * ctx.n_queries)


def _fractions(totals, denominator: int) -> np.ndarray:
    """Integer totals divided by an integer, correctly rounded to float64 (any size of integer)."""
    return np.array([int(t) / denominator for t in np.ravel(totals)], dtype=np.float64).reshape(np.shape(totals))


def choose_gamma(ctx: ValidationContext, method: str, k: int, grid=REFERENCE_GRID, choice: str = "middle"):
    """Gamma for ``method`` on ``ctx``: ``(gamma, score, curve, best region or None, facts)``.

    NUDGE-M: exact, ``choice`` inside the best region, the curve on 201 points up to
    ``max(0.5, 2 g)`` with ``g`` the ``choice`` in the first best region; NUDGE-N: the first best value of
    ``grid``, the curve on the grid. Both apply the gamma = 0 rule (:mod:`nudge.diagnostics`):
    when gamma = 0 scores as well as the best, gamma is 0 (for NUDGE-N also when ``grid`` lacks 0).

    ``facts`` is a dict for :class:`nudge.diagnostics.FitDiagnostics`: ``"score_at_zero"``,
    ``"best_regions"`` (every best region: exact for NUDGE-M, runs of grid values for NUDGE-N),
    ``"zero_is_best"`` and ``"constant"`` (the score is the same at every gamma).
    """
    if method == "M":
        intervals = query_intervals(ctx, k)
        gamma, score, region = best_gamma_m(ctx, k, choice, intervals=intervals)
        regions = best_regions(*intervals[:3])
        # the curve's extent and points do not depend on the gamma = 0 rule (the same plot either way)
        shown = pick_in_region(*region, choice)
        grid_m = np.unique(np.append(np.linspace(0.0, max(0.5, 2 * shown), 201), [shown, gamma]))
        curve = {"gamma": grid_m, "score": curve_m(ctx, grid_m, k, intervals=intervals)}
        at_zero = float(curve["score"][0])
        constant = regions == ((0.0, math.inf),)
        facts = {
            "score_at_zero": at_zero,
            "best_regions": regions,
            "zero_is_best": region[0] == 0,
            "constant": constant,
        }
        return gamma, score, curve, region, facts
    grid = [float(g) for g in grid]
    gamma, score, scores = best_gamma_n(ctx, grid, k)
    at_zero = float(scores[grid.index(0.0)]) if 0.0 in grid else float(curve_n(ctx, [0.0], k)[0])
    zero_is_best = at_zero >= score
    if zero_is_best:
        gamma, score = 0.0, at_zero
    facts = {
        "score_at_zero": at_zero,
        "best_regions": grid_regions(grid, scores),
        "zero_is_best": zero_is_best,
        "constant": bool(np.all(scores == at_zero)),
    }
    return gamma, score, {"gamma": np.asarray(grid, dtype=np.float64), "score": scores}, None, facts


# --------------------------------------------------------------------------------------------
# NUDGE-N: grid
# --------------------------------------------------------------------------------------------


@dataclass
class RankedBlock:
    """One block of validation queries scored at one NUDGE-N gamma: what a top-k rule needs.

    Attributes
    ----------
    pair_rows : ndarray of int64, shape (P,)
        Row (query within the block) of each validation pair of the block.
    answer_cols : ndarray of int64, shape (P,)
        Position of each pair's answer in :meth:`row`.
    answer_scores : ndarray, shape (P,)
        Each pair's answer score.
    kth : ndarray, shape (b,)
        Each query's ``k``-th best score over all documents.
    k : int
    """

    pair_rows: np.ndarray
    answer_cols: np.ndarray
    answer_scores: np.ndarray
    kth: np.ndarray
    k: int
    _support_cols: np.ndarray = field(repr=False)
    _moved_scores: np.ndarray = field(repr=False)
    _fixed_cols: np.ndarray = field(repr=False)
    _fixed_scores: np.ndarray = field(repr=False)
    _fixed_top: np.ndarray = field(repr=False)
    _rest_top: np.ndarray = field(repr=False)

    def count_at_least_kth(self, rows: np.ndarray) -> np.ndarray:
        """For the queries ``rows``, how many documents score at least their ``k``-th best,
        counting at most ``k + 1`` of those that move and of those that do not: more than ``k``
        means a tie at the cut-off. Shape (len(rows),)."""
        fixed = np.count_nonzero(self._fixed_top[rows] >= self.kth[rows, None], axis=1)
        moved = self._moved_scores
        if moved.shape[1] == 0:
            return fixed
        if self.k == 1:  # the best and the second best moved score are enough (two passes, no count)
            at = np.arange(moved.shape[0]), moved.argmax(axis=1)
            best = moved[at]
            moved[at] = -np.inf
            second = moved.max(axis=1)
            moved[at] = best
            n_moved = (best >= self.kth).astype(np.int64) + (second >= self.kth)
        else:
            n_moved = (moved >= self.kth[:, None]).view(np.uint8).sum(axis=1, dtype=np.int64)
        return n_moved[rows] + fixed

    def row(self, i: int) -> np.ndarray:
        """All scores of query ``i``: tracked documents in index order, then the rest's top ``k``."""
        tracked = np.empty(self._support_cols.size + self._fixed_cols.size, dtype=self._moved_scores.dtype)
        tracked[self._support_cols] = self._moved_scores[i]
        tracked[self._fixed_cols] = self._fixed_scores[i]
        return np.concatenate([tracked, self._rest_top[i]])


def ties_favour_the_answer(block: RankedBlock) -> np.ndarray:
    """The library's top-k rule: an answer counts when it scores at least the ``k``-th best."""
    return block.answer_scores >= block.kth[block.pair_rows]


def nudge_n_hit_totals(
    ctx: ValidationContext,
    gammas,
    k: int,
    in_top_k: Callable[[RankedBlock], np.ndarray] = ties_favour_the_answer,
) -> list[int]:
    """Weighted hit totals of NUDGE-N's validation metric, one exact integer per gamma.

    ``in_top_k(block)`` says which pairs of a :class:`RankedBlock` count (default: ties count in
    the answer's favour, as for NUDGE-M); a query's count is capped at ``min(|A|, k)``. Rows
    inside the cap become exactly ``G/||G||``, so documents with the same query sum tie exactly;
    their scores are taken from ``q . G/||G||`` so the tie stays exact.
    """
    dtype = ctx.queries.dtype
    cos_angle, normal = ctx.geometry()
    rotations = []
    for g in gammas:
        cos_t, sin_t = nudge_n_rotation(cos_angle, g)
        inside = (cos_angle >= 1.0 - g / 2.0) if g > 0 else np.zeros(cos_angle.shape, bool)
        rotations.append((cos_t.astype(dtype), sin_t.astype(dtype), inside))
    w_pair, _ = ctx.query_weights(k)
    totals = [0] * len(rotations)
    m = ctx.support_cols.size
    col_in_support = np.full(ctx.tracked.size, -1, dtype=np.int64)
    col_in_support[ctx.support_cols] = np.arange(m)
    fixed_cols = np.flatnonzero(col_in_support < 0)
    fixed_index = np.full(ctx.tracked.size, -1, dtype=np.int64)
    fixed_index[fixed_cols] = np.arange(fixed_cols.size)
    # one matrix product per block: [support rows; directions; normals; rows that do not move]
    stacked = np.concatenate(
        [ctx.tracked_rows[ctx.support_cols], ctx.directions, normal.astype(dtype), ctx.tracked_rows[fixed_cols]]
    )
    for r0 in range(0, ctx.n_queries, ctx.val_batch_size):
        rows = slice(r0, min(r0 + ctx.val_batch_size, ctx.n_queries))
        scores = ctx.queries[rows] @ stacked.T
        s_sup, t_sup, n_sup, s_fixed = np.split(scores, [m, 2 * m, 3 * m], axis=1)
        nb = rows.stop - rows.start
        p0, p1 = ctx.offsets[rows.start], ctx.offsets[rows.stop]
        n_ans = np.diff(ctx.offsets[rows.start : rows.stop + 1])
        r = np.repeat(np.arange(nb), n_ans)
        cap = np.minimum(n_ans, k)
        q_weight = np.zeros(nb, dtype=w_pair.dtype)
        q_weight[r] = w_pair[p0:p1]
        a_col = ctx.answer_cols[p0:p1]
        a_sup = col_in_support[a_col]
        moving = a_sup >= 0
        fixed_answer_score = s_fixed[r, np.maximum(fixed_index[a_col], 0)] if fixed_cols.size else s_sup[r, 0]
        rest = ctx.rest_top[rows, :k].astype(dtype)
        # The k + 1 best of the documents that do not move (the other tracked ones and the rest):
        # the k-th best overall is among them and the moved ones; the one more shows ties.
        fixed_top = np.concatenate([s_fixed, rest], axis=1)
        if fixed_top.shape[1] > k + 1:
            fixed_top = -np.partition(-fixed_top, k, axis=1)[:, : k + 1]
        moved, part = np.empty_like(s_sup), np.empty_like(s_sup)
        for gi, (cos_t, sin_t, inside) in enumerate(rotations):
            np.multiply(s_sup, cos_t, out=moved)
            np.multiply(n_sup, sin_t, out=part)
            moved += part
            if inside.any():
                np.copyto(moved, t_sup, where=inside)
            if k == 1:
                kth = np.max(fixed_top, axis=1)
                if moved.shape[1]:
                    np.maximum(kth, moved.max(axis=1), out=kth)
            else:
                kth = -np.partition(-np.concatenate([moved, fixed_top], axis=1), k - 1, axis=1)[:, k - 1]
            score = fixed_answer_score.copy()
            score[moving] = moved[r[moving], a_sup[moving]]
            block = RankedBlock(r, a_col, score, kth, k, ctx.support_cols, moved, fixed_cols, s_fixed, fixed_top, rest)
            hits = np.bincount(r, weights=in_top_k(block), minlength=nb).astype(np.int64)
            totals[gi] += int((np.minimum(hits, cap) * q_weight).sum())
    return totals


def curve_n(ctx: ValidationContext, gammas, k: int = 1) -> np.ndarray:
    """NUDGE-N validation score at each gamma (shape (len(gammas),))."""
    return _grid_scores(ctx, list(gammas), k)[1]


def best_gamma_n(ctx: ValidationContext, grid=REFERENCE_GRID, k: int = 1) -> tuple[float, float, np.ndarray]:
    """NUDGE-N grid search: the first grid gamma with the best score, the score, all scores."""
    grid = list(grid)
    totals, scores = _grid_scores(ctx, grid, k)
    i = max(range(len(totals)), key=totals.__getitem__)  # first of the exact (integer) maxima
    return float(grid[i]), float(scores[i]), scores


def _grid_scores(ctx: ValidationContext, grid: list, k: int) -> tuple[list[int], np.ndarray]:
    if k > ctx.k:
        raise ValueError(f"k={k} exceeds the depth {ctx.k} this validation context was prepared for")
    totals = nudge_n_hit_totals(ctx, grid, k)
    _, scale = ctx.query_weights(k)
    return totals, _fractions(totals, scale * ctx.n_queries)
