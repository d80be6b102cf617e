"""What every store shares: the :class:`VectorStore` interface, input checks, and the base of the
database-backed stores (metric, dimension, location, close, context manager, ``from_embeddings``)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ..._validation import check_ids, check_matrix, check_positive_int

METRICS = ("dot", "cosine", "l2")
INSTALL_HINT = 'pip install -e ".[stores]"'
DEFAULT_BATCH_SIZE = 256
UNIT_TOLERANCE = 1e-3  # stored originals further than this from norm 1 are "not normalised"
VERIFY_TOLERANCE = 1e-6  # read-back check after writing (float32 stores are exact; Qdrant's cosine re-normalises)


# ---------------------------------------------------------------------------------- interface
@runtime_checkable
class VectorStore(Protocol):
    """What NUDGE needs from a vector store: vectors by string document id, and search.

    Attributes
    ----------
    metric : {"dot", "cosine", "l2"}
        How the store scores a query against a document.
    dimension : int
        Length ``d`` of every vector.
    """

    @property
    def metric(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def count(self) -> int:
        """Number of stored vectors."""
        ...

    def ids(self) -> Iterator[str]:
        """Every stored document id (in no particular order)."""
        ...

    def fetch(self, ids: Sequence[str]) -> np.ndarray:
        """Vectors of ``ids``, shape (n, d) float32, in the order asked; ``ValueError`` naming missing ids."""
        ...

    def upsert(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Write ``vectors`` (n, d) under ``ids``: replace existing ones (other fields kept), add new ones."""
        ...

    def search(self, queries: np.ndarray, k: int = 10) -> tuple[list[list[str]], np.ndarray]:
        """Best ``k`` ids per query (list of n lists) and their scores (n, k), as the store ranks them."""
        ...


# ---------------------------------------------------------------------------------- input checks
def check_vectors(vectors: object, n: int, dim: int, name: str = "vectors") -> np.ndarray:
    """``vectors`` as a float32 array of shape (n, dim) (a copy when converted; input untouched)."""
    v = np.asarray(vectors)
    if v.ndim != 2 or v.shape != (n, dim):
        raise ValueError(f"{name} must have shape ({n}, {dim}) (one row per id), got {v.shape}")
    if not np.issubdtype(v.dtype, np.floating):
        raise ValueError(f"{name} must be a float array, got dtype {v.dtype}")
    if not np.isfinite(v).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return v.astype(np.float32, copy=False)


def check_metric(metric: object, name: str = "metric") -> str:
    """One of ``METRICS``."""
    if metric not in METRICS:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, METRICS))}; got {metric!r}")
    return metric


def missing_ids_error(missing: Sequence[str], where: str) -> ValueError:
    """The error every store raises for unknown ids: names the first few."""
    shown = ", ".join(repr(i) for i in missing[:5])
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    return ValueError(f"ids not found in {where}: {shown}{more}")


def batches(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def check_queries(queries: object, dim: int, k: object) -> tuple[np.ndarray, int]:
    q = check_matrix(queries, "queries", dim=dim, reference="the store's vectors")
    return q.astype(np.float32, copy=False), check_positive_int(k, "k")


def pad_scores(rows: list[list[float]], k: int) -> np.ndarray:
    """Scores per query as an (n, k) array; queries with fewer than ``k`` results are padded with NaN."""
    out = np.full((len(rows), k), np.nan)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def one_of(path, url, client) -> None:
    if sum(x is not None for x in (path, url, client)) != 1:
        raise ValueError("give exactly one of path= (local files), url= / uri= (a server) or client= (an open client)")


def local_location(kind: str, path: str | os.PathLike) -> str:
    """The location of a store kept in local files: ``"KIND:/absolute/path"``."""
    return f"{kind}:{Path(path).resolve()}"


def store_identity(store) -> dict:
    """``{"kind", "location", "collection"}`` of a store: what a backup is bound to.

    ``location`` is None when the store cannot tell where it lives (e.g. an open client given
    without ``location=``); such a store is matched by kind and collection only.
    """
    ident = getattr(store, "identity", None)
    if callable(ident):
        return ident()
    return {"kind": type(store).__name__, "location": None, "collection": getattr(store, "collection", None)}


class ClientStore:
    """What the database-backed stores share: ``metric``, ``dimension``, ``location``, ``close`` and
    the context manager, and ``from_embeddings`` (via the subclass's ``create`` and ``_load``)."""

    kind = "client"
    _location: str | None = None

    @property
    def location(self) -> str | None:
        """Where the collection lives, e.g. ``"qdrant:/abs/folder"`` or ``"milvus+http://host:19530"`` (or None)."""
        return self._location

    def identity(self) -> dict:
        """What a backup of this store is bound to: kind, location and collection."""
        return {"kind": self.kind, "location": self._location, "collection": self.collection}

    @property
    def metric(self) -> str:
        return self._metric

    @property
    def dimension(self) -> int:
        return self._dimension

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.collection!r}, metric={self._metric!r}, dimension={self._dimension})"

    def close(self) -> None:
        """Close the client if this store opened it (Qdrant's local mode releases the folder's lock)."""
        if self._owns_client:
            self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @classmethod
    def from_embeddings(
        cls,
        collection: str,
        ids: Sequence[str],
        vectors: np.ndarray,
        path: str | os.PathLike | None = None,
        *,
        payloads: Sequence[Mapping] | None = None,
        **kwargs,
    ):
        """Create a collection (see ``create``) and load ``vectors`` (n, d) under ``ids`` in batches.

        ``payloads`` (one mapping per id, e.g. the passage text) are stored with the points
        (Qdrant payloads, Milvus dynamic fields).
        """
        v = np.asarray(vectors)
        if v.ndim != 2:
            raise ValueError(f"vectors must be a 2-D array (n, d), got shape {v.shape}")
        store = cls.create(collection, v.shape[1], path, **kwargs)
        ids = check_ids(ids)
        store._load(ids, check_vectors(v, len(ids), v.shape[1]), check_payloads(payloads, len(ids)))
        return store


def check_payloads(payloads, n: int) -> list[Mapping]:
    if payloads is None:
        return [{}] * n
    payloads = list(payloads)
    if len(payloads) != n or not all(isinstance(p, Mapping) for p in payloads):
        raise ValueError(f"payloads must hold one mapping per id ({n}), got {len(payloads)} items")
    return payloads
