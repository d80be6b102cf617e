"""Monitoring: hit@k, recall@k, MRR@k and nDCG@k over ranked result lists (notebook 05).

``relevant`` is a list with one entry per query: either a list of relevant document indices
(binary relevance, every grade 1) or a ``{document index: grade}`` mapping (graded relevance).

Graded nDCG (:data:`NDCG_FORM`), the BEIR / trec_eval convention: gain = the grade itself
(linear, not ``2**grade - 1``), discount ``1 / log2(rank + 1)`` for ranks 1..k, and the ideal DCG
from the query's OWN grades sorted in decreasing order (cut at k). With binary labels this is
exactly the binary nDCG. hit@k, recall@k and MRR@k are binary: a document counts as relevant
when its grade is > 0 (grade 0 is "judged not relevant": gain 0, as if unlabelled).

A query without any grade > 0 has no relevant document: its metrics are undefined (NaN in
:func:`per_query`) and :func:`evaluate` averages over the other queries, warning with their
count (:class:`nudge.diagnostics.DroppedQueryWarning`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from ._validation import check_positive_int
from .diagnostics import DroppedQueryWarning, issue

__all__ = ["METRICS", "NDCG_FORM", "evaluate", "per_query", "rank_changes"]

METRICS = ("hit", "recall", "mrr", "ndcg")
#: The nDCG the kit computes, in words (printed where nDCG is shown).
NDCG_FORM = "nDCG: gain = grade, discount 1/log2(rank+1), ideal from each question's own grades (BEIR/trec_eval)"


def _grades(relevant, n_queries: int) -> list[dict[int, float]]:
    if isinstance(relevant, (str, bytes)) or not isinstance(relevant, Sequence):
        raise ValueError(f"relevant must be a list with one entry per query, got {type(relevant).__name__}")
    if len(relevant) != n_queries:
        raise ValueError(f"relevant has {len(relevant)} entries but retrieved has {n_queries} rows")
    out = []
    for i, rel in enumerate(relevant):
        if isinstance(rel, Mapping):
            grades = {int(d): float(g) for d, g in rel.items()}
        elif isinstance(rel, (Sequence, np.ndarray)) and not isinstance(rel, (str, bytes)):
            grades = {int(d): 1.0 for d in rel}
            if len(grades) != len(rel):
                raise ValueError(f"relevant[{i}] lists a document more than once")
        else:
            raise ValueError(
                f"relevant[{i}] must be a list of indices or a {{index: grade}} dict, got {type(rel).__name__}"
            )
        if any(g < 0 or not np.isfinite(g) for g in grades.values()):
            raise ValueError(f"relevant[{i}] has a negative or non-finite grade")
        out.append({d: g for d, g in grades.items() if g > 0})  # may be empty: nothing relevant
    return out


def per_query(retrieved: np.ndarray, relevant, k: int = 10) -> dict[str, np.ndarray]:
    """Per-query hit@k, recall@k, MRR@k and nDCG@k.

    Parameters
    ----------
    retrieved : ndarray of int, shape (n_q, >= k)
        Ranked document indices per query, best first (e.g. from :func:`nudge.retrieval.search`).
    relevant : list, length n_q
        Relevant documents per query (index lists, or ``{index: grade}`` dicts).
    k : int
        Cut-off.

    Returns
    -------
    dict of str to ndarray of float64, shape (n_q,)
        Keys ``"hit"``, ``"recall"``, ``"mrr"``, ``"ndcg"`` (graded nDCG: see the module's
        docstring). NaN for a query without a document of grade > 0.
    """
    retrieved = np.asarray(retrieved)
    if retrieved.ndim != 2 or not np.issubdtype(retrieved.dtype, np.integer):
        raise ValueError(
            f"retrieved must be a 2-D integer array (n_queries, k); got {retrieved.dtype} shape {retrieved.shape}"
        )
    k = check_positive_int(k, "k")
    if retrieved.shape[1] < k:
        raise ValueError(f"retrieved has only {retrieved.shape[1]} results per query, fewer than k={k}")
    grades = _grades(relevant, retrieved.shape[0])
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    res = {m: np.zeros(retrieved.shape[0]) for m in METRICS}
    for i, (row, g) in enumerate(zip(retrieved[:, :k], grades, strict=True)):
        if not g:
            for m in METRICS:
                res[m][i] = np.nan
            continue
        gains = np.array([g.get(int(d), 0.0) for d in row])
        hits = gains > 0
        if hits.any():
            res["hit"][i] = 1.0
            res["mrr"][i] = 1.0 / (np.argmax(hits) + 1)
        res["recall"][i] = hits.sum() / len(g)
        ideal = np.sort(np.fromiter(g.values(), float))[::-1][:k]
        res["ndcg"][i] = (gains @ discount) / (ideal @ discount[: ideal.size])
    return res


def evaluate(retrieved: np.ndarray, relevant, k: int = 10) -> dict[str, float]:
    """Mean hit@k, recall@k, MRR@k and nDCG@k over queries (keys like ``"ndcg@10"``).

    Queries without a relevant document (no grade > 0) are left out of the means, with a
    :class:`nudge.diagnostics.DroppedQueryWarning` giving their count (NaN when none is left).
    """
    each = per_query(retrieved, relevant, k)
    undefined = np.isnan(each["hit"])
    if undefined.any():
        issue(
            f"{int(undefined.sum())} of {undefined.size} queries have no relevant document (grade > 0) and were "
            "left out of the means",
            DroppedQueryWarning,
        )
    kept = ~undefined
    return {f"{m}@{k}": float(v[kept].mean()) if kept.any() else math.nan for m, v in each.items()}


def rank_changes(before: np.ndarray, after: np.ndarray, k: int = 1) -> dict[str, np.ndarray]:
    """Which queries fine-tuning fixed or broke at cut-off ``k``.

    Parameters
    ----------
    before, after : ndarray of int, shape (n_q,)
        1-based rank of each query's best relevant document (see
        :func:`nudge.retrieval.first_relevant_rank`).
    k : int
        A query is a hit when its rank is <= k.

    Returns
    -------
    dict of str to ndarray of int64
        ``"fixed"`` (miss -> hit), ``"broken"`` (hit -> miss), ``"improved"`` and ``"worsened"``
        (rank moved at all) hold query positions.
    """
    before, after = np.asarray(before), np.asarray(after)
    if before.shape != after.shape or before.ndim != 1:
        raise ValueError(
            f"before and after must be 1-D arrays of equal length; got shapes {before.shape} and {after.shape}"
        )
    k = check_positive_int(k, "k")
    return {
        "fixed": np.flatnonzero((before > k) & (after <= k)),
        "broken": np.flatnonzero((before <= k) & (after > k)),
        "improved": np.flatnonzero(after < before),
        "worsened": np.flatnonzero(after > before),
    }
