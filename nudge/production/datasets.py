"""Load retrieval datasets (queries, documents, relevance labels) and check them.

Three layouts are read:

==================  ==============================================================  ======================
layout              files                                                           loader
==================  ==============================================================  ======================
LlamaIndex          one ``.json``: ``{"queries", "corpus", "relevant_docs"}``      :func:`load_llamaindex`
BEIR                a folder: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/*.tsv``  :func:`load_beir`
(query, document)   a ``.csv`` / ``.tsv`` table or a ``.jsonl`` file of text pairs  :func:`load_pairs`
==================  ==============================================================  ======================

:func:`load_dataset` picks the loader from the path. Every loader returns ``(dataset, report)``:
the :class:`RetrievalDataset` holds only the rows that are valid, and the :class:`ValidationReport`
lists everything that was skipped or looks suspicious, each with its file and 1-based line
number, so nothing is dropped silently. ``report.ok`` is false when there are errors;
``report.raise_if_errors()`` turns them into a ``ValueError``; ``print(report)`` shows a summary.

Files are read as UTF-8 (a leading byte-order mark is accepted); ``\\r\\n`` and ``\\r`` line
endings are read as ``\\n``.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import logging
import math
import numbers
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._io import write_json
from .._validation import check_ids
from ..pairs import QuerySet, index_answers

__all__ = [
    "Problem",
    "RetrievalDataset",
    "ValidationReport",
    "load_beir",
    "load_dataset",
    "load_llamaindex",
    "load_pairs",
    "save_llamaindex",
]

logger = logging.getLogger(__name__)

QUERY_COLUMNS = ("query", "question")
DOCUMENT_COLUMNS = ("document", "answer", "passage", "positive")
GRADE_COLUMNS = ("grade",)
PAIR_TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}
JSONL_SUFFIXES = (".jsonl", ".ndjson")
ERROR_KINDS = frozenset({"bad_row", "unknown_id", "empty_text", "duplicate_id", "conflicting_grade"})


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One entry of a :class:`ValidationReport`.

    Attributes
    ----------
    file : str
        The file the entry comes from (for BEIR, relative to the dataset folder).
    line : int or None
        1-based line number in ``file``; None when the entry has no single line.
    reason : str
        What is wrong and what the loader did about it.
    kind : str
        ``"bad_row"``, ``"unknown_id"``, ``"empty_text"``, ``"duplicate_id"``, ``"conflicting_grade"`` (a pair
        given twice with two grades: an error), ``"duplicate_pair"``,
        ``"duplicate_text"``, ``"query_without_answers"``, ``"document_never_answered"``,
        ``"not_relevant"`` or ``"query_not_in_qrels"``.
    key : str or None
        The query or document id concerned, when there is one.
    """

    file: str
    line: int | None
    reason: str
    kind: str
    key: str | None = None

    @property
    def is_error(self) -> bool:
        """Whether this entry makes the report not ``ok``."""
        return self.kind in ERROR_KINDS

    def __str__(self) -> str:
        return f"{_at(self.file, self.line)}: {self.reason}"


@dataclass
class ValidationReport:
    """What a loader skipped or noticed, with file and line numbers.

    Errors (they make ``ok`` false): ``bad_rows`` (unparseable rows), ``unknown_ids`` (labels
    naming a query or document that was not loaded), ``empty_texts``, and duplicate ids (entries
    of ``duplicates`` whose ``kind`` is ``"duplicate_id"``). The rows concerned are not in the
    dataset.

    Information (the data is usable): repeated (query, document) pairs (counted once) and
    identical texts under different ids, both in ``duplicates``; ``queries_without_answers``;
    ``documents_never_answered``; ``not_relevant`` (labels with a grade <= 0, e.g. BEIR score 0:
    not relevant, kept here only); ``queries_not_in_qrels`` (BEIR queries the chosen split does
    not label, not loaded).

    Attributes
    ----------
    source : str
        What was loaded, for the summary.
    """

    source: str = ""
    duplicates: list[Problem] = field(default_factory=list)
    unknown_ids: list[Problem] = field(default_factory=list)
    empty_texts: list[Problem] = field(default_factory=list)
    queries_without_answers: list[Problem] = field(default_factory=list)
    documents_never_answered: list[Problem] = field(default_factory=list)
    bad_rows: list[Problem] = field(default_factory=list)
    not_relevant: list[Problem] = field(default_factory=list)
    queries_not_in_qrels: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        """All error entries: bad rows, unknown ids, empty texts, duplicate ids and conflicting grades."""
        dup_ids = [p for p in self.duplicates if p.is_error]
        return [*self.bad_rows, *self.unknown_ids, *self.empty_texts, *dup_ids]

    @property
    def ok(self) -> bool:
        """True when there are no errors (informational entries are allowed)."""
        return not self.errors

    def raise_if_errors(self) -> None:
        """Raise ``ValueError`` with the summary when the report has errors."""
        if not self.ok:
            raise ValueError(self.summary())

    def summary(self, max_items: int = 5, *, max_info: int | None = None) -> str:
        """Counts of every kind, then the first ``max_items`` entries of each non-empty kind
        (``max_info``, when given: of each information kind)."""
        dup_ids = [p for p in self.duplicates if p.kind == "duplicate_id"]
        conflicts = [p for p in self.duplicates if p.kind == "conflicting_grade"]
        dup_other = [p for p in self.duplicates if not p.is_error]
        errors = [
            ("bad rows", self.bad_rows),
            ("unknown ids", self.unknown_ids),
            ("empty texts", self.empty_texts),
            ("duplicate ids", dup_ids),
            *([("conflicting grades", conflicts)] if conflicts else []),  # a row only when there are some
        ]
        notes = [
            ("duplicate pairs and texts", dup_other),
            ("queries without answers", self.queries_without_answers),
            ("documents never answered", self.documents_never_answered),
            ("not relevant (grade <= 0)", self.not_relevant),
            ("queries not in the qrels", self.queries_not_in_qrels),
        ]
        n_err = sum(len(items) for _, items in errors)
        verdict = "OK" if n_err == 0 else f"{n_err} error(s): the rows concerned were skipped"
        lines = [f"Validation report for {self.source or 'dataset'}: {verdict}", "  errors:"]
        lines += [f"    {title:<28}{len(items):>7}" for title, items in errors]
        lines.append("  information:")
        lines += [f"    {title:<28}{len(items):>7}" for title, items in notes]
        limits = [max_items] * len(errors) + [max_items if max_info is None else max_info] * len(notes)
        for (title, items), limit in zip([*errors, *notes], limits, strict=True):
            if not items:
                continue
            shown = "" if len(items) <= limit else f", first {limit} shown"
            lines.append(f"{title} ({len(items)}{shown}):")
            lines += [f"  {p}" for p in items[:limit]]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


# --------------------------------------------------------------------------------------------
# dataset
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetrievalDataset:
    """Queries, documents and graded relevance labels, all keyed by string ids.

    Treat the dicts as read-only; :meth:`subset` returns new ones.

    Attributes
    ----------
    queries : dict of str to str
        Query id -> query text, in file order.
    corpus : dict of str to str
        Document id -> document text, in file order.
    relevant : dict of str to dict of str to float
        Query id -> {document id: grade}, grades > 0, in file order. Queries without relevant
        documents have no entry.
    """

    queries: dict[str, str]
    corpus: dict[str, str]
    relevant: dict[str, dict[str, float]]

    def __post_init__(self) -> None:
        _check_dataset(self.queries, self.corpus, self.relevant)

    @property
    def query_ids(self) -> list[str]:
        """All query ids, in file order."""
        return list(self.queries)

    @property
    def doc_ids(self) -> list[str]:
        """All document ids, in file order."""
        return list(self.corpus)

    @property
    def answered_query_ids(self) -> list[str]:
        """The ids of queries with at least one relevant document, in query order."""
        return [q for q in self.queries if q in self.relevant]

    def answers(self, query_ids: Sequence[str] | None = None, doc_ids: Sequence[str] | None = None) -> list[list[int]]:
        """Relevant documents of each query as row indices into ``doc_ids``.

        Parameters
        ----------
        query_ids : sequence of str, optional
            The queries, in the row order of the query embeddings. Default:
            :attr:`answered_query_ids`.
        doc_ids : sequence of str, optional
            The documents in the row order of the document-embedding matrix. Default:
            :attr:`doc_ids`.

        Returns
        -------
        list of list of int
            ``answers[i]`` holds the positions in ``doc_ids`` of the documents relevant to
            ``query_ids[i]``, in label order; :meth:`grades` gives their grades. A query of the
            dataset without a relevant document (e.g. only grade-0 labels: judged, nothing
            relevant) gets ``[]``: fitting and evaluation leave it out and count it
            (:class:`nudge.diagnostics.DroppedQueryWarning`). Raises ``ValueError`` for a query
            id that is not in the dataset or a relevant document missing from ``doc_ids``.
        """
        query_ids = self.answered_query_ids if query_ids is None else check_ids(query_ids, "query_ids")
        doc_ids = self.doc_ids if doc_ids is None else check_ids(doc_ids, "doc_ids")
        unknown = next((q for q in query_ids if q not in self.queries), None)
        if unknown is not None:
            raise ValueError(f"query_ids names {unknown!r}, which is not a query of the dataset")
        labelled = [q for q in query_ids if q in self.relevant]
        relevant = {q: list(self.relevant[q]) for q in labelled}
        rows = dict(zip(labelled, index_answers(relevant, labelled, doc_ids), strict=True))
        return [rows.get(q, []) for q in query_ids]

    def grades(self, query_ids: Sequence[str] | None = None) -> list[list[float]]:
        """The grades of :meth:`answers`, aligned with it: ``grades[i][j]`` belongs to ``answers[i][j]``.

        All > 0 (the loaders keep grade-0 labels in the report only); ``[]`` for a query
        without a relevant document.
        """
        query_ids = self.answered_query_ids if query_ids is None else check_ids(query_ids, "query_ids")
        return [list(self.relevant.get(q, {}).values()) for q in query_ids]

    def query_set(
        self, embeddings: np.ndarray, query_ids: Sequence[str] | None = None, doc_ids: Sequence[str] | None = None
    ) -> QuerySet:
        """A graded :class:`nudge.QuerySet`: ``embeddings`` (one row per ``query_ids``), :meth:`answers`
        and :meth:`grades`. Graded nDCG uses the grades; NUDGE binarises them (grade > its
        ``grade_threshold``, default 0)."""
        query_ids = self.answered_query_ids if query_ids is None else check_ids(query_ids, "query_ids")
        if len(embeddings) != len(query_ids):
            raise ValueError(f"embeddings has {len(embeddings)} rows but there are {len(query_ids)} query_ids")
        return QuerySet(embeddings, self.answers(query_ids, doc_ids), self.grades(query_ids))

    def subset(self, query_ids: Sequence[str]) -> RetrievalDataset:
        """A new dataset with only ``query_ids`` (in that order) and their labels; all documents kept."""
        query_ids = check_ids(query_ids, "query_ids")
        unknown = [q for q in query_ids if q not in self.queries]
        if unknown:
            raise ValueError(f"query_ids names {len(unknown)} unknown query id(s), e.g. {unknown[0]!r}")
        if len(set(query_ids)) != len(query_ids):
            raise ValueError("query_ids contains duplicate ids")
        queries = {q: self.queries[q] for q in query_ids}
        relevant = {q: dict(self.relevant[q]) for q in query_ids if q in self.relevant}
        return RetrievalDataset(queries, dict(self.corpus), relevant)

    def stats(self) -> dict[str, int]:
        """Counts: queries, documents, pairs, answered documents, queries with more than one relevant."""
        answered = {d for docs in self.relevant.values() for d in docs}
        return {
            "queries": len(self.queries),
            "documents": len(self.corpus),
            "pairs": sum(len(docs) for docs in self.relevant.values()),
            "answered_documents": len(answered),
            "queries_with_multiple_relevant": sum(len(docs) > 1 for docs in self.relevant.values()),
        }


def _check_texts(texts: object, name: str) -> None:
    if not isinstance(texts, dict):
        raise ValueError(f"{name} must be a dict of id -> text, got {type(texts).__name__}")
    for key, text in texts.items():
        if not isinstance(key, str) or not isinstance(text, str):
            raise ValueError(f"{name} must map string ids to string texts; got {key!r}: {type(text).__name__}")


def _check_dataset(queries: object, corpus: object, relevant: object) -> None:
    _check_texts(queries, "queries")
    _check_texts(corpus, "corpus")
    if not isinstance(relevant, dict):
        raise ValueError(f"relevant must be a dict of query id -> {{doc id: grade}}, got {type(relevant).__name__}")
    for q, docs in relevant.items():
        if q not in queries:
            raise ValueError(f"relevant names query id {q!r}, which is not in queries")
        if not isinstance(docs, dict) or not docs:
            raise ValueError(f"relevant[{q!r}] must be a non-empty dict of doc id -> grade")
        for d, grade in docs.items():
            if d not in corpus:
                raise ValueError(f"relevant[{q!r}] names document id {d!r}, which is not in corpus")
            if isinstance(grade, bool) or not isinstance(grade, numbers.Real) or not 0 < grade < math.inf:
                raise ValueError(f"relevant[{q!r}][{d!r}] must be a finite grade > 0, got {grade!r}")


# --------------------------------------------------------------------------------------------
# shared reading helpers
# --------------------------------------------------------------------------------------------


def _at(file: str, line: int | None) -> str:
    return file if line is None else f"{file} line {line}"


def _existing(path: str | os.PathLike, name: str = "path") -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"{name} must be a file or folder path, got {type(path).__name__}")
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{name} {str(path)!r} does not exist")
    return path


def _read_text(path: Path, file: str) -> str:
    """The file as text: UTF-8 (optional BOM), line endings turned into ``\\n``."""
    if not path.is_file():
        raise ValueError(f"{file}: {str(path)!r} is not a file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ValueError(
            f"{file} line {line}: not valid UTF-8 (byte {exc.start}); save the file as UTF-8 (in Excel: 'CSV UTF-8')"
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _parse_grade(value: object) -> float | None:
    """A finite grade from a number or numeric string, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, numbers.Real) or not math.isfinite(value):
        return None
    return float(value)


def _jsonl_objects(text: str, file: str, report: ValidationReport) -> Iterator[tuple[int, dict]]:
    """(line, object) for every JSON-object line; other non-blank lines become bad rows."""
    for n, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            report.bad_rows.append(Problem(file, n, f"not valid JSON: {exc.msg} (column {exc.colno})", "bad_row"))
            continue
        if not isinstance(obj, dict):
            report.bad_rows.append(Problem(file, n, f"expected a JSON object, got {type(obj).__name__}", "bad_row"))
            continue
        yield n, obj


class _Collector:
    """Builds a dataset row by row and records every problem in a report."""

    def __init__(self, source: str, origins: dict[str, str]) -> None:
        self.report = ValidationReport(source=source)
        self.origins = origins  # role -> where ids of that role come from, for messages
        self.texts: dict[str, dict[str, str]] = {"query": {}, "document": {}}
        self.relevant: dict[str, dict[str, float]] = {}
        self.where: dict[tuple[str, str], tuple[str, int | None]] = {}
        self.skipped: dict[tuple[str, str], str] = {}
        self.pairs: dict[tuple[str, str], tuple[float, str, int | None]] = {}

    def bad_row(self, file: str, line: int | None, reason: str, role: str = "", key: str | None = None) -> None:
        """Record an unparseable row; if its id was readable, remember why that id is missing.

        A pair row whose query or document is empty (:data:`_EMPTY_PAIR_TEXT`) is counted under
        ``empty_texts``, as the summary's "empty texts" says, not under ``bad_rows``."""
        if reason in _EMPTY_PAIR_TEXT:
            self.report.empty_texts.append(Problem(file, line, reason, "empty_text", key))
        else:
            self.report.bad_rows.append(Problem(file, line, reason, "bad_row", key))
        if key is not None:
            self.skipped.setdefault((role, key), f"its row is unreadable ({_at(file, line)})")

    def add_text(self, role: str, key: str, text: str, file: str, line: int | None) -> None:
        """Add a query or document; duplicate ids and empty texts are skipped and reported."""
        first = self.where.get((role, key))
        if first is not None:
            reason = f"{role} id {key!r} appears again (first at {_at(*first)}); this entry was skipped"
            self.report.duplicates.append(Problem(file, line, reason, "duplicate_id", key))
            return
        self.where[(role, key)] = (file, line)
        if not text.strip():
            self.report.empty_texts.append(
                Problem(file, line, f"{role} {key!r} has an empty text; skipped", "empty_text", key)
            )
            self.skipped[(role, key)] = f"its text is empty ({_at(file, line)})"
            return
        self.texts[role][key] = text

    def known(self, role: str, key: str, file: str, line: int | None) -> bool:
        """Whether ``key`` was loaded; if not, report the label naming it as an unknown id."""
        if key in self.texts[role]:
            return True
        why = self.skipped.get((role, key))
        status = f"was not loaded: {why}" if why else f"is not in {self.origins[role]}"
        reason = f"names {role} id {key!r}, which {status}; label skipped"
        self.report.unknown_ids.append(Problem(file, line, reason, "unknown_id", key))
        return False

    def add_pair(self, q: str, d: str, grade: float, file: str, line: int | None) -> None:
        """Add a label; unknown ids, repeats and grades <= 0 are reported (only grades > 0 are relevant)."""
        q_ok = self.known("query", q, file, line)
        d_ok = self.known("document", d, file, line)
        if not (q_ok and d_ok):
            return
        first = self.pairs.get((q, d))
        if first is not None:
            grade0, file0, line0 = first
            if grade0 != grade:  # which one holds cannot be guessed: an error
                reason = (f"pair (query {q!r}, document {d!r}) repeats {_at(file0, line0)} with another grade "
                          f"{grade:g} (first {grade0:g}): keep one row with the right grade")  # fmt: skip
                self.report.duplicates.append(Problem(file, line, reason, "conflicting_grade", q))
                return
            reason = f"pair (query {q!r}, document {d!r}) repeats {_at(file0, line0)}; counted once"
            self.report.duplicates.append(Problem(file, line, reason, "duplicate_pair", q))
            return
        self.pairs[(q, d)] = (grade, file, line)
        if grade <= 0:
            reason = f"query {q!r}, document {d!r} has grade {grade:g}: not relevant, listed here only"
            self.report.not_relevant.append(Problem(file, line, reason, "not_relevant", q))
            return
        self.relevant.setdefault(q, {})[d] = grade

    def finish(self, *, check_texts: bool = True) -> tuple[RetrievalDataset, ValidationReport]:
        """Add the informational checks and build the dataset."""
        queries, corpus = self.texts["query"], self.texts["document"]
        if check_texts:
            self._duplicate_texts("query")
            self._duplicate_texts("document")
        for q in queries:
            if q not in self.relevant:
                reason = f"query {q!r} has no relevant document"
                self.report.queries_without_answers.append(
                    Problem(*self.where[("query", q)], reason, "query_without_answers", q)
                )
        answered = {d for docs in self.relevant.values() for d in docs}
        for d in corpus:
            if d not in answered:
                reason = f"document {d!r} is relevant to no query"
                self.report.documents_never_answered.append(
                    Problem(*self.where[("document", d)], reason, "document_never_answered", d)
                )
        dataset = RetrievalDataset(queries, corpus, self.relevant)
        stats = dataset.stats()
        logger.info(
            "loaded %s: %d queries, %d documents, %d pairs; %d error(s)",
            self.report.source,
            stats["queries"],
            stats["documents"],
            stats["pairs"],
            len(self.report.errors),
        )
        return dataset, self.report

    def _duplicate_texts(self, role: str) -> None:
        first_id: dict[str, str] = {}
        for key, text in self.texts[role].items():
            if text in first_id:
                other = first_id[text]
                reason = f"{role} {key!r} has the same text as {role} {other!r} ({_at(*self.where[(role, other)])})"
                self.report.duplicates.append(Problem(*self.where[(role, key)], reason, "duplicate_text", key))
            else:
                first_id[text] = key


# --------------------------------------------------------------------------------------------
# LlamaIndex
# --------------------------------------------------------------------------------------------

LLAMAINDEX_SECTIONS = ("queries", "corpus", "relevant_docs")
_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def _skip_ws(text: str, pos: int) -> int:
    return _WS.match(text, pos).end()


def _json_members(text: str, pos: int) -> list[tuple[str, object, int, int]]:
    """``(key, value, key position, value position)`` of the JSON object at ``text[pos]``.

    ``text`` must be valid JSON (checked before); duplicate keys are all returned, in order.
    """
    members: list[tuple[str, object, int, int]] = []
    pos = _skip_ws(text, pos + 1)
    if text[pos] == "}":
        return members
    while True:
        key, end = _DECODER.raw_decode(text, pos)
        start = _skip_ws(text, _skip_ws(text, end) + 1)  # past the ':'
        value, end = _DECODER.raw_decode(text, start)
        members.append((key, value, pos, start))
        pos = _skip_ws(text, end)
        if text[pos] == "}":
            return members
        pos = _skip_ws(text, pos + 1)  # past the ','


def _json_elements(text: str, pos: int) -> list[tuple[object, int]]:
    """``(value, position)`` of the elements of the JSON array at ``text[pos]`` (valid JSON)."""
    elements: list[tuple[object, int]] = []
    pos = _skip_ws(text, pos + 1)
    if text[pos] == "]":
        return elements
    while True:
        value, end = _DECODER.raw_decode(text, pos)
        elements.append((value, pos))
        pos = _skip_ws(text, end)
        if text[pos] == "]":
            return elements
        pos = _skip_ws(text, pos + 1)


class _Lines:
    """Position in a text -> 1-based line number."""

    def __init__(self, text: str) -> None:
        self.newlines = [m.start() for m in re.finditer("\n", text)]

    def __call__(self, pos: int) -> int:
        return bisect.bisect_left(self.newlines, pos) + 1


def load_llamaindex(path: str | os.PathLike) -> tuple[RetrievalDataset, ValidationReport]:
    """Load LlamaIndex's ``EmbeddingQAFinetuneDataset`` JSON layout.

    The layout is ``{"queries": {qid: text}, "corpus": {doc_id: text}, "relevant_docs":
    {qid: [doc_id, ...]}}``; every listed document gets grade 1.0. Other top-level keys
    (LlamaIndex writes ``"mode"``) are ignored.

    Line numbers: JSON has no rows, so each report entry carries the line of the key (or list
    element) it is about, found by walking the file text. Duplicate keys, which ``json.load``
    would silently merge, are reported; the first occurrence is kept.

    Parameters
    ----------
    path : str or path-like
        The ``.json`` file.

    Returns
    -------
    dataset : RetrievalDataset
        The valid entries only: entries with duplicate ids, empty or non-string texts and labels
        naming unknown ids are skipped (and listed in the report). Queries keep the file order.
    report : ValidationReport
        Everything skipped or noticed, with line numbers.
    """
    path = _existing(path)
    file = path.name
    text = _read_text(path, file)
    sections = _llamaindex_sections(text, file)
    line = _Lines(text)
    col = _Collector(file, {"query": "the 'queries' section", "document": "the 'corpus' section"})
    for section, role in (("queries", "query"), ("corpus", "document")):
        for key, value, pos, _ in _json_members(text, sections[section]):
            if isinstance(value, str):
                col.add_text(role, key, value, file, line(pos))
            else:
                reason = f"{section}[{key!r}] must be a string, got {type(value).__name__}"
                col.bad_row(file, line(pos), reason, role, key)
    _llamaindex_labels(text, sections["relevant_docs"], file, line, col)
    return col.finish()


def _llamaindex_sections(text: str, file: str) -> dict[str, int]:
    """Check the top level of a LlamaIndex file; return the text position of each section's value."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{file} line {exc.lineno}: not valid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{file}: expected a JSON object with {list(LLAMAINDEX_SECTIONS)}, got {type(data).__name__}")
    missing = [s for s in LLAMAINDEX_SECTIONS if s not in data]
    if missing:
        raise ValueError(f"{file}: not the LlamaIndex layout: missing key(s) {missing} (found {list(data)})")
    sections: dict[str, int] = {}
    for key, value, _, start in _json_members(text, _skip_ws(text, 0)):
        if key in sections and key in LLAMAINDEX_SECTIONS:
            raise ValueError(f"{file}: the key {key!r} appears twice at the top level")
        if key in LLAMAINDEX_SECTIONS and not isinstance(value, dict):
            raise ValueError(f"{file}: {key!r} must be a JSON object {{id: ...}}, got {type(value).__name__}")
        sections.setdefault(key, start)
    ignored = [k for k in sections if k not in (*LLAMAINDEX_SECTIONS, "mode")]
    if ignored:
        logger.warning("%s: ignoring top-level key(s) %s", file, ignored)
    return sections


def _llamaindex_labels(text: str, start: int, file: str, line: _Lines, col: _Collector) -> None:
    """Add the labels of the ``relevant_docs`` object at ``text[start]`` (grade 1.0 each)."""
    seen: dict[str, int] = {}
    for q, value, pos, value_pos in _json_members(text, start):
        if q in seen:
            reason = f"relevant_docs key {q!r} appears again (first at line {seen[q]}); this entry was skipped"
            col.report.duplicates.append(Problem(file, line(pos), reason, "duplicate_id", q))
            continue
        seen[q] = line(pos)
        if not isinstance(value, list):
            reason = f"relevant_docs[{q!r}] must be a list of document ids, got {type(value).__name__}"
            col.bad_row(file, line(pos), reason)
            continue
        if not value:
            col.known("query", q, file, line(pos))
        for d, d_pos in _json_elements(text, value_pos):
            if isinstance(d, str):
                col.add_pair(q, d, 1.0, file, line(d_pos))
            else:
                col.bad_row(file, line(d_pos), f"relevant_docs[{q!r}] contains {d!r}, not a string id")


def save_llamaindex(dataset: RetrievalDataset, path: str | os.PathLike, *, drop_grades: bool = False) -> Path:
    """Write ``dataset`` in the LlamaIndex layout, atomically (UTF-8, 2-space indent, dataset order).

    :func:`load_llamaindex` reads the file back to an equal dataset, in the same order, when all
    grades are 1.0.

    Parameters
    ----------
    dataset : RetrievalDataset
        What to write.
    path : str or path-like
        The ``.json`` file; its folder must exist.
    drop_grades : bool
        The layout has no grades: with graded labels (a grade other than 1.0) this must be True
        to write them all as relevant; otherwise a ``ValueError`` is raised.

    Returns
    -------
    Path
        The written file.
    """
    if not isinstance(dataset, RetrievalDataset):
        raise ValueError(f"dataset must be a RetrievalDataset, got {type(dataset).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path must be a file path, got {type(path).__name__}")
    graded = sum(g != 1.0 for docs in dataset.relevant.values() for g in docs.values())
    if graded and not drop_grades:
        raise ValueError(
            f"dataset has {graded} label(s) with a grade other than 1.0, and the LlamaIndex layout has no grades; "
            "pass drop_grades=True to write every label as relevant"
        )
    data = {
        "queries": dataset.queries,
        "corpus": dataset.corpus,
        "relevant_docs": {q: list(docs) for q, docs in dataset.relevant.items()},
    }
    return write_json(path, data)


# --------------------------------------------------------------------------------------------
# BEIR
# --------------------------------------------------------------------------------------------


def _beir_id(obj: dict, name: str) -> tuple[str | None, str]:
    """The record's id as a string, or ``(None, reason)``."""
    value = obj.get(name)
    if value is None:
        return None, f"no {name!r} field"
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None, f"{name!r} must be a string, got {type(value).__name__}"
    key = str(value)
    if not key.strip():
        return None, f"{name!r} is empty"
    return key, ""


def _beir_text(obj: dict, with_title: bool) -> tuple[str | None, str]:
    """``title + " " + text`` (just ``text`` when the title is empty or absent), or ``(None, reason)``."""
    text = obj.get("text")
    if not isinstance(text, str):
        return None, "no 'text' field" if text is None else f"'text' must be a string, got {type(text).__name__}"
    if not with_title:
        return text, ""
    title = obj.get("title")
    if title is None:
        title = ""
    if not isinstance(title, str):
        return None, f"'title' must be a string, got {type(title).__name__}"
    return " ".join(part for part in (title, text) if part.strip()) or text, ""


def _read_beir_texts(path: Path, file: str, role: str, col: _Collector, keep: set[str] | None) -> None:
    """Add the records of ``corpus.jsonl`` / ``queries.jsonl`` (only ids in ``keep`` when given)."""
    for n, obj in _jsonl_objects(_read_text(path, file), file, col.report):
        key, why = _beir_id(obj, "_id")
        if key is None:
            col.bad_row(file, n, why)
            continue
        if keep is not None and key not in keep:
            reason = f"query {key!r} is not in the chosen qrels; not loaded"
            col.report.queries_not_in_qrels.append(Problem(file, n, reason, "query_not_in_qrels", key))
            continue
        text, why = _beir_text(obj, with_title=role == "document")
        if text is None:
            col.bad_row(file, n, f"{role} {key!r}: {why}", role, key)
            continue
        col.add_text(role, key, text, file, n)


def _read_qrels(path: Path, file: str, col: _Collector) -> list[tuple[str, str, float, str, int]]:
    """Rows ``(query id, doc id, score, file, line)`` of a qrels TSV; the header line is skipped."""
    rows = []
    header_seen = False
    for n, raw in enumerate(_read_text(path, file).split("\n"), start=1):
        if not raw.strip():
            continue
        fields = [f.strip() for f in raw.split("\t")]
        score = _parse_grade(fields[2]) if len(fields) == 3 else None
        if not header_seen:
            header_seen = True
            if score is None:
                continue  # the header line
            logger.info("%s has no header line; line 1 is read as data", file)
        if len(fields) != 3:
            reason = f"expected 3 tab-separated fields (query-id, corpus-id, score), got {len(fields)}"
            col.bad_row(file, n, reason)
        elif not fields[0] or not fields[1]:
            col.bad_row(file, n, "empty query-id or corpus-id")
        elif score is None:
            col.bad_row(file, n, f"score {fields[2]!r} is not a finite number")
        elif score < 0:
            col.bad_row(file, n, f"score {fields[2]!r} is negative: grades are >= 0 (0 = not relevant)")
        else:
            rows.append((fields[0], fields[1], score, file, n))
    return rows


def _check_splits(split: object) -> list[str]:
    splits = [split] if isinstance(split, str) else split
    if not isinstance(splits, (list, tuple)) or not splits or not all(isinstance(s, str) and s for s in splits):
        raise ValueError(f"split must be a split name such as 'test' or a non-empty list of names, got {split!r}")
    if len(set(splits)) != len(splits):
        raise ValueError(f"split lists a split twice: {list(splits)}")
    return list(splits)


def load_beir(
    folder: str | os.PathLike, split: str | Sequence[str] = "test"
) -> tuple[RetrievalDataset, ValidationReport]:
    """Load a dataset in the BEIR layout.

    ``folder`` holds ``corpus.jsonl`` (``{"_id", "title", "text"}``), ``queries.jsonl``
    (``{"_id", "text"}``) and ``qrels/{split}.tsv`` (a header line, then
    ``query-id<TAB>corpus-id<TAB>score``). A document's text is ``title + " " + text``, or just
    ``text`` when the title is empty (as BEIR's models and the SciFact embeddings use it).

    Only the queries named in the chosen qrels are loaded (the others are listed in
    ``report.queries_not_in_qrels``); every document is loaded. Scores are kept as graded
    relevance; rows with score 0 are not relevant and appear in ``report.not_relevant``; a
    negative score is a bad row.

    Parameters
    ----------
    folder : str or path-like
        The dataset folder.
    split : str or list of str
        Qrels file(s) to use, e.g. ``"test"`` or ``["train", "dev"]`` (their labels are merged).

    Returns
    -------
    dataset : RetrievalDataset
        The valid rows only: bad rows, duplicate ids, empty texts and labels naming unknown ids
        are skipped (and reported). Queries and documents keep the order of their files.
    report : ValidationReport
        Everything skipped or noticed, with file (relative to ``folder``) and line number.
    """
    folder = _existing(folder, "folder")
    if not folder.is_dir():
        raise ValueError(f"folder {str(folder)!r} is not a folder")
    splits = _check_splits(split)
    for name in ("corpus.jsonl", "queries.jsonl"):
        if not (folder / name).is_file():
            raise ValueError(f"folder {str(folder)!r} has no {name}: not the BEIR layout")
    available = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
    for s in splits:
        if s not in available:
            raise ValueError(f"split {s!r}: no qrels/{s}.tsv in {str(folder)!r} (available: {available})")
    files = [f"qrels/{s}.tsv" for s in splits]
    origins = {"query": "queries.jsonl", "document": "corpus.jsonl"}
    col = _Collector(f"{folder} (split {', '.join(splits)})", origins)
    rows = [row for file in files for row in _read_qrels(folder / file, file, col)]
    _read_beir_texts(folder / "queries.jsonl", "queries.jsonl", "query", col, keep={row[0] for row in rows})
    _read_beir_texts(folder / "corpus.jsonl", "corpus.jsonl", "document", col, keep=None)
    for q, d, score, file, n in rows:
        col.add_pair(q, d, score, file, n)
    return col.finish()


# --------------------------------------------------------------------------------------------
# (query, document) pairs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _PairRow:
    line: int
    query: str
    document: str
    grade: float


def _pick_column(names: Sequence[str], wanted: tuple[str, ...], what: str, file: str) -> int | None:
    found = [i for i, name in enumerate(names) if name in wanted]
    if len(found) > 1:
        raise ValueError(f"{file}: the header has several {what} columns: {[names[i] for i in found]}; keep one")
    return found[0] if found else None


_EMPTY_PAIR_TEXT = ("the query is empty", "the document is empty")  # reported as empty texts, not bad rows
_NO_GRADE = object()  # marks a row without a grade column or key (grade 1.0)


def _pair_row(line: int, query: object, document: object, grade: object) -> _PairRow | str:
    """One checked row (texts stripped), or the reason it is bad."""
    for name, value in (("query", query), ("document", document)):
        if value is None:
            return f"no {name} field"
        if not isinstance(value, str):
            return f"the {name} must be a text, got {type(value).__name__}"
        if not value.strip():
            return f"the {name} is empty"
    value = 1.0 if grade is _NO_GRADE else _parse_grade(grade)
    if value is None:
        return f"grade {grade!r} is not a finite number"
    if value < 0:
        return f"grade {grade!r} is negative: grades are >= 0 (0 = not relevant)"
    return _PairRow(line, query.strip(), document.strip(), value)


def _csv_delimiter(text: str, default: str) -> str:
    """The table's delimiter: ``default``, unless the header has none of it but has ';' or a tab."""
    header = next((line for line in text.split("\n") if line.strip()), "")
    if default == "," and "," not in header:
        for other in (";", "\t"):
            if other in header:
                return other
    return default


def _read_pair_table(text: str, file: str, delimiter: str, col: _Collector) -> list[_PairRow]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_csv_delimiter(text, delimiter), strict=True)
    rows: list[_PairRow] = []
    header: list[str] | None = None
    end = 0  # last line of the previous record
    try:
        for record in reader:
            start, end = end + 1, reader.line_num
            if not record or not any(f.strip() for f in record):
                continue
            if header is None:
                header = [h.strip().lower() for h in record]
                columns = _pair_columns(header, file)
                continue
            rows += _table_row(record, len(header), columns, file, start, col)
    except csv.Error as exc:
        raise ValueError(
            f"{file} line {end + 1}: malformed CSV: {exc} (is a quote opened and never closed?); reading stopped "
            "there, so no other row of the file was checked: fix this one and validate again"
        ) from None
    if header is None:
        raise ValueError(f"{file}: the file is empty (expected a header line such as 'query,document')")
    return rows


def _pair_columns(header: list[str], file: str) -> tuple[int, int, int | None]:
    q = _pick_column(header, QUERY_COLUMNS, "query", file)
    d = _pick_column(header, DOCUMENT_COLUMNS, "document", file)
    g = _pick_column(header, GRADE_COLUMNS, "grade", file)
    if q is None or d is None:
        raise ValueError(
            f"{file}: the header must name a query column ({' or '.join(QUERY_COLUMNS)}) and a document column "
            f"({', '.join(DOCUMENT_COLUMNS)}); found {header}"
        )
    ignored = [h for i, h in enumerate(header) if i not in (q, d, g)]
    if ignored:
        logger.info("%s: ignoring column(s) %s", file, ignored)
    return q, d, g


def _table_row(
    record: list[str], width: int, columns: tuple[int, int, int | None], file: str, line: int, col: _Collector
) -> list[_PairRow]:
    if len(record) > width and any(f.strip() for f in record[width:]):
        reason = f"{len(record)} fields but the header has {width} (a comma inside a text? quote that text)"
        col.bad_row(file, line, reason)
        return []
    q, d, g = (None if i is None or i >= len(record) else record[i] for i in columns)
    if columns[2] is None:
        g = _NO_GRADE
    elif g is None:
        g = ""
    row = _pair_row(line, q, d, g)
    if isinstance(row, str):
        col.bad_row(file, line, row)
        return []
    return [row]


def _jsonl_pair(obj: dict, line: int) -> _PairRow | str:
    """The row of one JSON object (keys case-insensitive), or the reason it is bad."""
    lower: dict[str, object] = {}
    for key, value in obj.items():
        lower.setdefault(key.strip().lower(), value)
    values = []
    for names, what in ((QUERY_COLUMNS, "query"), (DOCUMENT_COLUMNS, "document")):
        present = [k for k in names if k in lower]
        if not present:
            return f"no {what} field (one of {list(names)})"
        if len(present) > 1:
            return f"several {what} fields {present}; keep one"
        values.append(lower[present[0]])
    return _pair_row(line, values[0], values[1], lower.get("grade", _NO_GRADE))


def _read_pair_jsonl(text: str, file: str, col: _Collector) -> list[_PairRow]:
    rows: list[_PairRow] = []
    for n, obj in _jsonl_objects(text, file, col.report):
        row = _jsonl_pair(obj, n)
        if isinstance(row, str):
            col.bad_row(file, n, row)
        else:
            rows.append(row)
    return rows


def _assign_ids(texts: list[str], prefix: str) -> dict[str, str]:
    """Text -> id (``q0001``, ...) in first-seen order; the width grows past 9999 texts."""
    width = max(4, len(str(len(texts))))
    return {text: f"{prefix}{i:0{width}d}" for i, text in enumerate(texts, start=1)}


def load_pairs(path: str | os.PathLike) -> tuple[RetrievalDataset, ValidationReport]:
    """Load (query text, document text) pairs from a CSV/TSV table or a JSONL file.

    The format comes from the extension: ``.csv`` (comma; a header with ';' or tabs but no comma
    switches to that delimiter), ``.tsv`` (tab), ``.jsonl`` / ``.ndjson`` (one JSON object per
    line). The header (or the object keys) must name a query column (``query`` or ``question``)
    and a document column (``document``, ``answer``, ``passage`` or ``positive``), case-insensitive;
    an optional ``grade`` column gives graded relevance (default 1.0; grade 0 means not relevant
    and is listed in ``report.not_relevant``; a negative or non-finite grade is a bad row). Other
    columns are ignored.

    Texts are stripped of surrounding whitespace; texts equal under the kit's text rule
    (``nudge.production.streaming.normalise_text``: whitespace runs collapsed, invisible format characters
    removed) share one id, holding the first-seen text. Ids are assigned
    in first-seen order: ``q0001``, ``q0002``, ... for queries, ``d0001``, ... for documents.

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    dataset : RetrievalDataset
        The valid rows only: rows with a missing query or document or a bad (negative,
        non-finite) grade are skipped and listed in ``report.bad_rows``, rows with an empty query
        or document in ``report.empty_texts``; a repeated pair is kept once and listed in
        ``report.duplicates``. The corpus holds only the documents named in the file.
    report : ValidationReport
        Everything skipped or noticed, with 1-based line numbers (of the first line of a record
        whose quoted text spans several lines).
    """
    path = _existing(path)
    if path.is_dir():
        raise ValueError(
            f"path {str(path)!r} is a folder; load_pairs reads one .csv/.tsv/.jsonl file. Read a BEIR folder with "
            "load_beir(folder, split=...) (or load_dataset(path), which picks the loader)"
        )
    file = path.name
    suffix = path.suffix.lower()
    if suffix not in PAIR_TABLE_SUFFIXES and suffix not in JSONL_SUFFIXES:
        raise ValueError(
            f"path {str(path)!r}: cannot tell the format from the extension {suffix!r}; use .csv (or .tsv) for a "
            "table with a header line such as 'query,document', or .jsonl for one JSON object per line"
        )
    col = _Collector(file, {"query": file, "document": file})
    text = _read_text(path, file)
    if suffix in PAIR_TABLE_SUFFIXES:
        rows = _read_pair_table(text, file, PAIR_TABLE_SUFFIXES[suffix], col)
    else:
        rows = _read_pair_jsonl(text, file, col)
    from .streaming import normalise_text  # the kit's one text rule: twin texts (inner spacing, invisible
    # format characters) share one id and keep the first-seen text

    first_text: dict[tuple[str, str], str] = {}
    for r in rows:
        first_text.setdefault(("query", normalise_text(r.query)), r.query)
        first_text.setdefault(("document", normalise_text(r.document)), r.document)
    rows = [
        _PairRow(
            r.line,
            first_text["query", normalise_text(r.query)],
            first_text["document", normalise_text(r.document)],
            r.grade,
        )
        for r in rows
    ]
    query_ids = _assign_ids(list(dict.fromkeys(r.query for r in rows)), "q")
    doc_ids = _assign_ids(list(dict.fromkeys(r.document for r in rows)), "d")
    first_line: dict[tuple[str, str], int] = {}
    for r in rows:
        first_line.setdefault(("query", r.query), r.line)
        first_line.setdefault(("document", r.document), r.line)
    for (role, text_), n in first_line.items():
        col.add_text(role, (query_ids if role == "query" else doc_ids)[text_], text_, file, n)
    for r in rows:
        col.add_pair(query_ids[r.query], doc_ids[r.document], r.grade, file, r.line)
    return col.finish(check_texts=False)


# --------------------------------------------------------------------------------------------
# dispatch
# --------------------------------------------------------------------------------------------


def load_dataset(path: str | os.PathLike, **kwargs: object) -> tuple[RetrievalDataset, ValidationReport]:
    """Load a dataset, choosing the loader from ``path``.

    A folder is read with :func:`load_beir` (``kwargs`` may give ``split``), a ``.json`` file
    with :func:`load_llamaindex`, a ``.csv``, ``.tsv``, ``.jsonl`` or ``.ndjson`` file with
    :func:`load_pairs`.
    """
    path = _existing(path)
    if path.is_dir():
        return load_beir(path, **kwargs)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return load_llamaindex(path, **kwargs)
    if suffix in PAIR_TABLE_SUFFIXES or suffix in JSONL_SUFFIXES:
        return load_pairs(path, **kwargs)
    raise ValueError(
        f"path {str(path)!r}: cannot tell the layout from the extension {suffix!r}; expected a BEIR folder, "
        "a LlamaIndex .json file, or a .csv/.tsv/.jsonl file of (query, document) pairs"
    )
