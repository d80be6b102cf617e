"""Store backups: the original vectors an apply replaced, bound to one store, collection and run.

A backup (``.npz``, no pickle, written atomically) keeps per id

* ``vectors``: the ORIGINAL vector (what the store held before any apply),
* ``written``: what the last apply wrote (or was about to write) for that id,
* ``before``: what the store held when that apply started,

so a rollback or a later apply can tell, id by id, whether the store holds the original, what an
apply wrote, or something else (someone changed it since: refused unless forced). Its metadata
names the store (kind, location, collection) and the run it belongs to, so a backup of another
store or run is refused instead of being used or deleted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..._io import artifact_error, load_artifact, save_artifact
from ..._version import __version__
from .base import store_identity

BACKUP_FORMAT = "nudge-store-backup/2"
LEGACY_FORMAT = "nudge-store-backup/1"
_KIND = "a NUDGE store backup"


@dataclass(frozen=True)
class Backup:
    """The original vectors of the ids a NUDGE apply has overwritten.

    Attributes
    ----------
    ids : list of str, length m
    vectors : ndarray of float32, shape (m, d)
        The originals.
    meta : dict
        Format, the fitted embeddings' fingerprint, dimension, metric, ``store`` (kind, location,
        collection) and ``run``.
    written : ndarray of float32, shape (m, d), or None
        What the last apply wrote for each id (None in a backup of an older version).
    before : ndarray of float32, shape (m, d), or None
        What the store held when that apply started.
    """

    ids: list[str]
    vectors: np.ndarray
    meta: dict = field(default_factory=dict)
    written: np.ndarray | None = None
    before: np.ndarray | None = None

    @property
    def legacy(self) -> bool:
        """Written by an older version: not bound to a store location or run, writes not recorded."""
        return self.meta.get("format") == LEGACY_FORMAT


def read_backup(path: str | os.PathLike) -> Backup:
    """Read a backup written by :func:`apply_nudge_to_store`; one ``ValueError`` naming ``path`` if it is
    not one (missing, truncated, empty, corrupted, or edited so that its parts disagree)."""
    meta, arrays = load_artifact(path, (BACKUP_FORMAT, LEGACY_FORMAT), name="backup", kind=_KIND)

    def bad(problem: str) -> ValueError:
        return artifact_error(path, "backup", _KIND, problem)

    for key in ("ids", "vectors"):
        if key not in arrays:
            raise bad(f"no {key!r} array")
    ids_arr, vectors = arrays["ids"], arrays["vectors"]
    if ids_arr.ndim != 1 or (ids_arr.size and ids_arr.dtype.kind != "U"):
        raise bad("ids are not a list of strings")
    ids = [str(i) for i in ids_arr.tolist()]
    if len(set(ids)) != len(ids):
        raise bad("an id is listed twice")
    if vectors.ndim != 2 or vectors.shape[0] != len(ids) or vectors.dtype.kind != "f":
        raise bad(f"ids ({len(ids)}) and vectors {vectors.shape} disagree")
    if not np.isfinite(vectors).all():
        raise bad("vectors hold NaN or infinite values")
    dim = meta.get("dimension")
    if dim is not None and (not isinstance(dim, int) or (ids and dim != vectors.shape[1])):
        raise bad(f"metadata says dimension {dim!r} but the vectors have {vectors.shape[1]}")
    extra = {}
    if meta["format"] == BACKUP_FORMAT:
        store = meta.get("store")
        if not isinstance(store, dict) or not isinstance(store.get("kind"), str):
            raise bad("metadata does not name the store it belongs to")
        if not isinstance(meta.get("run"), str):
            raise bad("metadata does not name the run it belongs to")
        for key in ("written", "before"):
            arr = arrays.get(key)
            if arr is None or arr.shape != vectors.shape or not np.isfinite(arr).all():
                raise bad(f"{key!r} does not match the originals")
            extra[key] = arr.astype(np.float32, copy=False)
    return Backup(ids, vectors.astype(np.float32, copy=False), meta, **extra)


def write_backup(path: Path, backup: Backup) -> None:
    """Write ``backup`` to ``path`` atomically (the previous file stays whole until the rename)."""
    ids = np.array(backup.ids, dtype=str) if backup.ids else np.empty(0, dtype="<U1")
    arrays = {"ids": ids, "vectors": backup.vectors}
    if backup.written is not None:
        arrays["written"], arrays["before"] = backup.written, backup.before
    save_artifact(path, backup.meta, arrays)


def backup_meta(model, store, run: str) -> dict:
    """Metadata of a backup made by applying ``model`` to ``store`` for ``run``."""
    return {
        "format": BACKUP_FORMAT,
        "nudge_version": __version__,
        "embeddings_sha256": model.embeddings_sha256_,
        "dimension": int(store.dimension),
        "metric": store.metric,
        "store": store_identity(store),
        "store_repr": repr(store),
        "run": run,
    }


def describe_store(ident: dict) -> str:
    where = ident.get("location") or "an unknown location"
    coll = ident.get("collection")
    return f"{ident.get('kind')} store at {where}" + (f", collection {coll!r}" if coll is not None else "")


def store_mismatch(backup: Backup, store) -> str | None:
    """Why ``backup`` belongs to another store (kind, location or collection), or None when it is this
    store's (or, for a backup of an older version, when it cannot tell)."""
    if backup.legacy:
        return None
    mine, theirs = store_identity(store), backup.meta["store"]
    same = mine.get("kind") == theirs.get("kind") and mine.get("collection") == theirs.get("collection")
    if same and mine.get("location") and theirs.get("location"):
        same = mine["location"] == theirs["location"]
    if not same:
        return f"it belongs to the {describe_store(theirs)}, not to this {describe_store(mine)}"
    return None


def binding_problem(backup: Backup, store, run: str | None) -> str | None:
    """Why ``backup`` does not belong to ``store`` (and ``run``, when given), or None when it does."""
    if backup.legacy:
        return (
            "it was written by an older version of the kit, which did not record the store and run it belongs "
            "to nor what it wrote"
        )
    other_store = store_mismatch(backup, store)
    if other_store:
        return other_store
    if run is not None and backup.meta["run"] != run:
        return f"it belongs to another run ({backup.meta['run']!r}, not {run!r})"
    return None
