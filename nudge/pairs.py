"""Phase 1: labelled (query, relevant document) pairs and seeded splits (notebook 01).

A *query set* is what every later phase consumes: the query embeddings and, for each query,
the indices of its relevant documents (rows of the document-embedding matrix). Splits are made
by query, so all pairs of one query land in the same split and no query leaks from training
into validation or test.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence, Sized
from dataclasses import dataclass

import numpy as np

from ._validation import check_answers, check_matrix
from .diagnostics import DroppedQueryWarning, issue

__all__ = [
    "GRADE_THRESHOLD",
    "QuerySet",
    "Split",
    "as_query_set",
    "binarise",
    "check_grades",
    "group_pairs",
    "index_answers",
    "split_queries",
]


#: Default threshold: a label is relevant (for training, gamma and hit/recall/MRR) when grade > 0.
GRADE_THRESHOLD = 0.0


@dataclass(frozen=True)
class QuerySet:
    """Query embeddings with their relevant documents, optionally graded.

    Attributes
    ----------
    embeddings : ndarray, shape (n_queries, d)
        One embedding per query, from the same model as the documents.
    answers : list of list of int, length n_queries
        ``answers[i]`` holds the row indices of the documents labelled for query ``i``. An empty
        list means "judged, nothing relevant": such a query is left out of fitting and evaluation,
        and counted (:class:`nudge.diagnostics.DroppedQueryWarning`).
    grades : list of list of float, optional
        ``grades[i][j]`` is the grade of ``answers[i][j]`` (e.g. BEIR's 0/1/2). None: every
        answer has grade 1 (binary labels). Grades reach the metrics as they are (graded nDCG,
        :mod:`nudge.metrics`); NUDGE itself needs binary labels and keeps the answers with
        grade > ``grade_threshold`` (default 0, a parameter of :class:`nudge.Nudge`).
    """

    embeddings: np.ndarray
    answers: Sequence[Sequence[int]]
    grades: Sequence[Sequence[float]] | None = None

    def __len__(self) -> int:
        return len(self.answers)

    @property
    def n_pairs(self) -> int:
        """Number of (query, labelled document) pairs."""
        return sum(len(a) for a in self.answers)

    def subset(self, rows: Sequence[int] | np.ndarray) -> QuerySet:
        """The queries at ``rows`` (a copy)."""
        rows = np.asarray(rows, dtype=np.int64)
        grades = None if self.grades is None else [list(self.grades[i]) for i in rows]
        return QuerySet(self.embeddings[rows], [list(self.answers[i]) for i in rows], grades)

    def relevance(self) -> list:
        """What :func:`nudge.metrics.per_query` reads: per query ``{document: grade}`` when graded,
        else the list of relevant documents."""
        if self.grades is None:
            return [list(a) for a in self.answers]
        check_grades(self, "queries")
        return [
            dict(zip(map(int, a), map(float, g), strict=True)) for a, g in zip(self.answers, self.grades, strict=True)
        ]

    def to_dict(self) -> dict:
        """The reference package's layout: ``{"q_embs": ..., "q_ans_indx": ...}``."""
        return {"q_embs": self.embeddings, "q_ans_indx": [list(map(int, a)) for a in self.answers]}


def as_query_set(value: object, name: str) -> QuerySet:
    """Accept a :class:`QuerySet`, a ``(embeddings, answers)`` tuple or the reference dict.

    The reference dict is ``{"q_embs": (n, d) array, "q_ans_indx": list of lists}``.
    """
    if isinstance(value, QuerySet):
        return value
    if isinstance(value, Mapping):
        missing = {"q_embs", "q_ans_indx"} - set(value)
        if missing:
            raise ValueError(
                f"{name} is a dict but lacks the key(s) {sorted(missing)}; expected 'q_embs' and 'q_ans_indx'"
            )
        return QuerySet(value["q_embs"], value["q_ans_indx"])
    if isinstance(value, tuple) and len(value) == 2:
        return QuerySet(value[0], value[1])
    raise ValueError(
        f"{name} must be a QuerySet, a (embeddings, answers) tuple or a dict with 'q_embs' and "
        f"'q_ans_indx'; got {type(value).__name__}"
    )


def check_grades(qs: QuerySet, name: str) -> None:
    """``ValueError`` unless ``qs.grades`` is None or one finite grade per answer."""
    if qs.grades is None:
        return
    grades = qs.grades
    if isinstance(grades, (str, bytes)) or not isinstance(grades, (Sequence, np.ndarray)) or len(grades) != len(qs):
        raise ValueError(f"{name} grades must be a list with one list of grades per query, like answers")
    for i, (a, g) in enumerate(zip(qs.answers, grades, strict=True)):
        if isinstance(g, (str, bytes)) or not isinstance(g, (Sequence, np.ndarray)) or len(g) != len(a):
            raise ValueError(f"{name} grades[{i}] must hold one grade per answer ({len(a)})")
        try:
            values = np.asarray(g, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} grades[{i}] must hold numbers") from None
        if not np.isfinite(values).all():
            raise ValueError(f"{name} grades[{i}] contains NaN or infinite grades")


def binarise(qs: QuerySet, name: str, grade_threshold: float = GRADE_THRESHOLD) -> tuple[QuerySet, np.ndarray]:
    """The binary labels NUDGE needs: answers with grade > ``grade_threshold``, queries without any left out.

    Parameters
    ----------
    qs : QuerySet
        Graded or binary (``grades`` None: every answer has grade 1).
    name : str
        The argument's name, for error messages.
    grade_threshold : float
        A label is relevant when its grade is strictly above it (default 0: BEIR's "grade 0 =
        judged not relevant").

    Returns
    -------
    QuerySet
        Binary (``grades`` None), the queries with at least one relevant answer, in order.
    dropped : ndarray of int64
        Positions in ``qs`` of the queries left out (no relevant answer). ``qs`` itself is
        returned when nothing changes; the input is never modified.
    """
    answers = qs.answers
    if isinstance(answers, (str, bytes)) or not isinstance(answers, (Sequence, np.ndarray)):
        return qs, np.empty(0, dtype=np.int64)  # malformed: validate_query_set says what is wrong
    rows = list(answers)
    if any(isinstance(a, (str, bytes)) or not isinstance(a, (Sequence, np.ndarray)) for a in rows):
        return qs, np.empty(0, dtype=np.int64)
    if qs.grades is not None:
        check_grades(qs, name)
        rows = [
            [d for d, g in zip(a, gr, strict=True) if g > grade_threshold]
            for a, gr in zip(rows, qs.grades, strict=True)
        ]
    elif grade_threshold >= 1:
        rows = [[] for _ in rows]  # binary labels have grade 1
    dropped = np.array([i for i, a in enumerate(rows) if len(a) == 0], dtype=np.int64)
    if qs.grades is None and dropped.size == 0:
        return qs, dropped
    emb = qs.embeddings
    if dropped.size:
        shape = np.shape(emb)
        if len(shape) != 2 or shape[0] != len(rows):
            return qs, np.empty(0, dtype=np.int64)  # mismatched: validate_query_set says what is wrong
        keep = np.setdiff1d(np.arange(len(rows)), dropped)
        emb = np.asarray(emb)[keep]
        rows = [rows[i] for i in keep]
    return QuerySet(emb, rows), dropped


def validate_query_set(
    qs: QuerySet, name: str, *, n_docs: int, dim: int, dtype: np.dtype, grade_threshold: float = GRADE_THRESHOLD
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check a query set against the documents; return ``(embeddings, flat, offsets)``.

    The labels are binarised (:func:`binarise`): queries without an answer of grade >
    ``grade_threshold`` are left out with a :class:`nudge.diagnostics.DroppedQueryWarning`
    giving their count; none left is a ``ValueError``.
    """
    n_before = len(qs.answers) if isinstance(qs.answers, Sized) else 0
    qs, dropped = binarise(qs, name, grade_threshold)
    if dropped.size:
        if len(qs) == 0:
            raise ValueError(
                f"{name} has no query with a relevant document (grade > {grade_threshold:g}): "
                f"all {n_before} were judged without one"
            )
        issue(
            f"{name}: {dropped.size} of {n_before} queries have no relevant document (grade > {grade_threshold:g}) "
            f"and were left out (first at position {int(dropped[0])})",
            DroppedQueryWarning,
        )
    emb = check_matrix(qs.embeddings, f"{name} embeddings", dim=dim, dtype=dtype)
    flat, offsets = check_answers(qs.answers, f"{name} answers", n_queries=emb.shape[0], n_docs=n_docs)
    return emb, flat, offsets


@dataclass(frozen=True)
class Split:
    """Positions of the queries in each split (sorted, disjoint, covering all queries)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def split_queries(n_queries: int, *, val_fraction: float = 0.2, test_fraction: float = 0.2, seed: int = 0) -> Split:
    """Seeded split of queries into train, validation and hold-out test.

    The hold-out test share is taken first; the rest is divided ``1 - val_fraction`` /
    ``val_fraction`` into train and validation (the practical guide's 80/20). Splitting by
    query keeps every pair of a query together.

    Parameters
    ----------
    n_queries : int
        Number of labelled queries.
    val_fraction : float
        Share of the non-test queries used to choose gamma, in ``(0, 1)``.
    test_fraction : float
        Share of all queries held out for the final test, in ``[0, 1)``. Use 0 when a
        separate test set exists already.
    seed : int
        Seed of the shuffle; the same seed always gives the same split.

    Returns
    -------
    Split
        Sorted query positions for ``train``, ``val`` and ``test``.
    """
    if isinstance(n_queries, bool) or not isinstance(n_queries, (int, np.integer)) or n_queries < 2:
        raise ValueError(f"n_queries must be an integer >= 2, got {n_queries!r}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
    if not 0 <= test_fraction < 1:
        raise ValueError(f"test_fraction must lie in [0, 1), got {test_fraction}")
    order = np.random.default_rng(seed).permutation(n_queries)
    n_test = round(test_fraction * n_queries)
    rest = n_queries - n_test
    n_val = round(val_fraction * rest)
    if n_val == 0 or n_val == rest:
        raise ValueError(
            f"with {n_queries} queries, val_fraction={val_fraction} and test_fraction={test_fraction} "
            "leave no training or no validation queries; label more queries or change the fractions"
        )
    test = np.sort(order[:n_test])
    val = np.sort(order[n_test : n_test + n_val])
    train = np.sort(order[n_test + n_val :])
    return Split(train=train, val=val, test=test)


def group_pairs(pairs: Iterable[tuple[Hashable, Hashable]]) -> dict[Hashable, list[Hashable]]:
    """Group ``(query_id, doc_id)`` pairs by query, keeping first-seen order.

    Raises ``ValueError`` on a repeated pair (it would silently count twice).
    """
    grouped: dict[Hashable, list[Hashable]] = {}
    seen: set[tuple[Hashable, Hashable]] = set()
    for n, pair in enumerate(pairs):
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise ValueError(f"pairs[{n}] must be a (query_id, doc_id) tuple, got {pair!r}")
        if pair in seen:
            raise ValueError(f"pairs[{n}] repeats the pair {pair!r}")
        seen.add(pair)
        grouped.setdefault(pair[0], []).append(pair[1])
    return grouped


def index_answers(
    relevant: Mapping[Hashable, Sequence[Hashable]], query_ids: Sequence[Hashable], doc_ids: Sequence[Hashable]
) -> list[list[int]]:
    """Turn ``{query_id: [doc_id, ...]}`` into row-index lists aligned with ``query_ids``.

    Raises ``ValueError`` naming the first query without answers or unknown document id.
    """
    position = {d: i for i, d in enumerate(doc_ids)}
    if len(position) != len(doc_ids):
        raise ValueError("doc_ids contains duplicate ids")
    out = []
    for q in query_ids:
        if q not in relevant or len(relevant[q]) == 0:
            raise ValueError(f"relevant has no documents for query {q!r}")
        rows = []
        for d in relevant[q]:
            if d not in position:
                raise ValueError(f"relevant[{q!r}] names unknown document id {d!r}")
            rows.append(position[d])
        out.append(rows)
    return out
