"""Seeded synthetic retrieval problems with structure, for tests, benchmarks and exercises.

Documents sit around topic centres. Each answerable document has a *query prototype*: the
document plus a private offset, standing for the way users phrase what the document answers.
Queries are noisy copies of their answers' prototypes, so the base embeddings rank imperfectly
and moving documents towards their queries (NUDGE) helps, as on real data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..directions import unit_rows
from ..pairs import QuerySet

__all__ = ["RetrievalProblem", "make_retrieval_problem"]


@dataclass(frozen=True)
class RetrievalProblem:
    """Documents and three query sets drawn from the same distribution."""

    embeddings: np.ndarray
    train: QuerySet
    val: QuerySet
    test: QuerySet


def make_retrieval_problem(
    n_docs: int = 1000,
    dim: int = 32,
    n_train: int = 400,
    n_val: int = 100,
    n_test: int = 100,
    *,
    n_topics: int | None = None,
    n_answerable: int | None = None,
    doc_noise: float = 0.8,
    offset: float = 0.9,
    query_noise: float = 0.5,
    multi_answer_rate: float = 0.1,
    seed: int = 0,
    dtype=np.float32,
    chunk_size: int = 65536,
) -> RetrievalProblem:
    """Make a seeded problem; memory beyond the output is bounded by ``chunk_size`` rows.

    Parameters
    ----------
    n_docs, dim : int
        Shape of the document embeddings (N, d).
    n_train, n_val, n_test : int
        Number of queries in each set.
    n_topics : int, optional
        Topic centres (default ``sqrt(N)``).
    n_answerable : int, optional
        Documents that can be answers (default: half the queries, at most N).
    doc_noise, offset, query_noise : float
        Norms of the document noise, the prototype offset and the query noise.
    multi_answer_rate : float
        Share of queries with two or three relevant documents (from the same topic).
    seed : int
        Everything is determined by the seed.
    dtype : float32 or float64

    Returns
    -------
    RetrievalProblem
        Unit-norm ``embeddings`` (N, d) and ``train``/``val``/``test`` query sets.
    """
    rng = np.random.default_rng(seed)
    n_topics = n_topics or max(2, int(np.sqrt(n_docs)))
    centres = unit_rows(rng.standard_normal((n_topics, dim)))
    topic = rng.integers(n_topics, size=n_docs)
    docs = np.empty((n_docs, dim), dtype=dtype)
    scale = doc_noise / np.sqrt(dim)
    for start in range(0, n_docs, chunk_size):
        stop = min(start + chunk_size, n_docs)
        noise = rng.standard_normal((stop - start, dim)) * scale
        docs[start:stop] = unit_rows(centres[topic[start:stop]] + noise)
    n_queries = n_train + n_val + n_test
    n_answerable = min(n_docs, n_answerable or max(2, n_queries // 2))
    answerable = rng.choice(n_docs, size=n_answerable, replace=False)
    prototypes = unit_rows(
        docs[answerable].astype(np.float64) + rng.standard_normal((n_answerable, dim)) * (offset / np.sqrt(dim))
    )
    by_topic: dict[int, np.ndarray] = {}
    order = np.argsort(topic[answerable], kind="stable")
    for t, group in zip(*np.unique(topic[answerable][order], return_index=True), strict=True):
        by_topic[int(t)] = order[group : group + np.count_nonzero(topic[answerable] == t)]
    answers = []
    queries = np.empty((n_queries, dim))
    first = rng.integers(n_answerable, size=n_queries)
    extra = rng.random(n_queries) < multi_answer_rate
    for i in range(n_queries):
        chosen = [int(first[i])]
        if extra[i]:
            same = by_topic[int(topic[answerable[first[i]]])]
            others = same[same != first[i]]
            if others.size:
                chosen += rng.choice(others, size=min(others.size, int(rng.integers(1, 3))), replace=False).tolist()
        weights = rng.random(len(chosen)) + 0.5
        queries[i] = weights @ prototypes[chosen] + rng.standard_normal(dim) * (query_noise / np.sqrt(dim))
        answers.append([int(answerable[c]) for c in chosen])
    queries = unit_rows(queries).astype(dtype)

    def part(lo: int, hi: int) -> QuerySet:
        return QuerySet(queries[lo:hi], answers[lo:hi])

    return RetrievalProblem(
        embeddings=docs,
        train=part(0, n_train),
        val=part(n_train, n_train + n_val),
        test=part(n_train + n_val, n_queries),
    )
