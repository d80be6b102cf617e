"""The in-memory store: a numpy array behind the :class:`VectorStore` interface (no extra needed)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence

import numpy as np

from ..._validation import check_positive_int
from ...retrieval import search as _search_matrix
from .base import check_ids, check_metric, check_queries, check_vectors, missing_ids_error, pad_scores


# ---------------------------------------------------------------------------------- in memory
class InMemoryStore:
    """A vector store in a numpy array: the reference for the interface, no extra needed.

    Parameters
    ----------
    dimension : int
    metric : {"dot", "cosine", "l2"}
        Scores: inner product, cosine similarity, or Euclidean distance (lower is better).
    """

    def __init__(self, dimension: int, metric: str = "dot") -> None:
        self._dimension = check_positive_int(dimension, "dimension")
        self._metric = check_metric(metric)
        self._row: dict[str, int] = {}
        self._vectors = np.empty((0, self._dimension), dtype=np.float32)
        self._uid = uuid.uuid4().hex

    @property
    def location(self) -> str:
        """``memory:<random id>``: each in-memory store is its own place (backups bind to it)."""
        return f"memory:{self._uid}"

    def identity(self) -> dict:
        """What a backup of this store is bound to: kind, location and collection (None)."""
        return {"kind": "memory", "location": self.location, "collection": None}

    @classmethod
    def from_embeddings(cls, ids: Sequence[str], vectors: np.ndarray, metric: str = "dot") -> InMemoryStore:
        """A store holding a copy of ``vectors`` (n, d) under ``ids``."""
        v = np.asarray(vectors)
        if v.ndim != 2:
            raise ValueError(f"vectors must be a 2-D array (n, d), got shape {v.shape}")
        store = cls(v.shape[1], metric)
        store.upsert(ids, v)
        return store

    @property
    def metric(self) -> str:
        return self._metric

    @property
    def dimension(self) -> int:
        return self._dimension

    def __repr__(self) -> str:
        return f"InMemoryStore(dimension={self._dimension}, metric={self._metric!r}, count={self.count()})"

    def count(self) -> int:
        return len(self._row)

    def ids(self) -> Iterator[str]:
        return iter(list(self._row))

    def fetch(self, ids: Sequence[str]) -> np.ndarray:
        ids = check_ids(ids)
        missing = [i for i in ids if i not in self._row]
        if missing:
            raise missing_ids_error(missing, "the in-memory store")
        return self._vectors[[self._row[i] for i in ids]].reshape(len(ids), self._dimension)

    def fetch_present(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Vectors of the ``ids`` that exist (doc id -> float32 row); missing ids are left out."""
        return {i: self._vectors[self._row[i]].copy() for i in check_ids(ids) if i in self._row}

    def delete(self, ids: Sequence[str]) -> None:
        """Remove ``ids`` (unknown ids are ignored)."""
        keep = [i for i in self._row if i not in set(check_ids(ids))]
        self._vectors = self._vectors[[self._row[i] for i in keep]].reshape(len(keep), self._dimension)
        self._row = {i: j for j, i in enumerate(keep)}

    def upsert(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        ids = check_ids(ids)
        v = check_vectors(vectors, len(ids), self._dimension)
        new = [i for i in ids if i not in self._row]
        grown = np.concatenate([self._vectors, np.zeros((len(new), self._dimension), np.float32)])
        row = dict(self._row)
        row.update({i: len(self._row) + j for j, i in enumerate(new)})
        grown[[row[i] for i in ids]] = v
        self._vectors, self._row = grown, row

    def search(self, queries: np.ndarray, k: int = 10) -> tuple[list[list[str]], np.ndarray]:
        q, k = check_queries(queries, self._dimension, k)
        if not self._row:
            return [[] for _ in range(q.shape[0])], np.full((q.shape[0], k), np.nan)
        if self._metric == "l2":
            idx, scores = _l2_rerank(q, self._vectors, k)
        else:
            idx, scores = _search_matrix(q, self._vectors, k=k, metric=self._metric)
        names = list(self._row)
        return [[names[j] for j in row] for row in idx], pad_scores(scores.tolist(), k)


def _l2_rerank(q: np.ndarray, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` rows of ``x`` by Euclidean distance to each query (ties by lower row)."""
    d = np.sqrt(np.maximum(0.0, (q * q).sum(1)[:, None] - 2 * q @ x.T + (x * x).sum(1)[None, :]))
    order = np.lexsort((np.broadcast_to(np.arange(x.shape[0]), d.shape), d), axis=1)[:, :k]
    return order, np.take_along_axis(d, order, 1)
