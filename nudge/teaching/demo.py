"""The whole NUDGE pipeline, headless, on the bundled Tessera data: ``python -m nudge.teaching.demo``.

Phases: (1) the labelled pairs and their fixed split, (2) the precomputed all-MiniLM-L6-v2
embeddings, (3-4) NUDGE-M and NUDGE-N fitted on train, gamma chosen on validation, next to two
baselines fitted the same way (the popularity control and the guide's formula, see
:mod:`nudge.baselines`), (5) the moved vectors evaluated on two hold-out test groups, each
method against no fine-tuning on the same questions (paired interval):

* *known*: questions about passages that have training questions (the 194 ``test`` questions);
* *never asked*: questions about passages nobody asked about in training (``test_never_asked``).
"""

from __future__ import annotations

import argparse
import time

from ..baselines import GuideNudge, PopularityControl
from ..estimator import Nudge
from ..evaluation import (
    GROUPS,
    RULE,
    WHY_P_CAN_DISAGREE,
    compare,
    evaluate_embeddings,
    format_table,
    paired_difference,
    split_by_known,
)
from .bundled import load_tessera

BASE = "no fine-tuning"
METHODS = (BASE, "popularity control", "guide's formula", "NUDGE-M", "NUDGE-N")
#: Metric of the paired interval against no fine-tuning.
INTERVAL = "hit@1"


def run() -> dict:
    """Run the pipeline; returns the tables' rows per group, paired differences, models, timings.

    Keys: ``groups`` (group -> method -> :func:`~nudge.evaluation.evaluate_embeddings` result),
    ``differences`` (group -> method -> metric -> :class:`~nudge.evaluation.PairedDifference`
    against no fine-tuning, for hit@1 and nDCG@10), ``info`` (method -> step, moved passages,
    fixed / broken known questions, fit time), ``results`` (the known group, as before),
    ``models``, ``sizes``, ``n_docs``.
    """
    data = load_tessera()
    train, val = data.query_set("train"), data.query_set("val")
    held_out = data.query_set(data.split["test"] + data.split["test_never_asked"])
    known, never = split_by_known(held_out, train)
    docs = data.doc_embeddings
    makers = {
        "popularity control": PopularityControl,
        "guide's formula": GuideNudge,
        "NUDGE-M": lambda: Nudge("M"),
        "NUDGE-N": lambda: Nudge("N"),
    }
    embeddings, models, seconds = {BASE: docs}, {}, {}
    for name, make in makers.items():
        t0 = time.perf_counter()
        models[name] = make().fit(docs, train, val)
        seconds[name] = time.perf_counter() - t0
        embeddings[name] = models[name].transform(docs)
    groups, differences = {}, {}
    for group, queries in zip(GROUPS, (known, never), strict=True):
        groups[group] = {name: evaluate_embeddings(e, queries) for name, e in embeddings.items()}
        base = groups[group][BASE]["per_query"]
        differences[group] = {
            name: {m: paired_difference(base[m], r["per_query"][m]) for m in ("hit@1", "ndcg@10")}
            for name, r in groups[group].items()
            if name != BASE
        }
    info = {}
    for name, model in models.items():
        changes = compare(groups["known"][BASE], groups["known"][name], k=1)
        step = f"factor {model.factor_:.4g}" if hasattr(model, "factor_") else f"gamma {model.gamma_:.4g}"
        info[name] = {
            "step": step,
            "moved": f"{model.moved_.size}/{docs.shape[0]}",
            "fixed@1": str(changes["fixed"].size),
            "broken@1": str(changes["broken"].size),
            "fit s": f"{seconds[name]:.3f}",
        }
    sizes = {"train": len(train), "val": len(val), "known": len(known), "never asked": len(never)}
    return {
        "groups": groups,
        "differences": differences,
        "results": groups["known"],
        "info": info,
        "models": models,
        "sizes": sizes,
        "n_docs": docs.shape[0],
    }


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(prog="python -m nudge.teaching.demo", description=__doc__).parse_args(argv)
    out = run()
    s = out["sizes"]
    print(
        f"Tessera docs: {out['n_docs']} passages; embeddings: all-MiniLM-L6-v2 (precomputed)\n"
        f"questions: {s['train']} train, {s['val']} validation (to choose gamma / the factor); hold-out test: "
        f"{s['known']} about passages with training questions (known), {s['never asked']} about passages "
        "nobody asked about (never asked)\n"
    )
    print(f"Hold-out test, known passages ({s['known']} questions), each method against no fine-tuning:")
    print(format_table(out["groups"]["known"], interval=INTERVAL))
    print()
    shown = ("step", "moved", "fit s")
    print(
        format_table(
            {n: {} for n in out["info"]},
            columns=(),
            extra={n: {c: v[c] for c in shown} for n, v in out["info"].items()},
        )
    )
    print(f"\nHold-out test, never-asked passages ({s['never asked']} questions):")
    print(format_table(out["groups"]["never asked"], interval=INTERVAL))
    print(
        "\nNUDGE moves only passages that have training questions: it can only help the first group."
        "\nIt may hurt the second: those passages stay where they were while the others move, so they"
        "\ngain rank only when a competitor happens to move away from the question."
        "\nIntervals: paired 95% bootstrap of the difference (same questions); p: exact sign test."
    )
    print(f"Rule: {RULE}.\nThe p-value is supporting information: {WHY_P_CAN_DISAGREE}.")


if __name__ == "__main__":
    main()
