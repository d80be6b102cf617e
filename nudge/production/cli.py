"""The command line: ``python -m nudge`` (or the installed ``nudge`` command).

::

    nudge fit DATA --out RUN                        # split, embed, fit NUDGE, write the artefacts to RUN/
    nudge evaluate RUN                              # hold-out test before and after, fixed and broken questions
    nudge load RUN --store STORE --collection C     # a dot-product collection holding the run's original vectors
    nudge apply RUN --store STORE --collection C    # write the moved vectors by id (--dry-run: only report)
    nudge rollback RUN --store STORE --collection C # put the original vectors back
    nudge update RUN NEW_PAIRS                      # new labelled pairs: re-pick gamma, rewrite the artefacts
    nudge validate DATA                             # every skipped or suspicious row, with file and line

DATA and NEW_PAIRS are any dataset the kit reads: a LlamaIndex JSON file, a BEIR folder, or a
CSV/JSONL of (query, document) pairs. Your own vectors (no embedding): `nudge fit DATA --doc-vectors F
[--doc-ids F] --query-vectors F [--query-ids F]`, looked up by document and query id. Your own
test set: `--test-split NAME` (BEIR qrels, with `--split NAME` for training) or `--test FILE`;
DATA is then split into train and validation only. STORE is qdrant:FOLDER (embedded Qdrant), qdrant+http://HOST:PORT
(a Qdrant server), milvus:FILE.db (Milvus Lite) or milvus+http://HOST:PORT (a Milvus server); the
stores need the optional extra: pip install -e ".[stores]".

A run folder holds run.json (data, embedder, split, updates), nudge_model.npz, documents.npz (the
ORIGINAL document vectors and ids), nudged_documents.npz, queries.npz, and later state.npz (the
NudgeState of `nudge update`), added_documents.json (texts of documents updates appended) and
store_backup.npz (the originals `nudge apply` replaced). Bad arguments and files give a one-line
error, not a traceback.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shlex
import shutil
import sys
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._corpus import fingerprint as _fingerprint
from .._io import crash_point, file_lock, load_embeddings, save_embeddings, write_json
from .._version import __version__
from ..diagnostics import FitWarning
from ..estimator import Nudge
from ..evaluation import compare, evaluate_embeddings, format_table
from ..metrics import NDCG_FORM
from ..pairs import QuerySet, split_queries
from .ask import add_ask_parser
from .datasets import JSONL_SUFFIXES, PAIR_TABLE_SUFFIXES, RetrievalDataset, load_dataset

RUN_FILE = "run.json"
MODEL_FILE = "nudge_model.npz"
DOCS_FILE = "documents.npz"
NUDGED_FILE = "nudged_documents.npz"
QUERIES_FILE = "queries.npz"
STATE_FILE = "state.npz"
BACKUP_FILE = "store_backup.npz"
ADDED_FILE = "added_documents.json"  # texts of the documents `nudge update` appended (id -> text)
COMMIT_FILE = "COMMITTED"  # in a staging folder: every file is written, move them all
EMBEDDERS = ("tessera", "local", "openai")
PRECOMPUTED = "precomputed"  # run.json embedder_option of a run fit on --doc-vectors/--query-vectors
PRECOMPUTED_MODEL = "precomputed"  # its embedder name unless --vectors-model names the model
TEST_PREFIX = "test:"  # split.test ids of a --test FILE's questions (its ids may equal DATA's)
STORE_FORMS = "qdrant:FOLDER, qdrant+http://HOST:PORT, milvus:FILE.db or milvus+http://HOST:PORT"
_CLIENT_MODULES = {"qdrant_client", "pymilvus", "milvus_lite", "httpx", "httpcore", "grpc", "sqlite3", "portalocker"}
SHARED_TEST_SHARE = 0.01  # a given test set may share at most this share of its question texts with DATA
LOCK_FILE = ".nudge.lock"
LOCK_TIMEOUT = float(os.environ.get("NUDGE_LOCK_TIMEOUT", "600"))  # seconds a command waits for another one


# ---------------------------------------------------------------------------------- shared helpers
def _embedder(name: str, cache_dir: str | None, *, progress: bool = False):
    if name == "tessera":
        from ..teaching.bundled import tessera_embedder

        return tessera_embedder()
    if name == "local":
        from .embedders import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(progress=progress)  # another library's bars: only with --progress
    if name == "openai":
        from .embedders import OpenAIEmbedder

        return OpenAIEmbedder(cache_dir=cache_dir)
    raise ValueError(f"--embedder must be tessera, local or openai, got {name!r}")


def _read_run(path: str) -> tuple[Path, dict]:
    """The run folder and its run.json; ``ValueError`` when it is not one."""
    run_dir = Path(path)
    if not run_dir.is_dir():
        raise ValueError(f"run folder {path!r} does not exist; create one with `nudge fit DATA --out {path}`")
    if not (run_dir / RUN_FILE).is_file():
        raise ValueError(f"{run_dir} is not a run folder (no {RUN_FILE}); create one with `nudge fit`")
    try:
        run = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{run_dir / RUN_FILE} is not valid JSON: {exc}") from None
    if not isinstance(run, dict):
        raise ValueError(f"{run_dir / RUN_FILE} is not a run description written by `nudge fit`")
    missing = [k for k in ("data", "embedder", "split") if k not in run]
    if missing:
        raise ValueError(
            f"{run_dir / RUN_FILE} has no {missing[0]!r} field: it is not a run description written by `nudge fit` "
            "(or was edited)"
        )
    _check_run(run, run_dir / RUN_FILE)
    return run_dir, run


def _check_run(run: dict, path: Path) -> None:
    """Every field of run.json has the type `nudge fit` / `nudge update` write: one ``ValueError`` naming
    the file and the field otherwise (a hand-edited or damaged run.json)."""

    def bad(field: str, problem: str) -> ValueError:
        return ValueError(f"{path}: {field} {problem}; the file was edited or damaged (write the run again "
                          "with `nudge fit`, or put the field back)")  # fmt: skip

    def text(field: str, value: object, *, optional: bool = False) -> None:
        if value is None and optional:
            return
        if not isinstance(value, str) or not value:
            raise bad(field, f"must be a non-empty string, got {value!r}")

    def id_list(field: str, value: object) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(q, str) for q in value):
            raise bad(field, f"must be a list of question ids (strings), got {_short(value)}")
        seen: set[str] = set()
        for q in value:
            if q in seen:
                raise bad(field, f"lists question {q!r} twice (it would count twice)")
            seen.add(q)
        return value

    for field in ("data", "embedder"):
        text(field, run[field])
    if "data_sha256" not in run:  # the fingerprint of the data: without it a re-sorted file would be scored
        raise bad("data_sha256", "is missing (the SHA-256 of the data file `nudge fit` read)")
    text("data_sha256", run["data_sha256"])
    for field in ("run_id", "embedder_option", "cache_dir", "nudge"):
        if field in run:
            text(field, run[field], optional=field != "run_id")
    options = (*EMBEDDERS, PRECOMPUTED)
    if "embedder_option" in run and run["embedder_option"] is not None and run["embedder_option"] not in options:
        raise bad("embedder_option", f"must be one of {', '.join(options)}, got {run['embedder_option']!r}")
    if "seed" in run and (not isinstance(run["seed"], int) or isinstance(run["seed"], bool) or run["seed"] < 0):
        raise bad("seed", f"must be a whole number >= 0, got {run['seed']!r}")
    split = run["split"]
    if not isinstance(split, dict):
        raise bad("split", f"must be an object with lists train, val and test, got {_short(split)}")
    parts = {}
    for name in ("train", "val", "test"):
        if name not in split:
            raise bad("split", f"has no {name!r} list")
        parts[name] = id_list(f"split.{name}", split[name])
    for a, b in (("test", "train"), ("test", "val"), ("train", "val")):
        both = set(parts[a]) & set(parts[b])
        if both:
            raise bad(f"split.{a}", f"shares {len(both)} question(s) with split.{b}, e.g. {sorted(both)[0]!r}")
    _check_sources(run, bad, text)
    updates = run.get("updates", [])
    if not isinstance(updates, list):
        raise bad("updates", f"must be a list of update records, got {_short(updates)}")
    seen_updates: dict[tuple, int] = {}
    for i, record in enumerate(updates, start=1):
        field = f"updates[{i - 1}]"
        if not isinstance(record, dict):
            raise bad(field, f"must be an update record (an object), got {_short(record)}")
        for key in ("data", "sha256"):
            if key not in record:
                raise bad(field, f"has no {key!r}")
            text(f"{field}.{key}", record[key])
        key = (record["data"], record["sha256"], json.dumps(record.get("train")), json.dumps(record.get("val")))
        if key in seen_updates:  # `nudge update` never records one update twice: replaying it would count it twice
            raise bad(field, f"repeats updates[{seen_updates[key]}] (the same file, fingerprint and questions)")
        seen_updates[key] = i - 1
        for key in ("train", "val"):
            if key in record:
                id_list(f"{field}.{key}", record[key])
        if "vectors" in record:
            _check_vector_record(record["vectors"], f"{field}.vectors", bad, text)
        if "beir_split" in record:
            split = record["beir_split"]
            if not isinstance(split, list) or not split or not all(isinstance(v, str) and v for v in split):
                raise bad(f"{field}.beir_split", f"must be a non-empty list of qrels names, got {_short(split)}")


def _check_sources(run: dict, bad: Callable[[str, str], ValueError], text: Callable[..., None]) -> None:
    """run.json's record of what the run read: fractions, BEIR qrels files, a given test set, vector files."""
    for field in ("val_fraction", "test_fraction"):
        value = run.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1):
            raise bad(field, f"must be a number strictly between 0 and 1 (or null), got {value!r}")

    def split_list(field: str, value: object) -> None:
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            raise bad(field, f"must be a non-empty list of qrels names such as ['train'], got {_short(value)}")

    if "beir_split" in run:
        split_list("beir_split", run["beir_split"])
    if "test" in run:
        test = run["test"]
        if not isinstance(test, dict):
            raise bad("test", f"must be an object describing the given test set, got {_short(test)}")
        if test.get("kind") not in ("split", "file"):
            raise bad("test.kind", f"must be 'split' (--test-split) or 'file' (--test), got {test.get('kind')!r}")
        for key in ("data", "sha256"):
            text(f"test.{key}", test.get(key))
        if test["kind"] == "split" or "beir_split" in test:
            split_list("test.beir_split", test.get("beir_split"))
        prefix = test.get("query_id_prefix", "")
        if not isinstance(prefix, str):
            raise bad("test.query_id_prefix", f"must be a string, got {prefix!r}")
        wrong = [q for q in run["split"]["test"] if not q.startswith(prefix)]
        if wrong:
            raise bad("split.test", f"names {wrong[0]!r}, not a question of the given test set (ids start with "
                      f"{prefix!r})")  # fmt: skip
    if run.get("embedder_option") == PRECOMPUTED and "vectors" not in run:
        raise bad("vectors", "is missing (the vector files of a run fit on precomputed vectors)")
    if "vectors" in run:
        _check_vector_record(run["vectors"], "vectors", bad, text)


def _check_vector_record(record: object, field: str, bad: Callable[[str, str], ValueError], text) -> None:
    if not isinstance(record, dict):
        raise bad(field, f"must be an object with 'documents' and 'queries', got {_short(record)}")
    for side in ("documents", "queries"):
        entry = record.get(side)
        if not isinstance(entry, dict):
            raise bad(f"{field}.{side}", f"must be an object naming the vector file, got {_short(entry)}")
        for key in ("vectors", "vectors_sha256"):
            text(f"{field}.{side}.{key}", entry.get(key))
        for key in ("ids", "ids_sha256"):
            text(f"{field}.{side}.{key}", entry.get(key), optional=True)
        if (entry.get("ids") is None) != (entry.get("ids_sha256") is None):
            raise bad(f"{field}.{side}", "must give both 'ids' and 'ids_sha256', or neither")
        unused = entry.get("unused", 0)
        if isinstance(unused, bool) or not isinstance(unused, int) or unused < 0:
            raise bad(f"{field}.{side}.unused", f"must be a whole number >= 0, got {unused!r}")
    dim = record.get("dim", 1)
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise bad(f"{field}.dim", f"must be a whole number >= 1, got {dim!r}")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _run_id(run: dict) -> str:
    """The run's identity (backups are bound to it): ``run_id`` of run.json, or for runs written by older
    versions a digest of their data path and split."""
    if isinstance(run.get("run_id"), str):
        return run["run_id"]
    text = json.dumps({"data": run.get("data"), "split": run.get("split")}, sort_keys=True)
    return "run-" + hashlib.sha256(text.encode()).hexdigest()[:32]


@contextmanager
def _locked(run_dir: Path) -> Iterator[None]:
    """Hold the run folder's lock: a second command on the same run waits for the first (then fails clearly)."""
    with file_lock(run_dir / LOCK_FILE, timeout=LOCK_TIMEOUT, what=f"run folder {str(run_dir)!r}"):
        _recover(run_dir)
        yield


def _recover(folder: Path) -> None:
    """Finish or discard what a killed command left: a committed staging folder is moved into place, an
    uncommitted one is removed (nothing in ``folder`` had changed yet)."""
    for staging in sorted(folder.glob(".staging-*")):
        commit = staging / COMMIT_FILE
        if commit.is_file():
            try:
                names = json.loads(commit.read_text(encoding="utf-8"))
            except ValueError:
                names = None
            if isinstance(names, list):
                names = {"move": names, "remove": []}
            if isinstance(names, dict):
                for name in names.get("move", []):
                    if (staging / name).is_file():
                        os.replace(staging / name, folder / name)
                for name in names.get("remove", []):
                    (folder / name).unlink(missing_ok=True)
                print(f"finished writing {', '.join(names.get('move', []))} in {folder} (a command was interrupted "
                      "after it had written them all)", file=sys.stderr)  # fmt: skip
        shutil.rmtree(staging, ignore_errors=True)


def _run_file(run_dir: Path, name: str) -> Path:
    path = run_dir / name
    if not path.is_file():
        raise ValueError(f"run folder {str(run_dir)!r} has no {name}: write the run again with `nudge fit`")
    return path


def _run_model(run_dir: Path) -> tuple[np.ndarray, list[str], Nudge]:
    """The run's original document vectors, their ids, and its model (checked against them)."""
    docs_path, model_path = _run_file(run_dir, DOCS_FILE), _run_file(run_dir, MODEL_FILE)
    docs, doc_ids = load_embeddings(docs_path, name=f"the run's {DOCS_FILE}")
    try:
        model = Nudge.load(model_path)
    except (TypeError, KeyError, IndexError, AttributeError) as exc:  # metadata edited by hand
        raise ValueError(f"model {str(model_path)!r} is damaged (its metadata or arrays): {exc!r}") from None
    if model.n_documents_ != len(doc_ids) or model.embeddings_sha256_ != _fingerprint(docs):
        raise ValueError(
            f"model {str(model_path)!r} was not fitted on this run's {DOCS_FILE} ({len(doc_ids)} documents; "
            "shape or SHA-256 fingerprint differs): it comes from another run or the documents changed; "
            f"write the run again with `nudge fit`"
        )
    return docs, doc_ids, model


def _check_data_unchanged(run: dict, run_dir: Path) -> None:
    """The data file the run was fitted on must be the same bytes (a re-sorted CSV changes every split)."""
    recorded = run.get("data_sha256")
    path = Path(run["data"])
    if recorded is None or not path.exists():
        return
    if not _same_data(path, recorded, run.get("beir_split")):
        if path.is_dir() and "beir_split" not in run:
            raise ValueError(
                f"{run_dir / RUN_FILE} has no 'beir_split' (the qrels files `nudge fit` read from {str(path)!r}), "
                "and the default (test) does not match the recorded SHA-256: the field was removed; put it back "
                '(e.g. "beir_split": ["train"]) or fit again'
            )
        raise ValueError(
            f"the run's data {str(path)!r} changed since `nudge fit` (SHA-256 differs; recorded in "
            f"{run_dir / RUN_FILE}): re-sorted or edited data gives other questions under the split's ids. Put "
            "the original file back, or fit a new run on the new data"
        )


def load_valid(path: str | os.PathLike, **kwargs: object) -> RetrievalDataset:
    """The dataset at ``path`` (``kwargs``: ``split`` of a BEIR folder); a ``ValueError`` when its validation
    report has errors: the report's summary (the first rows of each kind, with file and line) and the
    command that prints every row (``nudge validate``)."""
    dataset, report = load_dataset(path, **kwargs)
    if not report.ok:
        errors = sorted(report.errors, key=lambda p: (p.file, p.line or 0))
        shown = errors[:SHORT_ERRORS]
        more = f"; the first {len(shown)}" if len(errors) > len(shown) else ""
        lines = [f"Validation report for {report.source or path}: {len(errors)} error(s), the rows concerned are "
                 f"skipped{more}:", *(f"  {p}" for p in shown)]  # fmt: skip
        command = _validate_command(path, kwargs.get("split"))
        raise ValueError("\n".join([*lines, f"nothing was written; every row with its file and line: `{command}`"]))
    return dataset


#: A data error of `nudge fit`/`update` lists this many rows; `nudge validate` prints them all.
SHORT_ERRORS = 5


def _validate_command(path: str | os.PathLike, split: object = None) -> str:
    """The `nudge validate` command that prints every row of ``path``'s report (``split``: BEIR qrels names)."""
    split = [split] if isinstance(split, str) else split
    return shlex.join(["nudge", "validate", str(path), *(["--split", ",".join(split)] if split else [])])


def _left_out_note(dataset: RetrievalDataset, source: str, path: str | os.PathLike, split: object = None) -> str:
    """A line naming the questions of ``dataset`` without a relevant document (left out of every split), or ""."""
    left = [q for q in dataset.queries if q not in dataset.relevant]
    if not left:
        return ""
    first = ", ".join(repr(q) for q in left[:3]) + (", ..." if len(left) > 3 else "")
    return (
        f"left out: {len(left)} question(s) of {source} have no relevant document (only grade-0 labels, or none): "
        f"{first}; `{_validate_command(path, split)}` lists them"
    )


def _write_together(folder: Path, writers: dict[str, Callable[[Path], object]], remove: Sequence[str] = ()) -> None:
    """Write every file to a staging folder, mark it committed, then move them all into ``folder``.

    Nothing in ``folder`` changes until every file is complete. The commit mark makes the set of
    files one transaction: a process killed during the moves leaves a committed staging folder that
    the next command on the run finishes moving (:func:`_recover`); one killed before the mark
    leaves ``folder`` as it was.
    """
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder))
    try:
        for name, write in writers.items():
            write(staging / name)
        write_json(staging / COMMIT_FILE, {"move": list(writers), "remove": list(remove)})  # the commit point
        for name in writers:
            crash_point("commit-rename")
            os.replace(staging / name, folder / name)
        for name in remove:
            (folder / name).unlink(missing_ok=True)
    except BaseException:
        if not (staging / COMMIT_FILE).is_file():
            shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)


# ---------------------------------------------------------------------------------- fit / evaluate
def _check_out(out: Path) -> None:
    """``--out`` must be a new or empty folder, or a run folder (refit): checked before any work."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} is an existing file, not a folder: give a new folder (or a run folder)")
    if out.is_dir() and not (out / RUN_FILE).is_file() and any(p.name != LOCK_FILE for p in out.iterdir()):
        raise ValueError(
            f"--out {str(out)!r} is a folder holding other files, not a run folder: give a new or empty folder"
        )
    blocker = next((p for p in out.resolve().parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:  # missing parent folders are created (atomically, with the run); a file cannot be
        raise ValueError(f"--out {str(out)!r}: {str(blocker)!r} is a file, so no folder can be made inside it")


def _missing_data(data: str) -> str:
    """The error for a DATA path that does not exist (a relative one: from which folder it was looked for)."""
    where = "" if Path(data).is_absolute() else f", looked for from {str(Path.cwd())!r}"
    return f"path {data!r} does not exist (DATA{where})"


def _check_fit_args(args: argparse.Namespace) -> None:
    if args.seed < 0:
        raise ValueError(f"--seed must be a whole number >= 0, got {args.seed}")
    if args.k < 1:
        raise ValueError(f"--k must be a whole number >= 1, got {args.k}")
    if args.test_split is not None and args.test is not None:
        raise ValueError("--test-split and --test exclude each other: give the hold-out test set once")
    if args.test_fraction is not None and (args.test_split is not None or args.test is not None):
        raise ValueError(
            "--test-fraction carves a hold-out test out of DATA, but a test set is given (--test-split or --test): "
            "drop --test-fraction"
        )
    if args.test_fraction is not None and not 0 < args.test_fraction < 1:
        raise ValueError(
            f"--test-fraction must lie strictly between 0 and 1, got {args.test_fraction}: a run needs hold-out "
            "test questions for `nudge evaluate`"
        )
    if not 0 < args.val_fraction < 1:
        raise ValueError(f"--val-fraction must lie strictly between 0 and 1, got {args.val_fraction}")
    if not Path(args.data).exists():
        raise ValueError(_missing_data(args.data))
    is_folder = Path(args.data).is_dir()
    for option, value in (("--split", args.split), ("--test-split", args.test_split)):
        if value is not None and not is_folder:
            raise ValueError(f"{option} picks qrels files of a BEIR folder, but DATA {args.data!r} is not a folder")
        if value is not None and not all(_split_names(value)):
            raise ValueError(f"{option} must name qrels files, e.g. train or train,dev; got {value!r}")
    if args.test is not None and not Path(args.test).exists():
        raise ValueError(f"--test {args.test!r} does not exist")
    _check_vector_args(args)


def _check_vector_args(args: argparse.Namespace) -> None:
    """``--doc-vectors`` / ``--query-vectors`` (and their ids files) go together, and exclude ``--embedder``."""
    given = {"--doc-vectors": args.doc_vectors, "--query-vectors": args.query_vectors}
    if any(given.values()) and not all(given.values()):
        have = next(o for o, v in given.items() if v)
        need = next(o for o, v in given.items() if not v)
        raise ValueError(f"{have} needs {need} too: precomputed vectors are looked up by id for documents and queries")
    for ids, value, vectors in (("--doc-ids", args.doc_ids, "--doc-vectors"), ("--query-ids", args.query_ids,
                                                                              "--query-vectors")):  # fmt: skip
        if value is not None and not given[vectors]:
            raise ValueError(f"{ids} names the ids of {vectors}, which is not given")
    if all(given.values()) and args.embedder is not None:
        raise ValueError(
            f"--embedder {args.embedder} and --doc-vectors/--query-vectors exclude each other: a run uses either "
            "precomputed vectors (no embedding) or a model"
        )
    if args.vectors_model is not None and not all(given.values()):
        raise ValueError("--vectors-model names the model of --doc-vectors/--query-vectors, which are not given")


def _split_names(value: str) -> list[str]:
    return [s.strip() for s in value.split(",")]


def _beir_kwargs(splits: object) -> dict[str, object]:
    return {"split": splits} if splits else {}


def _folder_split(path: Path, names: str | None, option: str) -> list[str] | None:
    """The qrels file(s) to read from a BEIR folder given as ``option``: ``names`` when given; else the folder's
    only qrels file; several (e.g. train and test) are never picked silently. None for a file."""
    if not path.is_dir():
        if names is not None:
            raise ValueError(f"{option} {path}: a split names qrels files of a BEIR folder; this is a file")
        return None
    if names is not None:
        return _split_names(names)
    available = sorted(p.stem for p in (path / "qrels").glob("*.tsv"))
    if len(available) == 1:
        return available
    flag = "--split" if option == "NEW_PAIRS" else "--test-folder-split"
    raise ValueError(
        f"{option} {path}: " + (f"the folder holds {len(available)} qrels files ({', '.join(available)}): say which "
        f"to read with {flag} NAME (e.g. {flag} {available[-1]})" if available else "no qrels/*.tsv file")
    )  # fmt: skip


def _load_run_data(run: dict) -> RetrievalDataset:
    """The run's data as `nudge fit` read it (the same BEIR qrels files)."""
    return load_valid(run["data"], **_beir_kwargs(run.get("beir_split")))


def _test_record(args: argparse.Namespace, data: Path) -> dict | None:
    """run.json's ``test`` record of a given test set (``--test-split`` or ``--test``), or None (carved)."""
    if args.test_split is not None:
        split = _split_names(args.test_split)
        return {"kind": "split", "data": str(data.resolve()), "sha256": _data_sha256(data, split),
                "beir_split": split, "query_id_prefix": ""}  # fmt: skip
    if args.test is not None:
        path = Path(args.test)
        split = _folder_split(path, args.test_folder_split, "--test")
        record = {"kind": "file", "data": str(path.resolve()), "sha256": _data_sha256(path, split),
                  "query_id_prefix": TEST_PREFIX}  # fmt: skip
        if split is not None:
            record["beir_split"] = split
        return record
    if args.test_folder_split is not None:
        raise ValueError("--test-folder-split names the qrels of a --test folder, which is not given")
    return None


@dataclass(frozen=True)
class TestSet:
    """A run's given test set over the run's documents.

    ``view`` keys queries as in ``split.test`` (with the record's prefix) and names run document
    ids; ``added`` holds its documents the run's data lacks (run id -> text) and ``file_ids`` the
    id each of those has in the test set's own files (to look up precomputed vectors).
    """

    view: RetrievalDataset
    added: dict[str, str]
    file_ids: dict[str, str]
    where: str
    full: RetrievalDataset  # the test set as loaded, with its questions without a relevant document
    full_path: str
    full_split: list[str] | None


def _test_set(record: dict, texts: dict[str, str]) -> TestSet:
    """The test set of a run.json ``test`` record, checked unchanged; ``texts`` = the run's documents."""
    path = Path(record["data"])
    where = f"the run's test set {str(path)!r}"
    if not path.exists():
        raise ValueError(f"{where} (run.json test.data) does not exist any more")
    if not _same_data(path, record["sha256"], record.get("beir_split")):
        raise ValueError(f"{where} changed since `nudge fit` (SHA-256 differs from run.json test.sha256): put the "
                         "original back, or fit a new run")  # fmt: skip
    test = load_valid(path, **_beir_kwargs(record.get("beir_split")))
    prefix = record.get("query_id_prefix", "")
    by_id = not (path.is_file() and path.suffix.lower() in (*PAIR_TABLE_SUFFIXES, *JSONL_SUFFIXES))
    mapping, added = _match_documents(test, texts, by_id=by_id, prefix="test-")
    answered = test.answered_query_ids
    queries = {prefix + q: test.queries[q] for q in answered}
    relevant = {prefix + q: {mapping[d]: g for d, g in test.relevant[q].items()} for q in answered}
    file_ids = {nid: fid for fid, nid in mapping.items() if nid in added}
    label = "--test-split " + ",".join(record["beir_split"]) if record["kind"] == "split" else f"--test {path}"
    if record["kind"] == "file" and record.get("beir_split"):
        label += f" (qrels {', '.join(record['beir_split'])})"
    return TestSet(RetrievalDataset(queries, {**texts, **added}, relevant), added, file_ids, label, test, str(path),
                   record.get("beir_split"))  # fmt: skip


def _check_no_leak(train: RetrievalDataset, labelled: list[str], test: TestSet) -> None:
    """A hold-out test question must not be a labelled question of DATA: the same id (one qrels question in both
    sets) is refused; the same text under other ids (real benchmarks have a few) is reported, not refused."""
    from .streaming import normalise_text

    same_id = [q for q in test.view.relevant if q in set(labelled)]
    if same_id:
        raise ValueError(
            f"{test.where}: {len(same_id)} test question(s) are also labelled in DATA's training qrels, first "
            f"{', '.join(repr(q) for q in same_id[:3])}: a hold-out test must be unseen; remove them from one side"
            + (
                " (DATA's qrels are chosen with --split, e.g. --split train; the default is test)"
                if test.where.startswith("--test-split")
                else ""
            )
        )
    seen = {normalise_text(train.queries[q]): q for q in labelled}
    twins = [(q, seen[normalise_text(t)]) for q, t in test.view.queries.items() if normalise_text(t) in seen]
    n_test = len(test.view.relevant)
    if len(twins) > SHARED_TEST_SHARE * n_test:  # a few twins are real benchmarks' (SciFact: 2 of 300); more is a leak
        pairs = ", ".join(f"{q!r} = {t!r}" for q, t in twins[:3])
        raise ValueError(
            f"{test.where}: {len(twins)} of its {n_test} test questions have the same text as a training or "
            f"validation question of DATA ({pairs}): `nudge evaluate` would score questions the NUDGE was fitted "
            f"on. Nothing was written; remove them from the test set or from DATA (a hold-out test must be unseen; "
            f"at most {SHARED_TEST_SHARE:.0%} of the test questions, as in real benchmarks, are only reported)"
        )
    if twins:
        pairs = ", ".join(f"{q!r} = {t!r}" for q, t in twins[:3])
        print(f"note: {len(twins)} test question(s) have the same text as a training or validation question of "
              f"DATA ({pairs}); they are kept as the test set gives them", file=sys.stderr, flush=True)  # fmt: skip


def _precomputed_vectors(args, parts, dataset, doc_ids, test_record, test):
    """``(embedder, document vectors, query vectors, run.json record)`` from the files of ``--doc-vectors`` and
    ``--query-vectors``; every document and labelled question of the run must have a vector."""
    from .embedders import PrecomputedEmbedder

    for option, value in (("DATA", args.data), ("--test", args.test)):
        path = Path(value) if value is not None else None
        if path is not None and path.is_file() and path.suffix.lower() in (*PAIR_TABLE_SUFFIXES, *JSONL_SUFFIXES):
            raise ValueError(
                f"{option} {value}: a pair table has no id columns; the kit numbers its questions and documents by "
                "row order (q0001, d0001, ...), so re-sorting the file would pair every text with another vector. "
                "Precomputed vectors need ids the data names: save it as LlamaIndex JSON "
                "(nudge.production.datasets.save_llamaindex) or a BEIR folder with your ids, or embed with --embedder"
            )
    emb = PrecomputedEmbedder.from_files(
        args.doc_vectors, args.query_vectors, doc_ids=args.doc_ids, query_ids=args.query_ids,
        model_name=args.vectors_model or PRECOMPUTED_MODEL,
    )  # fmt: skip
    prefix = test_record["query_id_prefix"] if test_record else ""
    test_ids = [q[len(prefix) :] for q in parts["test"]] if test_record else parts["test"]
    file_docs = [test.file_ids.get(d, d) for d in doc_ids] if test is not None else doc_ids
    if test is not None and test_record["kind"] == "file":  # one vectors file per side: ids must not collide
        clash = [q for q in test_ids if q in dataset.queries]
        clash_docs = [fid for fid in test.file_ids.values() if fid in dataset.corpus]
        if clash or clash_docs:
            what, ids = ("question", clash) if clash else ("document", clash_docs)
            raise ValueError(
                f"--test {args.test}: {len(ids)} {what} id(s) are also ids of DATA, first {ids[0]!r}: one vectors file "
                "cannot tell them apart; give the test set's own ids (e.g. a BEIR folder or LlamaIndex file)"
            )
    query_ids = parts["train"] + parts["val"] + test_ids
    emb.check_covers(file_docs, query_ids)
    unused = emb.unused(file_docs, query_ids)
    record: dict[str, object] = {"dim": emb.dim}
    for side, vectors, ids, n in (
        ("documents", args.doc_vectors, args.doc_ids, unused[0]),
        ("queries", args.query_vectors, args.query_ids, unused[1]),
    ):
        record[side] = {**_vector_files(vectors, ids), "unused": n}
    print(f"precomputed vectors of dimension {emb.dim}, nothing embedded; unused (not in this run's data): "
          f"{unused[0]} document and {unused[1]} query vectors", flush=True)  # fmt: skip
    return emb, emb.document_vectors(file_docs), emb.query_vectors(query_ids), record


def _vector_files(vectors: str, ids: str | None) -> dict[str, object]:
    """A vector file and its ids file, with their SHA-256 fingerprints (run.json ``vectors``)."""
    from .embedders import file_sha256

    return {
        "vectors": str(Path(vectors).resolve()),
        "vectors_sha256": file_sha256(vectors),
        "ids": None if ids is None else str(Path(ids).resolve()),
        "ids_sha256": None if ids is None else file_sha256(ids),
    }


def _qrels_files(splits: Sequence[str]) -> str:
    return ", ".join(f"qrels/{s}.tsv" for s in splits)


def _split_line(parts: dict[str, list[str]], data: Path, beir_split: list[str] | None, test: TestSet | None) -> str:
    """``N labelled questions: ...`` with the file each count comes from next to it."""
    source = _qrels_files(beir_split) if beir_split else data.name
    n = sum(len(v) for v in parts.values())
    if test is None:
        return (f"{n} labelled questions: {len(parts['train'])} train, {len(parts['val'])} val, "
                f"{len(parts['test'])} test, all from {source} (split by question, seeded)")  # fmt: skip
    if test.where.startswith("--test-split"):
        test_source = f"{_qrels_files(_split_names(test.where.removeprefix('--test-split ')))} ({test.where})"
    else:
        test_source = test.where
    return (f"{n} labelled questions: {len(parts['train'])} train and {len(parts['val'])} val from {source}; "
            f"{len(parts['test'])} test from {test_source}")  # fmt: skip


def _default_split_note(data: Path) -> str:
    """A note when a BEIR folder is read with the default qrels (test) but has a train split too, or ""."""
    available = sorted(p.stem for p in (data / "qrels").glob("*.tsv"))
    if "train" not in available or "test" not in available:
        return ""
    return (f"note: without --split only qrels/test.tsv is read (train, validation and test all come from it); "
            f"{data.name} also has {_qrels_files([a for a in available if a != 'test'])}: BEIR's protocol is "
            "--split train --test-split test")  # fmt: skip


def cmd_fit(args: argparse.Namespace) -> None:
    _check_fit_args(args)
    out = Path(args.out)
    if out.name in ("", ".", ".."):  # `--out .` or `--out ..`: the folder's own name is needed to set it aside
        out = out.resolve()
    _check_out(out)  # before loading, embedding and fitting
    data = Path(args.data)
    beir_split = (_split_names(args.split) if args.split is not None else ["test"]) if data.is_dir() else None
    if data.is_dir() and args.split is None and (note := _default_split_note(data)):
        print(note, file=sys.stderr, flush=True)
    dataset = load_valid(args.data, **_beir_kwargs(beir_split))
    test_record = _test_record(args, data)
    qids = dataset.answered_query_ids
    test = None
    if test_record is None:
        if len(qids) < 3:
            raise ValueError(
                f"{args.data} has {len(qids)} labelled question(s) (a question with at least one relevant document): "
                "at least 3 are needed (train, validation, test)"
            )
        test_fraction = 0.2 if args.test_fraction is None else args.test_fraction
        split = split_queries(len(qids), val_fraction=args.val_fraction, test_fraction=test_fraction, seed=args.seed)
        parts = {name: [qids[i] for i in getattr(split, name)] for name in ("train", "val", "test")}
    else:  # a given hold-out test: DATA is split into train and validation only
        test_fraction = None
        if len(qids) < 2:
            raise ValueError(f"{args.data} has {len(qids)} labelled question(s): at least 2 are needed (train and "
                             "validation)")  # fmt: skip
        split = split_queries(len(qids), val_fraction=args.val_fraction, test_fraction=0.0, seed=args.seed)
        parts = {name: [qids[i] for i in getattr(split, name)] for name in ("train", "val")}
        test = _test_set(test_record, dict(dataset.corpus))
        if not test.view.relevant:
            raise ValueError(f"{test.where}: no labelled question (a question with a relevant document) to test on")
        _check_no_leak(dataset, qids, test)
        parts["test"] = list(test.view.relevant)
    print(_split_line(parts, data, beir_split, test), flush=True)
    for note in (
        _left_out_note(dataset, _qrels_files(beir_split) if beir_split else data.name, args.data, beir_split),
        "" if test is None else _left_out_note(test.full, test.where, test.full_path, test.full_split),
    ):
        if note:
            print(note, flush=True)
    added = test.added if test is not None else {}
    doc_ids = dataset.doc_ids + list(added)
    if args.k > len(doc_ids):
        raise ValueError(
            f"--k {args.k} is larger than the number of documents of {args.data} ({len(doc_ids)}): the "
            f"largest allowed is {len(doc_ids)}"
        )
    all_q = parts["train"] + parts["val"] + parts["test"]
    vectors_record = None
    if args.doc_vectors:
        embedder, docs, queries, vectors_record = _precomputed_vectors(args, parts, dataset, doc_ids, test_record, test)
        option = PRECOMPUTED
    else:
        option = args.embedder or "local"
        embedder = _embedder(option, args.cache_dir, progress=args.progress)
        texts = {**dataset.queries, **(test.view.queries if test is not None else {})}
        corpus = {**dataset.corpus, **added}
        docs = embedder.embed_documents([corpus[d] for d in doc_ids])
        queries = embedder.embed_queries([texts[q] for q in all_q])
    row = {q: i for i, q in enumerate(all_q)}

    def query_set(ids):
        return QuerySet(queries[[row[q] for q in ids]], dataset.answers(ids, doc_ids))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)  # they are printed below, in the fit's report
        model = Nudge(args.method, k=args.k).fit(docs, query_set(parts["train"]), query_set(parts["val"]))
    run = {
        "run_id": uuid.uuid4().hex,
        "data": str(data.resolve()),
        "data_sha256": _data_sha256(data, beir_split),
        "embedder": embedder.model_name,
        "embedder_option": option,
        "cache_dir": None if args.cache_dir is None else str(Path(args.cache_dir).resolve()),
        "seed": args.seed,
        "val_fraction": args.val_fraction,
        "test_fraction": test_fraction,
        "split": parts,
        "updates": [],
        "nudge": __version__,
    }
    if beir_split:
        run["beir_split"] = beir_split
    if test_record is not None:
        run["test"] = test_record
    if vectors_record is not None:
        run["vectors"] = vectors_record
    writers: dict[str, Callable[[Path], object]] = {
        MODEL_FILE: model.save,
        DOCS_FILE: lambda p: save_embeddings(p, docs, doc_ids),
        NUDGED_FILE: lambda p: save_embeddings(p, model.transform(docs), doc_ids),
        QUERIES_FILE: lambda p: save_embeddings(p, queries, all_q),
        RUN_FILE: lambda p: write_json(p, run),
    }
    if added:  # texts of the test set's documents DATA lacks (`nudge update` and `nudge ask` read them)
        writers[ADDED_FILE] = lambda p: write_json(p, added)
    previous, left = _write_run_folder(out, writers)
    print(
        f"NUDGE-{model.method_}: gamma = {model.gamma_:.4g}, validation score {model.val_score_:.3f}, "
        f"{model.moved_.size} of {len(doc_ids)} documents moved; wrote {out}"
    )
    print(model.diagnostics_.summary(doc_ids))
    if previous is not None:
        print(
            f"the previous run in {out} was set aside, whole, in {previous} (with its store backup, if any: undo "
            f"its apply with `nudge rollback {previous} --store STORE --collection NAME`)"
        )
    if left:
        print(
            f"left in place in {out} (not files of a run, so not set aside): {', '.join(left)}"
            + (" (the data this run was fitted on)" if any(out / n == Path(args.data).resolve() for n in left) else "")
        )


RUN_FILES = (RUN_FILE, MODEL_FILE, DOCS_FILE, NUDGED_FILE, QUERIES_FILE, STATE_FILE, ADDED_FILE, BACKUP_FILE)


def _is_run_file(name: str) -> bool:
    """A file the kit writes in a run folder (set aside by a refit); anything else (a data file, a store's
    files) is left in place."""
    stem = BACKUP_FILE.removesuffix(".npz")
    return name in RUN_FILES or (name.startswith(f"{stem}.overwritten-") and name.endswith(".npz"))


def _write_run_folder(out: Path, writers: dict[str, Callable[[Path], object]]) -> tuple[Path | None, list[str]]:
    """Write a run folder as one transaction; returns where the previous run was set aside (or None).

    A new (or empty) ``out``: every file goes into a staging folder next to it, renamed to ``out`` at
    the end. An existing run: its files are first hard-linked into ``OUT.previous-N`` (kept whole,
    never deleted), then the new files replace them through a committed staging folder, and the
    previous run's other files (state, added documents, store backup) leave ``out`` in the same
    commit. Only the kit's own files move: others (a data file kept in the folder, the files of a
    store someone put there) are left in place and listed. A failure or a kill before the commit
    leaves ``out`` as it was; one after it is finished by the next command on the run.
    """
    out = Path(out)
    if out.is_dir() and (out / RUN_FILE).is_file():
        with _locked(out):
            previous = _free_name(out, "previous")
            previous.mkdir()
            files = [p for p in out.iterdir() if p.is_file() and not p.name.startswith(".")]
            old = [p for p in files if _is_run_file(p.name)]
            left = sorted(p.name for p in files if not _is_run_file(p.name))
            for p in old:
                os.link(p, previous / p.name)  # the previous run stays whole, at no copying cost
            crash_point("fit-write")
            _write_together(out, writers, remove=[p.name for p in old if p.name not in writers])
        return previous, left
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    try:
        for name, write in writers.items():
            crash_point("fit-write")
            write(staging / name)
        if out.is_dir():
            for p in out.iterdir():  # only our lock file can be there (checked by _check_out)
                p.unlink()
            out.rmdir()
        os.rename(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return None, []


def _free_name(path: Path, reason: str) -> Path:
    for n in range(1, 10_000):
        candidate = path.with_name(f"{path.name}.{reason}-{n}")
        if not candidate.exists():
            return candidate
    raise ValueError(f"cannot set {str(path)!r} aside: too many earlier copies next to it")


def cmd_evaluate(args: argparse.Namespace) -> None:
    if args.k < 1:
        raise ValueError(f"--k must be a whole number >= 1, got {args.k}")
    if args.show < 0:
        raise ValueError(f"--show must be a whole number >= 0 (questions to list), got {args.show}")
    run_dir, _ = _read_run(args.run)
    with _locked(run_dir):
        run_dir, run = _read_run(args.run)
        _check_data_unchanged(run, run_dir)
        dataset = _load_run_data(run)
        docs, doc_ids, model = _run_model(run_dir)
        split = run.get("beir_split")
        left_out = _left_out_note(dataset, _qrels_files(split) if split else Path(run["data"]).name, run["data"], split)
        if "test" in run:  # a given test set (--test-split or --test): its questions, over the run's documents
            test = _test_set(run["test"], _corpus_texts(run_dir, run, dataset, doc_ids))
            dataset = test.view
            left_out = _left_out_note(test.full, test.where, test.full_path, test.full_split)
        queries, qids = load_embeddings(_run_file(run_dir, QUERIES_FILE), name=f"the run's {QUERIES_FILE}")
        test_ids = run["split"]["test"]
        if not test_ids:
            raise ValueError(
                f"the run has no hold-out test questions ({run_dir / RUN_FILE}: split.test is empty): nothing to "
                "evaluate; fit again with --test-fraction above 0"
            )
        known = set(qids)
        unknown = [q for q in test_ids if q not in known or q not in dataset.relevant]
        if unknown:
            raise ValueError(
                f"{run_dir / RUN_FILE}: split.test names {len(unknown)} question(s) that are not in the run's "
                f"{QUERIES_FILE} or not labelled in its data, e.g. {unknown[0]!r}: the file was edited or damaged"
            )
    _evaluate(args, run, dataset, docs, doc_ids, model, queries, qids)
    if left_out:
        print(left_out)


def _evaluate(args, run, dataset, docs, doc_ids, model, queries, qids) -> None:
    row = {q: i for i, q in enumerate(qids)}
    test_ids = run["split"]["test"]
    test = dataset.query_set(queries[[row[q] for q in test_ids]], test_ids, doc_ids)  # graded: nDCG uses the grades
    before = evaluate_embeddings(docs, test, k=args.k)
    after = evaluate_embeddings(model.transform(docs), test, k=args.k)
    name = f"NUDGE-{model.method_}"
    print(f"{len(test_ids)} hold-out test questions")
    print(
        format_table(
            {"no fine-tuning": before, name: after},
            columns=("hit@1", f"mrr@{args.k}", f"ndcg@{args.k}", f"recall@{args.k}"),
        )
    )
    print(NDCG_FORM)
    changes = compare(before, after, k=1)
    print(f"{name} fixed {changes['fixed'].size} and broke {changes['broken'].size} test questions at rank 1")
    for label in ("fixed", "broken"):
        for i in changes[label][: args.show]:
            print(f"  {label}: rank {before['ranks'][i]} -> {after['ranks'][i]}  {dataset.queries[test_ids[i]]}")


# ---------------------------------------------------------------------------------- vector stores
@dataclass(frozen=True)
class StoreSpec:
    """A parsed ``--store``: ``kind`` is "qdrant" or "milvus"; exactly one of ``path`` and ``url`` is set."""

    kind: str
    path: Path | None
    url: str | None
    text: str


def parse_store(spec: str) -> StoreSpec:
    """Parse ``--store`` (see ``STORE_FORMS``); ``ValueError`` naming ``--store`` otherwise."""
    for kind in ("qdrant", "milvus"):
        if spec.startswith(f"{kind}+"):
            url = spec[len(kind) + 1 :]
            scheme, sep, host = url.partition("://")
            if scheme not in ("http", "https") or not sep or not host.strip("/"):
                raise ValueError(f"--store {spec!r}: a {kind} server is given as {kind}+http://HOST:PORT")
            return StoreSpec(kind, None, url, spec)
        if spec.startswith(f"{kind}:"):
            path = spec[len(kind) + 1 :]
            what = "FOLDER" if kind == "qdrant" else "FILE.db"
            if not path:
                raise ValueError(f"--store {spec!r} names no local {what}: use {kind}:{what}")
            if kind == "milvus" and not path.endswith(".db"):
                raise ValueError(f"--store {spec!r}: Milvus Lite needs a file ending in .db, e.g. milvus:store.db")
            return StoreSpec(kind, Path(path), None, spec)
    raise ValueError(f"--store must be {STORE_FORMS}; got {spec!r}")


def _check_store_location(spec: StoreSpec) -> None:
    """Refuse a local store inside a run folder (or a set-aside copy of one, or a staging folder): a refit
    sets the run's files aside and would break the store. Checked before anything is opened or written."""
    if spec.path is None:
        return
    path = spec.path.resolve()
    for folder in (path, *path.parents):
        if (folder / RUN_FILE).is_file() or ".staging-" in folder.name:
            raise ValueError(
                f"--store {spec.text}: {str(spec.path)!r} is inside the run folder {str(folder)!r}; a refit of that "
                "run sets its files aside and would break the store: keep stores outside run folders (to use a store "
                "already there, copy it to a folder outside the run; the backup of its apply is then another "
                "location's, so undo that apply with `nudge rollback ... --force`, which restores only ids holding "
                "what the apply wrote)"
            )


def _check_backup_arg(args: argparse.Namespace) -> None:
    if args.backup and Path(args.backup).is_dir():
        raise ValueError(
            f"--backup {args.backup!r} is a folder: give the path of a backup file, e.g. "
            f"{str(Path(args.backup) / BACKUP_FILE)!r}"
        )


def _store_args(args: argparse.Namespace) -> StoreSpec:
    """``--store``, ``--collection`` and ``--backup`` checked before any work (nothing opened or written)."""
    spec = parse_store(args.store)
    _check_collection(args.collection)
    _check_store_location(spec)
    _check_backup_arg(args)
    return spec


def _check_collection(name: str) -> str:
    if not name.strip():
        raise ValueError("--collection must name a collection, got an empty string")
    return name


def _client_error(spec: StoreSpec, exc: BaseException) -> ValueError:
    text = getattr(exc, "message", None) or str(exc)  # pymilvus keeps the server's words in .message
    message = (str(text).strip().splitlines() or [""])[0] or type(exc).__name__
    hint = ""
    if spec.kind == "milvus" and spec.path is not None and "open local milvus failed" in message.lower():
        hint = (
            f" (Milvus Lite opens {str(spec.path)!r} in one process at a time: is another program or nudge command "
            "using it? Wait for it to finish, then run the command again)"
        )
    return ValueError(f"--store {spec.text}: {type(exc).__name__}: {message}{hint}")


def _check_qdrant_folder(spec: StoreSpec) -> None:
    """An embedded Qdrant folder's meta.json must be readable JSON (the client fails with a bare JSON error)."""
    meta = spec.path / "meta.json"
    if not meta.is_file():
        return
    try:
        content = json.loads(meta.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(
            f"--store {spec.text}: {str(meta)!r} (the embedded Qdrant store's description of its collections) is "
            f"damaged: {exc}. Nothing was opened; restore the file from a copy of the store"
        ) from None
    collections = content.get("collections") if isinstance(content, dict) else None
    if not isinstance(collections, dict) or not all(isinstance(c, dict) for c in collections.values()):
        raise ValueError(
            f"--store {spec.text}: {str(meta)!r} (the embedded Qdrant store's description of its collections) is "
            "damaged: it is not an object whose 'collections' maps each name to its settings. Nothing was opened; "
            "restore the file from a copy of the store"
        )


def _from_client_library(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in _CLIENT_MODULES


def _connect(spec: StoreSpec):
    if spec.kind == "qdrant":
        from .stores import import_qdrant

        qdrant_client, _ = import_qdrant()
        kwargs = {"path": str(spec.path)} if spec.path is not None else {"url": spec.url}
        return qdrant_client.QdrantClient(**kwargs)
    from .stores import import_pymilvus

    pymilvus = import_pymilvus()
    return pymilvus.MilvusClient(str(spec.path) if spec.path is not None else spec.url)


@contextmanager
def _store_client(spec: StoreSpec, *, create: bool) -> Iterator[object]:
    """An open Qdrant or Milvus client for ``spec`` (closed afterwards); client errors become one line."""
    if spec.path is not None:
        if not create and not spec.path.exists():
            raise ValueError(
                f"--store {spec.text}: {str(spec.path)!r} does not exist; load the run's vectors with `nudge load`"
            )
        if spec.kind == "qdrant" and spec.path.exists() and not spec.path.is_dir():
            raise ValueError(f"--store {spec.text}: {str(spec.path)!r} is a file; embedded Qdrant needs a folder")
        parent = spec.path.resolve().parent
        if not parent.is_dir():
            raise ValueError(f"--store {spec.text}: folder {str(parent)!r} does not exist")
    if spec.kind == "milvus" and spec.path is not None and spec.path.is_file():
        raise ValueError(f"--store {spec.text}: {str(spec.path)!r} is a file; Milvus Lite keeps a store in a folder")
    if spec.kind == "qdrant" and spec.path is not None and spec.path.is_dir():
        _check_qdrant_folder(spec)
    loggers = [logging.getLogger(name) for name in ("pymilvus", "milvus_lite")]
    levels = [log.level for log in loggers]
    for log in loggers:  # they log a traceback for every failed call; we report one line
        log.setLevel(logging.CRITICAL)
    client = None
    try:
        client = _connect(spec)
        yield client
    except Exception as exc:
        if _from_client_library(exc):
            raise _client_error(spec, exc) from None
        raise
    finally:
        for log, level in zip(loggers, levels, strict=True):
            log.setLevel(level)
        if client is not None:
            try:
                client.close()
            except Exception:  # closing is best effort; the real error (if any) is already on its way
                pass


def _collection_exists(spec: StoreSpec, client, name: str) -> bool:
    return client.collection_exists(name) if spec.kind == "qdrant" else client.has_collection(name)


def _spec_location(spec: StoreSpec) -> str:
    """The location a store of ``spec`` reports (what its backups are bound to)."""
    from .stores.base import local_location

    if spec.path is not None:
        return local_location(spec.kind, spec.path)
    return f"{spec.kind}+{spec.url.rstrip('/')}"


@contextmanager
def _open_store(args: argparse.Namespace, spec: StoreSpec) -> Iterator[object]:
    """The existing collection ``args.collection`` in ``spec`` as a VectorStore."""
    name = args.collection
    from .stores import MilvusStore, QdrantStore

    with _store_client(spec, create=False) as client:
        if not _collection_exists(spec, client, name):
            raise ValueError(
                f"collection {name!r} does not exist in {spec.text}: load the run's vectors with "
                f"`nudge load {args.run} --store {spec.text} --collection {name}`"
            )
        if spec.kind == "milvus":
            client.load_collection(name)  # a collection reopened from a Milvus Lite file starts released
        cls = QdrantStore if spec.kind == "qdrant" else MilvusStore
        yield cls(name, client=client, location=_spec_location(spec))


def _backup_path(args: argparse.Namespace, run_dir: Path) -> Path:
    return Path(args.backup) if args.backup else run_dir / BACKUP_FILE


def _again(args: argparse.Namespace, command: str, *, run: str | None = None) -> str:
    """The command line of another store command on the same run (or ``run``), store and collection."""
    backup = ["--backup", args.backup] if args.backup and run is None else []
    run = args.run if run is None else run
    return shlex.join(["nudge", command, run, "--store", args.store, "--collection", args.collection, *backup])


def _earlier_runs(run_dir: Path) -> list[Path]:
    """Earlier runs a refit set aside next to ``run_dir`` that hold a store backup, newest first."""
    found = []
    for p in run_dir.parent.glob(f"{run_dir.name}.previous-*"):
        n = p.name.rsplit("-", 1)[-1]
        if n.isdigit() and (p / BACKUP_FILE).is_file():
            found.append((int(n), p))
    return [p for _, p in sorted(found, reverse=True)]


def _earlier_backups_hint(args: argparse.Namespace, run_dir: Path, store) -> str:
    """Advice naming an earlier (set-aside) run whose backup belongs to this store, or ``""``."""
    from .stores import binding_problem, read_backup

    for previous in _earlier_runs(run_dir):
        try:
            if binding_problem(read_backup(previous / BACKUP_FILE), store, None) is None:
                return (
                    f"A refit set the earlier run aside in {previous} with its backup of this store: undo its apply "
                    f"first with `{_again(args, 'rollback', run=str(previous))}`, then apply this run"
                )
        except ValueError:
            continue
    return ""


def cmd_load(args: argparse.Namespace) -> None:
    spec, name = _store_args(args), args.collection  # bad arguments first
    if args.replace and args.add_missing:
        raise ValueError("--replace and --add-missing exclude each other: --add-missing keeps the collection")
    run_dir, _ = _read_run(args.run)
    with _locked(run_dir):
        docs, doc_ids = load_embeddings(_run_file(run_dir, DOCS_FILE), name=f"the run's {DOCS_FILE}")
        _load(args, spec, name, docs, doc_ids)


def _load(args: argparse.Namespace, spec: StoreSpec, name: str, docs: np.ndarray, doc_ids: list[str]) -> None:
    from .stores import MilvusStore, QdrantStore, fetch_present

    cls = QdrantStore if spec.kind == "qdrant" else MilvusStore
    with _store_client(spec, create=True) as client:
        exists = _collection_exists(spec, client, name)
        if exists and args.add_missing:
            if spec.kind == "milvus":
                client.load_collection(name)
            store = cls(name, client=client, location=_spec_location(spec))
            present = set(fetch_present(store, doc_ids)[0])
            missing = [i for i, d in enumerate(doc_ids) if d not in present]
            if missing:
                store.upsert([doc_ids[i] for i in missing], docs[missing])
            print(
                f"added {len(missing)} documents missing from collection {name!r} (their original vectors); the "
                f"{len(present)} already there were not touched"
            )
            print(f"next: {_again(args, 'apply')} --dry-run")
            return
        if exists and not args.replace:
            raise ValueError(
                f"collection {name!r} exists already in {spec.text}: to add the run's documents it lacks (nothing "
                f"else is touched) run `{_again(args, 'load')} --add-missing`; --replace drops the collection "
                "with everything in it (payloads too) and loads the run's original vectors"
            )
        if args.add_missing:
            print(f"collection {name!r} does not exist yet: creating it", flush=True)
        print(
            f"loading {len(doc_ids)} original document vectors (dimension {docs.shape[1]}) into {spec.text}, "
            f"collection {name!r} scored by the dot product"
            + (" (dropping the existing collection and its payloads)" if exists else ""),
            flush=True,
        )
        store = cls.from_embeddings(
            name, doc_ids, docs, client=client, metric="dot", replace=args.replace, location=_spec_location(spec)
        )
        count = store.count()
    print(f"loaded {count} vectors; next: {_again(args, 'apply')} --dry-run")


def _show_ids(label: str, ids: list[str], limit: int = 10) -> None:
    if ids:
        more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
        print(f"{label}: {', '.join(ids[:limit])}{more}")


def cmd_apply(args: argparse.Namespace) -> None:
    spec = _store_args(args)  # bad arguments first
    run_dir, run = _read_run(args.run)
    with _locked(run_dir):
        run_dir, run = _read_run(args.run)
        docs, doc_ids, model = _run_model(run_dir)
        backup = _backup_path(args, run_dir)
        with _open_store(args, spec) as store:
            from .stores import apply_nudge_to_store

            what = "dry run: checking" if args.dry_run else "applying"
            print(
                f"{what} NUDGE-{model.method_} (gamma {model.gamma_:.4g}, {model.moved_.size} of {len(doc_ids)} "
                f"documents move) against {spec.text}, collection {args.collection!r}",
                flush=True,
            )
            try:
                report = apply_nudge_to_store(
                    store,
                    model,
                    doc_ids,
                    backup=backup,
                    embeddings=docs,
                    dry_run=args.dry_run,
                    run=_run_id(run),
                    force=args.force,
                )
            except ValueError as exc:
                if "not the original row" not in str(exc) and "belongs to another run" not in str(exc):
                    raise
                hint = _earlier_backups_hint(args, run_dir, store)
                if not hint:
                    raise
                raise ValueError(f"{exc}. {hint}") from None
    print(report)
    _show_ids("would write" if args.dry_run else "wrote", report.ids)
    _show_ids("overwritten although changed by someone else (--force)", report.forced)
    if args.dry_run:
        print("dry run: nothing was written (neither the store nor the backup)")
    else:
        print(f"originals kept in {backup}; undo with: {_again(args, 'rollback')}")
        if report.kept is not None:
            undo = shlex.join(["nudge", "rollback", args.run, "--store", args.store, "--collection", args.collection,
                               "--backup", str(report.kept)])  # fmt: skip
            print(f"the {len(report.forced)} vectors this forced apply overwrote are kept in {report.kept} "
                  f"(never replaced later); put them back with: {undo}")  # fmt: skip


def cmd_rollback(args: argparse.Namespace) -> None:
    spec = _store_args(args)  # bad arguments first
    run_dir, run = _read_run(args.run)
    with _locked(run_dir):
        run_dir, run = _read_run(args.run)
        backup = _backup_path(args, run_dir)
        if not backup.is_file():
            where = "--backup" if args.backup else "the run's default backup"
            message = (
                f"{where} {str(backup)!r} does not exist: no `nudge apply` of this run wrote it there, or it was "
                "moved or deleted since"
            )
            earlier = _earlier_runs(run_dir)
            if earlier:
                message += (
                    f". A refit set the earlier run aside with its backup in {earlier[0]}: undo that run's apply "
                    f"with `{_again(args, 'rollback', run=str(earlier[0]))}`"
                )
            elif not args.backup:
                message += " (if the apply used --backup, give the same --backup)"
            raise ValueError(message)
        with _open_store(args, spec) as store:
            from .stores import rollback_store

            print(f"restoring the original vectors kept in {backup} into {spec.text}, collection {args.collection!r}")
            report = rollback_store(store, backup, run=_run_id(run), force=args.force)
    print(report)
    _show_ids("deleted from the store since the apply, not re-created", report.skipped)
    _show_ids("overwritten although changed by someone else (--force)", report.forced)
    if report.kept is not None:
        undo = shlex.join(["nudge", "rollback", args.run, "--store", args.store, "--collection", args.collection,
                           "--backup", str(report.kept)])  # fmt: skip
        print(f"the {report.n_written} vectors this forced rollback overwrote are kept in {report.kept}")
        print(f"undo the forced rollback with: {undo}")
    print(f"the backup is kept: `{_again(args, 'apply')}` applies the NUDGE again")


# ---------------------------------------------------------------------------------- update
BEIR_TEXT_FILES = ("corpus.jsonl", "queries.jsonl")


def _data_sha256(path: Path, splits: Sequence[str] | None = None) -> str:
    """SHA-256 of a dataset file's contents; of a BEIR folder, of the files a load reads (corpus, queries and
    the qrels of ``splits``, default test), names and contents, so other files in the folder (a run, a store,
    another split's qrels, .DS_Store) change nothing. Read in chunks, never whole."""
    if not path.is_dir():
        return _stream_sha256([path]).hexdigest()
    names = [*BEIR_TEXT_FILES, *(f"qrels/{s}.tsv" for s in (splits or ["test"]))]
    h = hashlib.sha256(b"nudge-beir-files/1\0")
    for name in names:
        p = path / name
        h.update(f"{name}\0{p.stat().st_size if p.is_file() else -1}\0".encode())
        if p.is_file():
            _stream_sha256([p], h)
    return h.hexdigest()


def _stream_sha256(paths: Sequence[Path], h=None):
    """``h`` (a new SHA-256 when None) updated with the contents of ``paths``, read in 1 MiB chunks."""
    h = hashlib.sha256() if h is None else h
    for p in paths:
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h


def _same_data(path: Path, digest: object, splits: Sequence[str] | None = None) -> bool:
    """Whether ``path`` still has the recorded SHA-256: of the files read, or for a folder recorded by an earlier
    version, of every file in it (so runs written before stay valid while the folder is unchanged)."""
    if not path.exists():
        return False
    if _data_sha256(path, splits) == digest:
        return True
    if not path.is_dir():
        return False
    h = hashlib.sha256()  # the earlier fingerprint: every file of the folder, relative names and contents
    for p in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f"{p.relative_to(path).as_posix()}\0{p.stat().st_size}\0".encode())
        _stream_sha256([p], h)
    return h.hexdigest() == digest


def _corpus_texts(run_dir: Path, run: dict, base: RetrievalDataset, doc_ids: list[str]) -> dict[str, str]:
    """Text of every document of the run (its data's corpus plus the documents updates appended)."""
    texts = dict(base.corpus)
    added = run_dir / ADDED_FILE
    if added.is_file():
        texts.update(json.loads(added.read_text(encoding="utf-8")))
    missing = [d for d in doc_ids if d not in texts]
    if missing:
        raise ValueError(
            f"the run's data {run['data']!r} no longer holds {len(missing)} of its documents, e.g. {missing[0]!r}: "
            "it changed since `nudge fit`; fit again"
        )
    return {d: texts[d] for d in doc_ids}


def _match_documents(
    new: RetrievalDataset, texts: dict[str, str], *, by_id: bool, prefix: str
) -> tuple[dict[str, str], dict[str, str]]:
    """``(mapping, added)``: each document of ``new`` to a run id, and the new ones (id -> text).

    Pair files name documents by their text (their ids are per file): matched by normalised text. A
    LlamaIndex file or BEIR folder names them by id (``by_id``): matched by id, so twin texts under two
    ids stay two documents (labels never move to a twin); a known id with another text is refused (an
    edited passage).
    """
    from .streaming import normalise_text

    mapping: dict[str, str] = {}
    added: dict[str, str] = {}
    if by_id:
        for fid, text in new.corpus.items():
            if fid in texts and normalise_text(texts[fid]) != normalise_text(text):
                raise ValueError(
                    f"document {fid!r} has another text than the run's document of that id: an edited passage "
                    "changes its vector, so fit again"
                )
            mapping[fid] = fid
            if fid not in texts:
                added[fid] = text
        return mapping, added
    # documents are identified by their whitespace-normalised text, as pair keys are (one rule everywhere)
    known_texts = {normalise_text(t): d for d, t in reversed(texts.items())}
    for fid, text in new.corpus.items():
        known = known_texts.get(normalise_text(text))
        if known is not None:
            mapping[fid] = known
            continue
        nid = f"{prefix}{fid}"
        if nid in texts or nid in added:
            raise ValueError(f"new document id {nid!r} is already used in the run")
        mapping[fid] = nid
        added[nid] = text
        known_texts[normalise_text(text)] = nid  # a second copy in the file (other whitespace) is the same document
    return mapping, added


def _initial_state(run: dict, run_dir: Path, base: RetrievalDataset, model: Nudge):
    """A NudgeState holding the run's own training and validation pairs (the first update makes it)."""
    from .streaming import NudgeState

    queries, qids = load_embeddings(_run_file(run_dir, QUERIES_FILE))
    row = {q: i for i, q in enumerate(qids)}

    def pairs(ids: list[str]):
        unknown = [q for q in ids if q not in row or q not in base.relevant]
        if unknown:
            where = QUERIES_FILE if unknown[0] not in row else f"its data as {RUN_FILE} says it was read"
            read = (
                f" (qrels {', '.join(run['beir_split'])})"
                if run.get("beir_split")
                else (
                    f" (qrels test: {RUN_FILE} has no 'beir_split'; was it edited?)"
                    if Path(run["data"]).is_dir()
                    else ""
                )
            )
            raise ValueError(f"{run_dir / RUN_FILE}: question {unknown[0]!r} of the run's split is missing from "
                             f"{where}{read}")  # fmt: skip
        return queries[[row[q] for q in ids]], [list(base.relevant[q]) for q in ids]

    state = NudgeState(model.method_, k=model.k_, grid=model.grid)
    return state.add_pairs(train=pairs(run["split"]["train"]), val=pairs(run["split"]["val"]))


def _fmt(score: float | None) -> str:
    return "n/a" if score is None else f"{score:.3f}"


def cmd_update(args: argparse.Namespace) -> None:
    run_dir, _ = _read_run(args.run)
    if args.seed < 0:
        raise ValueError(f"--seed must be a whole number >= 0, got {args.seed}")
    with _locked(run_dir):  # a second update waits for this one, then counts only what is still new
        run_dir, run = _read_run(args.run)
        _update(args, run_dir, run)


def _base_pair_keys(base: RetrievalDataset) -> set[str]:
    """Content keys of every labelled pair of the run's data (train, validation and test questions)."""
    from .streaming import pair_key

    return {pair_key(base.queries[q], base.corpus[d]) for q in base.answered_query_ids for d in base.relevant[q]}


def _rebuilt_pair_keys(state, run: dict, run_dir: Path, base: RetrievalDataset) -> set[str]:
    """The content keys of every pair a state without them has counted: the run's data and the file of each
    update it records (its own history, else run.json's), each checked unchanged; ``ValueError`` when one
    cannot be read as it was (its pairs could otherwise count twice)."""
    from .streaming import pair_key

    if not isinstance(state.history, list):
        raise ValueError(f"{run_dir / STATE_FILE}: its update history is not a list: the file was edited or damaged")
    recorded = {r.get("sha256") for r in state.history if isinstance(r, dict)}
    history = [*state.history, *(r for r in run.get("updates", []) if r.get("sha256") not in recorded)]
    keys = _base_pair_keys(base)
    for i, record in enumerate(history, start=1):
        where = record.get("data") if isinstance(record, dict) else None
        digest = record.get("sha256") if isinstance(record, dict) else None
        if not isinstance(where, str) or not isinstance(digest, str):
            raise ValueError(
                f"{run_dir / STATE_FILE} holds no pair keys (an older version's or an edited state) and its update "
                f"{i} does not name its data file and SHA-256: the pairs it counted cannot be told apart from new "
                "ones. Fit the run again and add the weeks' files with `nudge update`"
            )
        path = Path(where)
        if not _same_data(path, digest, record.get("beir_split")):
            raise ValueError(
                f"{run_dir / STATE_FILE} holds no pair keys (an older version's or an edited state), and update {i}'s "
                f"file {where!r} is {'missing' if not path.exists() else 'changed (SHA-256 differs)'}: the pairs it "
                "counted cannot be told apart from new ones, so they could count twice. Put that file back as it "
                "was, or fit the run again and add the weeks' files with `nudge update`"
            )
        week = load_valid(path, **_beir_kwargs(record.get("beir_split")))
        keys |= {pair_key(week.queries[q], week.corpus[d]) for q in week.answered_query_ids for d in week.relevant[q]}
    return keys


def _known_splits(run: dict, base: RetrievalDataset) -> dict[str, str]:
    """Normalised text -> ``"train"`` / ``"val"`` of every question the run has trained or validated on: the
    run's split and each recorded update whose file is still there unchanged (checked by SHA-256)."""
    from .streaming import normalise_text

    known: dict[str, str] = {}
    for part in ("train", "val"):
        for q in run["split"][part]:
            if q in base.queries:
                known.setdefault(normalise_text(base.queries[q]), part)
    for record in run.get("updates", []):
        path = Path(record.get("data", ""))
        if not _same_data(path, record.get("sha256"), record.get("beir_split")):
            continue
        week = load_valid(path, **_beir_kwargs(record.get("beir_split")))
        for part in ("train", "val"):
            for q in record.get(part, []):
                if q in week.queries:
                    known.setdefault(normalise_text(week.queries[q]), part)
    return known


def _refuse_test_questions(
    new: RetrievalDataset,
    fresh: dict[str, list[str]],
    run: dict,
    base: RetrievalDataset,
    new_path: Path,
    run_texts: dict[str, str] | None = None,
) -> None:
    """New pairs must not ask a hold-out test question of the run (compared by normalised text, whatever the
    document): training on it would make `nudge evaluate` score questions the NUDGE was fitted on."""
    from .streaming import normalise_text

    texts = base.queries if "test" not in run else _test_set(run["test"], run_texts or dict(base.corpus)).view.queries
    test = {normalise_text(texts[q]): q for q in run["split"]["test"] if q in texts}
    leaked = [q for q in fresh if normalise_text(new.queries[q]) in test]
    if leaked:
        first = new.queries[leaked[0]]
        raise ValueError(
            f"{new_path}: {len(leaked)} question(s) are hold-out test questions of this run (same text), e.g. "
            f"{first[:80]!r} (test question {test[normalise_text(first)]!r}): training on them would make `nudge "
            "evaluate` score questions the NUDGE was fitted on. Nothing was written; remove their pairs from the "
            "file (or fit a new run on all the data)"
        )


def _update_vectors(args: argparse.Namespace, run: dict, run_dir: Path, *, pair_table: bool = False):
    """``(PrecomputedEmbedder, record)`` for `nudge update` of a run fit on precomputed vectors: the files given
    (``--doc-vectors`` ...), else the run's own (checked unchanged by SHA-256). A pair table's ids are numbered
    by row order (q0001, d0001, ...), so they are never looked up in the run's files."""
    from .embedders import PrecomputedEmbedder, file_sha256

    given = args.doc_vectors or args.query_vectors
    if given and not (args.doc_vectors and args.query_vectors):
        raise ValueError("--doc-vectors and --query-vectors go together (the run's files are used when neither is "
                         "given)")  # fmt: skip
    if pair_table and not given:
        raise ValueError(
            f"{args.new_pairs} is a pair table: its ids (q0001, d0001, ...) are numbered by row order, so they name "
            "other texts in the run's vector files. Give the new pairs' vectors keyed by these ids with "
            "--doc-vectors/--query-vectors, or embed them with --embedder (the run's model), or give the pairs as "
            "a BEIR folder or LlamaIndex JSON file with their own ids"
        )
    recorded = run.get("vectors")
    if not given and not isinstance(recorded, dict):
        raise ValueError(f"{RUN_FILE} records no vector files: give --doc-vectors and --query-vectors")
    files = {}
    for side, vectors, ids in (("documents", args.doc_vectors, args.doc_ids), ("queries", args.query_vectors,
                                                                              args.query_ids)):  # fmt: skip
        if given:
            files[side] = (vectors, ids)
            continue
        entry = recorded[side]
        for key in ("vectors", "ids"):
            if entry.get(key) is not None and (
                not Path(entry[key]).is_file() or file_sha256(entry[key]) != entry[f"{key}_sha256"]
            ):
                raise ValueError(
                    f"the run's {side} {key} file {entry[key]!r} is missing or changed since `nudge fit` (SHA-256 "
                    "differs from run.json): give the new vectors with --doc-vectors/--query-vectors (and ids)"
                )
        files[side] = (entry["vectors"], entry.get("ids"))
    emb = PrecomputedEmbedder.from_files(files["documents"][0], files["queries"][0], doc_ids=files["documents"][1],
                                         query_ids=files["queries"][1], model_name=run["embedder"])  # fmt: skip
    if given:
        _check_same_vectors(emb, run, run_dir)
    record = {side: _vector_files(v, i) for side, (v, i) in files.items()}
    print(f"precomputed vectors ({'given' if given else 'the run files'}), nothing embedded", flush=True)
    return emb, record


def _check_same_vectors(emb, run: dict, run_dir: Path) -> None:
    """Vector files given to `nudge update` must hold the run's own vectors for the documents and questions the run
    already has (same model): their rows are compared with documents.npz and queries.npz; ``ValueError`` when one
    differs, or when the files hold none of the run's ids (then nothing shows which model made them)."""
    prefix = run["test"].get("query_id_prefix", "") if "test" in run else ""
    n_common = 0
    for name, lookup, ids_in_file in ((DOCS_FILE, emb.document_vectors, set(emb.doc_ids)),
                                      (QUERIES_FILE, emb.query_vectors, set(emb.query_ids))):  # fmt: skip
        stored, ids = load_embeddings(_run_file(run_dir, name), name=f"the run's {name}")
        if name == QUERIES_FILE:  # a --test file's questions are stored as PREFIX+id, looked up by their own id
            ids = [q[len(prefix) :] if prefix and q.startswith(prefix) else q for q in ids]
        rows = [i for i, d in enumerate(ids) if d in ids_in_file]
        n_common += len(rows)
        if not rows:
            continue
        given = lookup([ids[i] for i in rows])
        close = np.isclose(given, stored[rows].astype(np.float32), rtol=0, atol=1e-5).all(axis=1)
        if not close.all():
            first = ids[rows[int(np.flatnonzero(~close)[0])]]
            raise ValueError(
                f"{int((~close).sum())} of the {len(rows)} vectors these files give for the run's own "
                f"{'documents' if name == DOCS_FILE else 'questions'} differ from its {name}, first {first!r}: these "
                f"vectors are not from the model the run was fit with ({run['embedder']!r}). Nothing was written; "
                "give vectors of that model, or fit a new run"
            )
    if n_common == 0:
        raise ValueError(
            "the vector files given hold no vector of the run's documents or questions, so nothing shows they come "
            f"from the model the run was fit with ({run['embedder']!r}): give files that also hold (some of) the "
            "run's vectors, e.g. the files given to `nudge fit` with the new rows appended"
        )


def _run_question_texts(run: dict, run_dir: Path, base: RetrievalDataset, texts: dict[str, str]):
    """``(known, test)``: question id -> text of every training or validation question of the run (its data and
    each recorded update whose file is unchanged; None when that file is gone), and the ids of its hold-out test
    questions as their files name them (a ``--test`` file's ids without the run's prefix)."""
    known: dict[str, str | None] = {}
    for part in ("train", "val"):
        for q in run["split"][part]:
            known[q] = base.queries.get(q)
    prefix = run["test"].get("query_id_prefix", "") if "test" in run else ""
    test = {q[len(prefix) :] for q in run["split"]["test"]}
    for record in run.get("updates", []):
        path = Path(record.get("data", ""))
        week = None
        if _same_data(path, record.get("sha256"), record.get("beir_split")):
            week = load_valid(path, **_beir_kwargs(record.get("beir_split")))
        for part in ("train", "val"):
            for q in record.get(part, []):
                known.setdefault(q, None if week is None else week.queries.get(q))
    return known, test


def _refuse_reused_question_ids(new: RetrievalDataset, qids: list[str], run: dict, run_dir: Path,
                                base: RetrievalDataset, texts: dict[str, str], new_path: Path) -> None:  # fmt: skip
    """A file naming its own ids (BEIR, LlamaIndex) must not give a run's question id to another question, nor
    reuse a hold-out test question's id at all: the id would fetch that question's vector (precomputed vectors)
    and make two questions one."""
    from .streaming import normalise_text

    known, test = _run_question_texts(run, run_dir, base, texts)
    in_test = [q for q in qids if q in test]
    if in_test:
        raise ValueError(
            f"{new_path}: {len(in_test)} question id(s) are ids of this run's hold-out test questions, first "
            f"{in_test[0]!r}: a test question never joins training or validation, and its id names its vector. "
            "Nothing was written; give the new questions ids of their own"
        )
    other = [q for q in qids if q in known and known[q] is not None
             and normalise_text(known[q]) != normalise_text(new.queries[q])]  # fmt: skip
    if other:
        raise ValueError(
            f"{new_path}: {len(other)} question id(s) are already questions of this run with another text, first "
            f"{other[0]!r} ({new.queries[other[0]][:60]!r} here, {known[other[0]][:60]!r} in the run): one id "
            "names one question (and its vector). Nothing was written; give the new questions ids of their own"
        )


def _update(args: argparse.Namespace, run_dir: Path, run: dict) -> None:
    from .streaming import NudgeState, normalise_text, pair_key

    _check_data_unchanged(run, run_dir)
    new_path = Path(args.new_pairs)
    new_split = _folder_split(new_path, args.split, "NEW_PAIRS")
    new = load_valid(new_path, **_beir_kwargs(new_split))
    digest = _data_sha256(new_path, new_split)
    updates = run.get("updates", [])
    for i, done in enumerate(updates, start=1):
        if done.get("sha256") == digest:
            raise ValueError(f"{new_path} was already added to this run (update {i}): its pairs would count twice")

    docs, doc_ids, old = _run_model(run_dir)
    base = _load_run_data(run)
    state_path = run_dir / STATE_FILE
    if state_path.is_file():
        state = NudgeState.load(state_path)
        if not state.pair_keys:  # an older version's state (or edited): rebuild from all it records, or refuse
            state.pair_keys = _rebuilt_pair_keys(state, run, run_dir, base)
        state.pair_keys |= _base_pair_keys(base)
        started = False
    elif updates:  # starting again from the base data would silently drop the recorded weeks
        raise ValueError(
            f"{state_path} is missing but {run_dir / RUN_FILE} records {len(updates)} update(s): starting again "
            "from the run's data would drop them. Put state.npz back (e.g. from a copy of the run), or fit the "
            "run again and add the weeks' files with `nudge update`"
        )
    else:
        state = _initial_state(run, run_dir, base, old)
        state.pair_keys = _base_pair_keys(base)
        started = True

    # pairs are identified by content: a pair counted before (the run's own data, an earlier update, a
    # copy of a file with another row order or a trailing newline) is not counted again
    fresh: dict[str, list[str]] = {}
    keys: set[str] = set()
    n_seen = 0
    for q in new.answered_query_ids:
        for d in new.relevant[q]:
            key = pair_key(new.queries[q], new.corpus[d])
            # a state written before the NFC step holds that version's key of a non-NFC text
            if (
                key in state.pair_keys
                or key in keys
                or pair_key(new.queries[q], new.corpus[d], nfc=False) in (state.pair_keys)
            ):
                n_seen += 1
                continue
            keys.add(key)
            fresh.setdefault(q, []).append(d)
    _refuse_test_questions(new, fresh, run, base, new_path, _corpus_texts(run_dir, run, base, doc_ids))
    qids = list(fresh)
    pair_table = new_path.is_file() and new_path.suffix.lower() in (*PAIR_TABLE_SUFFIXES, *JSONL_SUFFIXES)
    if not pair_table:  # the file names its own ids: one id, one question
        _refuse_reused_question_ids(new, qids, run, run_dir, base, _corpus_texts(run_dir, run, base, doc_ids),
                                    new_path)  # fmt: skip
    if not qids:
        raise ValueError(
            f"all {n_seen} pairs of {new_path} are already counted in this run (its own data or an earlier update; "
            "pairs are compared by their question and document texts): nothing to add"
        )
    if len(qids) < 2:
        raise ValueError(
            f"{new_path} has {len(qids)} labelled question(s) with pairs new to this run; at least 2 are needed "
            "(train and val)"
        )
    # a question already in the run keeps its split: validation questions never move into training
    known = _known_splits(run, base)
    kept = {q: known[normalise_text(new.queries[q])] for q in qids if normalise_text(new.queries[q]) in known}
    unknown = [q for q in qids if q not in kept]
    if len(unknown) >= 2:
        n_val = round(args.val_fraction * len(unknown))
        if n_val == 0 or n_val == len(unknown):
            raise ValueError(
                f"--val-fraction {args.val_fraction} leaves no training or no validation question among the "
                f"{len(unknown)} new questions of {new_path}; give a fraction nearer 0.2, or more questions"
            )
        split = split_queries(len(unknown), val_fraction=args.val_fraction, test_fraction=0.0, seed=args.seed)
        train_q, val_q = [unknown[i] for i in split.train], [unknown[i] for i in split.val]
    else:
        train_q, val_q = list(unknown), []
    train_q += [q for q in qids if kept.get(q) == "train"]
    val_q += [q for q in qids if kept.get(q) == "val"]

    texts = _corpus_texts(run_dir, run, base, doc_ids)
    mapping, added = _match_documents(new, texts, by_id=not pair_table, prefix=f"update{len(updates) + 1}-")
    n_pairs = sum(len(fresh[q]) for q in qids)
    print(
        f"{new_path.name}: {len(qids)} new labelled questions ({len(train_q)} train, {len(val_q)} validation), "
        f"{n_pairs} pairs; {len(added)} new documents"
        + (f"; {n_seen} pairs already counted in this run were skipped" if n_seen else ""),
        flush=True,
    )
    if kept:
        n_train = sum(v == "train" for v in kept.values())
        print(
            f"{len(kept)} of these questions are already in the run and keep their split ({n_train} train, "
            f"{len(kept) - n_train} validation)",
            flush=True,
        )

    option = args.embedder or run.get("embedder_option")
    if option is None:
        raise ValueError(f"{RUN_FILE} does not say which --embedder made the run: pass --embedder")
    vectors_record = None
    if option == PRECOMPUTED:  # vectors by id, from --doc-vectors/--query-vectors or the run's own files
        embedder, vectors_record = _update_vectors(args, run, run_dir, pair_table=pair_table)
        file_ids = {nid: fid for fid, nid in mapping.items()}
        embedder.check_covers([file_ids[d] for d in added], qids)
        embed_documents = lambda _texts: embedder.document_vectors([file_ids[d] for d in added])  # noqa: E731
        embed_queries = lambda _texts: embedder.query_vectors(qids)  # noqa: E731
    else:
        if args.doc_vectors or args.query_vectors:
            raise ValueError(f"--doc-vectors/--query-vectors are for runs fit on precomputed vectors; this run was "
                             f"embedded with {run['embedder']!r} and update embeds with it")  # fmt: skip
        embedder = _embedder(option, args.cache_dir or run.get("cache_dir"), progress=args.progress)
        embed_documents, embed_queries = embedder.embed_documents, embedder.embed_queries
    if embedder.model_name != run["embedder"]:
        raise ValueError(
            f"--embedder {option} embeds with {embedder.model_name!r} but the run was embedded with "
            f"{run['embedder']!r}: vectors of different models cannot be mixed"
        )
    if added:
        print(f"embedding {len(added)} new documents with {embedder.model_name}", flush=True)
        vectors = np.asarray(embed_documents(list(added.values())))
        if vectors.shape[1:] != docs.shape[1:]:
            raise ValueError(
                f"the embedder makes vectors of dimension {vectors.shape[1]}, the run's have {docs.shape[1]}"
            )
        docs = np.concatenate([docs, vectors.astype(docs.dtype, copy=False)])
        doc_ids = doc_ids + list(added)
    print(f"embedding {len(qids)} new questions with {embedder.model_name}", flush=True)
    queries = np.asarray(embed_queries([new.queries[q] for q in qids])).astype(docs.dtype, copy=False)
    row = {q: i for i, q in enumerate(qids)}

    def pairs(ids: list[str]):
        return queries[[row[q] for q in ids]], [[mapping[d] for d in fresh[q]] for q in ids]

    if started:
        print(
            f"started the run's NudgeState ({STATE_FILE}) from its {len(run['split']['train'])} training and "
            f"{len(run['split']['val'])} validation questions",
            flush=True,
        )
    n_val_before = state.n_val_queries
    state.add_pairs(train=pairs(train_q) if train_q else None, val=pairs(val_q) if val_q else None)
    print(f"re-picking gamma on {state.n_val_queries} validation questions", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)  # they are printed below, in the fit's report
        state.fit_gamma(docs, doc_ids)
    model = state.to_nudge(docs, doc_ids)
    nudged = model.transform(docs)

    record = {
        "data": str(new_path.resolve()),
        "sha256": digest,
        "seed": args.seed,
        "val_fraction": args.val_fraction,
        **({"beir_split": new_split} if new_split else {}),
        "train": train_q,
        "val": val_q,
        "pairs": n_pairs,
        "pairs_already_counted": n_seen,
        "added_documents": list(added),
        "gamma": state.gamma_,
        "val_score": state.val_score_,
    }
    if vectors_record is not None:
        record["vectors"] = vectors_record
    state.pair_keys |= keys
    state.history.append(record)  # the record is committed with the state (same file) and in run.json
    run = {**run, "updates": [*updates, record]}
    writers: dict[str, Callable[[Path], object]] = {}
    if added:
        all_added = {d: texts[d] for d in texts if d not in base.corpus} | added
        writers[DOCS_FILE] = lambda p: save_embeddings(p, docs, doc_ids)
        writers[ADDED_FILE] = lambda p: write_json(p, all_added)
    writers[MODEL_FILE] = model.save
    writers[NUDGED_FILE] = lambda p: save_embeddings(p, nudged, doc_ids)
    writers[STATE_FILE] = state.save
    writers[RUN_FILE] = lambda p: write_json(p, run)
    crash_point("update-before-commit")
    _write_together(run_dir, writers)
    print(
        f"gamma {old.gamma_:.4g} -> {state.gamma_:.4g}; validation score {_fmt(old.val_score_)} on "
        f"{n_val_before} questions -> {_fmt(state.val_score_)} on {state.n_val_queries} questions"
    )
    print(
        f"NUDGE-{model.method_}: {model.moved_.size} of {len(doc_ids)} documents moved; rewrote "
        f"{', '.join(writers)} in {run_dir}"
        + (
            f"; add the {len(added)} new documents to a store (only them; nothing else is touched) with "
            f"`nudge load {run_dir} --store STORE --collection NAME --add-missing`, then `nudge apply`"
            if added
            else ""
        )
    )
    if getattr(state, "diagnostics_", None) is not None:
        print(state.diagnostics_.summary(doc_ids))


# ---------------------------------------------------------------------------------- validate
def cmd_validate(args: argparse.Namespace) -> int:
    """Print DATA's validation report (every split of a BEIR folder unless ``--split``); 1 when it has errors."""
    if not Path(args.data).exists():
        raise ValueError(_missing_data(args.data))
    if args.max_lines < 0:
        raise ValueError(f"--max-lines must be a whole number >= 0, got {args.max_lines}")
    if args.split is not None and not Path(args.data).is_dir():
        raise ValueError(f"--split picks qrels files of a BEIR folder, but DATA {args.data!r} is not a folder")
    data = Path(args.data)
    if args.split is not None:
        runs = [_beir_kwargs(_split_names(args.split))]
    elif data.is_dir():  # every qrels file of the folder, one report each (none: load_beir says what is missing)
        runs = [{"split": s.stem} for s in sorted((data / "qrels").glob("*.tsv"))] or [{}]
    else:
        runs = [{}]
    info = sys.maxsize if args.all else args.max_lines
    ok = True
    for kwargs in runs:
        dataset, report = load_dataset(args.data, **kwargs)
        print(report.summary(max_items=sys.maxsize, max_info=info))
        stats = dataset.stats()
        print(f"loaded: {stats['queries']} queries ({len(dataset.relevant)} labelled), {stats['documents']} "
              f"documents, {stats['pairs']} relevant pairs")  # fmt: skip
        ok = ok and report.ok
    if not args.all and info < sys.maxsize:
        print(f"errors are listed in full; information lists its first {info} entries of each kind "
              "(--max-lines N for more, --all for every entry)")  # fmt: skip
    return 0 if ok else 1


# ---------------------------------------------------------------------------------- parser
def _store_arguments(parser: argparse.ArgumentParser, *, backup_help: str = "") -> None:
    parser.add_argument("run", help="run folder written by `nudge fit`")
    parser.add_argument(
        "--store",
        required=True,
        help="qdrant:FOLDER (embedded Qdrant on a local folder), qdrant+http://HOST:PORT (a Qdrant server), "
        "milvus:FILE.db (Milvus Lite) or milvus+http://HOST:PORT (a Milvus server)",
    )
    parser.add_argument("--collection", required=True, help="collection name")
    backup_help = backup_help or "file keeping the original vectors of the replaced ids"
    parser.add_argument("--backup", help=f"{backup_help} (default RUN/{BACKUP_FILE})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nudge", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"nudge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fit = sub.add_parser(
        "fit",
        help="split, embed and fit NUDGE; write the artefacts to a run folder",
        description="Split the labelled questions of DATA by question (hold-out test, then train/validation), "
        "embed the corpus and the questions, fit NUDGE (gamma chosen on validation) and write the run folder.",
    )
    fit.add_argument("data", help="LlamaIndex JSON, BEIR folder, or CSV/JSONL of (query, document) pairs")
    fit.add_argument("--out", required=True, help="run folder to write (created if missing, with any missing "
                     "parent folders)")  # fmt: skip
    fit.add_argument("--method", default="N", choices=["M", "N"], help="NUDGE-M or NUDGE-N (default N)")
    fit.add_argument("--k", type=int, default=1, help="gamma maximises the validation share of answers in the top k")
    fit.add_argument(
        "--embedder",
        help="tessera (bundled vectors), local (all-MiniLM-L6-v2, the default) or openai; not with --doc-vectors",
    )
    fit.add_argument("--cache-dir", help="embedding cache folder for --embedder openai")
    fit.add_argument("--progress", action="store_true", help="show the embedding library's progress bars")
    own = fit.add_argument_group(
        "your own vectors (looked up by document and query id; nothing is embedded)",
        "A .npy array (n, d) with a separate ids file (one id per line, in row order; or a .json list), or one .npz "
        "holding the arrays 'ids' and 'vectors'. Every document of DATA and every labelled question (and those of "
        "the test set) needs a vector; extra vectors are fine. run.json records the files and their SHA-256.",
    )
    own.add_argument("--doc-vectors", metavar="FILE", help="document vectors (.npy with --doc-ids, or .npz)")
    own.add_argument("--doc-ids", metavar="FILE", help="ids of --doc-vectors' rows (a .npy needs it)")
    own.add_argument("--query-vectors", metavar="FILE", help="query vectors (.npy with --query-ids, or .npz)")
    own.add_argument("--query-ids", metavar="FILE", help="ids of --query-vectors' rows (a .npy needs it)")
    own.add_argument("--vectors-model", metavar="NAME", help="the model that made them, e.g. all-MiniLM-L6-v2 "
                     "(then `nudge ask --embedder local` can embed new texts with it)")  # fmt: skip
    splits = fit.add_argument_group(
        "splits",
        "Without a test set, DATA's labelled questions are split by question into a hold-out test "
        "(--test-fraction) and train/validation (--val-fraction), seeded. With a test set (--test-split or --test) "
        "DATA is split into train and validation only; the test set is never trained or validated on.",
    )
    splits.add_argument("--split", metavar="NAMES", help="BEIR folder: which qrels file(s) of DATA hold the "
                        "labelled questions to use, e.g. train or train,dev. Default: test (qrels/test.tsv), so "
                        "BEIR's protocol needs --split train --test-split test")  # fmt: skip
    splits.add_argument("--test-split", metavar="NAMES", help="BEIR folder: hold-out test questions from another "
                        "qrels file of DATA, e.g. test")  # fmt: skip
    splits.add_argument("--test", metavar="TEST_DATA", help="hold-out test questions from a separate dataset (any "
                        "format the kit reads; its documents join the corpus)")  # fmt: skip
    splits.add_argument("--test-folder-split", metavar="NAMES", help="--test is a BEIR folder: its qrels file(s) "
                        "(needed when it holds several)")  # fmt: skip
    splits.add_argument("--seed", type=int, default=0, help="seed of the question split (default 0)")
    splits.add_argument("--val-fraction", type=float, default=0.2, help="share of non-test questions for gamma (0.2)")
    splits.add_argument("--test-fraction", type=float, help="share of DATA's questions held out for testing when no "
                        "test set is given (default 0.2)")  # fmt: skip
    fit.set_defaults(func=cmd_fit)

    ev = sub.add_parser(
        "evaluate",
        help="hold-out test of a run: before and after, fixed and broken questions",
        description="Score the run's hold-out test questions on the original and on the nudged document vectors.",
    )
    ev.add_argument("run", help="run folder written by `nudge fit`")
    ev.add_argument("--k", type=int, default=10, help="cut-off of MRR, nDCG and recall (default 10)")
    ev.add_argument("--show", type=int, default=5, help="fixed and broken questions to list (default 5)")
    ev.set_defaults(func=cmd_evaluate)

    load = sub.add_parser(
        "load",
        help="create a dot-product collection holding the run's original document vectors",
        description="Create a collection scored by the inner product (Qdrant DOT, Milvus IP) and load the run's "
        f"ORIGINAL document vectors ({DOCS_FILE}) under their document ids, so `nudge apply` can be tried end "
        "to end. Stands in for the store a real system already has.",
    )
    _store_arguments(load, backup_help="unused by load (kept for symmetry; backups are never removed)")
    load.add_argument(
        "--add-missing",
        action="store_true",
        help="the collection exists: add only the run's documents it lacks (e.g. after `nudge update` added "
        "documents); nothing else is touched",
    )
    load.add_argument(
        "--replace",
        action="store_true",
        help="drop an existing collection of that name first (everything in it is lost, payloads too)",
    )
    load.set_defaults(func=cmd_load)

    ap = sub.add_parser(
        "apply",
        help="write the run's moved vectors into a store, by id (--dry-run: only report)",
        description="Write the vectors NUDGE moves into an existing collection, by document id; nothing else is "
        "touched. The originals are read from the store (checked against the run's documents) and kept in the "
        "backup file before anything is written, so `nudge rollback` restores them exactly. Applying again "
        "changes nothing; applying after `nudge update` moves the new set and restores the rest.",
    )
    _store_arguments(ap)
    ap.add_argument("--dry-run", action="store_true", help="report what would be written; write nothing")
    ap.add_argument(
        "--force", action="store_true", help="overwrite vectors someone else changed since the last apply (listed)"
    )
    ap.set_defaults(func=cmd_apply)

    rb = sub.add_parser(
        "rollback",
        help="put the original vectors kept in the backup back into the store",
        description="Restore the original vectors that `nudge apply` kept in the backup file (exactly), for the "
        "ids it wrote only. A point deleted since is not re-created; a vector someone else changed since is "
        "not overwritten (unless --force). The backup is kept.",
    )
    _store_arguments(rb)
    rb.add_argument(
        "--force",
        action="store_true",
        help="restore also vectors someone else changed since the apply, or from a backup of another run or "
        "an older format (never a backup of another store or collection); what it overwrites is kept",
    )
    rb.set_defaults(func=cmd_rollback)

    up = sub.add_parser(
        "update",
        help="add new labelled pairs: re-pick gamma, rewrite the run's model and nudged vectors",
        description="Add next week's labelled pairs to a run. The run keeps a NudgeState (RUN/state.npz, started "
        "from the run's own training and validation pairs); the new questions are split into training and "
        "validation by question (seeded), gamma is re-picked on the grown validation set, and the nudge is "
        "re-applied to the ORIGINAL document vectors. Documents of NEW_PAIRS that are in the run's corpus "
        "(same text in a pair table, same id in a BEIR folder or LlamaIndex file) keep their ids; others are "
        "embedded with the run's embedder and appended. The model, "
        f"{NUDGED_FILE} (and {DOCS_FILE} when documents were added) are rewritten together. The hold-out "
        "test questions are unchanged.",
    )
    up.add_argument("run", help="run folder written by `nudge fit`")
    up.add_argument("new_pairs", metavar="NEW_PAIRS", help="LlamaIndex JSON, BEIR folder, or CSV/JSONL of pairs")
    up.add_argument("--split", metavar="NAMES", help="NEW_PAIRS is a BEIR folder: its qrels file(s) to read "
                    "(needed when it holds several; recorded in run.json)")  # fmt: skip
    up.add_argument("--val-fraction", type=float, default=0.2, help="share of the new questions for gamma (0.2)")
    up.add_argument("--seed", type=int, default=0, help="seed of the new questions' split (default 0)")
    up.add_argument("--embedder", choices=EMBEDDERS, help="override the run's embedder (same model only)")
    up.add_argument("--cache-dir", help="embedding cache folder for --embedder openai (default the run's)")
    up.add_argument("--progress", action="store_true", help="show the embedding library's progress bars")
    up.add_argument("--doc-vectors", metavar="FILE", help="a run fit on precomputed vectors: the new documents' "
                    "vectors (default the run's files, if unchanged)")  # fmt: skip
    up.add_argument("--doc-ids", metavar="FILE", help="ids of --doc-vectors' rows")
    up.add_argument("--query-vectors", metavar="FILE", help="a run fit on precomputed vectors: the new questions' "
                    "vectors (default the run's files, if unchanged)")  # fmt: skip
    up.add_argument("--query-ids", metavar="FILE", help="ids of --query-vectors' rows")
    up.set_defaults(func=cmd_update)

    va = sub.add_parser(
        "validate",
        help="print a dataset's validation report (every skipped row, with file and line)",
        description="Load DATA as `nudge fit` would and print its validation report: every error (rows that "
        "would be skipped) with its file and line number, and the information (usable data worth a look) counted, "
        "with its first entries (--all: every entry). A BEIR folder is checked split by split (every qrels file, "
        "unless --split). Exit status 1 when it has errors.",
    )
    va.add_argument("data", help="LlamaIndex JSON, BEIR folder, or CSV/JSONL of (query, document) pairs")
    va.add_argument("--split", metavar="NAMES", help="BEIR folder: the qrels file(s) to read together, e.g. "
                    "train,dev (default: each qrels file of the folder, one report each)")  # fmt: skip
    va.add_argument("--max-lines", type=int, default=5, metavar="N", help="entries listed of each kind of "
                    "information (e.g. documents relevant to no query; default 5); errors are always listed in "
                    "full")  # fmt: skip
    va.add_argument("--all", action="store_true", help="list every entry of the information too")
    va.set_defaults(func=cmd_validate)
    add_ask_parser(sub)  # `nudge ask` (ask.py): its parser dispatches to ask.run_ask
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args.func(args)
    except BrokenPipeError:  # the reader closed the pipe (`nudge validate DATA | head`): stop quietly
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        except (OSError, ValueError):
            pass
        return 0
    except (ValueError, ImportError, OSError, KeyError, RuntimeError) as exc:
        message = str(exc).strip() or type(exc).__name__
        if isinstance(exc, OSError) and not isinstance(exc, (FileNotFoundError, PermissionError)):
            message = f"{type(exc).__name__}: {message}"  # e.g. a full disk: say what failed
        print(f"nudge {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nudge {args.command}: interrupted", file=sys.stderr)
        return 130
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
