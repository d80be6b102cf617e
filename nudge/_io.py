"""Atomic file writing: a temporary file in the target folder, then ``os.replace``."""

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


def load_embeddings(path: str | os.PathLike):
    """Read ``(vectors, ids)`` written by :func:`save_embeddings`."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path {str(path)!r} does not exist")
    with np.load(path, allow_pickle=False) as z:
        return z["vectors"], z["ids"].tolist()


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


def load_artifact(path: str | os.PathLike, fmt: str, *, name: str = "path", kind: str = "a NUDGE artefact"):
    """Read an artefact written by :func:`save_artifact` whose ``meta["format"]`` is ``fmt``.

    Returns ``(meta, arrays)``. Raises ``ValueError`` naming ``name`` and ``path`` when the file is
    missing, unreadable or of another format.
    """
    import json

    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{name} {str(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            arrays = {key: z[key] for key in z.files if key != "meta"}
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{name} {str(path)!r} is not {kind}: {exc}") from None
    if meta.get("format") != fmt:
        raise ValueError(f"{name} {str(path)!r} is not {kind} (format {meta.get('format')!r}, expected {fmt!r})")
    return meta, arrays
