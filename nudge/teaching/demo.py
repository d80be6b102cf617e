"""The whole NUDGE pipeline, headless, on the bundled Tessera data: ``python -m nudge.teaching.demo``.

Phases: (1) the labelled pairs and their fixed split, (2) the precomputed all-MiniLM-L6-v2
embeddings, (3-4) NUDGE-M and NUDGE-N fitted on train, gamma chosen on validation, (5) the
moved vectors evaluated on the hold-out test questions, before and after.
"""

from __future__ import annotations

import argparse
import time

from ..estimator import Nudge
from ..evaluation import compare, evaluate_embeddings, format_table
from .bundled import load_tessera


def run() -> dict:
    """Run the pipeline; returns the table rows, the fitted models and timings."""
    data = load_tessera()
    train, val, test = data.query_set("train"), data.query_set("val"), data.query_set("test")
    docs = data.doc_embeddings
    results = {"no fine-tuning": evaluate_embeddings(docs, test)}
    models, info = {}, {}
    for method in ("M", "N"):
        t0 = time.perf_counter()
        model = Nudge(method).fit(docs, train, val)
        seconds = time.perf_counter() - t0
        name = f"NUDGE-{method}"
        results[name] = evaluate_embeddings(model.transform(docs), test)
        changes = compare(results["no fine-tuning"], results[name], k=1)
        models[name] = model
        info[name] = {
            "gamma": f"{model.gamma_:.4g}",
            "moved": f"{model.moved_.size}/{docs.shape[0]}",
            "fixed@1": str(changes["fixed"].size),
            "broken@1": str(changes["broken"].size),
            "fit s": f"{seconds:.3f}",
        }
    sizes = {name: len(data.split[name]) for name in ("train", "val", "test")}
    return {"results": results, "info": info, "models": models, "sizes": sizes, "n_docs": docs.shape[0]}


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(prog="python -m nudge.teaching.demo", description=__doc__).parse_args(argv)
    out = run()
    s = out["sizes"]
    print(
        f"Tessera docs: {out['n_docs']} passages; questions: {s['train']} train, {s['val']} validation "
        f"(gamma only), {s['test']} hold-out test; embeddings: all-MiniLM-L6-v2 (precomputed)\n"
    )
    print("Hold-out test, before and after:")
    print(format_table(out["results"], extra=out["info"]))


if __name__ == "__main__":
    main()
