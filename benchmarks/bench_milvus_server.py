"""NUDGE against a Milvus standalone server at a size that outgrows a laptop's notebook.

Run it beside a server started by the project's script (it reads ``NUDGE_MILVUS_URI``)::

    python tools/milvus_server.py run --isolated -- python benchmarks/bench_milvus_server.py

1. **Load** (a separate process, so its copy of the corpus is not counted below): a seeded
   synthetic corpus (``make_retrieval_problem``: N = 500k documents, d = 384, float32, 5k
   training, 1k validation and 1k test queries; ``offset`` and ``query_noise`` 1.5 rather than
   0.9 and 0.5, so that the test questions are not all answered before NUDGE) goes into a new
   collection made by ``MilvusStore.create`` (the kit's schema: VARCHAR id, FLAT index, inner
   product), inserted 5,000 rows at a time.
   The same process fits ``Nudge("M")`` in memory on the whole array, as the reference.
2. **Exact index (FLAT)**, in this process, which never holds the corpus: ``fit_from_store``
   (NUDGE-M), then ``apply_to_store`` (only the moved vectors), the test queries searched before
   and after, then ``rollback_store``. Printed: the time split into the store's ``search``,
   ``fetch`` and ``upsert`` calls and the rest (gamma choice: scoring, the validation curve,
   directions), this process's peak memory (``ru_maxrss``), the server's memory, and whether
   gamma and the moved documents equal the in-memory fit's.
3. **Approximate index**: the collection's index is replaced by IVF_FLAT (``nlist`` 1024; the
   kit's ``MilvusStore.search`` sends no search parameters, so the server's default ``nprobe``
   applies, as it would for a user of the kit) and step 2 is repeated. Printed: gamma, moved
   documents and test metrics (nDCG@10, MRR@10, hit@1) against the exact index, and the share of
   the exact top 10 the approximate search finds (recall@10).

The collection is dropped at the end. Usage:
``python benchmarks/bench_milvus_server.py [--n 500000] [--nlist 1024] [--uri http://127.0.0.1:19530]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import nudge
from nudge.metrics import per_query
from nudge.production.remote import apply_to_store, fit_from_store
from nudge.production.stores import MilvusStore, rollback_store

try:  # run as a script: benchmarks/ is on sys.path
    from bench_fit import machine
except ImportError:  # pragma: no cover - imported from elsewhere
    from benchmarks.bench_fit import machine

MB = 2**20
COLLECTION = "nudge_bench_server"


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident memory of this process, MB."""
    current = float("nan")
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            current = int(line.split()[1]) / 1024
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def server_memory() -> str:
    """The server's resident and peak memory, when it is the local one of tools/milvus_server.py."""
    folder = os.environ.get("NUDGE_MILVUS_DIR")
    try:
        pid = json.loads((Path(folder) / "server.json").read_text())["pid"]
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    except (TypeError, OSError, ValueError, KeyError):
        return "server memory: unknown (not the local server of tools/milvus_server.py)"
    rss, hwm = (int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))
    return f"server (pid {pid}) resident {rss:,.0f} MB, peak {hwm:,.0f} MB"


# ---------------------------------------------------------------------------------- 1. load
def load(args) -> None:
    """Make the corpus, load it into the server, fit in memory; save queries and reference to ``args.work``."""
    from nudge.teaching.synthetic import make_retrieval_problem

    t0 = time.perf_counter()
    p = make_retrieval_problem(
        args.n,
        args.dim,
        args.train,
        args.val,
        args.test,
        offset=args.offset,
        query_noise=args.query_noise,
        seed=args.seed,
    )
    ids = [f"doc-{i}" for i in range(args.n)]
    made = time.perf_counter() - t0
    t0 = time.perf_counter()
    with MilvusStore.create(COLLECTION, args.dim, uri=args.uri, metric="dot", replace=True) as store:
        for start in range(0, args.n, args.batch):  # pymilvus insert of numpy rows: ~4,000 rows/s here
            stop = min(start + args.batch, args.n)
            store.client.insert(COLLECTION, [{"doc_id": ids[j], "vector": p.embeddings[j]} for j in range(start, stop)])
        store.client.flush(COLLECTION)
        count = store.count()
    loaded = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = nudge.Nudge("M").fit(p.embeddings, p.train, p.val)
    fitted = time.perf_counter() - t0
    work = Path(args.work)
    arrays = {}
    for part in ("train", "val", "test"):
        qs = getattr(p, part)
        arrays[f"{part}_q"] = qs.embeddings
        arrays[f"{part}_a"] = np.array(json.dumps([[int(j) for j in row] for row in qs.answers]))
    np.savez(work / "queries.npz", **arrays)
    reference = {
        "gamma": float(model.gamma_),
        "val_score": float(model.val_score_),
        "moved": sorted(ids[i] for i in model.moved_),
        "made_s": made,
        "load_s": loaded,
        "fit_s": fitted,
        "count": count,
        "corpus_mb": p.embeddings.nbytes / MB,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    (work / "reference.json").write_text(json.dumps(reference))


# ---------------------------------------------------------------------------------- 2./3. fit, apply, test
class Timed:
    """Adds up the seconds and rows of a store's search, fetch and upsert calls."""

    def __init__(self, store) -> None:
        self.store = store
        self.seconds = {"search": 0.0, "fetch": 0.0, "upsert": 0.0}
        self.rows = dict.fromkeys(self.seconds, 0)
        for name in self.seconds:
            setattr(store, name, self._timed(name, getattr(store, name)))

    def _timed(self, name, fn):
        def call(first, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(first, *args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - t0
                self.rows[name] += len(first)

        return call

    def reset(self) -> None:
        for name in self.seconds:
            self.seconds[name], self.rows[name] = 0.0, 0

    def split(self, total: float) -> str:
        parts = [f"{name} {self.seconds[name]:.1f} s ({self.rows[name]:,} rows)" for name in self.seconds]
        rest = total - sum(self.seconds.values())
        return f"{total:.1f} s = " + ", ".join(parts) + f", the rest {rest:.1f} s"


def test_metrics(store, test_q, test_answers, row_of) -> tuple[dict, list[list[str]], float]:
    t0 = time.perf_counter()
    found, _ = store.search(test_q, 10)
    took = time.perf_counter() - t0
    idx = np.array([[row_of(d) for d in r] + [-1] * (10 - len(r)) for r in found])
    m10, m1 = per_query(idx, test_answers, k=10), per_query(idx, test_answers, k=1)
    metrics = {"ndcg@10": m10["ndcg"].mean(), "mrr@10": m10["mrr"].mean(), "hit@1": m1["hit"].mean()}
    return metrics, found, took


def run_index(label, store, timed, q, reference, backup: Path) -> dict:
    """Fit, apply, test before/after, roll back; prints one block; returns gamma, moved and rankings."""
    row_of = lambda d: int(d.split("-")[1])  # noqa: E731
    before, found_before, _ = test_metrics(store, q["test_q"], q["test_a"], row_of)
    timed.reset()
    t0 = time.perf_counter()
    fit = fit_from_store(store, (q["train_q"], q["train_ids"]), (q["val_q"], q["val_ids"]), method="M")
    fit_s = time.perf_counter() - t0
    fit_split = timed.split(fit_s)
    after_fit = rss_mb()
    timed.reset()
    t0 = time.perf_counter()
    report = apply_to_store(store, fit, backup=backup)
    apply_s = time.perf_counter() - t0
    apply_split = timed.split(apply_s)
    after, found_after, search_s = test_metrics(store, q["test_q"], q["test_a"], row_of)
    t0 = time.perf_counter()
    rollback_store(store, backup)
    rollback_s = time.perf_counter() - t0
    backup.unlink()
    same_gamma = bool(np.isclose(fit.gamma_, reference["gamma"], rtol=1e-6, atol=0))
    same_moved = sorted(fit.moved_ids) == reference["moved"]
    print(f"--- {label}")
    print(f"fit_from_store (NUDGE-M): {fit_split}")
    print(
        f"  gamma {fit.gamma_:.6g} (in memory {reference['gamma']:.6g}: {'same' if same_gamma else 'DIFFERENT'}), "
        f"validation score {fit.val_score_:.4f} (in memory {reference['val_score']:.4f}), "
        f"{fit.moved_.size:,} moved ({'the same documents' if same_moved else 'NOT the same documents'}), "
        f"{fit.search_['searches']:,} searches, {fit.search_['candidates']:,} candidates fetched"
    )
    print(f"apply_to_store: {apply_split}; wrote {report.n_written:,} vectors")
    print(f"test search (1 call per 64 queries): {len(q['test_q']):,} queries in {search_s:.1f} s")
    print(f"rollback_store: {rollback_s:.1f} s")
    print(f"kit process: resident {after_fit[0]:,.0f} MB after the fit, peak so far {rss_mb()[1]:,.0f} MB")
    print(server_memory())
    for name in before:
        print(
            f"  test {name:<8} before {before[name]:.4f}  after {after[name]:.4f}  ({after[name] - before[name]:+.4f})"
        )
    return {
        "gamma": fit.gamma_,
        "moved": set(fit.moved_ids),
        "before": found_before,
        "after": found_after,
        "metrics": (before, after),
        "val": fit.val_score_,
    }


def use_ivf(store, rows: int, nlist: int, timeout: float) -> float:
    """Replace the collection's index by IVF_FLAT and load it again; returns the seconds it took."""
    client, name = store.client, store.collection
    t0 = time.perf_counter()
    client.release_collection(name)
    for index in client.list_indexes(name):
        client.drop_index(name, index)
    params = client.prepare_index_params()
    params.add_index(field_name="vector", index_type="IVF_FLAT", metric_type="IP", params={"nlist": nlist})
    client.create_index(name, params)
    deadline = time.monotonic() + timeout
    while True:
        info = client.describe_index(name, client.list_indexes(name)[0])
        if int(info.get("pending_index_rows", 0)) == 0 and int(info.get("indexed_rows", 0)) >= rows:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"IVF index not built within {timeout:g} s: {info}")
        time.sleep(2)
    client.load_collection(name)
    return time.perf_counter() - t0


def recall(exact: list[list[str]], approx: list[list[str]]) -> float:
    return float(np.mean([len(set(a) & set(e)) / len(e) for e, a in zip(exact, approx, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uri", default=os.environ.get("NUDGE_MILVUS_URI", "http://127.0.0.1:19530"))
    parser.add_argument("--n", type=int, default=500_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--train", type=int, default=5_000)
    parser.add_argument("--val", type=int, default=1_000)
    parser.add_argument("--test", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--offset", type=float, default=1.5, help="make_retrieval_problem's offset (1.5)")
    parser.add_argument("--query-noise", type=float, default=1.5, help="make_retrieval_problem's query_noise (1.5)")
    parser.add_argument("--batch", type=int, default=5_000, help="rows per insert while loading")
    parser.add_argument("--nlist", type=int, default=1024, help="IVF_FLAT clusters")
    parser.add_argument("--index-timeout", type=float, default=1800.0)
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)  # the loading subprocess
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        load(args)
        return

    start_rss = rss_mb()[0]
    print(f"machine: {machine()}")
    print(
        f"nudge {nudge.__version__}; Milvus server at {args.uri}; N={args.n:,}, d={args.dim}, float32; "
        f"{args.train:,} training, {args.val:,} validation, {args.test:,} test queries (make_retrieval_problem, "
        f"offset {args.offset}, query_noise {args.query_noise}, seed {args.seed}); NUDGE-M, k=1"
    )
    with tempfile.TemporaryDirectory(prefix="nudge-bench-milvus-") as tmp:
        work = Path(tmp)
        argv = [sys.executable, __file__, "--load", "--work", tmp, *sys.argv[1:]]
        subprocess.run(argv, check=True)
        ref = json.loads((work / "reference.json").read_text())
        print(
            f"load (separate process): corpus made in {ref['made_s']:.1f} s ({ref['corpus_mb']:,.0f} MB), "
            f"{ref['count']:,} rows loaded and flushed in {ref['load_s']:.1f} s; in-memory Nudge('M').fit "
            f"{ref['fit_s']:.1f} s (gamma {ref['gamma']:.6g}); that process's peak {ref['peak_mb']:,.0f} MB"
        )
        print(server_memory())
        saved = np.load(work / "queries.npz")
        q = {}
        for part in ("train", "val", "test"):
            q[f"{part}_q"] = saved[f"{part}_q"]
            q[f"{part}_a"] = json.loads(str(saved[f"{part}_a"]))
            q[f"{part}_ids"] = [[f"doc-{j}" for j in row] for row in q[f"{part}_a"]]
        store = MilvusStore(COLLECTION, uri=args.uri)
        try:
            rows = store.count()
            timed = Timed(store)
            print(f"kit process before fitting: resident {rss_mb()[0]:,.0f} MB (after imports: {start_rss:,.0f} MB)")
            flat = run_index("FLAT (exact) index", store, timed, q, ref, work / "backup.npz")
            took = use_ivf(store, rows, args.nlist, args.index_timeout)
            print(f"--- index replaced by IVF_FLAT (nlist {args.nlist}) and loaded in {took:.1f} s")
            ivf = run_index(
                f"IVF_FLAT (nlist {args.nlist}, server's default nprobe)", store, timed, q, ref, work / "backup.npz"
            )
            shared = len(flat["moved"] & ivf["moved"])
            print("--- approximate against exact")
            print(
                f"gamma: IVF {ivf['gamma']:.6g} vs FLAT {flat['gamma']:.6g} ({ivf['gamma'] / flat['gamma'] - 1:+.2%}); "
                f"validation score {ivf['val']:.4f} vs {flat['val']:.4f}; moved {len(ivf['moved']):,} vs "
                f"{len(flat['moved']):,}, {shared:,} in common"
            )
            print(
                f"test recall@10 of IVF against FLAT: before NUDGE {recall(flat['before'], ivf['before']):.4f}, "
                f"after {recall(flat['after'], ivf['after']):.4f}"
            )
            for name in flat["metrics"][0]:
                fb, fa = (m[name] for m in flat["metrics"])
                ib, ia = (m[name] for m in ivf["metrics"])
                print(
                    f"  test {name:<8} FLAT {fb:.4f} -> {fa:.4f} ({fa - fb:+.4f})   "
                    f"IVF {ib:.4f} -> {ia:.4f} ({ia - ib:+.4f})"
                )
            print(f"kit process peak resident memory: {rss_mb()[1]:,.0f} MB (corpus array: {ref['corpus_mb']:,.0f} MB)")
        finally:
            store.client.drop_collection(COLLECTION)
            store.close()


if __name__ == "__main__":
    main()
