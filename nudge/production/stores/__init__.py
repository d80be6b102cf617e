"""Guide step 6: put the fine-tuned vectors into a vector store, without re-embedding anything.

NUDGE changes the stored document vectors, not the embedding model, so deploying it means
replacing a few vectors by id in the store that serves retrieval. This package gives

* a small store interface, :class:`VectorStore` (string document ids throughout; ``base``);
* three stores that follow it: :class:`InMemoryStore` (numpy, no extra needed; ``memory``),
  :class:`QdrantStore` (qdrant-client: embedded local mode on a folder, or a server with
  ``url=``; ``qdrant``) and :class:`MilvusStore` (pymilvus: Milvus Lite on a local ``.db`` path, or
  a server with ``uri=``; ``milvus``). The two clients are optional: ``pip install -e ".[stores]"``;
* :func:`apply_nudge_to_store`: writes only the moved vectors, computed from the originals read
  from the store and checked against the model's per-row fingerprints (the corpus is never
  loaded), after keeping those originals in a backup file bound to the store and run (``apply``);
* :func:`rollback_store`: puts the backed-up originals back, bit for bit, for the ids the
  apply wrote only (``apply``); :func:`read_backup` reads a backup (``backup``).

NUDGE-M's vectors are not unit length, so they must be scored by the inner product: a cosine
collection (which normalises) or an L2 one would rank them differently and is refused.
NUDGE-N's vectors are unit length, so dot, cosine and L2 all rank them alike.
"""

from __future__ import annotations

from .apply import StoreReport, apply_nudge_to_store, check_store_metric, fetch_present, rollback_store
from .backup import BACKUP_FORMAT, Backup, binding_problem, read_backup, write_backup
from .base import (
    DEFAULT_BATCH_SIZE,
    INSTALL_HINT,
    METRICS,
    UNIT_TOLERANCE,
    VERIFY_TOLERANCE,
    ClientStore,
    VectorStore,
    check_ids,
    check_metric,
    check_vectors,
    missing_ids_error,
    store_identity,
)
from .memory import InMemoryStore
from .milvus import MilvusStore, import_pymilvus
from .qdrant import DOC_ID_NAMESPACE, QdrantStore, import_qdrant, qdrant_point_id

_UNIT_TOLERANCE = UNIT_TOLERANCE  # the names nudge.production.remote imports
_VERIFY_TOLERANCE = VERIFY_TOLERANCE

__all__ = [
    "BACKUP_FORMAT",
    "DEFAULT_BATCH_SIZE",
    "DOC_ID_NAMESPACE",
    "INSTALL_HINT",
    "METRICS",
    "Backup",
    "ClientStore",
    "InMemoryStore",
    "MilvusStore",
    "QdrantStore",
    "StoreReport",
    "VectorStore",
    "apply_nudge_to_store",
    "binding_problem",
    "check_ids",
    "check_metric",
    "check_store_metric",
    "check_vectors",
    "fetch_present",
    "import_pymilvus",
    "import_qdrant",
    "missing_ids_error",
    "qdrant_point_id",
    "read_backup",
    "rollback_store",
    "store_identity",
    "write_backup",
]
