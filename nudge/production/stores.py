"""Guide step 6: put the fine-tuned vectors into a vector store, without re-embedding anything.

NUDGE changes the stored document vectors, not the embedding model, so deploying it means
replacing a few vectors by id in the store that serves retrieval. This module gives

* a small store interface, :class:`VectorStore` (string document ids throughout);
* three stores that follow it: :class:`InMemoryStore` (numpy, no extra needed),
  :class:`QdrantStore` (qdrant-client: embedded local mode on a folder, or a server with
  ``url=``) and :class:`MilvusStore` (pymilvus: Milvus Lite on a local ``.db`` path, or a server
  with ``uri=``). The two clients are optional: ``pip install -e ".[stores]"``;
* :func:`apply_nudge_to_store`: writes only the moved vectors, computed from the originals read
  from the store (the corpus is never loaded), after keeping those originals in a backup file;
* :func:`rollback_store`: puts the backed-up originals back, bit for bit.

NUDGE-M's vectors are not unit length, so they must be scored by the inner product: a cosine
collection (which normalises) or an L2 one would rank them differently and is refused.
NUDGE-N's vectors are unit length, so dot, cosine and L2 all rank them alike.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .. import __version__
from .._corpus import fingerprint, normalise_block
from .._io import load_artifact, save_artifact
from .._validation import check_matrix, check_positive_int
from ..directions import nudge_m_rows, nudge_n_rows
from ..estimator import NotFittedError
from ..retrieval import search as _search_matrix

__all__ = [
    "METRICS",
    "Backup",
    "InMemoryStore",
    "MilvusStore",
    "QdrantStore",
    "StoreReport",
    "VectorStore",
    "apply_nudge_to_store",
    "check_store_metric",
    "qdrant_point_id",
    "read_backup",
    "rollback_store",
]

log = logging.getLogger(__name__)

METRICS = ("dot", "cosine", "l2")
INSTALL_HINT = 'pip install -e ".[stores]"'
DEFAULT_BATCH_SIZE = 256
_BACKUP_FORMAT = "nudge-store-backup/1"
_UNIT_TOLERANCE = 1e-3  # stored originals further than this from norm 1 are "not normalised"
_VERIFY_TOLERANCE = 1e-6  # read-back check after writing (float32 stores are exact; Qdrant's cosine re-normalises)


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
def check_ids(ids: object, name: str = "ids") -> list[str]:
    """A list of distinct string ids (a copy); ``ValueError`` naming ``name`` otherwise."""
    if isinstance(ids, (str, bytes)) or not isinstance(ids, (Sequence, np.ndarray)):
        raise ValueError(f"{name} must be a sequence of string ids, got {type(ids).__name__}")
    out = list(ids)
    bad = [i for i in out if not isinstance(i, str)]
    if bad:
        raise ValueError(f"{name} must hold strings; got {type(bad[0]).__name__} {bad[0]!r}")
    seen: set[str] = set()
    for i in out:
        if i in seen:
            raise ValueError(f"{name} lists {i!r} more than once")
        seen.add(i)
    return out


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


def _batches(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _check_queries(queries: object, dim: int, k: object) -> tuple[np.ndarray, int]:
    q = check_matrix(queries, "queries", dim=dim, reference="the store's vectors")
    return q.astype(np.float32, copy=False), check_positive_int(k, "k")


def _pad_scores(rows: list[list[float]], k: int) -> np.ndarray:
    """Scores per query as an (n, k) array; queries with fewer than ``k`` results are padded with NaN."""
    out = np.full((len(rows), k), np.nan)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


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
        q, k = _check_queries(queries, self._dimension, k)
        if not self._row:
            return [[] for _ in range(q.shape[0])], np.full((q.shape[0], k), np.nan)
        if self._metric == "l2":
            idx, scores = _l2_rerank(q, self._vectors, k)
        else:
            idx, scores = _search_matrix(q, self._vectors, k=k, metric=self._metric)
        names = list(self._row)
        return [[names[j] for j in row] for row in idx], _pad_scores(scores.tolist(), k)


def _l2_rerank(q: np.ndarray, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` rows of ``x`` by Euclidean distance to each query (ties by lower row)."""
    d = np.sqrt(np.maximum(0.0, (q * q).sum(1)[:, None] - 2 * q @ x.T + (x * x).sum(1)[None, :]))
    order = np.lexsort((np.broadcast_to(np.arange(x.shape[0]), d.shape), d), axis=1)[:, :k]
    return order, np.take_along_axis(d, order, 1)


# ---------------------------------------------------------------------------------- Qdrant
DOC_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_OID, "nudge-kit.doc-id")


def qdrant_point_id(doc_id: str) -> str:
    """The Qdrant point id of a document id: a UUID5 of it (deterministic; the id itself goes in the payload)."""
    return str(uuid.uuid5(DOC_ID_NAMESPACE, doc_id))


def _import_qdrant():
    try:
        import qdrant_client
        from qdrant_client import models
    except ImportError as exc:
        raise ImportError(f"QdrantStore needs the qdrant-client package (an optional extra): {INSTALL_HINT}") from exc
    return qdrant_client, models


def _qdrant_metrics(models) -> dict:
    return {models.Distance.DOT: "dot", models.Distance.COSINE: "cosine", models.Distance.EUCLID: "l2"}


def _one_of(path, url, client) -> None:
    if sum(x is not None for x in (path, url, client)) != 1:
        raise ValueError("give exactly one of path= (local files), url= / uri= (a server) or client= (an open client)")


class _ClientStore:
    """What the database-backed stores share: ``metric``, ``dimension``, ``close`` and the
    context manager, and ``from_embeddings`` (via the subclass's ``create`` and ``_load``)."""

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
        store._load(ids, check_vectors(v, len(ids), v.shape[1]), _check_payloads(payloads, len(ids)))
        return store


class QdrantStore(_ClientStore):
    """A Qdrant collection as a :class:`VectorStore`.

    Parameters
    ----------
    collection : str
        An existing collection (make one with :meth:`create` or :meth:`from_embeddings`).
    path : str or path, optional
        Embedded local mode: the collection lives in this folder, in this process (default way).
    url : str, optional
        A Qdrant server or cluster instead, e.g. ``"http://localhost:6333"``.
    client : qdrant_client.QdrantClient, optional
        An open client instead (local mode allows one client per folder: share it).
    vector_name : str, optional
        For collections with named vectors.
    id_field : str
        Payload key holding the document id (points are addressed by ``point_id(doc_id)``).
    point_id : callable, optional
        Document id -> point id; default :func:`qdrant_point_id` (UUID5). For an existing
        collection with integer point ids, e.g. ``int``.
    exact : bool
        Search exhaustively (no HNSW approximation), so results equal a brute-force ranking.
    batch_size : int
        Points per request.
    **client_kwargs
        Passed to ``QdrantClient`` (e.g. ``api_key``).
    """

    def __init__(
        self,
        collection: str,
        path: str | os.PathLike | None = None,
        *,
        url: str | None = None,
        client=None,
        vector_name: str | None = None,
        id_field: str = "doc_id",
        point_id: Callable[[str], str | int] | None = None,
        exact: bool = True,
        batch_size: int = DEFAULT_BATCH_SIZE,
        **client_kwargs,
    ) -> None:
        _, self._models = _import_qdrant()
        self.client, self._owns_client = _qdrant_client(path, url, client, client_kwargs)
        self.collection, self.vector_name, self.id_field = collection, vector_name, id_field
        self.point_id = point_id or qdrant_point_id
        self.exact = bool(exact)
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self._where = f"Qdrant collection {collection!r}"
        self._dimension, self._metric = self._read_params()

    @classmethod
    def create(
        cls,
        collection: str,
        dimension: int,
        path: str | os.PathLike | None = None,
        *,
        url: str | None = None,
        client=None,
        metric: str = "dot",
        replace: bool = False,
        **kwargs,
    ) -> QdrantStore:
        """Create an empty collection scored by ``metric`` (default ``"dot"``: Qdrant's ``Distance.DOT``).

        ``replace=True`` deletes an existing collection of that name first; otherwise one is refused.
        """
        _, models = _import_qdrant()
        metric = check_metric(metric)
        dimension = check_positive_int(dimension, "dimension")
        client_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k not in _QDRANT_STORE_ARGS}
        qc, owns = _qdrant_client(path, url, client, client_kwargs)
        if qc.collection_exists(collection):
            if not replace:
                raise ValueError(
                    f"collection {collection!r} exists already: open it with QdrantStore, or pass replace=True"
                )
            qc.delete_collection(collection)
        distance = {v: k for k, v in _qdrant_metrics(models).items()}[metric]
        params = models.VectorParams(size=dimension, distance=distance)
        name = kwargs.get("vector_name")
        qc.create_collection(collection, vectors_config={name: params} if name else params)
        store = cls(collection, client=qc, **kwargs)
        store._owns_client = owns
        return store

    # ---- the interface
    def count(self) -> int:
        return int(self.client.count(self.collection, exact=True).count)

    def ids(self) -> Iterator[str]:
        offset = None
        while True:
            points, offset = self.client.scroll(
                self.collection, limit=self.batch_size, offset=offset, with_payload=[self.id_field], with_vectors=False
            )
            yield from (self._doc_id(p) for p in points)
            if offset is None:
                return

    def fetch(self, ids: Sequence[str]) -> np.ndarray:
        ids = check_ids(ids)
        out = np.empty((len(ids), self._dimension), dtype=np.float32)
        missing: list[str] = []
        for part in _batches(len(ids), self.batch_size):
            found = self._retrieve(ids[part], vectors=True)
            for j, doc_id in enumerate(ids[part], start=part.start):
                if doc_id in found:
                    out[j] = found[doc_id]
                else:
                    missing.append(doc_id)
        if missing:
            raise missing_ids_error(missing, self._where)
        return out

    def upsert(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        ids = check_ids(ids)
        v = check_vectors(vectors, len(ids), self._dimension)
        for part in _batches(len(ids), self.batch_size):
            existing = self._retrieve(ids[part], vectors=False)
            old = [j for j in range(part.start, part.stop) if ids[j] in existing]
            if old:  # only the vector changes: payloads (texts, metadata) are kept
                points = [self._models.PointVectors(id=self.point_id(ids[j]), vector=self._vector(v[j])) for j in old]
                self.client.update_vectors(self.collection, points=points, wait=True)
            new = [j for j in range(part.start, part.stop) if ids[j] not in existing]
            if new:
                self._insert([ids[j] for j in new], v[new], [{}] * len(new))

    def search(self, queries: np.ndarray, k: int = 10) -> tuple[list[list[str]], np.ndarray]:
        q, k = _check_queries(queries, self._dimension, k)
        models = self._models
        params = models.SearchParams(exact=self.exact)
        ids, scores = [], []
        for part in _batches(q.shape[0], 64):
            requests = [
                models.QueryRequest(
                    query=row.tolist(), limit=k, using=self.vector_name, with_payload=[self.id_field], params=params
                )
                for row in q[part]
            ]
            with warnings.catch_warnings():  # local mode is always exact, and says so on every call
                warnings.filterwarnings("ignore", "Local mode performs exact", UserWarning)
                results = self.client.query_batch_points(self.collection, requests=requests)
            for res in results:
                ids.append([self._doc_id(p) for p in res.points])
                scores.append([p.score for p in res.points])
        return ids, _pad_scores(scores, k)

    # ---- helpers
    def _read_params(self) -> tuple[int, str]:
        if not self.client.collection_exists(self.collection):
            raise ValueError(f"collection {self.collection!r} does not exist: make it with QdrantStore.create(...)")
        vectors = self.client.get_collection(self.collection).config.params.vectors
        if isinstance(vectors, Mapping):
            if self.vector_name not in vectors:
                raise ValueError(
                    f"vector_name must name one of the collection's vectors {sorted(vectors)}; got {self.vector_name!r}"
                )
            vectors = vectors[self.vector_name]
        elif self.vector_name is not None:
            raise ValueError(f"vector_name={self.vector_name!r} given but {self._where} has one unnamed vector")
        metrics = _qdrant_metrics(self._models)
        if vectors.distance not in metrics:
            raise ValueError(
                f"{self._where} scores by {vectors.distance}, which NUDGE does not support (dot, cosine, l2)"
            )
        return int(vectors.size), metrics[vectors.distance]

    def _vector(self, row: np.ndarray):
        return {self.vector_name: row.tolist()} if self.vector_name else row.tolist()

    def _doc_id(self, point) -> str:
        payload = point.payload or {}
        return str(payload.get(self.id_field, point.id))

    def _retrieve(self, ids: list[str], *, vectors: bool) -> dict:
        """Points of ``ids`` that exist: doc id -> vector (or None when ``vectors`` is False)."""
        by_point = {str(self.point_id(i)): i for i in ids}
        with_vectors = ([self.vector_name] if self.vector_name else True) if vectors else False
        records = self.client.retrieve(
            self.collection,
            ids=[self.point_id(i) for i in ids],
            with_vectors=with_vectors,
            with_payload=[self.id_field],
        )
        found = {}
        for rec in records:
            doc_id = by_point[str(rec.id)]
            stored = (rec.payload or {}).get(self.id_field, doc_id)
            if stored != doc_id:
                raise ValueError(f"point {rec.id} of {self._where} holds document {stored!r}, not {doc_id!r}")
            vec = rec.vector[self.vector_name] if vectors and self.vector_name else rec.vector
            found[doc_id] = np.asarray(vec, dtype=np.float32) if vectors else None
        return found

    def _load(self, ids: list[str], v: np.ndarray, payloads: Sequence[Mapping]) -> None:
        self._insert(ids, v, payloads)

    def _insert(self, ids: list[str], v: np.ndarray, payloads: Sequence[Mapping]) -> None:
        models = self._models
        for part in _batches(len(ids), self.batch_size):
            points = [
                models.PointStruct(
                    id=self.point_id(ids[j]), vector=self._vector(v[j]), payload={**payloads[j], self.id_field: ids[j]}
                )
                for j in range(part.start, part.stop)
            ]
            self.client.upsert(self.collection, points=points, wait=True)


_QDRANT_STORE_ARGS = {"vector_name", "id_field", "point_id", "exact", "batch_size"}


def _qdrant_client(path, url, client, client_kwargs: dict):
    """``(client, owned)``: the given client, or a new one on ``path`` (local mode) or ``url``."""
    _one_of(path, url, client)
    if client is not None:
        return client, False
    qdrant_client, _ = _import_qdrant()
    if path is not None:
        return qdrant_client.QdrantClient(path=str(path), **client_kwargs), True
    return qdrant_client.QdrantClient(url=url, **client_kwargs), True


def _check_payloads(payloads, n: int) -> list[Mapping]:
    if payloads is None:
        return [{}] * n
    payloads = list(payloads)
    if len(payloads) != n or not all(isinstance(p, Mapping) for p in payloads):
        raise ValueError(f"payloads must hold one mapping per id ({n}), got {len(payloads)} items")
    return payloads


# ---------------------------------------------------------------------------------- Milvus
def _import_pymilvus():
    try:
        import pymilvus
    except ImportError as exc:
        raise ImportError(
            f"MilvusStore needs the pymilvus package with Milvus Lite (an optional extra): {INSTALL_HINT}"
        ) from exc
    return pymilvus


_MILVUS_METRICS = {"IP": "dot", "COSINE": "cosine", "L2": "l2"}


class MilvusStore(_ClientStore):
    """A Milvus collection as a :class:`VectorStore`.

    Parameters
    ----------
    collection : str
        An existing collection (make one with :meth:`create` or :meth:`from_embeddings`).
    path : str or path, optional
        Milvus Lite: the data lives at this local path, which must end in ``.db`` (default way).
    uri : str, optional
        A Milvus server instead, e.g. ``"http://localhost:19530"`` (with ``token=`` if needed).
    client : pymilvus.MilvusClient, optional
        An open client instead.
    vector_field : str, optional
        The float-vector field; found automatically when the schema has exactly one.
    batch_size : int
        Rows per request.
    **client_kwargs
        Passed to ``MilvusClient`` (e.g. ``token``).

    The primary key is the document id (VARCHAR; an INT64 key takes ids like ``"42"``).
    """

    def __init__(
        self,
        collection: str,
        path: str | os.PathLike | None = None,
        *,
        uri: str | None = None,
        client=None,
        vector_field: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        **client_kwargs,
    ) -> None:
        self._pymilvus = _import_pymilvus()
        self.client, self._owns_client = _milvus_client(path, uri, client, client_kwargs)
        self.collection = collection
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self._where = f"Milvus collection {collection!r}"
        self._read_schema(vector_field)
        # A collection reopened in a new process starts unloaded; searches and gets need it loaded.
        self.client.load_collection(collection)

    @classmethod
    def create(
        cls,
        collection: str,
        dimension: int,
        path: str | os.PathLike | None = None,
        *,
        uri: str | None = None,
        client=None,
        metric: str = "dot",
        replace: bool = False,
        max_id_length: int = 512,
        **kwargs,
    ) -> MilvusStore:
        """Create an empty collection: VARCHAR primary key ``doc_id``, float vector ``vector``, a
        FLAT (exact) index scored by ``metric`` (default ``"dot"``: Milvus ``IP``), dynamic fields
        for payloads, strong consistency. ``replace=True`` drops an existing collection first."""
        pymilvus = _import_pymilvus()
        metric = check_metric(metric)
        dimension = check_positive_int(dimension, "dimension")
        client_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k not in {"vector_field", "batch_size"}}
        mc, owns = _milvus_client(path, uri, client, client_kwargs)
        if mc.has_collection(collection):
            if not replace:
                raise ValueError(
                    f"collection {collection!r} exists already: open it with MilvusStore, or pass replace=True"
                )
            mc.drop_collection(collection)
        schema = pymilvus.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
        schema.add_field("doc_id", pymilvus.DataType.VARCHAR, is_primary=True, max_length=max_id_length)
        schema.add_field("vector", pymilvus.DataType.FLOAT_VECTOR, dim=dimension)
        index = mc.prepare_index_params()
        kind = {v: k for k, v in _MILVUS_METRICS.items()}[metric]
        index.add_index(field_name="vector", index_type="FLAT", metric_type=kind)
        mc.create_collection(collection, schema=schema, index_params=index, consistency_level="Strong")
        store = cls(collection, client=mc, vector_field="vector", **kwargs)
        store._owns_client = owns
        return store

    # ---- the interface
    def count(self) -> int:
        res = self.client.query(self.collection, filter="", output_fields=["count(*)"], consistency_level="Strong")
        return int(res[0]["count(*)"])

    def ids(self) -> Iterator[str]:
        it = self.client.query_iterator(self.collection, batch_size=self.batch_size, output_fields=[self._pk])
        try:
            while batch := it.next():
                yield from (str(row[self._pk]) for row in batch)
        finally:
            it.close()

    def fetch(self, ids: Sequence[str]) -> np.ndarray:
        ids = check_ids(ids)
        rows = self._rows(ids, [self._vector_field])
        missing = [i for i in ids if i not in rows]
        if missing:
            raise missing_ids_error(missing, self._where)
        out = np.empty((len(ids), self._dimension), dtype=np.float32)
        for j, doc_id in enumerate(ids):
            out[j] = rows[doc_id][self._vector_field]
        return out

    def upsert(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        ids = check_ids(ids)
        v = check_vectors(vectors, len(ids), self._dimension)
        existing = self._rows(ids, ["*"])  # whole rows: an upsert replaces the row, so other fields come along
        self._write_rows(ids, v, [_strip(existing.get(i, {}), self._pk, self._vector_field) for i in ids])

    def search(self, queries: np.ndarray, k: int = 10) -> tuple[list[list[str]], np.ndarray]:
        q, k = _check_queries(queries, self._dimension, k)
        kind = {v: k for k, v in _MILVUS_METRICS.items()}[self._metric]
        ids, scores = [], []
        for part in _batches(q.shape[0], 64):
            res = self.client.search(
                self.collection,
                data=q[part].tolist(),
                limit=k,
                anns_field=self._vector_field,
                output_fields=[self._pk],
                search_params={"metric_type": kind},
                consistency_level="Strong",
            )
            for hits in res:
                ids.append([str(h[self._pk]) for h in hits])
                scores.append([float(h["distance"]) for h in hits])
        return ids, _pad_scores(scores, k)

    # ---- helpers
    def _read_schema(self, vector_field: str | None) -> None:
        if not self.client.has_collection(self.collection):
            raise ValueError(f"collection {self.collection!r} does not exist: make it with MilvusStore.create(...)")
        DataType = self._pymilvus.DataType
        fields = self.client.describe_collection(self.collection)["fields"]
        pk = next(f for f in fields if f.get("is_primary"))
        if pk["type"] not in (DataType.VARCHAR, DataType.INT64):
            raise ValueError(f"{self._where} has a primary key of type {pk['type']}; VARCHAR or INT64 is needed")
        self._pk, self._int_pk = pk["name"], pk["type"] == DataType.INT64
        vec = [f for f in fields if f["type"] == DataType.FLOAT_VECTOR]
        names = [f["name"] for f in vec]
        if vector_field is None and len(vec) != 1:
            raise ValueError(f"vector_field must name one of the float-vector fields {names} of {self._where}")
        if vector_field is not None and vector_field not in names:
            raise ValueError(f"vector_field {vector_field!r} is not a float-vector field of {self._where} ({names})")
        chosen = vec[0] if vector_field is None else vec[names.index(vector_field)]
        self._vector_field, self._dimension = chosen["name"], int(chosen["params"]["dim"])
        self._metric = self._read_metric()

    def _read_metric(self) -> str:
        for name in self.client.list_indexes(self.collection, field_name=self._vector_field):
            kind = str(self.client.describe_index(self.collection, name).get("metric_type", "")).upper()
            if kind in _MILVUS_METRICS:
                return _MILVUS_METRICS[kind]
            raise ValueError(f"{self._where} scores by {kind!r}, which NUDGE does not support (IP, COSINE, L2)")
        raise ValueError(f"{self._where} has no index on {self._vector_field!r}, so its metric is unknown")

    def _key(self, doc_id: str):
        if not self._int_pk:
            return doc_id
        try:
            return int(doc_id)
        except ValueError:
            raise ValueError(f"{self._where} has integer primary keys; document id {doc_id!r} is not one") from None

    def _rows(self, ids: list[str], fields: list[str]) -> dict[str, dict]:
        """Stored rows of ``ids`` that exist: doc id -> row (with ``fields``)."""
        found: dict[str, dict] = {}
        for part in _batches(len(ids), self.batch_size):
            literal = ", ".join(json.dumps(self._key(i), ensure_ascii=False) for i in ids[part])
            rows = self.client.query(
                self.collection,
                filter=f"{self._pk} in [{literal}]",
                output_fields=fields,
                consistency_level="Strong",
            )
            found.update({str(r[self._pk]): dict(r) for r in rows})
        return found

    def _load(self, ids: list[str], v: np.ndarray, payloads: Sequence[Mapping]) -> None:
        self._write_rows(ids, v, payloads)

    def _write_rows(self, ids: list[str], v: np.ndarray, extra: Sequence[Mapping]) -> None:
        for part in _batches(len(ids), self.batch_size):
            data = [
                {**extra[j], self._pk: self._key(ids[j]), self._vector_field: v[j].tolist()}
                for j in range(part.start, part.stop)
            ]
            self.client.upsert(self.collection, data)


def _strip(row: Mapping, *keys: str) -> dict:
    return {k: val for k, val in row.items() if k not in keys}


def _milvus_client(path, uri, client, client_kwargs: dict):
    """``(client, owned)``: the given client, or a new one on a Milvus Lite ``path`` or a server ``uri``."""
    _one_of(path, uri, client)
    if client is not None:
        return client, False
    pymilvus = _import_pymilvus()
    if path is not None:
        if not str(path).endswith(".db"):
            raise ValueError(f"path must end in '.db' for Milvus Lite, got {str(path)!r}")
        return pymilvus.MilvusClient(str(path), **client_kwargs), True
    return pymilvus.MilvusClient(uri=uri, **client_kwargs), True


# ---------------------------------------------------------------------------------- backups
@dataclass(frozen=True)
class Backup:
    """The original vectors of the ids a NUDGE apply has overwritten.

    Attributes
    ----------
    ids : list of str, length m
    vectors : ndarray of float32, shape (m, d)
    meta : dict
        Format, the fitted embeddings' fingerprint, dimension, metric and store.
    """

    ids: list[str]
    vectors: np.ndarray
    meta: dict = field(default_factory=dict)


def read_backup(path: str | os.PathLike) -> Backup:
    """Read a backup written by :func:`apply_nudge_to_store`; ``ValueError`` naming ``path`` if it is not one."""
    meta, arrays = load_artifact(path, _BACKUP_FORMAT, name="backup", kind="a NUDGE store backup")
    ids, vectors = [str(i) for i in arrays["ids"].tolist()], arrays["vectors"]
    if vectors.ndim != 2 or vectors.shape[0] != len(ids):
        raise ValueError(f"backup {str(path)!r} is not a NUDGE store backup (ids and vectors disagree)")
    return Backup(ids, vectors, meta)


def _write_backup(path: Path, backup: Backup) -> None:
    ids = np.array(backup.ids, dtype=str) if backup.ids else np.empty(0, dtype="<U1")
    save_artifact(path, backup.meta, {"ids": ids, "vectors": backup.vectors})


# ---------------------------------------------------------------------------------- apply / roll back
@dataclass(frozen=True)
class StoreReport:
    """What :func:`apply_nudge_to_store` or :func:`rollback_store` wrote (or, in a dry run, would write).

    Attributes
    ----------
    action : {"apply", "dry run", "rollback"}
    ids : list of str
        Ids whose vectors were (would be) written: only those whose stored vector changes.
    n_moved : int
        Documents the NUDGE moves.
    n_restored : int
        Ids an earlier apply moved and this NUDGE does not: set back to (or already holding) their originals.
    n_unchanged : int
        Ids already holding the right vector (e.g. when applying again).
    max_displacement : float
        Largest ``||new - original||`` over the moved documents (NUDGE-M: gamma).
    method, gamma : str and float, or None for a rollback
    backup : Path or None
        The backup file (None in a dry run when none exists).
    """

    action: str
    ids: list[str]
    n_moved: int
    n_restored: int
    n_unchanged: int
    max_displacement: float
    method: str | None
    gamma: float | None
    backup: Path | None

    @property
    def n_written(self) -> int:
        return len(self.ids)

    def __str__(self) -> str:
        verb = "would write" if self.action == "dry run" else "wrote"
        what = f"NUDGE-{self.method} at gamma {self.gamma:.4g}: " if self.method else ""
        return (
            f"{self.action}: {what}{verb} {self.n_written} vectors ({self.n_moved} moved, {self.n_restored} restored, "
            f"{self.n_unchanged} already right); max displacement {self.max_displacement:.4g}; backup {self.backup}"
        )


def check_store_metric(metric: str, method: str) -> None:
    """Refuse a store whose scoring would rank this NUDGE's vectors differently from the inner product."""
    check_metric(metric, "store metric")
    if method == "M" and metric != "dot":
        raise ValueError(
            f"NUDGE-M needs a collection scored by the inner product (dot / IP), not {metric!r}: its vectors "
            "are not unit length, and their length is part of the score. A cosine collection normalises "
            "them (undoing the step) and L2 ranks them by distance. Create a dot-product collection, or "
            "use NUDGE-N, whose vectors are unit length and rank the same under dot, cosine and L2"
        )


def apply_nudge_to_store(
    store: VectorStore,
    model,
    doc_ids: Sequence[str],
    *,
    backup: str | os.PathLike,
    embeddings: np.ndarray | None = None,
    dry_run: bool = False,
) -> StoreReport:
    """Write a fitted NUDGE's moved vectors into ``store``, by id, keeping the originals in ``backup``.

    Only the moved documents are read and written: their original vectors are fetched from the
    store (or taken from ``backup`` when an earlier apply already replaced them), normalised as
    the library does, and moved by NUDGE-M/N at ``model.gamma_``. The originals are written to
    ``backup`` (atomically, before anything in the store changes), so :func:`rollback_store`
    restores them exactly; applying again gives the same store (idempotent), and applying
    another NUDGE of the same embeddings moves its documents and restores those it no longer moves.

    Parameters
    ----------
    store : VectorStore
        Holds the document vectors the model was fitted on, under ``doc_ids``.
    model : Nudge
        Fitted (``Nudge.fit`` or ``Nudge.load``).
    doc_ids : sequence of str, length N
        Id of each row of the fitted embeddings.
    backup : str or path
        ``.npz`` file of the original vectors (ids and vectors); its folder must exist.
    embeddings : ndarray, shape (N, d), optional
        The fitted embeddings: when given, their fingerprint and the stored originals are checked against them.
    dry_run : bool
        Write nothing (neither store nor backup); report what would change.

    Returns
    -------
    StoreReport
    """
    _check_fitted(model)
    check_store_metric(store.metric, model.method_)
    doc_ids = check_ids(doc_ids, "doc_ids")
    _check_model_fits_store(model, store, doc_ids, embeddings)
    backup = Path(backup)
    old = _existing_backup(backup, model, store)
    moved_rows = np.asarray(model.moved_, dtype=np.int64)
    moved = [doc_ids[i] for i in moved_rows]
    moved_set = set(moved)
    restore = [i for i in old.ids if i not in moved_set]
    targets = moved + restore
    current = store.fetch(targets) if targets else np.empty((0, store.dimension), np.float32)
    originals = _originals(targets, current, old)
    _check_originals(store.metric, moved, originals[: len(moved)], embeddings, moved_rows)
    new = _nudged(model, moved_rows, originals[: len(moved)])
    desired = np.concatenate([new, originals[len(moved) :]])
    changed = np.flatnonzero(np.any(desired != current, axis=1))
    report = StoreReport(
        action="dry run" if dry_run else "apply",
        ids=[targets[j] for j in changed],
        n_moved=len(moved),
        n_restored=len(restore),
        n_unchanged=len(targets) - changed.size,
        max_displacement=_max_displacement(new, originals[: len(moved)]),
        method=model.method_,
        gamma=float(model.gamma_),
        backup=backup if (not dry_run or backup.is_file()) else None,
    )
    if dry_run:
        log.info("%s", report)
        return report
    _save_originals(backup, old, targets, originals, model, store)
    _write_and_verify(store, report.ids, desired[changed], backup)
    log.info("%s", report)
    return report


def rollback_store(store: VectorStore, backup: str | os.PathLike) -> StoreReport:
    """Put the original vectors kept in ``backup`` back into ``store`` (exactly); returns a report.

    The backup file is kept: applying again later reads the originals from it.
    """
    data = read_backup(backup)
    if data.vectors.shape[1] != store.dimension:
        raise ValueError(
            f"backup {str(backup)!r} holds vectors of dimension {data.vectors.shape[1]} "
            f"but the store has dimension {store.dimension}"
        )
    _write_and_verify(store, data.ids, data.vectors, Path(backup))
    report = StoreReport("rollback", list(data.ids), 0, len(data.ids), 0, 0.0, None, None, Path(backup))
    log.info("%s", report)
    return report


def _check_fitted(model) -> None:
    needed = ("method_", "gamma_", "support_", "moved_", "directions_", "n_features_in_", "embeddings_sha256_")
    if not all(hasattr(model, a) for a in needed):
        raise NotFittedError("model is not a fitted Nudge: call fit() or Nudge.load() first")


def _check_model_fits_store(model, store: VectorStore, doc_ids: list[str], embeddings) -> None:
    if len(doc_ids) != model.n_documents_:
        raise ValueError(
            f"doc_ids has {len(doc_ids)} ids but the model was fitted on {model.n_documents_} documents "
            "(one id per row of the fitted embeddings)"
        )
    if store.dimension != model.n_features_in_:
        raise ValueError(
            f"the store holds vectors of dimension {store.dimension} but the model was fitted on "
            f"dimension {model.n_features_in_}: not the same embedding model"
        )
    if embeddings is not None:
        e = check_matrix(embeddings, "embeddings", finite=False, nonzero_rows=False)
        if e.shape != (model.n_documents_, model.n_features_in_) or fingerprint(e) != model.embeddings_sha256_:
            raise ValueError(
                "embeddings are not the ones the model was fitted on (shape or SHA-256 fingerprint differs): "
                "the fitted result is stale; fit again on the current embeddings"
            )


def _existing_backup(path: Path, model, store: VectorStore) -> Backup:
    """The backup at ``path`` when it exists and belongs to this model's embeddings, else an empty one."""
    if not path.is_file():
        return Backup([], np.empty((0, store.dimension), np.float32))
    old = read_backup(path)
    if old.meta.get("embeddings_sha256") != model.embeddings_sha256_:
        raise ValueError(
            f"backup {str(path)!r} keeps the originals for a NUDGE fitted on other embeddings: roll back "
            "with it first (rollback_store), then delete it, or give another backup path"
        )
    if old.vectors.shape[1] != store.dimension:
        raise ValueError(
            f"backup {str(path)!r} holds vectors of dimension {old.vectors.shape[1]}, not {store.dimension}"
        )
    return old


def _originals(targets: list[str], current: np.ndarray, old: Backup) -> np.ndarray:
    """Original vector of each target: from the backup when it has one (the store may hold a nudged one)."""
    out = current.copy()
    where = {i: j for j, i in enumerate(old.ids)}
    for j, doc_id in enumerate(targets):
        if doc_id in where:
            out[j] = old.vectors[where[doc_id]]
    return out


def _check_originals(metric: str, ids: list[str], originals: np.ndarray, embeddings, rows: np.ndarray) -> None:
    """The stored originals must be normalised (unless scored by cosine) and, if given, equal ``embeddings``."""
    if not ids:
        return
    norms = np.linalg.norm(originals.astype(np.float64), axis=1)
    off = np.flatnonzero(np.abs(norms - 1.0) > _UNIT_TOLERANCE)
    if metric != "cosine" and off.size:
        raise ValueError(
            f"the store's vectors are not unit length (e.g. {ids[off[0]]!r} has norm {norms[off[0]]:.4g}): "
            f"NUDGE works on normalised embeddings, and a {metric!r} collection scores the untouched "
            "documents as stored; load the normalised vectors (e / ||e||) into the store first"
        )
    if embeddings is not None:
        given = normalise_block(np.asarray(embeddings)[rows]).astype(np.float64)
        stored = normalise_block(originals).astype(np.float64)
        bad = np.flatnonzero(np.abs(given - stored).max(axis=1) > _VERIFY_TOLERANCE)
        if bad.size:
            raise ValueError(
                f"the store's vector for {ids[bad[0]]!r} (and {bad.size - 1} more) differs from its row of "
                "embeddings: the store does not hold the embeddings this NUDGE was fitted on"
            )


def _nudged(model, rows: np.ndarray, originals: np.ndarray) -> np.ndarray:
    """The moved vectors: normalise the originals, apply NUDGE-M/N at ``model.gamma_`` (float32 out)."""
    if rows.size == 0:
        return np.empty((0, originals.shape[1]), np.float32)
    e = normalise_block(originals.astype(model.dtype_, copy=False), "the store's vectors")
    directions = model.directions_[np.searchsorted(model.support_, rows)]
    update = nudge_m_rows if model.method_ == "M" else nudge_n_rows
    return update(e, directions, model.gamma_).astype(np.float32, copy=False)


def _max_displacement(new: np.ndarray, originals: np.ndarray) -> float:
    if new.shape[0] == 0:
        return 0.0
    base = normalise_block(originals.astype(np.float64))
    return float(np.linalg.norm(new.astype(np.float64) - base, axis=1).max())


def _save_originals(path: Path, old: Backup, targets: list[str], originals: np.ndarray, model, store) -> None:
    """Write the backup: the earlier one plus the originals of newly moved ids (before the store changes)."""
    known = set(old.ids)
    add = [j for j, i in enumerate(targets) if i not in known]
    if add or not path.is_file():
        meta = {
            "format": _BACKUP_FORMAT,
            "nudge_version": __version__,
            "embeddings_sha256": model.embeddings_sha256_,
            "dimension": int(store.dimension),
            "metric": store.metric,
            "store": repr(store),
        }
        vectors = np.concatenate([old.vectors.astype(np.float32), originals[add]])
        _write_backup(path, Backup(old.ids + [targets[j] for j in add], vectors, meta))


def _write_and_verify(store: VectorStore, ids: list[str], vectors: np.ndarray, backup: Path) -> None:
    """Upsert, then read back: a store that kept something else is reported, with the way back."""
    if not ids:
        return
    store.upsert(ids, vectors)
    got = store.fetch(ids)
    bad = np.flatnonzero(np.abs(got.astype(np.float64) - vectors).max(axis=1) > _VERIFY_TOLERANCE)
    if bad.size:
        raise RuntimeError(
            f"the store returned other vectors than were written for {ids[bad[0]]!r} (and {bad.size - 1} "
            f"more); the originals are in {str(backup)!r}: rollback_store(store, {str(backup)!r})"
        )
