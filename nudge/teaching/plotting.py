"""Plots for the notebooks: pure functions that draw on a matplotlib ``ax`` (``ax=None``: current).

matplotlib is imported only when a function needs the current axes (the ``notebooks`` extra).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "answer_interval",
    "pca_2d",
    "plane_2d",
    "plot_intervals",
    "plot_movement",
    "plot_plane_moves",
    "plot_score_lines",
    "toy_problem",
]


def _ax(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        ax = plt.gca()
    return ax


def pca_2d(*arrays: np.ndarray) -> list[np.ndarray]:
    """Project arrays (each (n_i, d)) onto the top two principal axes of all rows together.

    Returns one (n_i, 2) array per input. The axes are centred on the mean of all rows; signs
    are fixed so the result is deterministic.
    """
    rows = np.concatenate([np.asarray(a, dtype=np.float64) for a in arrays])
    mean = rows.mean(axis=0)
    _, _, vt = np.linalg.svd(rows - mean, full_matrices=False)
    basis = vt[:2]
    basis *= np.sign(basis[np.arange(2), np.argmax(np.abs(basis), axis=1)])[:, None]
    return [(np.asarray(a, dtype=np.float64) - mean) @ basis.T for a in arrays]


def plot_movement(before, after, queries=None, query_doc=None, labels=None, ax=None, title=None, legend="best"):
    """Documents before (hollow) and after (filled) NUDGE, with arrows, and their queries.

    Parameters
    ----------
    before, after : ndarray, shape (m, 2)
        Document positions (already projected, e.g. with :func:`pca_2d`).
    queries : ndarray, shape (n, 2), optional
        Query positions, drawn as small crosses.
    query_doc : sequence of int, optional
        For each query, the row in ``before`` it belongs to (same colour).
    labels : sequence of str, optional
        A short label per document.
    legend : str
        Where the legend goes (a matplotlib ``loc``).
    """
    ax = _ax(ax)
    colours = [f"C{i % 10}" for i in range(len(before))]
    if queries is not None:
        qc = [colours[j] for j in query_doc] if query_doc is not None else "grey"
        ax.scatter(queries[:, 0], queries[:, 1], marker="x", s=25, c=qc, alpha=0.7, label="training questions")
    ax.scatter(before[:, 0], before[:, 1], s=70, facecolors="none", edgecolors=colours, label="document before")
    ax.scatter(after[:, 0], after[:, 1], s=70, c=colours, label="document after")
    for (x0, y0), (x1, y1), c in zip(before, after, colours, strict=True):
        if abs(x1 - x0) + abs(y1 - y0) > 1e-12:
            ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops={"arrowstyle": "->", "color": c})
    if labels is not None:
        for (x, y), text in zip(before, labels, strict=True):
            ax.annotate(text, (x, y), textcoords="offset points", xytext=(0, -14), fontsize=8, ha="center")
    ax.set_aspect("equal", adjustable="datalim")
    ax.margins(0.15)
    if title:
        ax.set_title(title)
    ax.legend(loc=legend, fontsize="small")
    return ax


def plot_intervals(lo, hi, chosen=None, ax=None, max_rows: int = 40, x_max: float | None = None):
    """NUDGE-M's exact gamma search: one bar per interval of gamma where a validation answer
    ranks first, and how many bars cover each gamma (what the sweep maximises).

    Parameters
    ----------
    lo, hi : ndarray, shape (n,)
        Closed intervals (``hi`` may be ``inf``), e.g. from :func:`nudge.gamma.query_intervals`.
    chosen : float, optional
        The selected gamma, marked with a vertical line.
    max_rows : int
        Draw at most this many bars (the coverage curve always uses all of them).
    """
    ax = _ax(ax)
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    finite = hi[np.isfinite(hi)]
    x_max = x_max or float(max(1.0, 1.2 * (finite.max() if finite.size else lo.max(initial=1.0))))
    order = np.argsort(lo, kind="stable")
    if order.size > max_rows:  # an even sample across the sorted bars
        order = order[np.unique(np.linspace(0, order.size - 1, max_rows).round().astype(int))]
    for row, i in enumerate(order):
        ax.plot([lo[i], min(hi[i], x_max)], [row, row], color="tab:blue", linewidth=2)
    grid = np.linspace(0, x_max, 400)
    cover = ((lo[:, None] <= grid) & (grid <= hi[:, None])).sum(axis=0)
    twin = ax.twinx()
    twin.plot(grid, cover, color="tab:orange")
    twin.set_ylabel("intervals covering gamma (questions ranked first)", color="tab:orange")
    if chosen is not None:
        ax.axvline(chosen, color="black", linestyle="--")
    ax.set_xlim(0, x_max)
    ax.set_xlabel("gamma")
    ax.set_ylabel(f"one bar per interval ({len(order)} of {lo.size}, sorted by start)")
    return ax


def answer_interval(scores, slopes, answer) -> tuple[float, float, int | None, int | None]:
    """The gammas ``[lo, hi]`` (``gamma >= 0``) where document ``answer`` scores highest, and who sets them.

    Every score is a line ``s_j + gamma * t_j``; the answer is first where its line is above all
    others. Returns ``(lo, hi, j_lo, j_hi)``: ``j_lo`` is the document the answer overtakes at
    ``lo`` (None when ``lo`` is 0), ``j_hi`` the one that overtakes it at ``hi`` (None when
    ``hi`` is inf). ``lo > hi`` means the answer is never first.
    """
    s, t = np.asarray(scores, float), np.asarray(slopes, float)
    others = np.delete(np.arange(s.size), answer)
    gap, gain = s[others] - s[answer], t[answer] - t[others]  # first iff gap <= gamma * gain
    lo, hi, j_lo, j_hi = 0.0, np.inf, None, None
    for j, g, r in zip(others, gap, gain, strict=True):
        if r > 0 and g / r > lo:
            lo, j_lo = g / r, int(j)
        elif r < 0 and g / r < hi:
            hi, j_hi = g / r, int(j)
        elif r == 0 and g > 0:
            return np.inf, 0.0, int(j), int(j)  # a flat line above the answer's parallel line: never first
    return float(lo), float(hi), j_lo, j_hi


def plot_score_lines(
    scores, slopes, answer, labels=None, gamma_max: float | None = None, ax=None, top: int = 3, relative: bool = False
):
    """NUDGE-M seen from one question: every document's score is a line ``s_j + gamma * t_j``.

    Draws the answer's line (thick), the documents that set both ends of the interval where the
    answer ranks first, the best document that does not move (flat, dashed), and the ``top``
    other highest lines; shades that interval and marks its ends.

    Parameters
    ----------
    scores, slopes : ndarray, shape (N,)
        ``s_j = q . e_j`` and ``t_j = q . G_j/||G_j||`` (0 for documents that do not move).
    answer : int
        Row of the relevant document.
    labels : sequence of str, optional
        A label per document (e.g. titles).
    gamma_max : float, optional
        Right end of the gamma axis; by default a quarter past the interval's right end.
    relative : bool
        Draw every line minus the answer's line: the answer is then the zero line, and the
        interval ends are where another line crosses zero (easier to read for close calls).
        Either way the same documents are drawn (the highest lines by their own scores).
    """
    ax = _ax(ax)
    scores, slopes = np.asarray(scores, float), np.asarray(slopes, float)
    lo, hi, j_lo, j_hi = answer_interval(scores, slopes, answer)
    if gamma_max is None:
        ends = [x for x in (lo, hi) if np.isfinite(x) and x > 0]
        gamma_max = 1.25 * max(ends) if ends else 1.0
    grid = np.linspace(0, gamma_max, 200)
    lines = scores[:, None] + grid[None, :] * slopes[:, None]
    others = np.delete(np.arange(scores.size), answer)
    flat = others[slopes[others] == 0]
    shown = [j for j in (j_lo, j_hi) if j is not None]
    if flat.size:
        shown.append(int(flat[np.argmax(scores[flat])]))
    # the highest other lines by their own scores, so that relative=True draws the same documents
    ranked = others[np.argsort(-lines[others].max(axis=1), kind="stable")]
    shown += [int(j) for j in ranked if j not in shown][:top]
    shown = list(dict.fromkeys(shown))
    if relative:
        lines = lines - lines[answer]

    def name(j):
        return labels[j][:30] if labels is not None else f"doc {j}"

    for j in shown:
        role = " (sets lo)" if j == j_lo else " (sets hi)" if j == j_hi else ""
        moves = "" if slopes[j] else ", does not move"
        ax.plot(grid, lines[j], linewidth=1, linestyle="--" if not slopes[j] else "-", label=name(j) + role + moves)
    ax.plot(grid, lines[answer], color="black", linewidth=2.5, label=f"answer: {name(answer)}")
    if lo <= hi:
        right = min(hi, gamma_max)
        ax.axvspan(lo, right, color="green", alpha=0.1, label=f"answer first: [{lo:.3f}, {hi:.3f}]")
        for x in (lo, hi):
            if 0 < x <= gamma_max:
                ax.axvline(x, color="green", linestyle=":", linewidth=1)
    ends = [abs(lines[j, 0]) for j in (j_lo, j_hi) if j is not None]
    if relative and ends and max(ends) > 0:  # zoom on the close calls at both ends of the interval
        ax.set_ylim(-2 * max(ends), 2 * max(ends))
    ax.set_xlim(0, gamma_max)
    ax.set_xlabel("gamma")
    ax.set_ylabel("score minus the answer's score" if relative else "score q . e'")
    ax.legend(loc="best", fontsize="x-small")
    return ax


def plane_2d(e, g, *arrays):
    """Exact 2-D coordinates in the plane of a document ``e`` and its query sum ``g``.

    The first axis is ``e/||e||``, the second the unit part of ``g`` orthogonal to it. NUDGE-M and
    NUDGE-N move ``e`` inside this plane, so their moves are drawn true to length and angle;
    other vectors (questions) are projected onto the plane. Returns one (n_i, 2) array per input
    (each (n_i, d) or (d,)).
    """
    e, g = np.asarray(e, float), np.asarray(g, float)
    x = e / np.linalg.norm(e)
    y = g - (g @ x) * x
    norm = np.linalg.norm(y)
    if norm <= 1e-12 * np.linalg.norm(g):
        raise ValueError("g: parallel to e, so the two span no plane")
    basis = np.stack([x, y / norm])
    return [np.atleast_2d(np.asarray(a, float)) @ basis.T for a in arrays]


def plot_plane_moves(e, g, moved: dict, queries=None, ax=None, title=None, legend="best"):
    """One document's moves drawn in the exact plane of ``e`` and its query sum ``g`` (see :func:`plane_2d`).

    Draws the unit circle, the origin, the ray towards ``g``, the (projected) training questions,
    the document before (hollow) and after each method (filled, one colour per method, with an
    arrow). NUDGE-M and NUDGE-N move inside this plane, so their steps are true to length.

    Parameters
    ----------
    e, g : ndarray, shape (d,)
        The document (unit length) and its query sum.
    moved : dict of str -> ndarray, shape (d,)
        Method name -> the document's new vector.
    queries : ndarray, shape (n, d), optional
        The document's training questions (projected onto the plane).
    """
    ax = _ax(ax)
    (pe,) = plane_2d(e, g, e)
    t = np.linspace(0, 2 * np.pi, 361)
    ax.plot(np.cos(t), np.sin(t), color="lightgrey", linewidth=1)
    ax.scatter([0], [0], marker="+", color="grey")
    (pg,) = plane_2d(e, g, np.asarray(g, float) / np.linalg.norm(g))
    ax.plot([0, 1.6 * pg[0, 0]], [0, 1.6 * pg[0, 1]], color="grey", linestyle=":", linewidth=1, label="direction of G")
    if queries is not None:
        (pq,) = plane_2d(e, g, queries)
        ax.scatter(pq[:, 0], pq[:, 1], marker="x", s=25, color="grey", alpha=0.8, label="training questions")
    ax.scatter(pe[:, 0], pe[:, 1], s=80, facecolors="none", edgecolors="black", label="document before")
    for i, (name, vec) in enumerate(moved.items()):
        (pv,) = plane_2d(e, g, vec)
        colour = f"C{i % 10}"
        length = np.linalg.norm(vec)
        ax.scatter(pv[:, 0], pv[:, 1], s=60, color=colour, label=f"{name} (length {length:.2f})")
        ax.annotate("", xy=tuple(pv[0]), xytext=tuple(pe[0]), arrowprops={"arrowstyle": "->", "color": colour})
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("along the document")
    ax.set_ylabel("towards G, orthogonal to the document")
    if title:
        ax.set_title(title)
    ax.legend(loc=legend, fontsize="x-small")
    return ax


def toy_problem(seed: int = 4, n_docs: int = 4, queries_per_doc: int = 3):
    """A tiny 2-D problem on the unit circle: documents and the questions users ask about them.

    Returns ``(docs (n_docs, 2), queries (n_docs * queries_per_doc, 2), answers)``, all unit
    vectors; each document's questions sit off to one side of it, as users' words differ from
    the documents'.
    """
    rng = np.random.default_rng(seed)
    angles = 2 * np.pi * (np.arange(n_docs) + rng.uniform(0.1, 0.3, n_docs)) / n_docs
    docs = np.c_[np.cos(angles), np.sin(angles)]
    shift = np.radians(rng.uniform(35, 50, n_docs))
    q_angles = (angles + shift)[:, None] + np.radians(rng.normal(0, 8, (n_docs, queries_per_doc)))
    queries = np.c_[np.cos(q_angles.ravel()), np.sin(q_angles.ravel())]
    answers = [[i] for i in range(n_docs) for _ in range(queries_per_doc)]
    return docs, queries, answers
