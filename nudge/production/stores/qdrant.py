"""Qdrant (qdrant-client): embedded local mode on a folder, or a server with ``url=``."""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np

from ..._validation import check_positive_int
from .base import (
    DEFAULT_BATCH_SIZE,
    INSTALL_HINT,
    ClientStore,
    batches,
    check_ids,
    check_metric,
    check_queries,
    check_vectors,
    local_location,
    missing_ids_error,
    one_of,
    pad_scores,
)

# ---------------------------------------------------------------------------------- Qdrant
DOC_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_OID, "nudge-kit.doc-id")


def qdrant_point_id(doc_id: str) -> str:
    """The Qdrant point id of a document id: a UUID5 of it (deterministic; the id itself goes in the payload)."""
    return str(uuid.uuid5(DOC_ID_NAMESPACE, doc_id))


def import_qdrant():
    try:
        import qdrant_client
        from qdrant_client import models
    except ImportError as exc:
        raise ImportError(f"QdrantStore needs the qdrant-client package (an optional extra): {INSTALL_HINT}") from exc
    return qdrant_client, models


def _qdrant_metrics(models) -> dict:
    return {models.Distance.DOT: "dot", models.Distance.COSINE: "cosine", models.Distance.EUCLID: "l2"}


class QdrantStore(ClientStore):
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
    location : str, optional
        Where the collection lives, for binding backups to it (found from ``path``/``url``/the client
        when not given).
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

    kind = "qdrant"

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
        location: str | None = None,
        **client_kwargs,
    ) -> None:
        _, self._models = import_qdrant()
        self.client, self._owns_client = _qdrant_client(path, url, client, client_kwargs)
        self._location = location or _qdrant_location(path, url, self.client)
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
        _, models = import_qdrant()
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
        if "location" not in kwargs:
            kwargs["location"] = _qdrant_location(path, url, qc)
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
        for part in batches(len(ids), self.batch_size):
            found = self._retrieve(ids[part], vectors=True)
            for j, doc_id in enumerate(ids[part], start=part.start):
                if doc_id in found:
                    out[j] = found[doc_id]
                else:
                    missing.append(doc_id)
        if missing:
            raise missing_ids_error(missing, self._where)
        return out

    def fetch_present(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Vectors of the ``ids`` that exist (doc id -> float32 row); missing ids are left out."""
        ids = check_ids(ids)
        found: dict[str, np.ndarray] = {}
        for part in batches(len(ids), self.batch_size):
            found.update(self._retrieve(ids[part], vectors=True))
        return found

    def upsert(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        ids = check_ids(ids)
        v = check_vectors(vectors, len(ids), self._dimension)
        for part in batches(len(ids), self.batch_size):
            existing = self._retrieve(ids[part], vectors=False)
            old = [j for j in range(part.start, part.stop) if ids[j] in existing]
            if old:  # only the vector changes: payloads (texts, metadata) are kept
                points = [self._models.PointVectors(id=self.point_id(ids[j]), vector=self._vector(v[j])) for j in old]
                self.client.update_vectors(self.collection, points=points, wait=True)
            new = [j for j in range(part.start, part.stop) if ids[j] not in existing]
            if new:
                self._insert([ids[j] for j in new], v[new], [{}] * len(new))

    def search(self, queries: np.ndarray, k: int = 10) -> tuple[list[list[str]], np.ndarray]:
        q, k = check_queries(queries, self._dimension, k)
        models = self._models
        params = models.SearchParams(exact=self.exact)
        ids, scores = [], []
        for part in batches(q.shape[0], 64):
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
        return ids, pad_scores(scores, k)

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
        for part in batches(len(ids), self.batch_size):
            points = [
                models.PointStruct(
                    id=self.point_id(ids[j]), vector=self._vector(v[j]), payload={**payloads[j], self.id_field: ids[j]}
                )
                for j in range(part.start, part.stop)
            ]
            self.client.upsert(self.collection, points=points, wait=True)


_QDRANT_STORE_ARGS = {"vector_name", "id_field", "point_id", "exact", "batch_size", "location"}


def _qdrant_location(path, url, client) -> str | None:
    """``qdrant:/abs/folder`` (local mode), ``qdrant+URL`` (a server), or None when the client does not say."""
    if path is not None:
        return local_location("qdrant", path)
    if url is not None:
        return f"qdrant+{url.rstrip('/')}"
    inner = getattr(client, "_client", None)
    if getattr(inner, "persistent", False) and getattr(inner, "location", None):
        return local_location("qdrant", inner.location)
    rest = getattr(inner, "rest_uri", None)
    return f"qdrant+{str(rest).rstrip('/')}" if rest else None


def _qdrant_client(path, url, client, client_kwargs: dict):
    """``(client, owned)``: the given client, or a new one on ``path`` (local mode) or ``url``."""
    one_of(path, url, client)
    if client is not None:
        return client, False
    qdrant_client, _ = import_qdrant()
    if path is not None:
        return qdrant_client.QdrantClient(path=str(path), **client_kwargs), True
    return qdrant_client.QdrantClient(url=url, **client_kwargs), True
