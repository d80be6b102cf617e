"""Speed and memory of NUDGE fitting against one ``val_queries @ corpus.T`` pass.

For d = 384 and N = 10k, 100k and 1M documents (5k training and 1k validation queries,
seeded synthetic data with topic structure, float32), prints:

* the time of one ``val_queries @ corpus.T`` matrix product (the floor any exact method pays
  to score the validation queries against the corpus);
* the time of ``Nudge("M").fit`` and ``Nudge("N").fit`` (directions, gamma selection on the
  validation queries, SHA-256 fingerprint of the input) and their ratio to the matrix product;
* the time of ``fit_transform`` (the same plus the fine-tuned output array, in the same pass);
* the peak memory of ``fit_transform`` (tracemalloc, in a separate run from the timing) as a
  multiple of the corpus array: input + output + working memory.

Times are the best of ``--repeats`` rounds (each round runs every job once, back to back);
ratios divide best times.

Targets (issue 2): NUDGE-M within 1.5x and NUDGE-N within 2x of the product at 100k and 1M;
both well under a second at 10k; peak memory at 1M within 2.2x of the corpus.

Usage: ``python benchmarks/bench_fit.py [--sizes 10000 100000 1000000] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import time
import tracemalloc

import numpy as np

import nudge
from nudge.teaching.synthetic import make_retrieval_problem


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = float("nan")
    blas = ""
    try:
        from threadpoolctl import threadpool_info

        info = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if info:
            blas = (
                f", BLAS {info[0].get('internal_api')} {info[0].get('version')} ({info[0].get('num_threads')} threads)"
            )
    except ImportError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM; Python {platform.python_version()}, "
        f"numpy {np.__version__}{blas}"
    )


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
        del result
    return min(times)


def peak_ratio(fn, corpus_bytes: int) -> float:
    gc.collect()
    tracemalloc.start()
    result = fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del result
    return (corpus_bytes + peak) / corpus_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--train", type=int, default=5_000)
    parser.add_argument("--val", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    print(f"machine: {machine()}")
    print(f"nudge {nudge.__version__}; d={args.dim}, {args.train} training and {args.val} validation queries, float32")
    header = (
        f"{'N':>9} | {'moved':>5} | {'Q@D.T s':>7} | {'M fit s':>7} | {'M/QD':>4} | {'M fit+out':>9} | "
        f"{'N fit s':>7} | {'N/QD':>4} | {'N fit+out':>9} | {'mem M':>5} | {'mem N':>5}"
    )
    print(header)
    print("-" * len(header))
    for n in args.sizes:
        p = make_retrieval_problem(n, args.dim, args.train, args.val, 0, seed=n)
        e, val_q = p.embeddings, p.val.embeddings
        repeats = args.repeats if n < 1_000_000 else max(1, args.repeats - 1)
        jobs = {
            "mm": lambda e=e, q=val_q: q @ e.T,
            "M fit": lambda e=e, p=p: nudge.Nudge("M").fit(e, p.train, p.val),
            "M out": lambda e=e, p=p: nudge.Nudge("M").fit_transform(e, p.train, p.val),
            "N fit": lambda e=e, p=p: nudge.Nudge("N").fit(e, p.train, p.val),
            "N out": lambda e=e, p=p: nudge.Nudge("N").fit_transform(e, p.train, p.val),
        }
        # Rounds interleave the jobs so that slow phases of the machine hit them alike.
        times = {name: [] for name in jobs}
        for _ in range(repeats):
            for name, job in jobs.items():
                times[name].append(best_time(job, 1))
        best = {name: min(values) for name, values in times.items()}
        ratio = {name: best[name] / best["mm"] for name in jobs}
        t_mm = best["mm"]
        row = {
            m: (best[f"{m} fit"], ratio[f"{m} fit"], best[f"{m} out"], peak_ratio(jobs[f"{m} out"], e.nbytes))
            for m in "MN"
        }
        moved = nudge.Nudge("M", gamma=0.1).fit(e, p.train).support_.size
        (fm, rm, tm, mm), (fn, rn, tn, mn) = row["M"], row["N"]
        print(
            f"{n:>9,} | {moved:>5} | {t_mm:>7.3f} | {fm:>7.3f} | {rm:>4.2f} | {tm:>9.3f} | "
            f"{fn:>7.3f} | {rn:>4.2f} | {tn:>9.3f} | {mm:>4.2f}x | {mn:>4.2f}x",
            flush=True,
        )
        del p, e, val_q
        gc.collect()


if __name__ == "__main__":
    main()
