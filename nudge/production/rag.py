"""A retrieval-augmented answer on the (nudged) document vectors: retrieve, prompt, answer, cite (notebook 10).

The user's question is embedded, the top ``k`` passages are retrieved with the document vectors
in use (original or nudged: :func:`nudge.retrieval.search`, dot product), and the prompt numbers
them ``[1]`` to ``[k]``, best first. The model is asked to cite the numbers it used;
:func:`parse_citations` maps them back to document ids and reports every citation it cannot
use (malformed, out of range) instead of failing. NUDGE changes only the first step: which
passages reach the prompt.

Everything here but :func:`answer_question` is a pure function, so prompts and citation handling
are tested without a model::

    passages = retrieve_passages(question_vector, nudged_docs, doc_ids, corpus, k=5)
    messages = build_messages(question, passages)          # what the model would see
    result = answer_question(ChatClient(), question, passages)
    result.citations.doc_ids, result.citations.problems
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .._validation import check_positive_int
from ..pairs import QuerySet, as_query_set
from ..retrieval import first_relevant_rank, search

__all__ = [
    "SYSTEM_PROMPT",
    "Citations",
    "Passage",
    "RagAnswer",
    "answer_question",
    "build_messages",
    "context_hit",
    "format_passages",
    "parse_citations",
    "retrieve_passages",
]

SYSTEM_PROMPT = (
    "You answer questions about a product's documentation using only the numbered passages you are given. "
    "After each statement, cite the passages it comes from by their numbers in square brackets, like [1] or "
    "[2][3]. If the passages do not contain the answer, say that you cannot answer from them."
)

_BRACKETS = re.compile(r"\[([^\[\]\n]*)\]")
_UNCLOSED = re.compile(r"\[\s*(?:passage\s*)?#?\s*\d[^\[\]\n]*$", re.IGNORECASE)
_TOKEN = re.compile(r"(?:passages?\s*)?#?\s*(\d+)(?:\s*[-\u2013]\s*(\d+))?", re.IGNORECASE)
_SEPARATORS = re.compile(r"\s*(?:,|;|\band\b)\s*", re.IGNORECASE)
_MAX_RANGE = 50  # a "[1-1000]" is a typo, not fifty citations


@dataclass(frozen=True)
class Passage:
    """One retrieved passage as the prompt numbers it.

    Attributes
    ----------
    number : int
        1-based position in the prompt (1 = best score).
    doc_id : str
    row : int
        Row in the document vectors.
    score : float
        Retrieval score (dot product).
    text : str
    """

    number: int
    doc_id: str
    row: int
    score: float
    text: str


@dataclass(frozen=True)
class Citations:
    """The passages an answer cites, and what could not be used.

    Attributes
    ----------
    numbers : tuple of int
        Valid passage numbers, in order of first citation, each once.
    doc_ids : tuple of str
        The document id of each of ``numbers``.
    problems : tuple of str
        One line per citation that could not be used (malformed, out of range), and a note when
        the answer cites nothing. Empty when every citation was usable.
    """

    numbers: tuple[int, ...]
    doc_ids: tuple[str, ...]
    problems: tuple[str, ...]


@dataclass(frozen=True)
class RagAnswer:
    """A question, the passages its prompt held, the model's answer and its citations."""

    question: str
    passages: tuple[Passage, ...]
    messages: tuple[dict, ...]
    answer: str
    citations: Citations


def retrieve_passages(
    question_vector: np.ndarray,
    doc_embeddings: np.ndarray,
    doc_ids: Sequence[str],
    corpus: Mapping[str, str],
    *,
    k: int = 5,
) -> list[Passage]:
    """The ``k`` best passages for one question, numbered 1..k best first (dot product, as NUDGE is tuned for).

    Parameters
    ----------
    question_vector : ndarray, shape (d,) or (1, d)
    doc_embeddings : ndarray, shape (N, d)
        Original or nudged document vectors (not modified).
    doc_ids : sequence of str, length N
        Id of each row.
    corpus : mapping of str to str
        Text of each document id (e.g. ``RetrievalDataset.corpus``).
    k : int
        Passages to keep (capped at N).

    Returns
    -------
    list of Passage, length min(k, N)
    """
    q = np.asarray(question_vector)
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2 or q.shape[0] != 1:
        raise ValueError(f"question_vector must have shape (d,) or (1, d), got {np.shape(question_vector)}")
    docs = np.asarray(doc_embeddings)
    if len(doc_ids) != docs.shape[0]:
        raise ValueError(f"doc_ids has {len(doc_ids)} ids but doc_embeddings has {docs.shape[0]} rows")
    rows, scores = search(q.astype(docs.dtype, copy=False), docs, k=k)
    passages = []
    for number, (row, score) in enumerate(zip(rows[0].tolist(), scores[0].tolist(), strict=True), start=1):
        doc_id = doc_ids[row]
        if doc_id not in corpus:
            raise ValueError(f"corpus has no text for document {doc_id!r} (row {row})")
        passages.append(Passage(number, doc_id, row, float(score), corpus[doc_id]))
    return passages


def context_hit(queries: QuerySet, doc_embeddings: np.ndarray, k: int) -> np.ndarray:
    """Per question: 1.0 when a relevant passage is among the ``k`` passages its prompt would hold, else 0.0.

    What a model could cite at best: it cannot use a passage it never sees. The mean is the share
    of questions whose context holds an answer (recall's "any relevant passage in the top k").

    Parameters
    ----------
    queries : QuerySet (or a tuple/dict accepted by :func:`nudge.as_query_set`)
        Question embeddings (n, d) and relevant document rows.
    doc_embeddings : ndarray, shape (N, d)
        Original or nudged document vectors (dot product).
    k : int
        Passages in the prompt.

    Returns
    -------
    ndarray of float64, shape (n,)
        Ready for :func:`nudge.evaluation.paired_difference` (before against after).
    """
    qs = as_query_set(queries, "queries")
    k = check_positive_int(k, "k")
    return (first_relevant_rank(qs.embeddings, doc_embeddings, qs.answers) <= k).astype(np.float64)


def format_passages(passages: Sequence[Passage | str]) -> str:
    """The numbered context block: ``[1] text``, ``[2] text`` ... separated by blank lines.

    Parameters
    ----------
    passages : sequence of Passage or str
        In prompt order; strings are numbered by position.
    """
    if isinstance(passages, (str, bytes)) or len(passages) == 0:
        raise ValueError("passages must be a non-empty list of passages (or texts)")
    blocks = []
    for i, p in enumerate(passages, start=1):
        text = p.text if isinstance(p, Passage) else p
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"passages[{i - 1}] has no text")
        blocks.append(f"[{i}] {text.strip()}")
    return "\n\n".join(blocks)


def build_messages(question: str, passages: Sequence[Passage | str], *, system: str = SYSTEM_PROMPT) -> list[dict]:
    """The chat messages of a retrieval-augmented question: instructions, then numbered passages and the question.

    Parameters
    ----------
    question : str
    passages : sequence of Passage or str
        In the order they are numbered (best first).
    system : str
        The instructions (default :data:`SYSTEM_PROMPT`: answer from the passages, cite like [1]).

    Returns
    -------
    list of dict
        ``[{"role": "system", ...}, {"role": "user", ...}]``.
    """
    if not isinstance(question, str) or not question.strip():
        raise ValueError("question must be a non-empty string")
    user = f"Passages:\n\n{format_passages(passages)}\n\nQuestion: {question.strip()}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def _numbers_in(inside: str) -> list[int] | None:
    """The passage numbers of one bracket's content (``1``, ``1, 3``, ``2-4``, ``passage 2``); None if malformed."""
    numbers: list[int] = []
    for part in _SEPARATORS.split(inside.strip()):
        m = _TOKEN.fullmatch(part.strip())
        if m is None:
            return None
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) else first
        if last < first or last - first >= _MAX_RANGE:
            return None
        numbers.extend(range(first, last + 1))
    return numbers


def parse_citations(answer: str, doc_ids: Sequence[str]) -> Citations:
    """The passages an answer cites, as document ids; citations that cannot be used are reported, never raised.

    A citation is a bracket holding a digit: ``[1]``, ``[1, 3]``, ``[2-4]``, ``[Passage 2]``, ``[#2]``.
    Brackets without a digit (``arr[i]``, markdown links) are ordinary text.

    Parameters
    ----------
    answer : str
        The model's answer.
    doc_ids : sequence of str, length n
        The id of passage 1..n, in prompt order.

    Returns
    -------
    Citations
    """
    if not isinstance(answer, str):
        raise ValueError(f"answer must be a string, got {type(answer).__name__}")
    ids = list(doc_ids)
    n = len(ids)
    numbers: list[int] = []
    problems: list[str] = []
    for m in _BRACKETS.finditer(answer):
        inside = m.group(1)
        if not any(ch.isdigit() for ch in inside):
            continue
        found = _numbers_in(inside)
        if found is None:
            problems.append(f"malformed citation {m.group(0)!r} at character {m.start()}")
            continue
        for number in found:
            if not 1 <= number <= n:
                problems.append(
                    f"citation [{number}] at character {m.start()} is out of range: the prompt had {n} passages"
                )
            elif number not in numbers:
                numbers.append(number)
    for line_start, line in _lines(answer):
        tail = _UNCLOSED.search(line)
        if tail is not None:
            problems.append(f"unclosed citation {tail.group(0)!r} at character {line_start + tail.start()}")
    if not numbers and not problems:
        problems.append("the answer cites no passage")
    return Citations(tuple(numbers), tuple(ids[i - 1] for i in numbers), tuple(problems))


def _lines(text: str) -> list[tuple[int, str]]:
    out, start = [], 0
    for line in text.split("\n"):
        out.append((start, line))
        start += len(line) + 1
    return out


def answer_question(client, question: str, passages: Sequence[Passage]) -> RagAnswer:
    """Ask a chat model to answer ``question`` from ``passages`` and parse its citations.

    Parameters
    ----------
    client : ChatClient
        Anything with ``complete(messages) -> str``.
    question : str
    passages : sequence of Passage
        From :func:`retrieve_passages`, in prompt order.

    Returns
    -------
    RagAnswer
    """
    passages = tuple(passages)
    if not all(isinstance(p, Passage) for p in passages):
        raise ValueError("passages must be Passage objects from retrieve_passages")
    messages = build_messages(question, passages)
    answer = client.complete(messages)
    citations = parse_citations(answer, [p.doc_id for p in passages])
    return RagAnswer(question, passages, tuple(messages), answer, citations)
