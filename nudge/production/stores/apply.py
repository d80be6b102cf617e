"""Apply a fitted NUDGE to a store by id, and roll it back: checked id by id, crash-safe.

* :func:`apply_nudge_to_store` writes only the moved vectors. Before writing it checks each
  moved id's current vector against the model's per-row fingerprint of the ORIGINAL row (so
  nudged vectors are never nudged again and ids in another order are refused), and each id an
  earlier apply touched against what that apply recorded (original, written, or what was there
  before). The backup (originals, what is about to be written, what was there) is written
  atomically before the store changes.
* :func:`rollback_store` restores only ids its backup recorded, only in the store and run the
  backup belongs to, never re-creates a point deleted since (its payload is gone), and refuses
  to overwrite a vector that is neither the original nor what an apply wrote (``force=True``
  overrides, after saying which).

A process killed at any point leaves every id holding either its original or what the apply
wrote, and running the same command again completes it (the fault-injection tests check this).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..._corpus import normalise_block
from ..._io import crash_point, file_lock, same_rows
from ..._version import __version__
from ...directions import nudge_m_rows, nudge_n_rows
from ...estimator import NotFittedError, check_fitted_embeddings
from .backup import BACKUP_FORMAT, Backup, backup_meta, binding_problem, read_backup, store_mismatch, write_backup
from .base import (
    UNIT_TOLERANCE,
    VERIFY_TOLERANCE,
    VectorStore,
    check_ids,
    check_metric,
    missing_ids_error,
    store_identity,
)

log = logging.getLogger(__name__)

WRITE_CHUNK = 64  # ids per store write (a crash point between chunks)


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
        Largest ``||new - original||`` over the moved documents (NUDGE-M: gamma; NUDGE-N: at most
        ``sqrt(gamma)``, since its gamma bounds the squared distance).
    method, gamma : str and float, or None for a rollback
    backup : Path or None
        The backup file (None in a dry run when none exists).
    skipped : list of str
        Ids the backup holds that are no longer in the store (deleted since the apply): not re-created.
    forced : list of str
        Ids whose vector had been changed by someone else and was overwritten because ``force=True``.
    kept : Path or None
        A forced rollback or apply that overwrote vectors someone else changed: the file keeping what
        it overwrote (a backup of this store, so ``rollback_store(store, kept)`` puts them back); None otherwise.
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
    skipped: list[str] = field(default_factory=list)
    forced: list[str] = field(default_factory=list)
    kept: Path | None = None

    @property
    def n_written(self) -> int:
        return len(self.ids)

    def __str__(self) -> str:
        verb = "would write" if self.action == "dry run" else "wrote"
        what = f"NUDGE-{self.method} at gamma {self.gamma:.4g}: " if self.method else ""
        backup = self.backup if self.backup is not None else "none yet (a dry run writes no file)"
        text = (
            f"{self.action}: {what}{verb} {self.n_written} vectors ({self.n_moved} moved, {self.n_restored} restored, "
            f"{self.n_unchanged} already right); max displacement {self.max_displacement:.4g}; backup {backup}"
        )
        if self.skipped:
            text += f"; {len(self.skipped)} ids deleted from the store since the apply were not re-created"
        if self.forced:
            text += f"; {len(self.forced)} vectors changed by someone else were overwritten (force)"
        if self.kept is not None:
            n = len(self.forced) if self.action == "apply" else self.n_written
            text += f"; the {n} vectors it overwrote are kept in {self.kept}"
        return text


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
    run: str | None = None,
    force: bool = False,
) -> StoreReport:
    """Write a fitted NUDGE's moved vectors into ``store``, by id, keeping the originals in ``backup``.

    Only the moved documents are read and written: their original vectors are fetched from the
    store (or taken from ``backup`` when an earlier apply already replaced them), checked against
    the model's per-row fingerprints of the fitted rows, normalised as the library does, and moved
    by NUDGE-M/N at ``model.gamma_``. The backup is written (atomically, before anything in the
    store changes), so :func:`rollback_store` restores the originals exactly; applying again gives
    the same store (idempotent), and applying another NUDGE of the same run moves its documents
    and restores those it no longer moves.

    Parameters
    ----------
    store : VectorStore
        Holds the document vectors the model was fitted on, under ``doc_ids``.
    model : Nudge
        Fitted (``Nudge.fit`` or ``Nudge.load``).
    doc_ids : sequence of str, length N
        Id of each row of the fitted embeddings.
    backup : str or path
        ``.npz`` file of the original vectors; its folder must exist. An existing one must belong to
        this store (kind, location, collection) and run.
    embeddings : ndarray, shape (N, d), optional
        The fitted embeddings: when given, their fingerprint and the stored originals are checked against them.
    dry_run : bool
        Write nothing (neither store nor backup); report what would change.
    run : str, optional
        Name of the run the backup belongs to; default ``"embeddings:<SHA-256 of the fitted embeddings>"``
        (so a backup of other embeddings is refused). The command line passes the run folder's id, which
        stays the same across ``nudge update``.
    force : bool
        Overwrite ids whose stored vector someone else changed since the last apply (listed in the report).

    Returns
    -------
    StoreReport
    """
    _check_fitted(model)
    check_store_metric(store.metric, model.method_)
    doc_ids = check_ids(doc_ids, "doc_ids")
    _check_model_fits_store(model, store, doc_ids, embeddings)
    backup = Path(backup)
    if backup.is_dir():
        raise ValueError(
            f"backup {str(backup)!r} is a folder: give the path of a backup file, "
            f"e.g. {str(backup / 'store_backup.npz')!r}"
        )
    run = run if run is not None else f"embeddings:{model.embeddings_sha256_}"
    if dry_run:
        return _apply(store, model, doc_ids, backup, embeddings, True, run, force)
    with _backup_lock(backup):  # two applies with one backup: the second waits, then sees the first's writes
        return _apply(store, model, doc_ids, backup, embeddings, False, run, force)


def _backup_lock(backup: Path) -> file_lock:
    """A lock on the backup's folder (no lock file is left behind)."""
    if backup.is_dir():
        raise ValueError(
            f"backup {str(backup)!r} is a folder: give the path of a backup file, "
            f"e.g. {str(backup / 'store_backup.npz')!r}"
        )
    if not backup.parent.is_dir():
        raise ValueError(f"backup {str(backup)!r}: folder {str(backup.parent)!r} does not exist")
    return file_lock(backup.parent, what=f"backup {str(backup)!r}")


def _apply(store, model, doc_ids, backup: Path, embeddings, dry_run: bool, run: str, force: bool) -> StoreReport:
    old = _existing_backup(backup, store, run)
    moved_rows = np.asarray(model.moved_, dtype=np.int64)
    moved = [doc_ids[i] for i in moved_rows]
    moved_set = set(moved)
    _, current_of = fetch_present(store, moved + [i for i in old.ids if i not in moved_set])
    lost = [i for i in moved if i not in current_of]
    if lost:
        raise ValueError(
            f"{missing_ids_error(lost, repr(store))}: the NUDGE moves them, so add them first (their original "
            "vectors; `nudge load ... --add-missing` on the command line). Nothing was written"
        )
    restore = [i for i in old.ids if i not in moved_set and i in current_of]
    skipped = [i for i in old.ids if i not in moved_set and i not in current_of]
    targets = moved + restore
    current = np.stack([current_of[i] for i in targets]) if targets else np.empty((0, store.dimension), np.float32)
    where = {i: j for j, i in enumerate(old.ids)}
    originals = current.copy()
    for j, doc_id in enumerate(targets):
        if doc_id in where:
            originals[j] = old.vectors[where[doc_id]]
    forced = _check_current(targets, current, old, where, force, backup)
    _check_fingerprints(model, moved, moved_rows, originals[: len(moved)], where, backup)
    _check_originals(store.metric, moved, originals[: len(moved)], embeddings, moved_rows, backup, where)
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
        skipped=skipped,
        forced=[i for i in forced if i in set(targets[j] for j in changed)],
    )
    if dry_run:
        log.info("%s", report)
        return report
    if report.forced:  # keep what a forced apply overwrites (someone else's vectors), never replaced later
        rows = [j for j in changed if targets[j] in set(report.forced)]
        report = replace(
            report,
            kept=_keep_overwritten(
                backup, store, old, run, [targets[j] for j in rows], current[rows], desired[rows], by="apply"
            ),
        )
    _save_backup(backup, old, targets, originals, desired, current, backup_meta(model, store, run))
    crash_point("apply-after-backup")
    _write_and_verify(store, report.ids, desired[changed], backup)
    log.info("%s", report)
    return report


def rollback_store(
    store: VectorStore, backup: str | os.PathLike, *, run: str | None = None, force: bool = False
) -> StoreReport:
    """Put the original vectors kept in ``backup`` back into ``store`` (exactly); returns a report.

    Only ids the backup recorded are touched, and only when the backup belongs to this store
    (and to ``run``, when given). An id deleted from the store since the apply is not re-created
    (its payload is gone; listed in ``report.skipped``). An id whose vector is neither the original
    nor what an apply wrote (someone changed it since) is refused, naming it, unless ``force=True``.
    The backup file is kept: applying again later reads the originals from it.

    ``force=True`` (``--force`` on the command line) bypasses the run check, the refusal of a backup
    of an older version and the check of vectors changed since the apply; it never restores a backup
    of another store or collection over vectors that backup's apply did not write (a moved or copied
    store, which holds exactly what the apply wrote, is restored). Whatever a forced rollback
    overwrites is first kept in a file next to the backup (``report.kept``), itself a backup of this
    store: rolling back with it puts those vectors back.
    """
    path = Path(backup)
    if path.is_dir():
        raise ValueError(f"backup {str(path)!r} is a folder, not a backup file")
    if not path.is_file():
        raise ValueError(f"backup {str(path)!r} does not exist (an apply writes it): nothing to restore from it")
    with _backup_lock(path):
        return _rollback(store, path, run, force)


def _rollback(store: VectorStore, path: Path, run: str | None, force: bool) -> StoreReport:
    data = read_backup(path)
    problem = binding_problem(data, store, run)
    other_store = store_mismatch(data, store)
    if problem and not force:
        if other_store:
            advice = (
                "Give the backup of this store and collection. --force (force=True in Python) does not override "
                "this: it restores a backup of another location only when the store holds, id by id, exactly what "
                "that backup's apply wrote (the same store moved or copied)"
            )
        else:
            advice = (
                "Give the backup of this store and run. If you are sure these originals belong here, --force "
                "(force=True in Python) restores them: it bypasses the run and older-version checks and the check "
                "of vectors changed since the apply, not the store check, and keeps what it overwrites in a file "
                "next to the backup"
            )
        raise ValueError(f"backup {str(path)!r} cannot roll back this store: {problem}. {advice}")
    if data.vectors.shape[1] != store.dimension:
        raise ValueError(
            f"backup {str(path)!r} holds vectors of dimension {data.vectors.shape[1]} "
            f"but the store has dimension {store.dimension}"
        )
    _, current_of = fetch_present(store, data.ids)
    skipped = [i for i in data.ids if i not in current_of]
    rows = [j for j, i in enumerate(data.ids) if i in current_of]
    ids = [data.ids[j] for j in rows]
    current = np.stack([current_of[i] for i in ids]) if ids else np.empty((0, store.dimension), np.float32)
    originals = data.vectors[rows]
    where = {i: j for j, i in enumerate(ids)}
    sub = Backup(ids, originals, data.meta, *(None if a is None else a[rows] for a in (data.written, data.before)))
    if other_store:  # forced: only when the store holds, id by id, what this backup recorded (moved or copied)
        stranger = _check_current(ids, current, sub, where, True, path) if data.written is not None else ids
        if stranger:
            raise ValueError(
                f"backup {str(path)!r} cannot roll back this store, even with --force (force=True): {other_store}, "
                f"and this store's vector for {stranger[0]!r} (and {len(stranger) - 1} more) is not what that "
                "backup's apply wrote (nor the original), so it is not that store moved or copied. Nothing was "
                "written; give the backup of this store and collection"
            )
    forced = _check_current(ids, current, sub, where, force, path) if data.written is not None else []
    changed = np.flatnonzero(~_close(current, originals))
    write = [ids[j] for j in changed]
    kept = None
    if force and write and (problem or forced):  # keep what a forced rollback overwrites, before writing
        kept = _keep_overwritten(path, store, data, run, write, current[changed], originals[changed])
    _write_and_verify(store, write, originals[changed], path)
    report = StoreReport(
        "rollback", write, 0, len(ids), len(ids) - changed.size, 0.0, None, None, path, skipped, forced, kept
    )
    if skipped:
        log.warning(
            "rollback: %d ids of the backup are no longer in the store (not re-created): %s", len(skipped), skipped[:5]
        )
    log.info("%s", report)
    return report


def _keep_overwritten(
    path: Path,
    store: VectorStore,
    data: Backup,
    run: str | None,
    ids: list[str],
    current: np.ndarray,
    new: np.ndarray,
    *,
    by: str = "rollback",
) -> Path:
    """Write the vectors a forced rollback (or apply, ``by="apply"``) is about to overwrite to
    ``BACKUP.overwritten-N.npz`` (a new file, never replaced later): a backup of this store (originals =
    what is there now, written = what the forced command writes), so rolling back with it undoes it."""
    for n in range(1, 10_000):
        kept = path.with_name(f"{path.stem}.overwritten-{n}.npz")
        if not kept.exists():
            break
    else:
        raise ValueError(f"cannot keep the vectors a forced {by} overwrites: too many files next to {str(path)!r}")
    meta = {
        "format": BACKUP_FORMAT,
        "nudge_version": __version__,
        "embeddings_sha256": data.meta.get("embeddings_sha256"),
        "dimension": int(store.dimension),
        "metric": store.metric,
        "store": store_identity(store),
        "store_repr": repr(store),
        "run": run if run is not None else str(data.meta.get("run", "unknown")),
        f"overwritten_by_{by}_with": str(path),
    }
    current = current.astype(np.float32)
    write_backup(kept, Backup(list(ids), current, meta, new.astype(np.float32), current.copy()))
    return kept


# ---------------------------------------------------------------------------------- reading the store
def fetch_present(store: VectorStore, ids: Sequence[str]) -> tuple[list[str], dict[str, np.ndarray]]:
    """``(present ids, id -> float32 vector)`` for the ``ids`` that exist in ``store`` (missing ones are left out)."""
    ids = list(dict.fromkeys(ids))
    if not ids:
        return [], {}
    if hasattr(store, "fetch_present"):
        found = store.fetch_present(ids)
    else:
        try:
            v = store.fetch(ids)
            found = {i: v[j] for j, i in enumerate(ids)}
        except ValueError:  # some are missing: find which, one by one
            found = {}
            for i in ids:
                try:
                    found[i] = store.fetch([i])[0]
                except ValueError:
                    pass
    return [i for i in ids if i in found], {i: np.asarray(v, dtype=np.float32) for i, v in found.items()}


# ---------------------------------------------------------------------------------- checks
def _check_fitted(model) -> None:
    needed = ("method_", "gamma_", "support_", "moved_", "directions_", "n_features_in_", "embeddings_sha256_")
    if not all(hasattr(model, a) for a in needed):
        raise NotFittedError("model is not a fitted Nudge: call fit() or Nudge.load() first")
    gamma = model.gamma_
    if gamma is None or not np.isfinite(float(gamma)) or float(gamma) < 0:
        raise ValueError(f"model.gamma_ must be a finite number >= 0, got {gamma!r}")
    moved = np.asarray(model.moved_)
    n = getattr(model, "n_documents_", None)
    if moved.size and (moved.dtype.kind not in "iu" or moved.min() < 0 or (n is not None and moved.max() >= n)):
        raise ValueError(f"model.moved_ holds rows outside 0..{n}: the model is damaged; fit it again")
    if not np.isin(moved, np.asarray(model.support_)).all():
        raise ValueError("model.moved_ lists rows that have no training queries (not in support_): fit it again")


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
        check_fitted_embeddings(embeddings, model, "the model")


def _existing_backup(path: Path, store: VectorStore, run: str) -> Backup:
    """The backup at ``path`` when it exists and belongs to this store and run, else an empty one."""
    if not path.is_file():
        empty = np.empty((0, store.dimension), np.float32)
        return Backup([], empty, written=empty, before=empty)
    old = read_backup(path)
    problem = binding_problem(old, store, run)
    if problem:
        if old.legacy:
            advice = (
                "roll back with it first (rollback_store(..., force=True); `nudge rollback --force`), then apply "
                "with another backup path"
            )
        elif store_mismatch(old, store):
            advice = (
                "give another backup path for this store. If this store is that one moved or copied (its apply's "
                "vectors are here), first undo that apply here with this backup and force (`nudge rollback "
                "--force`, rollback_store(..., force=True): it restores only ids holding what that apply wrote), "
                "then apply with another backup path"
            )
        else:
            advice = (
                "if that run's apply is still in this store, undo it first with that run (`nudge rollback` of "
                "that run's folder, or rollback_store(store, backup)), then apply with another backup path; "
                "otherwise give another backup path"
            )
        raise ValueError(
            f"backup {str(path)!r} cannot be used for this apply: {problem}. It is kept as it is: {advice}"
        )
    if old.vectors.shape[1] != store.dimension:
        raise ValueError(
            f"backup {str(path)!r} holds vectors of dimension {old.vectors.shape[1]}, not {store.dimension}"
        )
    return old


def _close(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise: ``a`` and ``b`` hold the same vector (to the store's rounding)."""
    if a.shape[0] == 0:
        return np.zeros(0, dtype=bool)
    return np.abs(a.astype(np.float64) - b.astype(np.float64)).max(axis=1) <= VERIFY_TOLERANCE


def _check_current(ids: list[str], current: np.ndarray, old: Backup, where: dict, force: bool, path: Path) -> list[str]:
    """Ids recorded in ``old`` must hold the original, what an apply wrote, or what was there before it."""
    rows = [j for j, i in enumerate(ids) if i in where]
    if not rows or old.written is None:
        return []
    k = np.array([where[ids[j]] for j in rows])
    cur = current[rows]
    ok = _close(cur, old.vectors[k]) | _close(cur, old.written[k]) | _close(cur, old.before[k])
    other = [ids[rows[j]] for j in np.flatnonzero(~ok)]
    if other and not force:
        raise ValueError(
            f"the store's vector for {other[0]!r} (and {len(other) - 1} more) is neither its original kept in "
            f"{str(path)!r} nor what an apply wrote: someone changed it since. Nothing was written. Check those "
            "ids; to overwrite them anyway pass force=True (--force on the command line)"
        )
    return other


def _check_originals(
    metric: str, ids: list[str], originals: np.ndarray, embeddings, rows: np.ndarray, path: Path, where: dict
) -> None:
    """The stored originals must be normalised (unless scored by cosine) and, if given, equal ``embeddings``."""
    if not ids:
        return
    norms = np.linalg.norm(originals.astype(np.float64), axis=1)
    off = np.flatnonzero(np.abs(norms - 1.0) > UNIT_TOLERANCE)
    if metric != "cosine" and off.size:
        raise ValueError(
            f"the store's vectors are not unit length (e.g. {ids[off[0]]!r} has norm {norms[off[0]]:.4g}): "
            f"NUDGE works on normalised embeddings, and a {metric!r} collection scores the untouched "
            "documents as stored; load the normalised vectors (e / ||e||) into the store first "
            "(if an apply already wrote nudged vectors there, give its backup)"
        )
    if embeddings is not None:
        given = normalise_block(np.asarray(embeddings)[rows]).astype(np.float64)
        stored = normalise_block(originals).astype(np.float64)
        bad = np.flatnonzero(np.abs(given - stored).max(axis=1) > VERIFY_TOLERANCE)
        if bad.size:
            raise ValueError(_not_original(ids[bad[0]], bad.size, ids[bad[0]] in where, path))


def _check_fingerprints(model, ids: list[str], rows: np.ndarray, originals: np.ndarray, where: dict, path: Path):
    """Each moved id's original (from the store or the backup) must be the row the model was fitted on."""
    prints = getattr(model, "support_fingerprints_", None)
    if prints is None or not ids:
        return
    prints = np.asarray(prints)
    support = np.asarray(model.support_)
    if prints.shape[0] != support.size:
        raise ValueError("model.support_fingerprints_ does not match support_: the model is damaged; fit it again")
    ok = same_rows(prints[np.searchsorted(support, rows)], originals)
    bad = np.flatnonzero(~ok)
    if bad.size:
        raise ValueError(_not_original(ids[bad[0]], bad.size, ids[bad[0]] in where, path))


def _not_original(doc_id: str, n: int, from_backup: bool, path: Path) -> str:
    if from_backup:
        return (
            f"backup {str(path)!r} holds for {doc_id!r} (and {n - 1} more) a vector that is not the original row "
            "the model was fitted on: it is not this model's backup. Nothing was written"
        )
    return (
        f"the store's vector for {doc_id!r} (and {n - 1} more) is not the original row the model was fitted on "
        "(per-row fingerprint differs): the store holds other vectors (already nudged by an earlier apply whose "
        "backup is elsewhere?) or doc_ids are in another order than the fitted rows. Nothing was written; undo "
        "the earlier apply with its own backup and run (`nudge rollback` of that run's folder, or rollback_store), "
        "or load the original vectors, then apply again"
    )


# ---------------------------------------------------------------------------------- computing and writing
def _nudged(model, rows: np.ndarray, originals: np.ndarray) -> np.ndarray:
    """The moved vectors: normalise the originals, apply NUDGE-M/N at ``model.gamma_`` (float32 out)."""
    if rows.size == 0:
        return np.empty((0, originals.shape[1]), np.float32)
    e = normalise_block(originals.astype(model.dtype_, copy=False), "the store's vectors")
    directions = model.directions_[np.searchsorted(model.support_, rows)]
    update = nudge_m_rows if model.method_ == "M" else nudge_n_rows
    out = update(e, directions, model.gamma_).astype(np.float32, copy=False)
    if not np.isfinite(out).all():
        raise ValueError(
            f"NUDGE-{model.method_} at gamma {model.gamma_!r} gives non-finite vectors: nothing was written"
        )
    return out


def _max_displacement(new: np.ndarray, originals: np.ndarray) -> float:
    if new.shape[0] == 0:
        return 0.0
    base = normalise_block(originals.astype(np.float64))
    return float(np.linalg.norm(new.astype(np.float64) - base, axis=1).max())


def _save_backup(
    path: Path,
    old: Backup,
    targets: list[str],
    originals: np.ndarray,
    desired: np.ndarray,
    current: np.ndarray,
    meta: dict,
) -> None:
    """The earlier backup updated for this apply: originals of new ids, and per target what is about to be
    written and what is there now (written before the store changes)."""
    ids = list(old.ids)
    vectors = old.vectors.astype(np.float32).copy()
    written = (old.written if old.written is not None else old.vectors).astype(np.float32).copy()
    before = (old.before if old.before is not None else old.vectors).astype(np.float32).copy()
    where = {i: j for j, i in enumerate(ids)}
    add = [j for j, i in enumerate(targets) if i not in where]
    ids += [targets[j] for j in add]
    vectors = np.concatenate([vectors, originals[add]])
    written = np.concatenate([written, desired[add]])
    before = np.concatenate([before, current[add]])
    for j, doc_id in enumerate(targets):
        if doc_id in where:
            written[where[doc_id]] = desired[j]
            before[where[doc_id]] = current[j]
    write_backup(path, Backup(ids, vectors, meta, written, before))


def _write_and_verify(store: VectorStore, ids: list[str], vectors: np.ndarray, backup: Path) -> None:
    """Upsert in chunks, then read back: a store that kept something else is reported, with the way back."""
    if not ids:
        return
    for start in range(0, len(ids), WRITE_CHUNK):
        crash_point("store-write")
        try:
            store.upsert(ids[start : start + WRITE_CHUNK], vectors[start : start + WRITE_CHUNK])
        except Exception as exc:  # e.g. a full disk under embedded Qdrant (sqlite3.OperationalError)
            detail = (str(exc).strip().splitlines() or [""])[0]
            raise RuntimeError(
                f"writing to the store failed after {start} of {len(ids)} vectors ({type(exc).__name__}: {detail}). "
                f"Every id holds either its previous vector or the new one, and the originals are in "
                f"{str(backup)!r}: once the cause is fixed, run the same command again (it completes the "
                f"writes), or roll back (`nudge rollback`; rollback_store(store, {str(backup)!r}) in Python)"
            ) from exc
    got = store.fetch(ids)
    bad = np.flatnonzero(~_close(got, vectors))
    if bad.size:
        raise RuntimeError(
            f"the store returned other vectors than were written for {ids[bad[0]]!r} (and {bad.size - 1} "
            f"more); the originals are in {str(backup)!r}: roll back (`nudge rollback`; "
            f"rollback_store(store, {str(backup)!r}) in Python)"
        )
