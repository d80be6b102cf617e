"""A persistent NUDGE state for the weekly loop: new labelled pairs in, nudged embeddings out.

The query sums ``G_i`` are additive, so a state keeps them per document id and adds each new
training pair in time proportional to the new pairs. Validation pairs are kept to re-pick gamma
on the grown validation set, and the nudge is always computed from the ORIGINAL (base-model)
embeddings, never from already-nudged ones: the state records the document ids with SHA-256
digests of their original rows (per row, and :func:`nudge._corpus.fingerprint` of the whole
matrix) and refuses any other vectors.

Gamma selection and the movement itself are :class:`nudge.Nudge`'s: the state hands it one
pseudo-query per document whose embedding is ``G_i`` rounded to the embeddings' dtype (the query
sum of a single query is the query itself), so the result is a ``Nudge`` fit by construction.

Floating point: each pair's query is added to its document's sum in float64, in the order the
pairs arrive, so any sequence of :meth:`NudgeState.add_pairs` calls gives the same sums, bit for
bit, as one call with all the pairs (same order), hence the same gamma and vectors. A
``Nudge.fit`` on the raw pairs sums in the queries' dtype like the reference package; the two
agree exactly whenever the sums are exact and to within rounding otherwise.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import unicodedata
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np

from .._corpus import fingerprint
from .._io import artifact_error, load_artifact, save_artifact
from .._validation import check_ids, check_matrix
from .._version import __version__
from ..estimator import NotFittedError, Nudge, check_params
from ..pairs import QuerySet, as_query_set

__all__ = ["NudgeState", "normalise_text", "pair_key"]

log = logging.getLogger(__name__)
_FORMAT = "nudge-state/1"
_DIGEST_BYTES = 32


class NudgeState:
    """Persistent NUDGE state: query sums per document id, validation pairs, gamma, original record.

    Parameters
    ----------
    method : {"N", "M"}
        NUDGE-N (unit-norm output, gamma on ``grid``) or NUDGE-M (gamma chosen exactly).
    k : int
        Gamma maximises the validation share of answers in the top ``k`` (as :class:`nudge.Nudge`).
    grid : sequence of float, optional
        NUDGE-N's gamma grid (default the reference grid 0, 0.02, ..., 0.48).

    Attributes
    ----------
    gamma_ : float or None
        Gamma chosen by the last :meth:`fit_gamma` (None before).
    val_score_ : float or None
        Validation score at ``gamma_``.
    validation_curve_ : dict or None
        ``{"gamma": (g,), "score": (g,)}`` of the last :meth:`fit_gamma`.
    best_region_ : tuple of float or None
        NUDGE-M: every gamma in ``[start, end]`` scores ``val_score_``.
    doc_ids_ : list of str
        The documents of the recorded original corpus, in the order last given to :meth:`fit_gamma`.
    embeddings_sha256_ : str or None
        :func:`nudge._corpus.fingerprint` of that corpus (None after a removal, until the next fit).
    history : list of dict
        Records kept with the state and saved in the same file (JSON-serialisable): the command line
        records each update here, so the record and the state are committed together.
    pair_keys : set of str
        Content keys of the labelled pairs already counted (see :func:`pair_key`): the command line
        uses them to skip pairs it has seen, whichever file they come from.

    Examples
    --------
    The weekly loop (``q_*`` are query embeddings; answers are lists of document ids)::

        state = NudgeState("N")
        state.add_pairs(train=(q_train, [["doc-7"], ...]), val=(q_val, [["doc-2"], ...]))
        nudged = state.fit_gamma(embeddings, doc_ids).apply(embeddings, doc_ids)
        state.save("nudge_state.npz")  # next week: NudgeState.load("nudge_state.npz")
    """

    def __init__(self, method: str = "N", *, k: int = 1, grid=None) -> None:
        checked = check_params(method, k=k, grid=grid)  # the estimator's checks and messages
        self.method, self.k = checked.method, checked.k
        self.grid = None if grid is None else tuple(float(g) for g in checked.grid)
        self._dim: int | None = None
        self._dtype: np.dtype | None = None
        self._sum_ids: list[str] = []
        self._slot: dict[str, int] = {}
        self._sums = np.zeros((0, 0))  # (capacity, d): the first len(_sum_ids) rows are in use
        self._counts = np.zeros(0, dtype=np.int64)
        self._val_batches: list[np.ndarray] = []
        self._val_answers: list[list[str]] = []
        self.doc_ids_: list[str] = []
        self._digests = np.zeros((0, _DIGEST_BYTES), dtype=np.uint8)
        self.embeddings_sha256_: str | None = None
        self._version = 0
        self._fitted_version: int | None = None
        self.gamma_: float | None = None
        self.val_score_: float | None = None
        self.validation_curve_: dict | None = None
        self.best_region_: tuple | None = None
        self.history: list[dict] = []
        self.pair_keys: set[str] = set()

    def __repr__(self) -> str:
        grid = "" if self.grid is None else f", grid=<{len(self.grid)} values>"
        return (
            f"NudgeState(method={self.method!r}, k={self.k}{grid}; {len(self._sum_ids)} documents with "
            f"training pairs, {self.n_val_queries} validation queries, gamma={self.gamma_})"
        )

    # ------------------------------------------------------------------ read-only views
    @property
    def n_train_pairs(self) -> int:
        """Training (query, document) pairs currently summed."""
        return int(self._counts[: len(self._sum_ids)].sum())

    @property
    def n_val_queries(self) -> int:
        return len(self._val_answers)

    @property
    def n_val_pairs(self) -> int:
        return sum(map(len, self._val_answers))

    def query_sums(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Copies of the per-document sums: ``(doc_ids (m,), sums (m, d) float64, counts (m,) int64)``."""
        m = len(self._sum_ids)
        return list(self._sum_ids), self._sums[:m].copy(), self._counts[:m].copy()

    # ------------------------------------------------------------------ updates
    def add_pairs(self, train=None, val=None) -> NudgeState:
        """Add labelled pairs; time and memory proportional to the new pairs.

        Parameters
        ----------
        train, val : (embeddings, answers) tuple, QuerySet or {"q_embs", "q_ans_indx"} dict
            Query embeddings, shape (n, d), and per query a list of relevant document ids
            (str). Training queries are added to their documents' sums; validation queries are
            kept to choose gamma. Give either or both. Inputs are not modified.

        Returns
        -------
        self
        """
        if train is None and val is None:
            raise ValueError("add_pairs needs train and/or val pairs; both are None")
        dim, dtype = self._dim, self._dtype
        parsed = {}
        for name, value in (("train", train), ("val", val)):
            if value is not None:
                parsed[name] = _parse_pairs(value, name, dim, dtype)
                dim, dtype = parsed[name][0].shape[1], parsed[name][0].dtype
        self._dim, self._dtype = dim, dtype  # every check passed: commit
        if "train" in parsed:
            self._add_train(*parsed["train"])
        if "val" in parsed:
            q, answers = parsed["val"]
            self._val_batches.append(q.copy())
            self._val_answers.extend(answers)
        self._version += 1
        log.info(
            "NudgeState: added %d training and %d validation queries (%d documents with training pairs)",
            len(parsed["train"][1]) if "train" in parsed else 0,
            len(parsed["val"][1]) if "val" in parsed else 0,
            len(self._sum_ids),
        )
        return self

    def _add_train(self, queries: np.ndarray, answers: list[list[str]]) -> None:
        flat = [d for row in answers for d in row]
        for d in flat:
            if d not in self._slot:
                self._slot[d] = len(self._sum_ids)
                self._sum_ids.append(d)
        self._reserve(len(self._sum_ids))
        slots = np.fromiter((self._slot[d] for d in flat), dtype=np.int64, count=len(flat))
        query_of_pair = np.repeat(np.arange(len(answers)), [len(row) for row in answers])
        _accumulate(self._sums, self._counts, slots, queries, query_of_pair)

    def _reserve(self, n: int) -> None:
        """Room for ``n`` sums (capacity doubles, so appending is amortised O(1) per document)."""
        if n <= self._sums.shape[0]:
            return
        cap = max(n, 2 * self._sums.shape[0], 16)
        sums = np.zeros((cap, self._dim))
        counts = np.zeros(cap, dtype=np.int64)
        if self._counts.size:
            sums[: self._counts.size], counts[: self._counts.size] = self._sums, self._counts
        self._sums, self._counts = sums, counts

    def remove_documents(self, doc_ids: Sequence[str]) -> dict:
        """Forget documents that left the corpus: their sums, validation pairs and record.

        A validation query keeps its other answers; one left without answers is dropped.

        Parameters
        ----------
        doc_ids : sequence of str
            Ids of the removed documents.

        Returns
        -------
        dict
            ``removed`` (ids the state knew), ``not_found`` (ids it did not know),
            ``train_pairs_dropped``, ``val_pairs_dropped``, ``val_queries_dropped``.
        """
        ids = check_ids(doc_ids, "doc_ids")
        gone = set(ids)
        in_sums, train_dropped = self._drop_sums(gone)
        in_val, val_pairs, val_queries = self._drop_val(gone)
        known = in_sums | in_val | self._drop_record(gone)
        summary = {
            "removed": [d for d in ids if d in known],
            "not_found": [d for d in ids if d not in known],
            "train_pairs_dropped": train_dropped,
            "val_pairs_dropped": val_pairs,
            "val_queries_dropped": val_queries,
        }
        if summary["removed"]:
            self._version += 1
            log.info(
                "NudgeState: removed %d documents: dropped %d training pairs, %d validation pairs "
                "(%d validation queries left without answers)",
                len(summary["removed"]),
                train_dropped,
                val_pairs,
                val_queries,
            )
        if summary["not_found"]:
            log.warning("NudgeState: remove_documents: unknown document ids %s", summary["not_found"][:5])
        return summary

    def _drop_sums(self, gone: set[str]) -> tuple[set[str], int]:
        """Drop the sums of ``gone`` documents; returns their ids and their number of training pairs."""
        m = len(self._sum_ids)
        keep = np.array([d not in gone for d in self._sum_ids], dtype=bool)
        found = {d for d in self._sum_ids if d in gone}
        if not found:
            return found, 0
        dropped, kept = int(self._counts[:m][~keep].sum()), int(keep.sum())
        self._sums[:kept] = self._sums[:m][keep]
        self._counts[:kept] = self._counts[:m][keep]
        self._sums[kept:m] = 0.0
        self._counts[kept:m] = 0
        self._sum_ids = [d for d in self._sum_ids if d not in gone]
        self._slot = {d: i for i, d in enumerate(self._sum_ids)}
        return found, dropped

    def _drop_val(self, gone: set[str]) -> tuple[set[str], int, int]:
        """Drop validation pairs pointing at ``gone``; returns the ids, pairs and emptied queries dropped."""
        found = {d for row in self._val_answers for d in row if d in gone}
        if not found:
            return found, 0, 0
        answers = [[d for d in row if d not in gone] for row in self._val_answers]
        pairs = self.n_val_pairs - sum(map(len, answers))
        keep = np.array([len(row) > 0 for row in answers], dtype=bool)
        self._val_batches = [self._val_queries()[keep]] if keep.any() else []
        self._val_answers = [row for row in answers if row]
        return found, pairs, int((~keep).sum())

    def _drop_record(self, gone: set[str]) -> set[str]:
        found = {d for d in self.doc_ids_ if d in gone}
        if found:
            keep = np.array([d not in gone for d in self.doc_ids_], dtype=bool)
            self.doc_ids_ = [d for d in self.doc_ids_ if d not in gone]
            self._digests = self._digests[keep]
            self.embeddings_sha256_ = None  # the remaining rows are checked one by one
        return found

    def _val_queries(self) -> np.ndarray:
        if len(self._val_batches) == 1:
            return self._val_batches[0]
        if not self._val_batches:
            return np.zeros((0, self._dim or 0), dtype=self._dtype or np.float64)
        return np.concatenate(self._val_batches)

    # ------------------------------------------------------------------ gamma and applying
    def fit_gamma(self, embeddings: np.ndarray, doc_ids: Sequence[str]) -> NudgeState:
        """Re-pick gamma on all validation pairs, exactly as :class:`nudge.Nudge` would.

        Parameters
        ----------
        embeddings : ndarray, shape (N, d)
            The ORIGINAL (base-model) document embeddings of the current corpus (not modified).
            Documents the state recorded must be present with unchanged rows; new documents are
            recorded (the corpus may grow).
        doc_ids : sequence of str, length N
            The id of each row.

        Returns
        -------
        self
        """
        if not self._sum_ids:
            raise ValueError("the state has no training pairs: call add_pairs(train=...) first")
        if not self._val_answers:
            raise ValueError("the state has no validation pairs to choose gamma: call add_pairs(val=...) first")
        e, ids = self._check_corpus(embeddings, doc_ids)
        self._verify_original(e, ids)
        train, val = self._query_sets(ids)
        est = Nudge(self.method, k=self.k, grid=self.grid).fit(e, train, val)
        new = self._record(e, ids, est.embeddings_sha256_)
        self.gamma_, self.val_score_ = est.gamma_, est.val_score_
        self.validation_curve_, self.best_region_ = est.validation_curve_, est.best_region_
        doc = est.diagnostics_.largest_move_document  # the fit saw one query sum per document: count pairs instead
        self.diagnostics_ = dataclasses.replace(  # what the fit saw and did (nudge.diagnostics); not saved
            est.diagnostics_, n_train=self.n_train_pairs, train_unit="pairs",
            largest_move_questions=0 if doc is None else int(self._counts[self._slot[ids[doc]]]),
        )  # fmt: skip
        self._fitted_version = self._version
        log.info(
            "NudgeState: gamma = %.6g on %d validation queries (%d documents, %d new)",
            self.gamma_,
            self.n_val_queries,
            len(ids),
            new,
        )
        return self

    def apply(self, embeddings: np.ndarray, doc_ids: Sequence[str]) -> np.ndarray:
        """The nudged copy of the ORIGINAL embeddings (rows in the order given).

        Parameters
        ----------
        embeddings : ndarray, shape (N, d)
            The original embeddings of the corpus :meth:`fit_gamma` last saw (any row order).
            Other vectors, already-nudged ones included, are refused.
        doc_ids : sequence of str, length N

        Returns
        -------
        ndarray, shape (N, d)
            NUDGE-N rows are unit length; NUDGE-M rows are not (retrieve with the dot product).
        """
        e, ids = self._checked_for_use(embeddings, doc_ids)
        train, _ = self._query_sets(ids)
        return Nudge(self.method, gamma=self.gamma_, k=self.k).fit_transform(e, train)

    def to_nudge(self, embeddings: np.ndarray, doc_ids: Sequence[str]) -> Nudge:
        """An equivalent fitted :class:`nudge.Nudge` for these (original) embeddings.

        Its ``gamma`` parameter is fixed to ``gamma_``; ``val_score_``, ``validation_curve_``
        and ``best_region_`` are the state's. ``transform(embeddings)`` equals :meth:`apply`.
        """
        e, ids = self._checked_for_use(embeddings, doc_ids)
        train, _ = self._query_sets(ids)
        est = Nudge(self.method, gamma=self.gamma_, k=self.k).fit(e, train)
        est.val_score_, est.validation_curve_, est.best_region_ = (
            self.val_score_,
            self.validation_curve_,
            self.best_region_,
        )
        return est

    def _checked_for_use(self, embeddings, doc_ids) -> tuple[np.ndarray, list[str]]:
        if self.gamma_ is None:
            raise NotFittedError("gamma has not been chosen yet: call fit_gamma(embeddings, doc_ids) first")
        if self._fitted_version != self._version:
            raise ValueError(
                "pairs were added or documents removed since gamma was chosen: "
                "call fit_gamma(embeddings, doc_ids) first to re-pick gamma on the grown validation set"
            )
        e, ids = self._check_corpus(embeddings, doc_ids)
        self._verify_original(e, ids)
        recorded = set(self.doc_ids_)
        unseen = [d for d in ids if d not in recorded]
        if unseen:
            raise ValueError(
                f"doc_ids has {len(unseen)} document(s) the state has not seen, e.g. {unseen[:3]}: "
                "new documents compete in retrieval, so call fit_gamma(embeddings, doc_ids) first"
            )
        return e, ids

    def _check_corpus(self, embeddings, doc_ids) -> tuple[np.ndarray, list[str]]:
        e = check_matrix(embeddings, "embeddings", finite=False, nonzero_rows=False)
        if self._dim is not None and e.shape[1] != self._dim:
            raise ValueError(f"embeddings have dimension {e.shape[1]} but the state's queries have {self._dim}")
        if self._dtype is not None and e.dtype != self._dtype:
            raise ValueError(f"embeddings have dtype {e.dtype} but the state's queries have dtype {self._dtype}")
        ids = check_ids(doc_ids, "doc_ids")
        if len(ids) != e.shape[0]:
            raise ValueError(f"doc_ids has {len(ids)} ids but embeddings have {e.shape[0]} rows")
        return e, ids

    def _verify_original(self, e: np.ndarray, ids: list[str]) -> None:
        """Refuse rows of recorded documents that differ from the recorded originals."""
        n = len(self.doc_ids_)
        if n == 0:
            return
        if self.embeddings_sha256_ is not None and ids[:n] == self.doc_ids_:
            if fingerprint(e[:n]) == self.embeddings_sha256_:
                return
        row = {d: i for i, d in enumerate(ids)}
        missing = [d for d in self.doc_ids_ if d not in row]
        if missing:
            raise ValueError(
                f"doc_ids lacks {len(missing)} document(s) this state recorded, e.g. {missing[:3]}: if they were "
                f"removed from the corpus, call remove_documents({missing[:3]!r}) first"
            )
        digests = _row_digests(e, [row[d] for d in self.doc_ids_])
        differ = [self.doc_ids_[i] for i in np.flatnonzero(np.any(digests != self._digests, axis=1))]
        if differ:
            raise ValueError(self._mismatch_message(differ))

    def _mismatch_message(self, differ: list[str]) -> str:
        head = (
            f"embeddings differ from the ORIGINAL embeddings this state recorded for {len(differ)} document(s) "
            f"(SHA-256 per row), e.g. {differ[:3]}. "
        )
        if all(d in self._slot for d in differ):
            return head + (
                "Only documents with training pairs differ: these look like already-nudged vectors. "
                "Always pass the original (base-model) embeddings: nudging nudged vectors applies the step twice."
            )
        return head + (
            "Pass the original (base-model) embeddings, never nudged ones; if the model or the passages "
            "changed, remove_documents() the changed ones or start a new NudgeState."
        )

    def _query_sets(self, ids: list[str]) -> tuple[QuerySet, QuerySet]:
        """Pseudo training queries ``G_i`` (one per document) and the validation set, in ``ids`` rows."""
        row = {d: i for i, d in enumerate(ids)}
        needed = list(self._sum_ids) + [d for a in self._val_answers for d in a]
        missing = list(dict.fromkeys(d for d in needed if d not in row))
        if missing:
            raise ValueError(
                f"doc_ids lacks {len(missing)} document(s) that labelled pairs point at, e.g. {missing[:3]}: "
                "add them to the corpus (embeddings and doc_ids) or call remove_documents() for them"
            )
        sums = self._sums[: len(self._sum_ids)].astype(self._dtype)
        nonzero = np.flatnonzero(np.einsum("ij,ij->i", sums, sums) > 0)
        train = QuerySet(sums[nonzero], [[row[self._sum_ids[i]]] for i in nonzero])
        val = QuerySet(self._val_queries(), [[row[d] for d in a] for a in self._val_answers])
        return train, val

    def _record(self, e: np.ndarray, ids: list[str], digest: str) -> int:
        """Make ``ids`` the recorded corpus; returns the number of new documents."""
        old = {d: i for i, d in enumerate(self.doc_ids_)}
        new_rows = [i for i, d in enumerate(ids) if d not in old]
        digests = np.empty((len(ids), _DIGEST_BYTES), dtype=np.uint8)
        kept = [i for i, d in enumerate(ids) if d in old]
        digests[kept] = self._digests[[old[ids[i]] for i in kept]]
        digests[new_rows] = _row_digests(e, new_rows)
        self.doc_ids_, self._digests, self.embeddings_sha256_ = list(ids), digests, digest
        return len(new_rows)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Write the state to ``path`` (``.npz``, no pickle) atomically; returns the path."""
        m = len(self._sum_ids)
        meta = {
            "format": _FORMAT,
            "nudge_version": __version__,
            "method": self.method,
            "k": self.k,
            "grid": None if self.grid is None else list(self.grid),
            "dim": self._dim,
            "dtype": None if self._dtype is None else np.dtype(self._dtype).name,
            "gamma": self.gamma_,
            "val_score": self.val_score_,
            "best_region": self.best_region_,
            "embeddings_sha256": self.embeddings_sha256_,
            "version": self._version,
            "fitted_version": self._fitted_version,
            "history": self.history,
        }
        val_answers = self._val_answers
        arrays = {
            "sum_ids": np.array(self._sum_ids, dtype=str),
            "sums": self._sums[:m],
            "counts": self._counts[:m],
            "val_queries": self._val_queries(),
            "val_ids": np.array([d for a in val_answers for d in a], dtype=str),
            "val_offsets": np.concatenate([[0], np.cumsum([len(a) for a in val_answers])]).astype(np.int64),
            "doc_ids": np.array(self.doc_ids_, dtype=str),
            "digests": self._digests,
        }
        if self.pair_keys:
            arrays["pair_keys"] = np.array(sorted(self.pair_keys), dtype=str)
        if self.validation_curve_ is not None:
            arrays["curve_gamma"] = self.validation_curve_["gamma"]
            arrays["curve_score"] = self.validation_curve_["score"]
        return save_artifact(path, meta, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> NudgeState:
        """Read a state written by :meth:`save`; one ``ValueError`` naming ``path`` when it is missing,
        truncated, empty, corrupted, or its parts disagree (e.g. edited metadata)."""
        kind = "a saved NudgeState"
        meta, arrays = load_artifact(path, _FORMAT, kind=kind)
        try:
            state = cls(meta["method"], k=meta["k"], grid=meta["grid"])
            state._restore(meta, arrays)
            state._check_restored()
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise artifact_error(path, "path", kind, f"{type(exc).__name__}: {detail}") from None
        return state

    def _check_restored(self) -> None:
        """Consistency of a loaded state: shapes, offsets, finite numbers."""
        m = len(self._sum_ids)
        if self._sums.shape[0] != m or self._counts.shape != (m,) or (m and self._sums.shape[1] != self._dim):
            raise ValueError("sums, counts and sum_ids disagree")
        if not np.isfinite(self._sums).all() or (self._counts < 0).any():
            raise ValueError("sums are not finite or counts are negative")
        if len(set(self._sum_ids)) != m:
            raise ValueError("a document is listed twice in sum_ids")
        q = self._val_queries()
        if q.shape[0] != len(self._val_answers) or (len(self._val_answers) and q.shape[1] != self._dim):
            raise ValueError("validation queries and answers disagree")
        if any(len(a) == 0 for a in self._val_answers):
            raise ValueError("a validation query has no answers (offsets are damaged)")
        if self._digests.shape != (len(self.doc_ids_), _DIGEST_BYTES):
            raise ValueError("doc_ids and digests disagree")
        if self.gamma_ is not None and not (isinstance(self.gamma_, (int, float)) and np.isfinite(self.gamma_)):
            raise ValueError(f"gamma is {self.gamma_!r}, not a finite number")
        if not isinstance(self.history, list):
            raise ValueError("history is not a list")

    def _restore(self, meta: dict, arrays: dict) -> None:
        self._dim = meta["dim"]
        self._dtype = None if meta["dtype"] is None else np.dtype(meta["dtype"])
        self._sum_ids = arrays["sum_ids"].tolist()
        self._slot = {d: i for i, d in enumerate(self._sum_ids)}
        self._sums, self._counts = arrays["sums"].astype(np.float64), arrays["counts"].astype(np.int64)
        flat, offsets = arrays["val_ids"].tolist(), arrays["val_offsets"].tolist()
        if offsets[:1] != [0] or offsets[-1] != len(flat) or any(b < a for a, b in pairwise(offsets)):
            raise ValueError("val_offsets do not index val_ids")
        self._val_answers = [flat[a:b] for a, b in pairwise(offsets)]
        self._val_batches = [arrays["val_queries"]] if self._val_answers else []
        self.doc_ids_ = arrays["doc_ids"].tolist()
        self._digests = arrays["digests"].astype(np.uint8)
        self.embeddings_sha256_ = meta["embeddings_sha256"]
        self._version, self._fitted_version = meta["version"], meta["fitted_version"]
        self.history = list(meta.get("history", []))
        self.pair_keys = set(arrays["pair_keys"].tolist()) if "pair_keys" in arrays else set()
        self.gamma_, self.val_score_ = meta["gamma"], meta["val_score"]
        self.best_region_ = None if meta["best_region"] is None else tuple(meta["best_region"])
        self.validation_curve_ = (
            {"gamma": arrays["curve_gamma"], "score": arrays["curve_score"]} if "curve_gamma" in arrays else None
        )


def _accumulate(
    sums: np.ndarray, counts: np.ndarray, slots: np.ndarray, queries: np.ndarray, query_of_pair: np.ndarray
) -> None:
    """Add each pair's query to its document's sum, in place and in pair order.

    Parameters
    ----------
    sums : ndarray of float64, shape (capacity, d)
    counts : ndarray of int64, shape (capacity,)
    slots : ndarray of int64, shape (n_pairs,)
        Row of ``sums`` of each pair's document.
    queries : ndarray, shape (n_queries, d)
    query_of_pair : ndarray of int64, shape (n_pairs,)

    ``np.add.at`` is unbuffered and goes through the pairs in order, so a document's sum is the
    same left-to-right float64 sum however the pairs were split into calls.
    """
    np.add.at(sums, slots, queries[query_of_pair])
    np.add.at(counts, slots, 1)


def _row_digests(e: np.ndarray, rows: Sequence[int]) -> np.ndarray:
    """SHA-256 of the bytes of each row in ``rows``: shape (len(rows), 32), uint8."""
    joined = b"".join(hashlib.sha256(np.ascontiguousarray(e[r])).digest() for r in rows)
    return np.frombuffer(joined, dtype=np.uint8).reshape(len(rows), _DIGEST_BYTES).copy()


def _parse_pairs(
    value: object, name: str, dim: int | None, dtype, reference: str = "the state's queries"
) -> tuple[np.ndarray, list[list[str]]]:
    """Check labelled pairs: ``(queries (n, d), answers: n lists of document ids)``.

    ``reference`` names what ``dim`` and ``dtype`` come from, for error messages.
    """
    qs = as_query_set(value, name)
    q = check_matrix(qs.embeddings, f"{name} embeddings", dim=dim, dtype=dtype, reference=reference)
    answers = qs.answers
    if isinstance(answers, (str, bytes)) or not isinstance(answers, (Sequence, np.ndarray)):
        raise ValueError(f"{name} answers must be a list with one list of document ids per query")
    if len(answers) != q.shape[0]:
        raise ValueError(f"{name} answers has {len(answers)} answer lists but there are {q.shape[0]} queries")
    rows = []
    for i, row in enumerate(answers):
        if isinstance(row, str) or not isinstance(row, (Sequence, np.ndarray)):
            raise ValueError(f"{name} answers[{i}] must be a list of document ids (str), got {row!r}")
        if len(row) == 0:
            raise ValueError(f"{name} answers[{i}] is empty: every query needs at least one relevant document")
        rows.append(check_ids(row, f"{name} answers[{i}]"))
    return q, rows


def pair_key(query: str, document: str, *, nfc: bool = True) -> str:
    """Content key of a labelled pair: SHA-256 of its question and document texts, normalised
    (:func:`normalise_text`).

    The same pair has the same key in any file, whatever its ids, row order or trailing newline.
    ``nfc=False`` gives the key of versions before the Unicode NFC step (states written by them).
    """
    text = normalise_text(query, nfc=nfc) + "\x00" + normalise_text(document, nfc=nfc)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def normalise_text(text: str, *, nfc: bool = True) -> str:
    """A question's or document's text as the kit compares texts: Unicode NFC (a precomposed "é" and "e"
    + combining accent are one text), invisible format characters (Unicode category Cf: zero-width space
    U+200B, byte-order mark U+FEFF, soft hyphen, ...) removed, then every run of whitespace (spaces, tabs,
    newlines) becomes one space, none at the ends. Used for pair keys, for matching the documents of new
    pairs to a run's, for recognising a run's hold-out test questions, and by the pair-table loader, so
    twin texts share one id. ``nfc=False``: the rule without NFC (versions before it)."""
    text = str(text)
    if not text.isascii():
        if nfc:
            text = unicodedata.normalize("NFC", text)
        text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    return " ".join(text.split())
