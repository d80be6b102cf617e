"""Phase 3: MaxS-EFT, the movement directions (notebook 03).

NUDGE moves each document towards the sum of the training queries it answers,
``G_i = sum of q over training queries with i in A(q)``. Only documents with ``G_i != 0`` (the
*support*) can move. NUDGE-M adds ``gamma * G_i / ||G_i||``; NUDGE-N rotates the unit vector
``e_i`` towards ``G_i`` by at most the angle whose chord is ``sqrt(gamma)``.
"""

from __future__ import annotations

import numpy as np

from ._validation import check_answers, check_gamma, check_matrix

__all__ = [
    "moved_rows",
    "nudge_m_rows",
    "nudge_n_geometry",
    "nudge_n_rotation",
    "nudge_n_rows",
    "query_sums",
    "query_sums_csr",
    "unit_rows",
]


def query_sums(train_queries: np.ndarray, train_answers: object, n_docs: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum the training queries of every document that has any (the vectors ``G_i``).

    Parameters
    ----------
    train_queries : ndarray, shape (n_train, d)
        Training query embeddings (used as given, not normalised, like the reference).
    train_answers : list of list of int, length n_train
        Relevant document indices per training query.
    n_docs : int
        Number of documents N.

    Returns
    -------
    support : ndarray of int64, shape (m,)
        Sorted indices of documents whose query sum is non-zero (m <= number of pairs).
    sums : ndarray of float64, shape (m, d)
        ``G_i`` for ``i`` in ``support`` (summed in the queries' dtype, like the reference).
    """
    q = check_matrix(train_queries, "train_queries")
    flat, offsets = check_answers(train_answers, "train_answers", n_queries=q.shape[0], n_docs=n_docs)
    return query_sums_csr(q, flat, offsets)


def query_sums_csr(q: np.ndarray, flat: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`query_sums` for checked input: queries (n, d), answers in CSR form ``flat``
    (n_pairs,) and ``offsets`` (n + 1,). Returns ``support`` (m,) and ``sums`` (m, d) float64."""
    query_of_pair = np.repeat(np.arange(q.shape[0]), np.diff(offsets))
    docs, inverse = np.unique(flat, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    rows = q[query_of_pair[order]]  # grouped by document, in query order
    starts = np.searchsorted(inverse[order], np.arange(docs.size))
    lengths = np.diff(np.append(starts, rows.shape[0]))
    # Left to right in the queries' dtype, like the reference; most documents have one query, so
    # adding the j-th query of every document at once beats a per-document reduction.
    sums = rows[starts]
    for j in range(1, int(lengths.max(initial=1))):
        more = np.flatnonzero(lengths > j)
        sums[more] += rows[starts[more] + j]
    sums = sums.astype(np.float64)
    keep = np.einsum("ij,ij->i", sums, sums) > 0
    return docs[keep], sums[keep]


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm (zero rows stay zero). Returns a new array."""
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    return x / np.where(norms > 0, norms, 1.0)[:, None]


def nudge_m_rows(e: np.ndarray, directions: np.ndarray, gamma: float) -> np.ndarray:
    """NUDGE-M update of unit rows ``e``: ``e + gamma * directions`` (a new array).

    Parameters
    ----------
    e : ndarray, shape (m, d)
        L2-normalised embeddings of the support documents.
    directions : ndarray, shape (m, d)
        Unit query-sum directions ``G_i / ||G_i||``.
    gamma : float
        Step length, >= 0. Every moved row moves by exactly ``gamma``.
    """
    gamma = check_gamma(gamma)
    with np.errstate(over="ignore"):
        out = (e + gamma * directions).astype(e.dtype, copy=False)
    if not np.isfinite(out).all():
        raise ValueError(
            f"gamma={gamma:g} is too large: the moved rows overflow {e.dtype} (values beyond "
            f"{np.finfo(e.dtype).max:.3g}); choose a smaller gamma"
        )
    return out


def nudge_n_geometry(e: np.ndarray, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split each unit direction ``g_i`` into its part along ``e_i`` and a unit normal.

    Returns ``cos_angle`` (shape (m,), ``e_i . g_i``) and ``normal`` (shape (m, d)): the unit
    vector ``u_i`` orthogonal to ``e_i`` in the plane of ``e_i`` and ``g_i``, so that
    ``g_i = cos_angle_i * e_i + sin_angle_i * u_i`` (``u_i = 0`` when ``g_i`` is parallel to ``e_i``).
    """
    e64 = e.astype(np.float64, copy=False)
    g64 = directions.astype(np.float64, copy=False)
    cos_angle = np.clip(np.einsum("ij,ij->i", e64, g64), -1.0, 1.0)
    normal = unit_rows(g64 - cos_angle[:, None] * e64)
    return cos_angle, normal


def nudge_n_rotation(cos_angle: np.ndarray, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotation of NUDGE-N: ``e_i' = cos(theta_i) e_i + sin(theta_i) u_i``.

    ``theta_i = angle(e_i, G_i)`` when ``G_i`` lies inside the allowed cap
    (``cos_angle_i >= 1 - gamma/2``), else ``arccos(1 - gamma/2)``; as in the reference package a
    document whose query sum points away from it (``cos_angle_i < 0``) and lies outside the cap is
    left in place (``theta_i = 0``).

    Returns
    -------
    cos_theta, sin_theta : ndarray, shape (m,)
    """
    gamma = check_gamma(gamma, method="N")
    if gamma == 0:
        return np.ones_like(cos_angle), np.zeros_like(cos_angle)
    cap = 1.0 - gamma / 2.0
    inside = cos_angle >= cap
    cos_theta = np.where(inside, cos_angle, np.where(cos_angle < 0, 1.0, cap))
    sin_theta = np.sqrt(np.clip(1.0 - cos_theta * cos_theta, 0.0, None))
    return cos_theta, sin_theta


def nudge_n_rows(e: np.ndarray, directions: np.ndarray, gamma: float) -> np.ndarray:
    """NUDGE-N update of unit rows ``e`` towards unit ``directions`` (a new array).

    Parameters
    ----------
    e : ndarray, shape (m, d)
        L2-normalised embeddings of the support documents.
    directions : ndarray, shape (m, d)
        Unit query-sum directions ``G_i / ||G_i||``.
    gamma : float
        Bound on ``||e_i' - e_i||^2``, in ``[0, 4)``.

    Returns
    -------
    ndarray, shape (m, d)
        Unit rows; rows inside the cap become exactly ``directions``.
    """
    gamma = check_gamma(gamma, method="N")
    if gamma == 0:
        return e.copy()
    cos_angle, normal = nudge_n_geometry(e, directions)
    cos_theta, sin_theta = nudge_n_rotation(cos_angle, gamma)
    out = cos_theta[:, None] * e.astype(np.float64) + sin_theta[:, None] * normal
    inside = cos_angle >= 1.0 - gamma / 2.0
    out[inside] = directions[inside]
    return out.astype(e.dtype, copy=False)


def moved_rows(
    method: str, gamma: float, support: np.ndarray, directions: np.ndarray, e_support: np.ndarray
) -> np.ndarray:
    """The entries of ``support`` whose vectors change at ``gamma``.

    NUDGE-M moves every support document (``gamma > 0``); NUDGE-N leaves those whose query sum
    points away from them (see :func:`nudge_n_rotation`).
    """
    if gamma == 0 or support.size == 0:
        return np.empty(0, dtype=np.int64)
    if method == "M":
        return support.copy()
    cos_angle, _ = nudge_n_geometry(e_support, directions)
    _, sin_theta = nudge_n_rotation(cos_angle, gamma)
    return support[sin_theta > 0]
