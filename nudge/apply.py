"""Phase 5: apply the movement to the production embeddings (notebook 05).

The output is a new array: every row L2-normalised (rows already of unit length are copied bit
for bit) and the support rows moved. The input is never modified.
"""

from __future__ import annotations

import numpy as np

from ._corpus import DEFAULT_CHUNK_SIZE, normalise_rows
from ._validation import check_gamma, check_matrix
from .directions import nudge_m_rows, nudge_n_rows

__all__ = ["METHODS", "apply_nudge", "check_method", "move_rows"]

METHODS = ("M", "N")


def check_method(method: object) -> str:
    """Normalise a method name: "M"/"nudge-m" or "N"/"nudge-n" (any case)."""
    if isinstance(method, str):
        key = method.strip().upper().removeprefix("NUDGE-").removeprefix("NUDGE")
        if key in METHODS:
            return key
    raise ValueError(f"method must be 'M' (NUDGE-M) or 'N' (NUDGE-N), got {method!r}")


def apply_nudge(
    embeddings: np.ndarray,
    support: np.ndarray,
    directions: np.ndarray,
    gamma: float,
    method: str,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> np.ndarray:
    """Return fine-tuned embeddings: normalised rows, support rows moved by NUDGE-M or NUDGE-N.

    Parameters
    ----------
    embeddings : ndarray, shape (N, d)
        Document embeddings (not modified).
    support : ndarray of int, shape (m,)
        Indices of the documents that have training queries.
    directions : ndarray, shape (m, d)
        Unit query-sum directions of those documents.
    gamma : float
        Step size (NUDGE-M: >= 0; NUDGE-N: in [0, 4)).
    method : {"M", "N"}
        Which update to apply.

    Returns
    -------
    ndarray, shape (N, d), same dtype
        NUDGE-M rows are not unit length: retrieve with the dot product, never cosine.
    """
    method = check_method(method)
    e = check_matrix(embeddings, "embeddings", finite=False, nonzero_rows=False)
    gamma = check_gamma(gamma, method=method)
    support = np.asarray(support, dtype=np.int64)
    directions = check_matrix(directions, "directions", dim=e.shape[1], dtype=e.dtype)
    if support.ndim != 1 or support.size != directions.shape[0]:
        raise ValueError(
            f"support must be 1-D with one index per direction row ({directions.shape[0]}), got shape {support.shape}"
        )
    if support.size and (support.min() < 0 or support.max() >= e.shape[0]):
        raise ValueError(f"support holds indices outside [0, {e.shape[0] - 1}]")
    if np.unique(support).size != support.size:
        raise ValueError("support lists a document more than once")
    out = np.empty_like(e)
    normalise_rows(e, out, chunk_size=chunk_size)
    move_rows(out, support, directions, gamma, method)
    return out


def move_rows(out: np.ndarray, support: np.ndarray, directions: np.ndarray, gamma: float, method: str) -> None:
    """Move the (already normalised) support rows of ``out`` in place."""
    if support.size == 0 or gamma == 0:
        return
    rows = out[support]
    update = nudge_m_rows if method == "M" else nudge_n_rows
    out[support] = update(rows, directions, gamma)
