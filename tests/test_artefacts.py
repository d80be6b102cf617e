"""Damaged artefacts: every file a run keeps x truncated / empty / a flipped byte / edited metadata gives one
clear error naming the file (never a traceback, never a silent wrong result)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from nudge import Nudge, load_embeddings
from nudge.production.cli import main
from nudge.production.stores import InMemoryStore, apply_nudge_to_store, read_backup, rollback_store
from nudge.production.streaming import NudgeState
from nudge.teaching.bundled import data_dir, load_tessera

PAIRS = data_dir() / "examples" / "support_pairs.csv"
CORRUPTIONS = ("truncate", "empty", "flip", "edit")


def rewrite_npz(path: Path, change) -> None:
    """Rewrite ``path`` with ``change(arrays)`` applied (arrays include the JSON ``meta`` entry as a dict)."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    if "meta" in arrays:
        arrays["meta"] = json.loads(str(arrays["meta"]))
    change(arrays)
    if "meta" in arrays:
        arrays["meta"] = np.array(json.dumps(arrays["meta"]))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())


EDITS = {  # a plausible hand edit of each artefact that makes its parts disagree
    "nudge_model.npz": lambda a: a["meta"].update(gamma=None),
    "documents.npz": lambda a: a.update(ids=a["ids"][:-1]),
    "queries.npz": lambda a: a.update(vectors=a["vectors"][:, :10].T.copy()),
    "state.npz": lambda a: a.update(val_offsets=a["val_offsets"][::-1].copy()),
    "store_backup.npz": lambda a: a["meta"].update(store=None),
}


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "flip":  # one bit in the middle of the file: inside an array's bytes (zip CRC) or a header
        mid = len(data) // 2
        path.write_bytes(data[:mid] + bytes([data[mid] ^ 0x10]) + data[mid + 1 :])
    else:
        rewrite_npz(path, EDITS[path.name])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("art") / "run"
    assert main(["fit", str(PAIRS), "--out", str(out), "--embedder", "tessera", "--method", "M"]) == 0
    t2 = load_tessera(2)
    qs = [q for q in t2.dataset.query_ids if t2.metadata["queries"][q]["area"] == "webhooks_limits"]
    rows = ["query,document"] + [
        f'"{t2.dataset.queries[q]}","{t2.dataset.corpus[d]}"' for q in qs[:8] for d in t2.dataset.relevant[q]
    ]
    (out.parent / "week.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert main(["update", str(out), str(out.parent / "week.csv")]) == 0  # writes state.npz
    return out


@pytest.mark.parametrize("how", CORRUPTIONS)
@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("nudge_model.npz", "evaluate"),
        ("documents.npz", "evaluate"),
        ("queries.npz", "evaluate"),
        ("state.npz", "update"),
    ],
)
def test_a_damaged_run_file_is_named(name, command, how, run, tmp_path, capsys):
    target = shutil.copytree(run, tmp_path / "run")
    damage(target / name, how)
    week2 = tmp_path / "week2.csv"
    shutil.copy(run.parent / "week.csv", week2)
    week2.write_text(week2.read_text() + "\n")  # another file (bytes), same pairs: only the state decides
    argv = ["evaluate", str(target)] if command == "evaluate" else ["update", str(target), str(week2)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and name in err, err


@pytest.mark.parametrize("how", CORRUPTIONS)
def test_a_damaged_backup_is_named_and_nothing_is_written(how, tmp_path):
    t = load_tessera()
    model = Nudge("M").fit(t.doc_embeddings, t.query_set("train"), t.query_set("val"))
    store = InMemoryStore.from_embeddings(t.doc_ids, t.doc_embeddings)
    backup = tmp_path / "store_backup.npz"
    apply_nudge_to_store(store, model, t.doc_ids, backup=backup)
    before = store.fetch(t.doc_ids)
    damage(backup, how)
    for call in (
        lambda: read_backup(backup),
        lambda: rollback_store(store, backup),
        lambda: apply_nudge_to_store(store, model, t.doc_ids, backup=backup),
    ):
        with pytest.raises(ValueError, match=r"backup '.*store_backup.npz'"):
            call()
    np.testing.assert_array_equal(store.fetch(t.doc_ids), before)


@pytest.mark.parametrize("how", ["truncate", "empty", "flip"])
def test_damaged_library_files_give_one_value_error(how, run, tmp_path):
    for name, load in (
        ("documents.npz", load_embeddings),
        ("state.npz", NudgeState.load),
        ("nudge_model.npz", Nudge.load),
    ):
        path = tmp_path / name
        shutil.copy(run / name, path)
        damage(path, how)
        with pytest.raises(ValueError, match=name):
            load(path)
