"""Fitting from a vector store: time and memory of ``fit_from_store`` against the corpus size.

Seeded synthetic data (``make_retrieval_problem``: d = 384, 5k training and 1k validation
queries, float32; 50k and 200k documents) is loaded into the in-memory store and, at the largest
size, in batches into Qdrant's embedded local mode on a temporary folder (on /dev/shm when there
is one: local mode commits every point to SQLite, and a RAM-backed folder keeps that from
dominating the load). Per store and method it prints:

* the time of ``fit_from_store`` (fetch the documents with training queries and the validation
  answers, search the store for every validation query, fetch and score the background
  candidates, choose gamma), with tracemalloc on;
* its peak Python memory (tracemalloc, started after loading, so the store's copy of the corpus
  is not counted), split in two: the fit's own peak (everything outside the store's ``search``
  and ``fetch`` calls, their results included) and the peak of the temporaries *inside* those
  calls (an embedded store computes its searches in this process; a server would not);
* next to them the size of the corpus array and of the rows with training queries (the rows
  NUDGE-M moves; NUDGE-N moves a subset of them);
* whether gamma, the validation score and the moved documents equal the in-memory
  ``Nudge(method).fit`` on the same embeddings (its time is printed too).

Embedded Qdrant scores in Python: each query is ``np.dot`` of the whole collection with a float64
query, which copies the collection to float64 (N x d x 8 bytes) per query, so its searches
dominate the time; only NUDGE-M is fitted on it by default (NUDGE-N runs the same searches;
``--qdrant-methods M N`` for both). Then the NUDGE-M fit is applied to the collection, which
fetches and upserts only the moved vectors.

Usage: ``python benchmarks/bench_remote.py [--sizes 50000 200000] [--qdrant-methods M] [--val 1000]``
"""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np

import nudge
from nudge.production.remote import StoreFit, apply_to_store, fit_from_store
from nudge.production.stores import InMemoryStore, QdrantStore
from nudge.teaching.synthetic import make_retrieval_problem

try:  # run as a script: benchmarks/ is on sys.path
    from bench_fit import machine
except ImportError:  # pragma: no cover - imported from elsewhere
    from benchmarks.bench_fit import machine

MB = 2**20


class StorePeaks:
    """Traced peak memory of a fit, outside the store's ``search``/``fetch`` calls and inside them."""

    def __init__(self, store) -> None:
        self.store, self.own, self.inside = store, 0, 0

    def _traced(self, fn):
        def call(*args, **kwargs):
            current, peak = tracemalloc.get_traced_memory()
            self.own = max(self.own, peak)
            tracemalloc.reset_peak()
            try:
                return fn(*args, **kwargs)
            finally:
                self.inside = max(self.inside, tracemalloc.get_traced_memory()[1] - current)
                tracemalloc.reset_peak()

        return call

    def __enter__(self) -> StorePeaks:
        for name in ("search", "fetch"):
            setattr(self.store, name, self._traced(getattr(self.store, name)))
        gc.collect()
        tracemalloc.start()
        return self

    def __exit__(self, *exc) -> None:
        self.own = max(self.own, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        for name in ("search", "fetch"):
            delattr(self.store, name)


def id_pairs(query_set, ids):
    return query_set.embeddings, [[ids[j] for j in row] for row in query_set.answers]


def load_qdrant(folder: Path, ids: list[str], e: np.ndarray, batch: int) -> tuple[QdrantStore, float]:
    """An embedded (local-mode) Qdrant collection of ``e`` under ``ids``, loaded ``batch`` points at a time."""
    t0 = time.perf_counter()
    store = QdrantStore.create("bench", e.shape[1], path=folder, metric="dot")
    for start in range(0, len(ids), batch):
        store.upsert(ids[start : start + batch], e[start : start + batch])
    return store, time.perf_counter() - t0


def same_as(fit, model, ids) -> str:
    if model.method_ == "M":
        gamma_ok = bool(np.isclose(fit.gamma_, model.gamma_, rtol=1e-6, atol=0))
    else:
        gamma_ok = fit.gamma_ == model.gamma_
    moved_ok = sorted(fit.moved_ids) == sorted(ids[i] for i in model.moved_)
    ok = gamma_ok and moved_ok and fit.val_score_ == model.val_score_
    return f"{'yes' if ok else 'NO'} (gamma {fit.gamma_:.6g})"


def row(name: str, n: int, store, problem, ids, model, method: str, corpus_mb: float, vbs: int) -> StoreFit:
    train, val = id_pairs(problem.train, ids), id_pairs(problem.val, ids)
    with StorePeaks(store) as peaks:
        t0 = time.perf_counter()
        fit = fit_from_store(store, train, val, method=method, val_batch_size=vbs)
        seconds = time.perf_counter() - t0
    support_mb = fit.support_.size * fit.n_features_in_ * 4 / MB
    fetched = len(fit.doc_ids_) + fit.search_["candidates"]
    print(
        f"{name:<12} | {n:>7,} | {'NUDGE-' + method:>7} | {seconds:>6.1f} | {fit.search_['searches']:>8} | "
        f"{fetched:>7} | {fit.support_.size:>5} | {fit.moved_.size:>5} | {support_mb:>7.1f} | {corpus_mb:>6.0f} | "
        f"{peaks.own / MB:>7.1f} | {peaks.own / MB / support_mb:>6.1f}x | {peaks.own / MB / corpus_mb:>6.3f}x | "
        f"{peaks.inside / MB:>7.1f} | {same_as(fit, model, ids)}",
        flush=True,
    )
    return fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 200_000])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--train", type=int, default=5_000)
    parser.add_argument("--val", type=int, default=1_000)
    parser.add_argument("--qdrant-methods", nargs="*", default=["M"], help="methods fitted on Qdrant (largest size)")
    parser.add_argument("--val-batch-size", type=int, default=256, help="fit_from_store's val_batch_size")
    parser.add_argument("--batch", type=int, default=2_000, help="points per upsert call while loading Qdrant")
    parser.add_argument("--folder", type=Path, default=None, help="parent of the temporary Qdrant folder")
    args = parser.parse_args()
    # Qdrant's local mode says, on every upsert past 20k points, that a server would be faster: so it would.
    warnings.filterwarnings("ignore", "Local mode is not recommended", UserWarning)

    print(f"machine: {machine()}")
    print(
        f"nudge {nudge.__version__}; d={args.dim}, {args.train} training and {args.val} validation queries, "
        f"float32, k=1, val_batch_size={args.val_batch_size}"
    )
    header = (
        f"{'store':<12} | {'N':>7} | {'method':>7} | {'fit s':>6} | {'searches':>8} | {'fetched':>7} | "
        f"{'supp.':>5} | {'moved':>5} | {'supp MB':>7} | {'corpus':>6} | {'peak MB':>7} | {'/supp':>7} | "
        f"{'/corpus':>7} | {'in store':>7} | same as in-memory Nudge.fit"
    )
    lines = []
    for n in args.sizes:
        p = make_retrieval_problem(n, args.dim, args.train, args.val, 0, seed=n)
        ids = [f"doc-{i}" for i in range(n)]
        corpus_mb = p.embeddings.nbytes / MB
        models, took = {}, {}
        for m in "MN":
            t0 = time.perf_counter()
            models[m] = nudge.Nudge(m).fit(p.embeddings, p.train, p.val)
            took[m] = time.perf_counter() - t0
        lines.append(
            f"N={n:,}: in-memory Nudge.fit on the {corpus_mb:.0f} MB array: NUDGE-M {took['M']:.2f} s "
            f"(gamma {models['M'].gamma_:.6g}), NUDGE-N {took['N']:.2f} s (gamma {models['N'].gamma_:.6g})"
        )
        if n == args.sizes[0]:
            print(header)
            print("-" * len(header))
        memory = InMemoryStore.from_embeddings(ids, p.embeddings)
        for m in "MN":
            row("in-memory", n, memory, p, ids, models[m], m, corpus_mb, args.val_batch_size)
        del memory
        if n == max(args.sizes) and args.qdrant_methods:
            lines += qdrant_rows(args, n, p, ids, models, corpus_mb)
        gc.collect()
    print()
    print("\n".join(lines))


def qdrant_rows(args, n, p, ids, models, corpus_mb) -> list[str]:
    """Load the corpus into embedded Qdrant, fit on it, apply NUDGE-M; returns the notes to print."""
    parent = args.folder or (Path("/dev/shm") if Path("/dev/shm").is_dir() else None)
    folder = Path(tempfile.mkdtemp(prefix="nudge-bench-", dir=parent))
    notes = []
    store = None
    try:
        store, load_s = load_qdrant(folder / "qdrant", ids, p.embeddings, args.batch)
        notes.append(f"loaded {store.count():,} points into embedded Qdrant at {folder} in {load_s:.1f} s")
        fits = {
            m: row("Qdrant local", n, store, p, ids, models[m], m, corpus_mb, args.val_batch_size)
            for m in args.qdrant_methods
        }
        if "M" in fits:
            written: list[str] = []
            upsert = store.upsert

            def counted_upsert(batch_ids, vectors):
                written.extend(batch_ids)
                upsert(batch_ids, vectors)

            store.upsert = counted_upsert
            t0 = time.perf_counter()
            report = apply_to_store(store, fits["M"], backup=folder / "backup.npz")
            took = time.perf_counter() - t0
            del store.upsert
            notes.append(
                f"apply NUDGE-M to Qdrant: upserted {len(written)} vectors (moved: {fits['M'].moved_.size}; "
                f"corpus: {n:,}) in {took:.1f} s; backup {(folder / 'backup.npz').stat().st_size / MB:.1f} MB; {report}"
            )
    finally:
        if store is not None:
            store.close()
        shutil.rmtree(folder, ignore_errors=True)
    return notes


if __name__ == "__main__":
    main()
