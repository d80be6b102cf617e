"""Monitoring: evaluate document embeddings on labelled queries, before against after (notebook 05).

One call gives the numbers the kit reports everywhere (demo, datasheet, notebooks): hit@1,
MRR@10, nDCG@10 and recall@10 on a query set, plus each query's first relevant rank so the
queries that fine-tuning fixed or broke can be listed, and each query's own scores so two systems
can be compared *on the same queries* with :func:`paired_difference` (is a difference one?).

The kit's one rule of significance (:data:`RULE`, :attr:`PairedDifference.clear`): a difference
is *clear* when its 95% paired interval excludes 0; when the interval contains 0 the data do not
show a difference, which is not evidence that there is none. The exact sign-test p-value is
reported next to it as supporting information (:data:`WHY_P_CAN_DISAGREE`).

Test questions fall in two groups that NUDGE treats very differently (:func:`split_by_known`):
questions about passages that have training questions (*known*: NUDGE moved their answers) and
questions about passages nobody asked about before (*never asked*: NUDGE cannot help them, and
moving the other passages may push them down).

Graded labels (:attr:`nudge.QuerySet.grades`) reach nDCG as they are: gain = grade, discount
``1/log2(rank + 1)``, ideal DCG from the question's own grades (:data:`nudge.metrics.NDCG_FORM`);
hit@1, MRR, recall and ranks count a document as relevant when its grade is > 0. A question with
no document of grade > 0 (e.g. only grade-0 labels: judged, nothing relevant) cannot be
evaluated: it is left out, its position listed in the result's ``"dropped"`` and counted in a
:class:`nudge.diagnostics.DroppedQueryWarning`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ._validation import check_positive_int
from .diagnostics import DroppedQueryWarning, issue
from .metrics import per_query, rank_changes
from .pairs import QuerySet, as_query_set, check_grades
from .retrieval import first_relevant_rank, search

__all__ = [
    "RULE",
    "WHY_P_CAN_DISAGREE",
    "PairedDifference",
    "compare",
    "evaluate_by_group",
    "evaluate_embeddings",
    "format_table",
    "known_mask",
    "mixed_difference",
    "paired_difference",
    "split_by_known",
]

#: The kit's rule of significance, in words (notebooks, self-checks, demo and datasheet use it).
RULE = (
    "a difference is clear when its 95% paired interval excludes 0; when the interval contains 0 the "
    "data do not show a difference (that is not evidence of no difference)"
)
#: Why the exact sign test's p-value (supporting information) can disagree with the interval.
WHY_P_CAN_DISAGREE = (
    "the sign test counts only the questions that changed, so with a handful of them its p-value cannot "
    "be small (4 better / 0 worse gives p=0.125) even when the bootstrap interval, which is approximate "
    "and too narrow for so few changed questions, excludes 0"
)

COLUMNS = ("hit@1", "mrr@10", "ndcg@10", "recall@10")
#: Largest number of non-zero differences for which the sign-flip test enumerates every flip.
EXACT_FLIPS_MAX = 20
_RESAMPLE_BLOCK = 2_000_000  # bootstrap indices drawn at a time (bounds memory)


def _positive(qs: QuerySet) -> list[list[int]]:
    """Per query, the answers with grade > 0 (all of them for binary labels)."""
    if qs.grades is None:
        return [list(a) for a in qs.answers]
    check_grades(qs, "queries")
    return [[d for d, g in zip(a, gr, strict=True) if g > 0] for a, gr in zip(qs.answers, qs.grades, strict=True)]


def _evaluable(queries) -> tuple[QuerySet, np.ndarray]:
    """The queries with a relevant document (grade > 0), and the positions of the others (warned about)."""
    qs = as_query_set(queries, "queries")
    positive = _positive(qs)
    dropped = np.array([i for i, a in enumerate(positive) if len(a) == 0], dtype=np.int64)
    if dropped.size:
        issue(
            f"{dropped.size} of {len(qs)} questions have no relevant document (grade > 0) and were left out of the "
            f"evaluation (positions in the result's 'dropped', first {int(dropped[0])})",
            DroppedQueryWarning,
        )
        qs = _subset(qs, np.setdiff1d(np.arange(len(qs)), dropped))
    return qs, dropped


def _empty_result(k: int, dropped: np.ndarray) -> dict:
    cols = ("hit@1", f"mrr@{k}", f"ndcg@{k}", f"recall@{k}")
    return {
        **dict.fromkeys(cols, math.nan),
        "ranks": np.empty(0, dtype=np.int64),
        "per_query": {c: np.empty(0) for c in cols},
        "dropped": dropped,
    }


def evaluate_embeddings(doc_embeddings: np.ndarray, queries: QuerySet, *, k: int = 10, metric: str = "dot") -> dict:
    """Mean hit@1, MRR@k, nDCG@k and recall@k of ``queries`` against ``doc_embeddings``.

    Parameters
    ----------
    doc_embeddings : ndarray, shape (N, d)
    queries : QuerySet (or a tuple/dict accepted by :func:`nudge.as_query_set`)
        Query embeddings (n, d) and labelled document rows, graded when ``queries.grades`` is set.
    k : int
        Cut-off of MRR, nDCG and recall.
    metric : {"dot", "cosine"}
        Retrieval score; keep "dot" for NUDGE-M output.

    Returns
    -------
    dict
        Metric name -> mean value (nDCG graded: :data:`nudge.metrics.NDCG_FORM`); ``"ranks"``:
        ndarray (n',) of first relevant ranks; ``"per_query"``: metric name -> ndarray (n',) of
        each query's own value (what :func:`paired_difference` compares); ``"dropped"``: ndarray
        of the positions of the queries left out because no document has grade > 0 (usually
        empty; the n' others are evaluated, in order).
    """
    qs, dropped = _evaluable(queries)
    if len(qs) == 0:
        return _empty_result(k, dropped)
    idx, _ = search(qs.embeddings, doc_embeddings, k=k, metric=metric)
    relevance = qs.relevance()
    m = per_query(idx, relevance, k=k)
    top1 = per_query(idx, relevance, k=1)
    each = {"hit@1": top1["hit"], f"mrr@{k}": m["mrr"], f"ndcg@{k}": m["ndcg"], f"recall@{k}": m["recall"]}
    return {
        **{name: float(v.mean()) for name, v in each.items()},
        "ranks": first_relevant_rank(qs.embeddings, doc_embeddings, _positive(qs), metric=metric),
        "per_query": each,
        "dropped": dropped,
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
        Mean hit@1, MRR@k, nDCG@k and recall@k; ``"per_query"``: metric name -> ndarray (n',) of
        each query's own value (what :func:`paired_difference` and ``format_table(...,
        interval=...)`` compare); ``"top"``: (n', k) array of retrieved rows; ``"dropped"``: as
        in :func:`evaluate_embeddings`.
    """
    qs, dropped = _evaluable(queries)
    if len(qs) == 0:
        return {**_empty_result(k, dropped), "top": np.empty((0, k), dtype=np.int64)}
    row = {d: i for i, d in enumerate(doc_ids)}
    ids, _ = store.search(qs.embeddings, k=k)
    unknown = {i for r in ids for i in r if i not in row}
    if unknown:
        raise ValueError(f"store returned ids that are not in doc_ids, e.g. {sorted(unknown)[:3]}")
    top = np.array([[row[i] for i in r] for r in ids], dtype=np.int64)
    relevance = qs.relevance()
    m, top1 = per_query(top, relevance, k=k), per_query(top, relevance, k=1)
    each = {"hit@1": top1["hit"], f"mrr@{k}": m["mrr"], f"ndcg@{k}": m["ndcg"], f"recall@{k}": m["recall"]}
    return {**{name: float(v.mean()) for name, v in each.items()}, "per_query": each, "top": top, "dropped": dropped}


# --------------------------------------------------------------------------------------------
# Is a difference one? Paired bootstrap interval and exact paired test
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairedDifference:
    """The difference between two systems scored on the same queries (``after - before``).

    Attributes
    ----------
    difference : float
        Mean of the per-query differences (= mean after - mean before).
    low, high : float
        Percentile bootstrap interval of that mean (queries resampled with replacement).
    n : int
        Number of queries.
    p_value : float
        Two-sided p-value of the paired sign-flip test (no difference: each query's difference
        is as likely to have either sign). For 0/1 scores such as hit@1 this is the exact sign
        test on the discordant queries (McNemar's exact test).
    n_better, n_worse : int
        Queries whose score went up / down (the discordant pairs for 0/1 scores).
    confidence : float
        Level of the interval.
    test : str
        How ``p_value`` was computed ("exact sign test", "exact sign-flip test" or
        "sign-flip test, R random flips").
    """

    difference: float
    low: float
    high: float
    n: int
    p_value: float
    n_better: int
    n_worse: int
    confidence: float = 0.95
    test: str = "exact sign test"

    @property
    def clear(self) -> bool:
        """True when the interval excludes 0: the kit's rule (:data:`RULE`) for a clear difference.

        False does not mean "no difference": the data do not show one. ``p_value`` is supporting
        information and can disagree when few queries changed (:data:`WHY_P_CAN_DISAGREE`).
        """
        return self.low > 0 or self.high < 0

    @property
    def verdict(self) -> str:
        """The rule in words: ``"clearly higher"``, ``"clearly lower"`` or ``"no clear difference
        : the interval contains 0"``."""
        if self.low > 0:
            return "clearly higher"
        if self.high < 0:
            return "clearly lower"
        return "no clear difference: the interval contains 0"

    def interval(self) -> str:
        """``"+0.083 [+0.041, +0.124]"``."""
        return f"{self.difference:+.3f} [{self.low:+.3f}, {self.high:+.3f}]"

    def __str__(self) -> str:
        p = "p<0.001" if self.p_value < 0.001 else f"p={self.p_value:.3f}"
        return f"{self.interval()}, {self.n_better} better / {self.n_worse} worse, {p}"


def _scores(x: object, name: str) -> np.ndarray:
    if isinstance(x, (str, bytes, Mapping)):
        raise ValueError(f"{name} must be a 1-D array of per-query scores, got {type(x).__name__}")
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a 1-D array of numbers (per-query scores)") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of per-query scores; got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: a difference needs at least one query")
    if not np.isfinite(arr).all():
        first = int(np.argmin(np.isfinite(arr)))
        raise ValueError(f"{name} contains NaN or infinite values (first at position {first})")
    return arr


def sign_test_p(n_better: int, n_worse: int) -> float:
    """Exact two-sided sign test: ``P(|B - W| >= |b - w|)`` when each discordant query is a coin flip.

    Equals ``min(1, 2 P(Binomial(b + w, 1/2) <= min(b, w)))``; 1 when there is no discordant query.
    """
    m = n_better + n_worse
    if m == 0:
        return 1.0
    tail = sum(math.comb(m, i) for i in range(min(n_better, n_worse) + 1))
    return min(1.0, 2 * tail / 2**m)


def _sign_flip_p(d: np.ndarray, n_resamples: int, rng: np.random.Generator) -> tuple[float, str]:
    """Two-sided paired sign-flip test of the differences ``d`` (zeros carry no sign)."""
    nz = d[d != 0]
    if nz.size == 0:
        return 1.0, "exact sign test"
    mags = np.abs(nz)
    if np.all(mags == mags[0]):  # all the same size (0/1 scores): the sign test, exactly
        return sign_test_p(int((nz > 0).sum()), int((nz < 0).sum())), "exact sign test"
    observed = abs(nz.sum())
    tol = 1e-9 * mags.sum()
    if nz.size <= EXACT_FLIPS_MAX:
        count, total = 0, 2**nz.size
        for start in range(0, total, 1 << 16):
            codes = np.arange(start, min(start + (1 << 16), total), dtype=np.int64)
            signs = 1 - 2 * ((codes[:, None] >> np.arange(nz.size)) & 1)
            count += int(np.count_nonzero(np.abs(signs @ nz) >= observed - tol))
        return count / total, "exact sign-flip test"
    count = 0
    block = max(1, _RESAMPLE_BLOCK // nz.size)
    for start in range(0, n_resamples, block):
        b = min(block, n_resamples - start)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(b, nz.size))
        count += int(np.count_nonzero(np.abs(signs @ nz) >= observed - tol))
    return (count + 1) / (n_resamples + 1), f"sign-flip test, {n_resamples} random flips"


def paired_difference(
    before: np.ndarray,
    after: np.ndarray,
    *,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedDifference:
    """Mean difference ``after - before`` of two systems on the same queries, with an interval.

    Both systems are scored on the SAME queries, so the comparison is paired: the bootstrap
    resamples *queries* (each keeps its two scores), and the test asks whether the per-query
    differences could be sign noise. A difference is *clear* when the interval excludes 0
    (:attr:`PairedDifference.clear`); when it contains 0 the data do not show a difference.

    Parameters
    ----------
    before, after : array-like of float, shape (n,)
        Per-query scores of the two systems (e.g. ``evaluate_embeddings(...)["per_query"]["hit@1"]``).
    n_resamples : int
        Bootstrap resamples (and random flips of the test when it cannot be exact).
    confidence : float
        Level of the percentile interval, in (0, 1).
    seed : int
        Seed of the resampling; the same seed gives the same interval.

    Returns
    -------
    PairedDifference
        ``str()`` reads ``+0.083 [+0.041, +0.124], 16 better / 4 worse, p=0.004``.

    Notes
    -----
    The p-value is exact in two cases: when all non-zero differences have the same size (0/1
    scores such as hit@1: the exact sign test on the discordant queries, i.e. McNemar's exact
    test), or when at most ``EXACT_FLIPS_MAX`` (20) queries differ (every sign flip enumerated).
    Otherwise ``n_resamples`` random flips estimate it (``(1 + hits) / (1 + n_resamples)``).
    The percentile bootstrap is approximate and too narrow for a handful of queries.
    """
    b, a = _scores(before, "before"), _scores(after, "after")
    if a.shape != b.shape:
        raise ValueError(f"before and after must score the same queries; got {b.size} and {a.size} scores")
    n_resamples = check_positive_int(n_resamples, "n_resamples")
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    d = a - b
    n = d.size
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    block = max(1, _RESAMPLE_BLOCK // n)
    for start in range(0, n_resamples, block):
        stop = min(start + block, n_resamples)
        means[start:stop] = d[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    alpha = 1.0 - confidence
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    p, test = _sign_flip_p(d, n_resamples, rng)
    return PairedDifference(
        difference=float(d.mean()),
        low=float(low),
        high=float(high),
        n=n,
        p_value=float(p),
        n_better=int((d > 0).sum()),
        n_worse=int((d < 0).sum()),
        confidence=float(confidence),
        test=test,
    )


def mixed_difference(
    before,
    after,
    weights,
    *,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedDifference:
    """Paired difference ``after - before`` on a traffic mix of query groups, with an interval.

    The mix's score is ``sum_g weights[g] * mean(scores in group g)`` (e.g. 80% questions about
    known passages, 20% about never-asked ones). The bootstrap resamples queries within each group
    (each keeps its two scores); the test flips the signs of the weighted per-query differences.

    Parameters
    ----------
    before, after : sequence of array-like, each of shape (n_g,)
        Per-query scores of the two systems, one array per group, the same queries in each.
    weights : sequence of float
        The share of each group in the traffic; non-negative, summing to 1.
    n_resamples, confidence, seed
        As in :func:`paired_difference`.

    Returns
    -------
    PairedDifference
        ``n``, ``n_better`` and ``n_worse`` count queries over all groups.
    """
    if isinstance(before, np.ndarray) or isinstance(after, np.ndarray):
        raise ValueError("before and after must be sequences of per-group score arrays, one per group")
    before, after = list(before), list(after)
    try:
        w = np.asarray(list(weights), dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("weights must be a sequence of numbers, one per group") from None
    if not (len(before) == len(after) == w.size) or w.size == 0:
        raise ValueError(
            f"before, after and weights must have one entry per group; got {len(before)}, {len(after)}, {w.size}"
        )
    if not np.isfinite(w).all() or (w < 0).any() or abs(w.sum() - 1) > 1e-9:
        raise ValueError(f"weights must be non-negative and sum to 1, got {w.tolist()}")
    n_resamples = check_positive_int(n_resamples, "n_resamples")
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    diffs = []
    for g, (b, a) in enumerate(zip(before, after, strict=True)):
        b, a = _scores(b, f"before[{g}]"), _scores(a, f"after[{g}]")
        if a.shape != b.shape:
            raise ValueError(f"group {g}: before and after must score the same queries; got {b.size} and {a.size}")
        diffs.append(a - b)
    rng = np.random.default_rng(seed)
    means = np.zeros(n_resamples)
    for wg, d in zip(w, diffs, strict=True):
        block = max(1, _RESAMPLE_BLOCK // d.size)
        for start in range(0, n_resamples, block):
            stop = min(start + block, n_resamples)
            means[start:stop] += wg * d[rng.integers(0, d.size, size=(stop - start, d.size))].mean(axis=1)
    alpha = 1.0 - confidence
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    weighted = np.concatenate([wg / d.size * d for wg, d in zip(w, diffs, strict=True)])
    p, test = _sign_flip_p(weighted, n_resamples, rng)
    every = np.concatenate(diffs)
    return PairedDifference(
        difference=float(sum(wg * d.mean() for wg, d in zip(w, diffs, strict=True))),
        low=float(low),
        high=float(high),
        n=int(every.size),
        p_value=float(p),
        n_better=int((every > 0).sum()),
        n_worse=int((every < 0).sum()),
        confidence=float(confidence),
        test=test,
    )


def _per_query(result: Mapping, metric: str, name: str) -> np.ndarray:
    each = result.get("per_query") if isinstance(result, Mapping) else None
    if each is None:
        raise ValueError(f"{name} has no per-query scores: pass results of evaluate_embeddings")
    if metric not in each:
        raise ValueError(f"{name} has no per-query {metric!r}; it has {sorted(each)}")
    return each[metric]


def compare(before: Mapping, after: Mapping, k: int = 1, *, interval: str | None = None, **kwargs) -> dict:
    """Queries fixed / broken at cut-off ``k`` between two :func:`evaluate_embeddings` results.

    Returns ``{"fixed", "broken", "improved", "worsened"}`` (query positions, see
    :func:`nudge.metrics.rank_changes`). With ``interval="hit@1"`` (any metric of the results)
    it also holds ``"difference"``: the :class:`PairedDifference` of that metric, ``after -
    before`` (``kwargs`` go to :func:`paired_difference`).
    """
    out: dict = rank_changes(before["ranks"], after["ranks"], k=k)
    if interval is not None:
        out["difference"] = paired_difference(
            _per_query(before, interval, "before"), _per_query(after, interval, "after"), **kwargs
        )
    return out


def format_table(
    rows: Mapping[str, Mapping],
    columns=COLUMNS,
    extra: Mapping[str, Mapping] | None = None,
    *,
    interval: str | None = None,
    baseline: str | None = None,
    **kwargs,
) -> str:
    """A plain-text table: one row per name, one column per metric (3 decimals).

    ``extra`` adds free-form columns per row (e.g. gamma), shown after the metrics.
    ``interval="hit@1"`` (any metric of the rows) adds a last column: each row's difference
    from the ``baseline`` row (default: the first) on the same queries, with its paired
    bootstrap interval, counts and p-value (:func:`paired_difference`; ``kwargs`` go to it).
    """
    extra = dict(extra or {})
    extra_cols = list(dict.fromkeys(c for v in extra.values() for c in v))
    if interval is not None:
        names = list(rows)
        baseline = names[0] if baseline is None else baseline
        if baseline not in rows:
            raise ValueError(f"baseline {baseline!r} is not a row of the table; rows: {names}")
        ref = _per_query(rows[baseline], interval, f"row {baseline!r}")
        head = f"{interval} vs {baseline}"
        extra_cols.append(head)
        for name in names:
            if name != baseline:
                diff = paired_difference(ref, _per_query(rows[name], interval, f"row {name!r}"), **kwargs)
                extra[name] = {**extra.get(name, {}), head: str(diff)}
    head = ["", *columns, *extra_cols]
    body = []
    for name, vals in rows.items():
        cells = [name, *(f"{vals[c]:.3f}" for c in columns)]
        cells += [str(extra.get(name, {}).get(c, "")) for c in extra_cols]
        body.append(cells)
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]

    def line(cells):
        text = "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )
        return text if interval is None else text.rstrip()  # the baseline row has no interval cell

    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, body)])


# --------------------------------------------------------------------------------------------
# Known passages and never-asked passages
# --------------------------------------------------------------------------------------------


def known_mask(test: QuerySet, train: QuerySet) -> np.ndarray:
    """Which test queries are *known*: at least one relevant passage has a training query.

    Parameters
    ----------
    test, train : QuerySet (or a tuple/dict accepted by :func:`nudge.as_query_set`)
        Answers are rows of the same document matrix.

    Returns
    -------
    ndarray of bool, shape (len(test),)
        True: known (NUDGE moved at least one of its answers); False: *never asked* (none of
        its relevant passages has any training query, so NUDGE moved none of them), or no
        relevant passage at all. Only labels with grade > 0 count, on both sides.
    """
    te, tr = as_query_set(test, "test"), as_query_set(train, "train")
    asked = {int(d) for answers in _positive(tr) for d in answers}
    return np.array([any(int(d) in asked for d in answers) for answers in _positive(te)], dtype=bool)


def split_by_known(test: QuerySet, train: QuerySet) -> tuple[QuerySet, QuerySet]:
    """Split test queries into ``(known, never_asked)`` by the training queries' passages.

    The rule: a test query is *never asked* when none of its relevant passages is the answer of
    any training query, and *known* otherwise (even if only one of several relevant passages
    has training queries). NUDGE only moves passages with training queries, so it can only
    help the known group; the never-asked group can only lose rank as the others move.
    Both are new query sets in the original order (either may be empty). A test query with no
    relevant passage (no grade > 0) is in neither group (it cannot be evaluated), with a
    :class:`nudge.diagnostics.DroppedQueryWarning` giving the count.
    """
    mask = known_mask(test, train)
    te = as_query_set(test, "test")
    none = np.array([len(a) == 0 for a in _positive(te)], dtype=bool)
    if none.any():
        issue(
            f"{int(none.sum())} of {none.size} test questions have no relevant document (grade > 0): in neither group",
            DroppedQueryWarning,
        )
    return _subset(te, np.flatnonzero(mask)), _subset(te, np.flatnonzero(~mask & ~none))


def _subset(qs: QuerySet, rows: np.ndarray) -> QuerySet:
    emb = np.asarray(qs.embeddings)
    grades = None if qs.grades is None else [list(qs.grades[i]) for i in rows]
    return QuerySet(emb[rows], [list(qs.answers[i]) for i in rows], grades)


GROUPS = ("known", "never asked")


def evaluate_by_group(doc_embeddings: np.ndarray, test: QuerySet, train: QuerySet, **kwargs) -> dict:
    """:func:`evaluate_embeddings` on the known and the never-asked test queries apart.

    Returns ``{"known": result, "never asked": result}`` (see :func:`split_by_known`); each
    result also holds ``"n"``, its number of queries. A group without queries has ``n = 0`` and
    NaN metrics rather than being left out. ``kwargs`` go to :func:`evaluate_embeddings`.
    """
    out = {}
    for name, part in zip(GROUPS, split_by_known(test, train), strict=True):
        if len(part):
            out[name] = {**evaluate_embeddings(doc_embeddings, part, **kwargs), "n": len(part)}
        else:
            out[name] = {**_empty_result(kwargs.get("k", 10), np.empty(0, dtype=np.int64)), "n": 0}
    return out
