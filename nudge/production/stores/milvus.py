"""Milvus (pymilvus): Milvus Lite on a local ``.db`` path, or a server with ``uri=``."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence

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


# ---------------------------------------------------------------------------------- Milvus
def import_pymilvus():
    try:
        import pymilvus
    except ImportError as exc:
        raise ImportError(
            f"MilvusStore needs the pymilvus package with Milvus Lite (an optional extra): {INSTALL_HINT}"
        ) from exc
    return pymilvus


_MILVUS_METRICS = {"IP": "dot", "COSINE": "cosine", "L2": "l2"}


class MilvusStore(ClientStore):
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
    location : str, optional
        Where the collection lives, for binding backups to it (found from ``path``/``uri`` when not given).
    vector_field : str, optional
        The float-vector field; found automatically when the schema has exactly one.
    batch_size : int
        Rows per request.
    **client_kwargs
        Passed to ``MilvusClient`` (e.g. ``token``).

    The primary key is the document id (VARCHAR; an INT64 key takes ids like ``"42"``).
    """

    kind = "milvus"

    def __init__(
        self,
        collection: str,
        path: str | os.PathLike | None = None,
        *,
        uri: str | None = None,
        client=None,
        vector_field: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        location: str | None = None,
        **client_kwargs,
    ) -> None:
        self._pymilvus = import_pymilvus()
        self.client, self._owns_client = _milvus_client(path, uri, client, client_kwargs)
        self._location = location or _milvus_location(path, uri)
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
        pymilvus = import_pymilvus()
        metric = check_metric(metric)
        dimension = check_positive_int(dimension, "dimension")
        client_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k not in {"vector_field", "batch_size", "location"}}
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
        kwargs.setdefault("location", _milvus_location(path, uri))
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

    def fetch_present(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Vectors of the ``ids`` that exist (doc id -> float32 row); missing ids are left out."""
        ids = check_ids(ids)
        rows = self._rows(ids, [self._vector_field])
        return {i: np.asarray(rows[i][self._vector_field], dtype=np.float32) for i in ids if i in rows}

    def upsert(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        ids = check_ids(ids)
        v = check_vectors(vectors, len(ids), self._dimension)
        existing = self._rows(ids, ["*"])  # whole rows: an upsert replaces the row, so other fields come along
        self._write_rows(ids, v, [_strip(existing.get(i, {}), self._pk, self._vector_field) for i in ids])

    def search(self, queries: np.ndarray, k: int = 10) -> tuple[list[list[str]], np.ndarray]:
        q, k = check_queries(queries, self._dimension, k)
        kind = {v: k for k, v in _MILVUS_METRICS.items()}[self._metric]
        ids, scores = [], []
        for part in batches(q.shape[0], 64):
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
        return ids, pad_scores(scores, k)

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
        for part in batches(len(ids), self.batch_size):
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
        for part in batches(len(ids), self.batch_size):
            data = [
                {**extra[j], self._pk: self._key(ids[j]), self._vector_field: v[j].tolist()}
                for j in range(part.start, part.stop)
            ]
            self.client.upsert(self.collection, data)


def _strip(row: Mapping, *keys: str) -> dict:
    return {k: val for k, val in row.items() if k not in keys}


def _milvus_client(path, uri, client, client_kwargs: dict):
    """``(client, owned)``: the given client, or a new one on a Milvus Lite ``path`` or a server ``uri``."""
    one_of(path, uri, client)
    if client is not None:
        return client, False
    pymilvus = import_pymilvus()
    if path is not None:
        if not str(path).endswith(".db"):
            raise ValueError(f"path must end in '.db' for Milvus Lite, got {str(path)!r}")
        return pymilvus.MilvusClient(str(path), **client_kwargs), True
    return pymilvus.MilvusClient(uri=uri, **client_kwargs), True


def _milvus_location(path, uri) -> str | None:
    """``milvus:/abs/file.db`` (Milvus Lite), ``milvus+URI`` (a server), or None (a client given alone)."""
    if path is not None:
        return local_location("milvus", path)
    return f"milvus+{uri.rstrip('/')}" if uri is not None else None
