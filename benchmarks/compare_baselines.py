"""Known against never-asked test questions: no fine-tuning, the popularity control, the guide's
formula, NUDGE-M and NUDGE-N, each with its paired interval against no fine-tuning.

Bundled data: the fixed split (``make demo`` prints the same). SciFact (``../shared/data/scifact``,
all-MiniLM-L6-v2 vectors): training = 80% of BEIR's train queries, validation = the other seeded
20%, test = BEIR's 300 test queries, split into known / never asked by
:func:`nudge.evaluation.split_by_known`; one seed, then the mean nDCG@10 over ``--seeds`` seeds.

Usage: ``python benchmarks/compare_baselines.py [--seeds 10] [--folder ../shared/data/scifact]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from nudge import Nudge
from nudge.baselines import GuideNudge, PopularityControl
from nudge.evaluation import evaluate_by_group, evaluate_embeddings, format_table
from nudge.teaching.learning_curve import scifact_protocol

ROOT = Path(__file__).resolve().parents[1]
MAKERS = {
    "popularity control": PopularityControl,
    "guide's formula": GuideNudge,
    "NUDGE-M": lambda: Nudge("M"),
    "NUDGE-N": lambda: Nudge("N"),
}


def fit_all(docs, train, val) -> tuple[dict, dict]:
    """Transformed embeddings per method, and the chosen step per method."""
    out, steps = {"no fine-tuning": docs}, {}
    for name, make in MAKERS.items():
        model = make().fit(docs, train, val)
        out[name] = model.transform(docs)
        steps[name] = getattr(model, "factor_", None) or model.gamma_
    return out, steps


def report(title: str, embeddings: dict, test, train) -> None:
    everything = {name: evaluate_embeddings(e, test) for name, e in embeddings.items()}
    print(f"\n{title}: all {len(test)} test questions")
    print(format_table(everything, interval="ndcg@10"))
    groups = {name: evaluate_by_group(e, test, train) for name, e in embeddings.items()}
    for group in ("known", "never asked"):
        rows = {name: g[group] for name, g in groups.items()}
        n = rows["no fine-tuning"]["n"]
        if n == 0:
            print(f"\n{title}: no {group} test question")
            continue
        for metric in ("hit@1", "ndcg@10"):
            print(f"\n{title}: {group} ({n} questions), {metric} interval")
            print(format_table(rows, interval=metric))


def scifact(folder: Path, seeds: int) -> None:
    corpus, test, sets = scifact_protocol(folder)
    means = {}
    for seed in range(seeds):
        train, val = sets(seed)
        embeddings, steps = fit_all(corpus, train, val)
        if seed == 0:
            print(f"\nSciFact seed 0 steps: {', '.join(f'{n} {s:.4g}' for n, s in steps.items())}")
            report("SciFact, seed 0", embeddings, test, train)
        for name, e in embeddings.items():
            means.setdefault(name, []).append(evaluate_embeddings(e, test)["ndcg@10"])
    print(f"\nSciFact nDCG@10 over {seeds} seeded validation splits (all 300 test questions):")
    for name, values in means.items():
        print(f"  {name:20s} mean {np.mean(values):.3f}  std {np.std(values):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    default = next(
        (p for p in (ROOT.parent / "shared" / "data" / "scifact", Path("/work/shared/data/scifact")) if p.is_dir()),
        ROOT.parent / "shared" / "data" / "scifact",
    )
    parser.add_argument("--folder", type=Path, default=default)
    args = parser.parse_args()
    from nudge.teaching.bundled import load_tessera

    data = load_tessera()
    train, val = data.query_set("train"), data.query_set("val")
    embeddings, steps = fit_all(data.doc_embeddings, train, val)
    print(f"Bundled data steps: {', '.join(f'{n} {s:.4g}' for n, s in steps.items())}")
    held_out = data.query_set(data.split["test"] + data.split["test_never_asked"])
    report("Bundled data", embeddings, held_out, train)
    if (args.folder / "qrels" / "test.tsv").is_file():
        scifact(args.folder, args.seeds)
    else:
        print(f"\nSciFact not found at {args.folder}: bundled data only")


if __name__ == "__main__":
    main()
