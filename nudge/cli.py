"""The command line: ``python -m nudge`` (or the installed ``nudge`` command).

::

    nudge fit DATA --out RUN        # split, embed, fit NUDGE, write the artefacts to RUN/
    nudge evaluate RUN              # hold-out test before and after, fixed and broken questions

``DATA`` is any dataset the kit reads: a LlamaIndex JSON file, a BEIR folder, or a CSV/JSONL of
(query, document) pairs. Bad arguments and files give a one-line error, not a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__
from ._io import atomic_write, load_embeddings, save_embeddings
from .datasets import load_dataset
from .estimator import Nudge
from .evaluation import compare, evaluate_embeddings, format_table
from .pairs import QuerySet, split_queries

RUN_FILE = "run.json"


def _embedder(name: str, cache_dir: str | None):
    if name == "tessera":
        from .bundled import tessera_embedder

        return tessera_embedder()
    if name == "local":
        from .embedders import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(progress=True)
    if name == "openai":
        from .embedders import OpenAIEmbedder

        return OpenAIEmbedder(cache_dir=cache_dir)
    raise ValueError(f"--embedder must be tessera, local or openai, got {name!r}")


def _write_json(path: Path, obj: object) -> None:
    atomic_write(path, lambda fh: fh.write((json.dumps(obj, indent=2) + "\n").encode("utf-8")))


def cmd_fit(args: argparse.Namespace) -> None:
    dataset, report = load_dataset(args.data)
    report.raise_if_errors()
    qids = dataset.answered_query_ids
    split = split_queries(len(qids), val_fraction=args.val_fraction, test_fraction=args.test_fraction, seed=args.seed)
    parts = {name: [qids[i] for i in getattr(split, name)] for name in ("train", "val", "test")}
    print(f"{len(qids)} labelled questions: {', '.join(f'{len(v)} {k}' for k, v in parts.items())}", flush=True)
    embedder = _embedder(args.embedder, args.cache_dir)
    doc_ids = dataset.doc_ids
    docs = embedder.embed_documents([dataset.corpus[d] for d in doc_ids])
    queries = embedder.embed_queries([dataset.queries[q] for q in qids])
    row = {q: i for i, q in enumerate(qids)}

    def query_set(ids):
        return QuerySet(queries[[row[q] for q in ids]], dataset.answers(ids, doc_ids))

    model = Nudge(args.method, k=args.k).fit(docs, query_set(parts["train"]), query_set(parts["val"]))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "nudge_model.npz")
    save_embeddings(out / "documents.npz", docs, doc_ids)
    save_embeddings(out / "nudged_documents.npz", model.transform(docs), doc_ids)
    save_embeddings(out / "queries.npz", queries, qids)
    _write_json(
        out / RUN_FILE,
        {"data": str(Path(args.data).resolve()), "embedder": embedder.model_name, "split": parts, "nudge": __version__},
    )
    print(
        f"NUDGE-{model.method_}: gamma = {model.gamma_:.4g}, validation score {model.val_score_:.3f}, "
        f"{model.moved_.size} of {len(doc_ids)} documents moved; wrote {out}"
    )


def cmd_evaluate(args: argparse.Namespace) -> None:
    run_dir = Path(args.run)
    if not (run_dir / RUN_FILE).is_file():
        raise ValueError(f"{run_dir} is not a run folder (no {RUN_FILE}); create one with `nudge fit`")
    run = json.loads((run_dir / RUN_FILE).read_text())
    dataset, _ = load_dataset(run["data"])
    docs, doc_ids = load_embeddings(run_dir / "documents.npz")
    model = Nudge.load(run_dir / "nudge_model.npz", embeddings=docs)
    queries, qids = load_embeddings(run_dir / "queries.npz")
    row = {q: i for i, q in enumerate(qids)}
    test_ids = run["split"]["test"]
    test = QuerySet(queries[[row[q] for q in test_ids]], dataset.answers(test_ids, doc_ids))
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
    changes = compare(before, after, k=1)
    print(f"{name} fixed {changes['fixed'].size} and broke {changes['broken'].size} test questions at rank 1")
    for label in ("fixed", "broken"):
        for i in changes[label][: args.show]:
            print(f"  {label}: rank {before['ranks'][i]} -> {after['ranks'][i]}  {dataset.queries[test_ids[i]]}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nudge", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"nudge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fit = sub.add_parser("fit", help="split, embed and fit NUDGE; write the artefacts to a run folder")
    fit.add_argument("data", help="LlamaIndex JSON, BEIR folder, or CSV/JSONL of (query, document) pairs")
    fit.add_argument("--out", required=True, help="run folder to write (created if missing)")
    fit.add_argument("--method", default="N", choices=["M", "N"], help="NUDGE-M or NUDGE-N (default N)")
    fit.add_argument("--k", type=int, default=1, help="gamma maximises the validation share of answers in the top k")
    fit.add_argument(
        "--embedder", default="local", help="tessera (bundled vectors), local (all-MiniLM-L6-v2) or openai"
    )
    fit.add_argument("--cache-dir", help="embedding cache folder for --embedder openai")
    fit.add_argument("--seed", type=int, default=0, help="seed of the question split (default 0)")
    fit.add_argument("--val-fraction", type=float, default=0.2, help="share of non-test questions for gamma (0.2)")
    fit.add_argument("--test-fraction", type=float, default=0.2, help="share of questions held out for testing (0.2)")
    fit.set_defaults(func=cmd_fit)

    ev = sub.add_parser("evaluate", help="hold-out test of a run: before and after, fixed and broken questions")
    ev.add_argument("run", help="run folder written by `nudge fit`")
    ev.add_argument("--k", type=int, default=10, help="cut-off of MRR, nDCG and recall (default 10)")
    ev.add_argument("--show", type=int, default=5, help="fixed and broken questions to list (default 5)")
    ev.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (ValueError, ImportError, OSError, KeyError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"nudge {args.command}: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
