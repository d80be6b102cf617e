"""NUDGE on one page, in plain numpy: the whole algorithm, phase by phase (notebooks 03 and 04).

Copy this file into a prototype. It needs numpy only and favours clarity over speed: it builds
full (validation queries x documents) score matrices, so keep it to corpora that fit in memory.
:class:`nudge.Nudge` gives the same gamma and rows (``k=1``) in bounded memory, and faster;
``tests/test_plain.py`` checks that they agree.

    new_embeddings, gamma = fit(doc_embeddings, train_queries, train_answers,
                                val_queries, val_answers, method="N")

Embeddings are (n, d) arrays, answers are lists of document-row lists (one list per query).
Retrieval is by inner product: NUDGE-M rows are not unit length, so never use cosine with them.
All arithmetic is in float64 (see ``fit``).
"""

from collections import Counter

import numpy as np

GRID = [0.02 * i for i in range(25)]  # NUDGE-N's gamma grid: 0, 0.02, ..., 0.48


def unit(x):
    """Rows of ``x`` divided by their L2 norm; zero rows stay zero."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


# ---- Phase 3, MaxS-EFT (notebook 03): the direction each document moves in -----------------


def query_sums(train_queries, train_answers, n_docs):
    """G, shape (n_docs, d): row i sums the training queries that have document i as an answer."""
    G = np.zeros((n_docs, train_queries.shape[1]))
    for q, answers in zip(train_queries, train_answers, strict=True):
        for i in answers:
            G[i] += q
    return G


def nudge_m(e, G, gamma):
    """NUDGE-M: ``e_i + gamma * G_i / ||G_i||`` (rows with ``G_i = 0`` do not move)."""
    return e + gamma * unit(G)


def nudge_n(e, G, gamma):
    """NUDGE-N: turn unit ``e_i`` towards ``G_i``, in their plane, by the angle
    ``min(angle(e_i, G_i), arccos(1 - gamma/2))`` (that is ``||e_i' - e_i||^2 <= gamma``).

    Rows with ``G_i = 0``, with ``e_i . G_i < 0`` or with ``G_i`` parallel to ``e_i`` stay put.
    """
    out = e.copy()
    if gamma == 0:
        return out  # nothing moves (G_i parallel to e_i would otherwise be rounded to G_i/||G_i||)
    m = np.flatnonzero(G.any(axis=1))  # the documents that have training queries
    g = unit(G[m])
    cos = np.clip(np.sum(e[m] * g, axis=1), -1.0, 1.0)  # cos angle(e_i, G_i)
    u = unit(g - cos[:, None] * e[m])  # unit part of G_i orthogonal to e_i (0 if parallel)
    cap = 1.0 - gamma / 2.0  # ||e' - e||^2 <= gamma  <=>  e' . e >= cap
    theta = np.minimum(np.arccos(cos), np.arccos(cap))
    theta[cos < 0] = 0.0  # G_i points away from e_i: leave it
    out[m] = np.cos(theta)[:, None] * e[m] + np.sin(theta)[:, None] * u
    inside = cos >= cap  # G_i is within reach: the row becomes exactly G_i / ||G_i||
    out[m[inside]] = g[inside]
    return out


# ---- Phase 4, MaxA-EFT (notebook 04): the step size gamma, on validation queries -----------


def top1_score(e, val_queries, val_answers):
    """Share of validation queries with an answer retrieved first (a tie counts as first)."""
    scores = val_queries @ e.T
    best = scores.max(axis=1)
    return float(np.mean([scores[i, a].max() >= best[i] for i, a in enumerate(val_answers)]))


def interval(s, t, a):
    """Gammas ``[lo, hi]`` where document ``a`` ranks first for one query (a tie counts), or None.

    After NUDGE-M document j scores ``s[j] + gamma * t[j]`` (``s = q . e``, ``t = q . G/||G||``,
    0 where ``G_j = 0``), so ``a`` is first iff ``b_j <= gamma * g_j`` for every other j.
    """
    b = np.delete(s - s[a], a)  # how far each competitor is ahead now
    g = np.delete(t[a] - t, a)  # how fast a catches up with it
    if np.any((g == 0) & (b > 0)):
        return None  # a competitor stays ahead at every gamma
    lo = np.max(b[g > 0] / g[g > 0], initial=0.0)  # overtaken from gamma = b/g on
    hi = np.min(b[g < 0] / g[g < 0], initial=np.inf)  # overtakes a after gamma = b/g
    return (lo, hi) if lo <= hi else None


def sweep(intervals):
    """Smallest gamma covered by the most queries; ``intervals`` holds (query, lo, hi).

    A query counts once even if several of its answers' intervals cover gamma.
    """
    starts = [(lo, 0, query) for query, lo, hi in intervals]
    ends = [(hi, 1, query) for query, lo, hi in intervals]
    open_, covered, best, best_gamma = Counter(), 0, 0, 0.0
    for gamma, is_end, query in sorted(starts + ends):  # at equal gamma starts first (closed)
        open_[query] += -1 if is_end else 1
        covered += (not is_end and open_[query] == 1) - (is_end and open_[query] == 0)
        if covered > best:
            best, best_gamma = covered, gamma
    return best_gamma


def gamma_m(e, G, val_queries, val_answers):
    """NUDGE-M's gamma, exactly: the smallest one with the best top-1 validation score.

    There some validation answer only ties with a competitor; ``nudge.Nudge("M")`` takes the
    middle of the best region by default (``gamma_choice="smallest"`` gives this one).
    """
    s, t = val_queries @ e.T, val_queries @ unit(G).T
    intervals = []
    for i, answers in enumerate(val_answers):
        for a in answers:
            found = interval(s[i], t[i], a)
            if found is not None:
                intervals.append((i, *found))
    return float(sweep(intervals))


def gamma_n(e, G, val_queries, val_answers, grid=GRID):
    """NUDGE-N's gamma: the first grid value with the best top-1 validation score."""
    scores = [top1_score(nudge_n(e, G, gamma), val_queries, val_answers) for gamma in grid]
    return float(grid[int(np.argmax(scores))])


# ---- Everything at once ----------------------------------------------------------------------


def _check(queries, answers, name, e):
    if queries.ndim != 2 or queries.shape[1] != e.shape[1]:
        raise ValueError(f"{name}_queries must have shape (n, {e.shape[1]}), got {queries.shape}")
    if len(answers) != len(queries) or not all(0 < len(a) == len(set(a)) for a in answers):
        raise ValueError(f"{name}_answers needs one list of distinct document rows per query")
    if not all(0 <= i < len(e) for a in answers for i in a):
        raise ValueError(f"{name}_answers holds a document row outside 0..{len(e) - 1}")
    return np.asarray(queries, dtype=np.float64), [list(a) for a in answers]


def fit(doc_embeddings, train_queries, train_answers, val_queries, val_answers, method="M"):
    """Fine-tune ``doc_embeddings`` (N, d) with NUDGE-M or NUDGE-N; returns ``(new, gamma)``.

    Rows are normalised first; inputs are not modified. The arithmetic is float64 whatever the
    input dtype, and so is the new (N, d) array. (For float32 input, ``nudge.Nudge`` scores in
    float32, so its NUDGE-M gamma can differ from this one in the sixth digit.)
    """
    if method not in ("M", "N"):
        raise ValueError(f"method must be 'M' or 'N', got {method!r}")
    e = np.asarray(doc_embeddings, dtype=np.float64)
    if e.ndim != 2 or not np.all(np.linalg.norm(e, axis=1) > 0):
        raise ValueError("doc_embeddings must be a 2-D array without zero rows")
    e = unit(e)
    train_queries, train_answers = _check(np.asarray(train_queries), train_answers, "train", e)
    val_queries, val_answers = _check(np.asarray(val_queries), val_answers, "val", e)
    G = query_sums(train_queries, train_answers, len(e))
    if method == "M":
        gamma = gamma_m(e, G, val_queries, val_answers)
        return nudge_m(e, G, gamma), gamma
    gamma = gamma_n(e, G, val_queries, val_answers)
    return nudge_n(e, G, gamma), gamma
