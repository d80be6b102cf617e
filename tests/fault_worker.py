"""Run one store operation in a child process, for the fault-injection tests (tests/test_faults.py).

    python tests/fault_worker.py apply|rollback KIND STORE_PATH WORK_DIR MODEL_FILE

``KIND`` is qdrant or milvus; WORK_DIR holds ``ids.json`` and receives ``backup.npz``. The parent sets
``NUDGE_CRASH_AT`` so the process is killed (SIGKILL) at a named step; writes go in chunks of 8 ids
so there are many steps to stop at.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from nudge import Nudge
from nudge.production.stores import MilvusStore, QdrantStore, apply_nudge_to_store, rollback_store
from nudge.production.stores import apply as apply_module


def open_store(kind: str, path: str):
    return QdrantStore("docs", path=path) if kind == "qdrant" else MilvusStore("docs", path=path)


def main(argv: list[str]) -> int:
    action, kind, store_path, work, model_file = argv
    work = Path(work)
    apply_module.WRITE_CHUNK = 8
    ids = json.loads((work / "ids.json").read_text())
    store = open_store(kind, store_path)
    try:
        if action == "apply":
            apply_nudge_to_store(store, Nudge.load(work / model_file), ids, backup=work / "backup.npz")
        else:
            rollback_store(store, work / "backup.npz")
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
