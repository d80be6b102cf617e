"""Monitoring: evaluate document embeddings on labelled queries, before against after (notebook 05).

One call gives the numbers the kit reports everywhere (demo, datasheet, notebooks): hit@1,
MRR@10, nDCG@10 and recall@10 on a query set, plus each query's first relevant rank so the
queries that fine-tuning fixed or broke can be listed.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .metrics import per_query, rank_changes
from .pairs import QuerySet, as_query_set
from .retrieval import first_relevant_rank, search

__all__ = ["compare", "evaluate_embeddings", "format_table"]

COLUMNS = ("hit@1", "mrr@10", "ndcg@10", "recall@10")


def evaluate_embeddings(doc_embeddings: np.ndarray, queries: QuerySet, *, k: int = 10, metric: str = "dot") -> dict:
    """Mean hit@1, MRR@k, nDCG@k and recall@k of ``queries`` against ``doc_embeddings``.

    Parameters
    ----------
    doc_embeddings : ndarray, shape (N, d)
    queries : QuerySet (or a tuple/dict accepted by :func:`nudge.as_query_set`)
        Query embeddings (n, d) and relevant document rows.
    k : int
        Cut-off of MRR, nDCG and recall.
    metric : {"dot", "cosine"}
        Retrieval score; keep "dot" for NUDGE-M output.

    Returns
    -------
    dict
        Metric name -> mean value, and ``"ranks"``: ndarray (n,) of first relevant ranks.
    """
    qs = as_query_set(queries, "queries")
    idx, _ = search(qs.embeddings, doc_embeddings, k=k, metric=metric)
    m = per_query(idx, qs.answers, k=k)
    top1 = per_query(idx, qs.answers, k=1)
    return {
        "hit@1": float(top1["hit"].mean()),
        f"mrr@{k}": float(m["mrr"].mean()),
        f"ndcg@{k}": float(m["ndcg"].mean()),
        f"recall@{k}": float(m["recall"].mean()),
        "ranks": first_relevant_rank(qs.embeddings, doc_embeddings, qs.answers, metric=metric),
    }


def evaluate_store(store, queries: QuerySet, doc_ids, *, k: int = 10) -> dict:
    """Like :func:`evaluate_embeddings`, but retrieving with a vector store's own search.

    Parameters
    ----------
    store : nudge.production.stores.VectorStore
        Holds the documents under the ids ``doc_ids``.
    queries : QuerySet
        Query embeddings (n, d); answers are row indices into ``doc_ids``.
    doc_ids : sequence of str
        The id of each document row.

    Returns
    -------
    dict
        Mean hit@1, MRR@k, nDCG@k and recall@k, and ``"top"``: (n, k) array of retrieved rows.
    """
    qs = as_query_set(queries, "queries")
    row = {d: i for i, d in enumerate(doc_ids)}
    ids, _ = store.search(qs.embeddings, k=k)
    unknown = {i for r in ids for i in r if i not in row}
    if unknown:
        raise ValueError(f"store returned ids that are not in doc_ids, e.g. {sorted(unknown)[:3]}")
    top = np.array([[row[i] for i in r] for r in ids], dtype=np.int64)
    m, top1 = per_query(top, qs.answers, k=k), per_query(top, qs.answers, k=1)
    return {
        "hit@1": float(top1["hit"].mean()),
        f"mrr@{k}": float(m["mrr"].mean()),
        f"ndcg@{k}": float(m["ndcg"].mean()),
        f"recall@{k}": float(m["recall"].mean()),
        "top": top,
    }


def compare(before: Mapping, after: Mapping, k: int = 1) -> dict[str, np.ndarray]:
    """Queries fixed / broken at cut-off ``k`` between two :func:`evaluate_embeddings` results."""
    return rank_changes(before["ranks"], after["ranks"], k=k)


def format_table(rows: Mapping[str, Mapping], columns=COLUMNS, extra: Mapping[str, Mapping] | None = None) -> str:
    """A plain-text table: one row per name, one column per metric (3 decimals).

    ``extra`` adds free-form columns per row (e.g. gamma), shown after the metrics.
    """
    extra = extra or {}
    extra_cols = list(dict.fromkeys(c for v in extra.values() for c in v))
    head = ["", *columns, *extra_cols]
    body = []
    for name, vals in rows.items():
        cells = [name, *(f"{vals[c]:.3f}" for c in columns)]
        cells += [str(extra.get(name, {}).get(c, "")) for c in extra_cols]
        body.append(cells)
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]

    def line(cells):
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, body)])
