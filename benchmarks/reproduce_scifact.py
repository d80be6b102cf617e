"""The SciFact figures of the math note, recomputed: nDCG@10 of no fine-tuning, NUDGE-M, NUDGE-N.

Protocol: training = 80% of BEIR's SciFact train queries, validation = the other seeded 20%
(``nudge.split_queries(..., test_fraction=0, seed=s)``), test = BEIR's 300 test queries;
all-MiniLM-L6-v2 vectors from ``../shared/data/scifact``; ``NUDGEM``/``NUDGEN`` (the reference's
behaviour). Prints the mean and spread over seeds. ``tests/test_scifact.py`` checks the same.

Usage: ``python benchmarks/reproduce_scifact.py [--seeds 40] [--folder ../shared/data/scifact]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from nudge import NUDGEM, NUDGEN
from nudge.evaluation import evaluate_embeddings
from nudge.teaching.learning_curve import scifact_protocol

ROOT = Path(__file__).resolve().parents[1]


def protocol(folder: Path):
    """``(corpus, test, sets)`` of :func:`nudge.teaching.learning_curve.scifact_protocol` (one place)."""
    return scifact_protocol(folder)


def reproduce(folder: Path, seeds: int = 40) -> dict:
    """nDCG@10 on SciFact's test queries: ``{"base": float, "M": [per seed], "N": [per seed]}``."""
    corpus, test, sets = protocol(folder)
    out = {"base": evaluate_embeddings(corpus, test)["ndcg@10"], "M": [], "N": [], "n_test": len(test)}
    for seed in range(seeds):
        train, val = (s.to_dict() for s in sets(seed))
        out["M"].append(evaluate_embeddings(NUDGEM().finetune_embeddings(corpus, train, val), test)["ndcg@10"])
        out["N"].append(evaluate_embeddings(NUDGEN().finetune_embeddings(corpus, train, val), test)["ndcg@10"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--folder", type=Path, default=ROOT.parent / "shared" / "data" / "scifact")
    args = parser.parse_args()
    r = reproduce(args.folder, args.seeds)
    print(f"SciFact, {r['n_test']} test queries, {args.seeds} seeded validation splits")
    print(f"nDCG@10 no fine-tuning {r['base']:.3f}")
    for method in ("M", "N"):
        v = r[method]
        print(f"nDCG@10 NUDGE-{method} mean {np.mean(v):.3f} (std {np.std(v):.3f}, min {min(v):.3f}, max {max(v):.3f})")


if __name__ == "__main__":
    main()
