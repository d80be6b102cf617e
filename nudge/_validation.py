"""Input checks shared by the whole library.

Every public function validates what it is given and raises a ``ValueError`` that names the
argument and says what was wrong. Nothing here modifies its input.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from itertools import chain

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
#: NUDGE-N bounds ``||e' - e||^2 <= gamma`` between unit vectors, so gamma must stay below 4.
NUDGE_N_GAMMA_BOUND = 4.0


def check_matrix(
    x: object,
    name: str,
    *,
    dim: int | None = None,
    dtype: np.dtype | None = None,
    reference: str = "the document embeddings",
    finite: bool = True,
    nonzero_rows: bool = True,
) -> np.ndarray:
    """Check that ``x`` is a non-empty 2-D float array and return it as an ndarray (no copy).

    Parameters
    ----------
    x : array-like, shape (n, d)
        The array to check.
    name : str
        The argument's name, used in error messages.
    dim : int, optional
        Required number of columns ``d``.
    dtype : numpy dtype, optional
        Required dtype (float32 or float64).
    reference : str
        What ``dim`` and ``dtype`` come from, for the error message.
    finite : bool
        Reject NaN and infinite values.
    nonzero_rows : bool
        Reject rows whose L2 norm is zero.
    """
    if isinstance(x, (list, tuple)):
        x = np.asarray(x)
    if not isinstance(x, np.ndarray):
        raise ValueError(f"{name} must be a 2-D numpy array, got {type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (n, d); got {x.ndim}-D shape {x.shape}")
    if x.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{name} must have dtype float32 or float64; got {x.dtype}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty: it has 0 rows")
    if x.shape[1] == 0:
        raise ValueError(f"{name} has 0 columns")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name} has dimension {x.shape[1]} but {reference} have dimension {dim}")
    if dtype is not None and x.dtype != dtype:
        raise ValueError(
            f"{name} has dtype {x.dtype} but {reference} have dtype {dtype}; "
            f"convert one of them, e.g. {name}.astype(np.{np.dtype(dtype).name})"
        )
    if finite or nonzero_rows:
        check_rows(x, name, finite=finite, nonzero=nonzero_rows)
    return x


def check_rows(x: np.ndarray, name: str, *, finite: bool = True, nonzero: bool = True, chunk: int = 65536) -> None:
    """Reject NaN/inf values and zero-norm rows of a 2-D array, in row chunks (bounded memory)."""
    for start in range(0, x.shape[0], chunk):
        block = x[start : start + chunk]
        sq = np.einsum("ij,ij->i", block, block, dtype=np.float64)
        check_row_norms(sq, name, start, finite=finite, nonzero=nonzero, block=block)


def check_row_norms(
    sq: np.ndarray,
    name: str,
    offset: int,
    *,
    finite: bool = True,
    nonzero: bool = True,
    block: np.ndarray | None = None,
) -> None:
    """Raise if squared row norms ``sq`` reveal non-finite values or zero rows.

    ``sq`` holds the squared norms of rows ``offset, offset + 1, ...`` of the array ``name``.
    """
    if finite:
        bad = ~np.isfinite(sq)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            what = "NaN or infinite values"
            if block is not None and np.isfinite(block[row]).all():
                what = "values too large to square"
            raise ValueError(f"{name} contains {what} (first in row {offset + row})")
    if nonzero:
        zero = sq == 0
        if zero.any():
            rows = np.flatnonzero(zero)[:5] + offset
            raise ValueError(
                f"{name} has rows with zero norm (rows {', '.join(map(str, rows))}"
                f"{', ...' if zero.sum() > 5 else ''}): a zero vector has no direction; "
                "remove those rows or embed their texts again"
            )


def check_answers(answers: object, name: str, *, n_queries: int, n_docs: int) -> tuple[np.ndarray, np.ndarray]:
    """Check per-query answer lists and return them in CSR form.

    Parameters
    ----------
    answers : sequence of sequences of int, length n_queries
        ``answers[i]`` lists the document indices relevant to query ``i``.
    name : str
        The argument's name, for error messages.
    n_queries : int
        Number of queries the lists must match.
    n_docs : int
        Number of documents; every index must lie in ``[0, n_docs)``.

    Returns
    -------
    flat : ndarray of int64, shape (n_pairs,)
        All answer indices, query by query.
    offsets : ndarray of int64, shape (n_queries + 1,)
        ``flat[offsets[i]:offsets[i + 1]]`` are the answers of query ``i``.
    """
    if isinstance(answers, (str, bytes)) or not isinstance(answers, (Sequence, np.ndarray)):
        raise ValueError(
            f"{name} must be a list with one list of document indices per query, got {type(answers).__name__}"
        )
    if len(answers) != n_queries:
        raise ValueError(f"{name} has {len(answers)} answer lists but there are {n_queries} queries")
    flat, lengths = _flatten_fast(answers)
    if flat is None:  # something unusual: check row by row for a precise message
        lengths = np.empty(n_queries, dtype=np.int64)
        parts = []
        for i, row in enumerate(answers):
            arr = _as_index_list(row, f"{name}[{i}]")
            lengths[i] = arr.size
            parts.append(arr)
        flat = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    if n_queries and lengths.min() == 0:
        raise ValueError(
            f"{name}[{int(np.argmin(lengths))}] is empty: every query needs at least one relevant document"
        )
    offsets = np.zeros(n_queries + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    bad = (flat < 0) | (flat >= n_docs)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        q = int(np.searchsorted(offsets, pos, side="right") - 1)
        value = int(flat[pos])
        kind = "negative" if value < 0 else "out of range"
        raise ValueError(f"{name}[{q}] contains document index {value}, which is {kind} (valid: 0 to {n_docs - 1})")
    query = np.repeat(np.arange(n_queries), lengths)
    order = np.lexsort((flat, query))
    repeated = (np.diff(query[order]) == 0) & (np.diff(flat[order]) == 0)
    if repeated.any():
        pos = order[int(np.flatnonzero(repeated)[0])]
        raise ValueError(f"{name}[{int(query[pos])}] lists document {int(flat[pos])} more than once")
    return flat, offsets


_INT_TYPES = {int, np.int64, np.int32, np.int16, np.int8, np.uint32, np.uint16, np.uint8}


def _flatten_fast(answers) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Flatten a list of lists of plain integers quickly; ``(None, None)`` if anything is unusual."""
    rows = answers.tolist() if isinstance(answers, np.ndarray) and answers.dtype != object else answers
    if not all(type(row) in (list, tuple) for row in rows):
        if not all(isinstance(row, np.ndarray) and row.ndim == 1 and row.dtype.kind in "iu" for row in rows):
            return None, None
        rows = [row.tolist() for row in rows]
    items = list(chain.from_iterable(rows))
    if not set(map(type, items)) <= _INT_TYPES:
        return None, None
    return np.array(items, dtype=np.int64), np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))


def _as_index_list(row: object, name: str) -> np.ndarray:
    if isinstance(row, (str, bytes, dict)) or isinstance(row, numbers.Number):
        raise ValueError(f"{name} must be a list of document indices, got {type(row).__name__} {row!r}")
    try:
        arr = np.asarray(row)
    except ValueError as exc:  # ragged nesting
        raise ValueError(f"{name} must be a flat list of document indices: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a flat list of document indices; got a {arr.ndim}-D structure")
    if arr.size == 0:
        return arr.astype(np.int64)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must contain integer document indices; got {arr.dtype} values {arr[:3].tolist()}")
    return arr.astype(np.int64, copy=False)


def check_gamma(gamma: object, name: str = "gamma", *, method: str = "M") -> float:
    """Check a step size: a finite real >= 0, and below :data:`NUDGE_N_GAMMA_BOUND` for NUDGE-N."""
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {type(gamma).__name__} {gamma!r}")
    value = float(gamma)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    if method == "N" and value >= NUDGE_N_GAMMA_BOUND:
        raise ValueError(f"{name} must be < {NUDGE_N_GAMMA_BOUND} for NUDGE-N (||e' - e||^2 <= gamma < 4), got {value}")
    return value


def check_positive_int(value: object, name: str) -> int:
    """Check a strictly positive integer (chunk sizes, k)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_ids(ids: object, name: str = "ids") -> list[str]:
    """Distinct string ids (document or query ids) as a new list; ``ValueError`` naming ``name``.

    A list, tuple or 1-D numpy array of ``str`` (numpy strings included), each id once.
    """
    if isinstance(ids, (str, bytes)) or not isinstance(ids, (Sequence, np.ndarray)):
        raise ValueError(f"{name} must be a sequence of string ids, got {type(ids).__name__}")
    out = []
    for i, v in enumerate(ids):
        if not isinstance(v, str):
            raise ValueError(f"{name}[{i}] must be a string id, got {type(v).__name__} {v!r}")
        out.append(str(v))
    if len(set(out)) != len(out):
        seen: set[str] = set()
        dup = next(d for d in out if d in seen or seen.add(d))
        raise ValueError(f"{name} lists the id {dup!r} more than once")
    return out
