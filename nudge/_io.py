"""Files: atomic writing (a temporary file in the target folder, then ``os.replace``), ``.npz``
artefacts with JSON metadata read back with one clear error naming the file, and per-row
fingerprints of embedding rows (to recognise an original vector in a store later)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(fileobj)`` on a temporary file next to ``path``, then rename it into place.

    Readers never see a half-written file; on error the temporary file is removed and any
    existing ``path`` is left as it was.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise ValueError(f"path {str(path)!r}: folder {str(path.parent)!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        crash_point("atomic-write")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_embeddings(path: str | os.PathLike, vectors, ids) -> Path:
    """Write vectors with their ids to ``path`` (``.npz``) atomically.

    Parameters
    ----------
    path : str or path
        Target file; its folder must exist.
    vectors : ndarray, shape (n, d)
    ids : sequence of str, length n
        The id of each row (document ids), stored alongside so rows can be matched later.
    """
    import io

    import numpy as np

    vectors = np.asarray(vectors)
    ids = [str(i) for i in ids]
    if vectors.ndim != 2 or vectors.shape[0] != len(ids):
        raise ValueError(f"vectors must have shape (len(ids), d) = ({len(ids)}, d), got {vectors.shape}")
    if len(set(ids)) != len(ids):
        raise ValueError("ids contains duplicates")
    buf = io.BytesIO()
    np.savez(buf, vectors=vectors, ids=np.array(ids))
    return atomic_write(path, lambda fh: fh.write(buf.getvalue()))


def load_embeddings(path: str | os.PathLike, *, name: str = "path"):
    """Read ``(vectors, ids)`` written by :func:`save_embeddings`.

    A missing, truncated, empty or corrupted file raises one ``ValueError`` naming ``name`` and ``path``.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{name} {str(path)!r} does not exist")
    with _readable(path, name, "an embeddings file (vectors and ids)"):
        arrays = _read_npz(path)
        vectors, ids = arrays["vectors"], arrays["ids"]
        if vectors.ndim != 2 or ids.ndim != 1 or ids.shape[0] != vectors.shape[0]:
            raise ValueError(f"vectors {vectors.shape} and ids {ids.shape} disagree")
        if ids.dtype.kind != "U":
            raise ValueError(f"ids must be strings, got dtype {ids.dtype}")
        return vectors, ids.tolist()


_CORRUPT = (OSError, ValueError, KeyError, EOFError, TypeError, IndexError, AttributeError, OverflowError)


class _readable:
    """Context manager: any error of reading a damaged artefact becomes one ``ValueError`` naming the file."""

    def __init__(self, path: Path, name: str, kind: str) -> None:
        self.path, self.name, self.kind = path, name, kind

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        import zipfile
        import zlib

        if exc is None:
            return False
        if isinstance(exc, (*_CORRUPT, zipfile.BadZipFile, zlib.error, MemoryError)):
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(
                f"{self.name} {str(self.path)!r} is not {self.kind} or is damaged (truncated, empty or "
                f"corrupted): {type(exc).__name__}: {detail}"
            ) from None
        return False


def _read_npz(path: Path) -> dict:
    """Every array of an ``.npz`` file, read fully now (zip CRCs catch flipped bits)."""
    import numpy as np

    with np.load(path, allow_pickle=False) as z:
        if not hasattr(z, "files"):
            raise ValueError("not an .npz archive")
        return {key: z[key] for key in z.files}


def save_artifact(path: str | os.PathLike, meta: dict, arrays: dict) -> Path:
    """Write an ``.npz`` artefact atomically: named arrays plus a JSON ``meta`` entry (no pickle)."""
    import io
    import json

    import numpy as np

    def write(fh) -> None:  # runs after atomic_write has checked the folder
        buf = io.BytesIO()
        np.savez(buf, meta=np.array(json.dumps(meta)), **arrays)
        fh.write(buf.getvalue())

    return atomic_write(path, write)


def load_artifact(
    path: str | os.PathLike, fmt: str | tuple[str, ...], *, name: str = "path", kind: str = "a NUDGE artefact"
):
    """Read an artefact written by :func:`save_artifact` whose ``meta["format"]`` is ``fmt`` (or one of them).

    Returns ``(meta, arrays)``. Raises ``ValueError`` naming ``name`` and ``path`` when the file is
    missing, truncated, empty, corrupted or of another format.
    """
    import json

    path = Path(path)
    formats = (fmt,) if isinstance(fmt, str) else tuple(fmt)
    if not path.is_file():
        raise ValueError(f"{name} {str(path)!r} does not exist")
    with _readable(path, name, kind):
        arrays = _read_npz(path)
        if "meta" not in arrays:
            raise ValueError("no metadata entry")
        meta = json.loads(str(arrays.pop("meta")))
        if not isinstance(meta, dict):
            raise ValueError("metadata is not a JSON object")
    if meta.get("format") not in formats:
        expected = " or ".join(map(repr, formats))
        raise ValueError(f"{name} {str(path)!r} is not {kind} (format {meta.get('format')!r}, expected {expected})")
    return meta, arrays


def artifact_error(path: str | os.PathLike, name: str, kind: str, problem: str) -> ValueError:
    """The error for an artefact whose contents are inconsistent (e.g. edited metadata)."""
    return ValueError(f"{name} {str(path)!r} is not {kind} or is damaged: {problem}")


# ---------------------------------------------------------------------------------- row fingerprints
FINGERPRINT_WIDTH = 16
FINGERPRINT_TOLERANCE = 1e-5  # float32 storage and a store's own normalisation stay far below this
_SIGNS: dict[int, object] = {}


def _sign_matrix(d: int):
    """A fixed (d, 16) matrix of +-1, derived from SHA-256 (the same on every machine and version)."""
    import hashlib

    import numpy as np

    if d not in _SIGNS:
        need = d * FINGERPRINT_WIDTH
        stream = b"".join(
            hashlib.sha256(b"nudge-row-fingerprint/%d/%d" % (d, i)).digest() for i in range(-(-need // 256))
        )
        bits = np.unpackbits(np.frombuffer(stream, dtype=np.uint8))[:need]
        _SIGNS[d] = (bits.astype(np.float64) * 2.0 - 1.0).reshape(d, FINGERPRINT_WIDTH)
    return _SIGNS[d]


def row_fingerprints(rows):
    """Per-row fingerprints: a 16-number +-1 projection of each row scaled to unit length.

    Two rows with the same direction give the same fingerprint up to rounding (float32 storage,
    a cosine store's normalisation: differences ~1e-7); rows that differ by ``delta`` (unit scale)
    differ by about ``||delta||`` per number. Compare with :func:`same_rows`.

    Parameters
    ----------
    rows : ndarray, shape (n, d)

    Returns
    -------
    ndarray of float64, shape (n, 16)
    """
    import numpy as np

    x = np.asarray(rows, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"rows must be a 2-D array (n, d), got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    return unit @ _sign_matrix(x.shape[1])


def same_rows(fingerprints, rows):
    """Boolean (n,): whether each row of ``rows`` (n, d) has the fingerprint given (n, 16)."""
    import numpy as np

    got = row_fingerprints(rows)
    return np.abs(got - np.asarray(fingerprints, dtype=np.float64)).max(axis=1, initial=0.0) <= FINGERPRINT_TOLERANCE


# ---------------------------------------------------------------------------------- fault injection
_CRASH_HITS: dict[str, int] = {}


def crash_point(name: str) -> None:
    """Test hook: ``NUDGE_CRASH_AT="name:n"`` kills this process (SIGKILL) the n-th time ``name`` is reached.

    Used by the fault-injection tests to stop a run at a named step (e.g. between two store
    writes, or between two renames); without the variable it does nothing.
    """
    spec = os.environ.get("NUDGE_CRASH_AT")
    if not spec:
        return
    target, _, nth = spec.partition(":")
    if target != name:
        return
    _CRASH_HITS[name] = _CRASH_HITS.get(name, 0) + 1
    if _CRASH_HITS[name] == int(nth or 1):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


# ---------------------------------------------------------------------------------- locking
class file_lock:
    """Context manager: an exclusive lock on ``path`` (a folder, or a file created if missing) between processes.

    A second holder waits up to ``timeout`` seconds, then gets a ``ValueError`` naming ``what``.
    The lock is released when the holder exits or dies (an OS lock: a killed process never leaves
    a stale lock). Where ``fcntl`` is missing (Windows) it does nothing.
    """

    def __init__(self, path: str | os.PathLike, *, timeout: float = 600.0, what: str | None = None) -> None:
        self.path, self.timeout, self.what = Path(path), float(timeout), what or str(path)
        self._fd: int | None = None

    def __enter__(self):
        import time

        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return self
        if self.path.is_dir():
            fd = os.open(self.path, os.O_RDONLY)  # a folder: locking it leaves no file behind
        elif not self.path.parent.is_dir():
            raise ValueError(f"cannot lock {self.what}: folder {str(self.path.parent)!r} does not exist")
        else:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise ValueError(
                        f"{self.what} is in use by another nudge command (lock {str(self.path)!r} held for more "
                        f"than {self.timeout:g} s): try again when it has finished; nothing was changed"
                    ) from None
                time.sleep(0.05)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None
