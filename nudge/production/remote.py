"""Past one machine: fit NUDGE against a vector store without loading the corpus.

Gamma selection needs three things from the corpus (see :mod:`nudge.gamma`): the normalised
vectors of the documents with training queries (they move), those of the validation answers,
and, per validation query, the best scores among all the *other* documents (the rest: they
never move, so only their best scores matter). A vector store gives all three without
reading the corpus:

* the documents with training queries and the validation answers are fetched by id
  (``store.fetch``), and normalised as the library does;
* the rest's best scores come from the store's own search (``store.search``) for each validation
  query: the store ranks, the ids it returns that are not fetched already are the candidates,
  and the search is repeated deeper for the queries whose first results were all fetched ones;
* the candidates' vectors are fetched too (``k`` per validation query, plus any the store scores
  within a hair of the ``k``-th) and scored here, with the library's arithmetic, so the scores do
  not depend on how the store computes its own (embedded Qdrant scores with a float64 query and
  differs from the float32 corpus pass by up to ~5e-7) nor on its scale (a cosine store divides
  by ``||q||``, an L2 store gives distances).

Gamma is then chosen by :func:`nudge.gamma.best_gamma_m` / :func:`nudge.gamma.best_gamma_n`
exactly as :class:`nudge.Nudge` does, and the result, a :class:`StoreFit`, has what
:func:`nudge.production.stores.apply_nudge_to_store` needs: applying it fetches and upserts only the moved
vectors. Memory is bounded by the training queries, the fetched rows (moved rows, validation
answers, candidates from the rest) and blocks of validation queries, whatever the corpus size.

Exactness: with an exhaustive store search (``QdrantStore(exact=True)``, the default; Milvus'
FLAT index; the in-memory store) those best scores are the ones :class:`nudge.Nudge` computes from
the whole matrix, so gamma and the moved vectors are the same. An approximate (HNSW) search may
miss a document and so give another gamma.

Metrics: NUDGE-M needs an inner-product store (its vectors are not unit length; see
:func:`nudge.production.stores.check_store_metric`) and is refused otherwise. NUDGE-N may use a dot, cosine
or L2 store: all three rank unit-length vectors as the inner product does. A dot or L2 store
ranks the vectors *as stored*, so they must be the normalised embeddings; this is checked on
every fetched vector.

Fitting again after an apply: the store then holds nudged vectors. Pass the apply's ``backup=``
file and the fit reads the originals of those ids from it (and scores them here), so the result
is the one the original store would give; :func:`apply_to_store` refuses a fit that did not.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import numpy as np

from .._corpus import merge_top, normalise_block
from .._validation import check_matrix, check_positive_int
from ..estimator import check_params, fit_nudge
from ..pairs import as_query_set
from .stores import (
    UNIT_TOLERANCE,
    StoreReport,
    VectorStore,
    apply_nudge_to_store,
    check_ids,
    check_store_metric,
    read_backup,
)

__all__ = ["StoreFit", "apply_to_store", "fit_from_store", "store_fingerprint"]

log = logging.getLogger(__name__)

DEFAULT_EXTRA_DEPTH = 16  # first search depth: k + this
_DEPTH_GROWTH = 4  # queries whose results were all fetched documents are searched again this much deeper
_TIE_TOLERANCE = 1e-5  # store scores this close (relative) to the k-th candidate are rescored too
_MAX_TIES = 32  # at most this many such near ties per query
_DTYPE = np.dtype(np.float32)  # stores hold float32 vectors


# ---------------------------------------------------------------------------------- the result
@dataclass(frozen=True, repr=False, eq=False)
class StoreFit:
    """A NUDGE fitted from a vector store: what :func:`nudge.production.stores.apply_nudge_to_store` needs.

    Rows are *local*: row ``i`` is document ``doc_ids_[i]`` (the documents with training
    queries and the validation answers, sorted), so ``apply_nudge_to_store(store, fit,
    fit.doc_ids_, backup=...)`` works as for a :class:`nudge.Nudge`; :func:`apply_to_store`
    does that after checking the backup.

    Attributes
    ----------
    method_ : {"M", "N"}
    k_ : int
    gamma_ : float
    doc_ids_ : list of str, length n
        The fetched documents (training answers and validation answers), sorted.
    support_ : ndarray of int64, shape (m,)
        Rows of ``doc_ids_`` with a non-zero training query sum.
    moved_ : ndarray of int64, shape (m',)
        Rows that change at ``gamma_`` (a subset of ``support_``).
    directions_ : ndarray of float32, shape (m, d)
        Unit query-sum directions of ``support_``.
    query_sums_ : ndarray of float64, shape (m, d)
    val_score_ : float or None
        Validation score at ``gamma_`` (None when gamma was fixed).
    validation_curve_ : dict or None
        ``{"gamma": (g,), "score": (g,)}`` as :class:`nudge.Nudge` gives it.
    best_region_ : tuple of float or None
        NUDGE-M: every gamma in ``[start, end]`` scores ``val_score_``.
    n_documents_ : int
        ``len(doc_ids_)`` (the rows ``apply_nudge_to_store`` maps to ids).
    n_features_in_ : int
    dtype_ : numpy dtype
        float32 (what stores hold).
    embeddings_sha256_ : str
        :func:`store_fingerprint` of the store: a store fit never reads the whole corpus, so it
        identifies the store, not its content (backups of other stores are refused by the apply).
    backup_ids_ : list of str
        Ids whose originals were read from the backup passed to :func:`fit_from_store`.
    search_ : dict
        How the rest's best scores were found: ``queries``, ``searches`` (query searches in all),
        ``rounds``, ``max_depth``, ``candidates`` (vectors fetched from the rest).
    """

    method_: str
    k_: int
    gamma_: float
    doc_ids_: list[str]
    support_: np.ndarray
    moved_: np.ndarray
    directions_: np.ndarray
    query_sums_: np.ndarray
    val_score_: float | None
    validation_curve_: dict | None
    best_region_: tuple[float, float] | None
    n_features_in_: int
    embeddings_sha256_: str
    backup_ids_: list[str] = field(default_factory=list)
    search_: dict = field(default_factory=dict)
    dtype_: np.dtype = _DTYPE

    @property
    def n_documents_(self) -> int:
        return len(self.doc_ids_)

    @property
    def moved_ids(self) -> list[str]:
        """Ids of the documents that move (whose vectors an apply writes)."""
        return [self.doc_ids_[i] for i in self.moved_]

    @property
    def support_ids(self) -> list[str]:
        """Ids of the documents with training queries."""
        return [self.doc_ids_[i] for i in self.support_]

    def __repr__(self) -> str:
        score = "fixed" if self.val_score_ is None else f"validation score {self.val_score_:.4f}"
        return (
            f"StoreFit(NUDGE-{self.method_}, gamma={self.gamma_:.6g}, {score}, moves {self.moved_.size} "
            f"of {self.support_.size} documents with training queries)"
        )


def store_fingerprint(store: VectorStore) -> str:
    """SHA-256 naming a store: its type, collection (when it has one), dimension and metric."""
    text = f"nudge-store/1|{type(store).__qualname__}|{getattr(store, 'collection', '')}|"
    text += f"{store.dimension}|{store.metric}"
    return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------------------------- fitting
def fit_from_store(
    store: VectorStore,
    train,
    val=None,
    *,
    method: str = "N",
    k: int = 1,
    grid=None,
    gamma: float | None = None,
    gamma_choice: str = "middle",
    search_depth: int | None = None,
    val_batch_size: int = 256,
    backup: str | os.PathLike | None = None,
) -> StoreFit:
    """Fit NUDGE on the documents of ``store``, reading only what gamma selection needs.

    Parameters
    ----------
    store : VectorStore
        Holds the (normalised) document embeddings under string ids; searched exhaustively for
        an exact result. NUDGE-M needs a ``"dot"`` store.
    train : (embeddings, answers) tuple, QuerySet or {"q_embs", "q_ans_indx"} dict
        Training queries, float32 shape (n_train, d), and per query the list of its relevant
        document ids (str).
    val : same types, optional
        Validation queries, used only to choose gamma; required unless ``gamma`` is set.
    method, k, grid, gamma, gamma_choice, val_batch_size
        As for :class:`nudge.Nudge`.
    search_depth : int, optional
        Results asked per validation query in the first search (default ``k + 16``); queries
        whose results were all fetched documents are searched again ``4x`` deeper.
    backup : str or path, optional
        The backup of an earlier :func:`nudge.production.stores.apply_nudge_to_store` on this store: the
        originals of its ids are read from it (the store holds their nudged vectors).

    Returns
    -------
    StoreFit
        Apply it with :func:`apply_to_store` (or ``apply_nudge_to_store(store, fit, fit.doc_ids_, backup=...)``).
    """
    if not isinstance(store, VectorStore):
        raise ValueError(
            f"store must be a VectorStore (metric, dimension, fetch, search, ...), got {type(store).__name__}"
        )
    params = check_params(method, gamma=gamma, k=k, grid=grid, gamma_choice=gamma_choice, val_batch_size=val_batch_size)
    check_store_metric(store.metric, params.method)
    depth = params.k + DEFAULT_EXTRA_DEPTH if search_depth is None else check_positive_int(search_depth, "search_depth")
    dim = store.dimension
    tq, t_answers = _id_pairs(train, "train", dim)
    if params.gamma is None and val is None:
        raise ValueError("val is required to choose gamma; pass validation queries or set gamma=")
    vq, v_answers = _id_pairs(val, "val", dim) if params.gamma is None else (None, [])
    originals = _backup_originals(backup, dim)
    doc_ids = sorted(set(chain.from_iterable(t_answers)) | set(chain.from_iterable(v_answers)))
    position = {d: i for i, d in enumerate(doc_ids)}
    rows = _local_rows(store, doc_ids, v_answers, originals)
    corpus = _StoreCorpus(store, doc_ids, rows, originals, depth, params.val_batch_size)
    log.info("NUDGE-%s from %r: %d documents answer training or validation queries", params.method, store, len(doc_ids))
    fit = fit_nudge(
        params,
        (tq, [[position[d] for d in row] for row in t_answers]),
        None if vq is None else (vq, [[position[d] for d in row] for row in v_answers]),
        corpus,
        n_docs=len(doc_ids),
        dim=dim,
        dtype=_DTYPE,
    )
    return StoreFit(
        method_=params.method,
        k_=params.k,
        gamma_=fit.gamma,
        doc_ids_=doc_ids,
        support_=fit.support,
        moved_=fit.moved,
        directions_=fit.directions,
        query_sums_=fit.query_sums,
        val_score_=fit.val_score,
        validation_curve_=fit.validation_curve,
        best_region_=fit.best_region,
        n_features_in_=dim,
        embeddings_sha256_=store_fingerprint(store),
        backup_ids_=list(originals),
        search_=corpus.search_stats,
    )


class _StoreCorpus:
    """A store as :func:`nudge.estimator.fit_nudge` reads it (see :class:`nudge.estimator.Corpus`).

    Documents are numbered by ``doc_ids`` (those the fit holds locally; ``rows`` are their
    normalised vectors); the others live only in the store and are reached through its search.
    """

    def __init__(self, store, doc_ids: list[str], rows: np.ndarray, originals: dict, depth: int, batch: int) -> None:
        self.store, self.doc_ids, self.local_rows, self.originals = store, doc_ids, rows, originals
        self.depth, self.batch = depth, batch
        self.search_stats: dict = {}

    def rows(self, indices: np.ndarray) -> np.ndarray:
        return self.local_rows[indices]

    def top_scores(self, queries: np.ndarray, exclude: np.ndarray, k: int) -> np.ndarray:
        top, self.search_stats = _rest_top(
            self.store, queries, self.doc_ids, exclude, self.local_rows, self.originals, k, self.depth, self.batch
        )
        log.info("the rest of the store for %d validation queries: %s", queries.shape[0], self.search_stats)
        return top


# ---------------------------------------------------------------------------------- inputs
def _id_pairs(value: object, name: str, dim: int) -> tuple[np.ndarray, list[list[str]]]:
    """Check labelled queries: float32 embeddings (n, dim) and one non-empty list of document ids each."""
    qs = as_query_set(value, name)
    q = check_matrix(qs.embeddings, f"{name} embeddings", dim=dim, dtype=_DTYPE, reference="the store's vectors")
    answers = qs.answers
    if isinstance(answers, (str, bytes)) or not isinstance(answers, (Sequence, np.ndarray)):
        raise ValueError(f"{name} answers must be a list with one list of document ids per query")
    if len(answers) != q.shape[0]:
        raise ValueError(f"{name} answers has {len(answers)} answer lists but there are {q.shape[0]} queries")
    rows = [check_ids(row, f"{name} answers[{i}]") for i, row in enumerate(answers)]
    empty = next((i for i, row in enumerate(rows) if not row), None)
    if empty is not None:
        raise ValueError(f"{name} answers[{empty}] is empty: every query needs at least one relevant document")
    return q, rows


def _backup_originals(backup: str | os.PathLike | None, dim: int) -> dict[str, np.ndarray]:
    """Original vectors kept by an earlier apply: id -> float32 row (empty without a backup file)."""
    if backup is None or not Path(backup).is_file():
        return {}
    data = read_backup(backup)
    if data.vectors.shape[1] != dim:
        raise ValueError(f"backup {str(backup)!r} holds vectors of dimension {data.vectors.shape[1]}, not {dim}")
    return {i: data.vectors[j].astype(_DTYPE) for j, i in enumerate(data.ids)}


# ---------------------------------------------------------------------------------- fetching
def _fetch(store: VectorStore, ids: list[str], originals: dict[str, np.ndarray], what: str) -> np.ndarray:
    """Normalised float32 rows of ``ids`` (originals from the backup when it has them), checked."""
    out = np.empty((len(ids), store.dimension), dtype=_DTYPE)
    from_backup = np.array([i in originals for i in ids], dtype=bool)
    for j in np.flatnonzero(from_backup):
        out[j] = originals[ids[j]]
    rest = [ids[j] for j in np.flatnonzero(~from_backup)]
    if rest:
        try:
            out[~from_backup] = store.fetch(rest)
        except ValueError as exc:
            raise ValueError(f"{what} name documents that are not in the store {store!r}: {exc}") from None
    _check_unit(out, ids, store.metric)
    return normalise_block(out, "the store's vectors")


def _check_unit(vectors: np.ndarray, ids: list[str], metric: str) -> None:
    """A dot or L2 store ranks its vectors as stored: they must be the normalised embeddings."""
    if metric == "cosine" or vectors.shape[0] == 0:
        return
    norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64))
    off = np.flatnonzero(np.abs(norms - 1.0) > UNIT_TOLERANCE)
    if off.size:
        raise ValueError(
            f"the store's vector of {ids[off[0]]!r} has norm {norms[off[0]]:.4g} (and {off.size - 1} more are not "
            f"unit length): a {metric!r} store ranks the vectors as stored, so its search would not find the "
            "documents that score best on the normalised embeddings NUDGE works on. Load the normalised "
            "vectors (e / ||e||); if an earlier apply wrote into this store, pass its backup= (or roll back)"
        )


def _local_rows(
    store: VectorStore, doc_ids: list[str], v_answers: list[list[str]], originals: dict[str, np.ndarray]
) -> np.ndarray:
    """Rows of ``doc_ids``: validation answers fetched first, so missing ones are named as such."""
    val_set = set(chain.from_iterable(v_answers))
    groups = [
        ("val answers", [d for d in doc_ids if d in val_set]),
        ("train answers", [d for d in doc_ids if d not in val_set]),
    ]
    rows = np.empty((len(doc_ids), store.dimension), dtype=_DTYPE)
    position = {d: i for i, d in enumerate(doc_ids)}
    for what, ids in groups:
        if ids:
            rows[[position[d] for d in ids]] = _fetch(store, ids, originals, what)
    return rows


# ---------------------------------------------------------------------------------- the rest of the store
def _rest_top(
    store: VectorStore,
    queries: np.ndarray,
    doc_ids: list[str],
    tracked: np.ndarray,
    rows: np.ndarray,
    originals: dict[str, np.ndarray],
    k: int,
    depth: int,
    batch: int,
) -> tuple[np.ndarray, dict]:
    """Best ``k`` scores per validation query among the documents not ``tracked``, shape (n_val, k).

    Documents the fit holds locally (``doc_ids`` and the backup's) are skipped in the store's
    results; those of them that are not tracked (no query sum, not a validation answer; or only
    in the backup) are scored here and merged in.
    """
    held = set(doc_ids) | set(originals)
    candidates, stats = _search_candidates(store, queries, held, k, depth, batch)
    cand_ids = sorted(set(chain.from_iterable(candidates)))
    stats["candidates"] = len(cand_ids)
    cand_rows = _fetch(store, cand_ids, {}, "search results") if cand_ids else rows[:0]
    top = _rescore(queries, candidates, cand_ids, cand_rows, k, batch)
    fixed = np.setdiff1d(np.arange(len(doc_ids)), tracked)
    local = set(doc_ids)
    backup_only = [i for i in originals if i not in local]
    extra = np.concatenate([rows[fixed], _fetch(store, backup_only, originals, "backup ids")])
    if extra.shape[0]:
        for r0 in range(0, queries.shape[0], batch):
            block = queries[r0 : r0 + batch] @ extra.T
            top[r0 : r0 + batch] = merge_top(top[r0 : r0 + batch], block, k)
    return -np.sort(-top, axis=1), stats


def _search_candidates(
    store: VectorStore, queries: np.ndarray, held: set[str], k: int, depth: int, batch: int
) -> tuple[list[list[str]], dict]:
    """Per query, the store's best ``k`` documents outside ``held`` (plus near ties), searching deeper as needed."""
    total = store.count()
    out: list[list[str]] = [[] for _ in range(queries.shape[0])]
    pending = np.arange(queries.shape[0])
    depth = max(depth, k)
    stats = {"queries": int(pending.size), "searches": 0, "rounds": 0, "max_depth": 0}
    while pending.size and total:
        depth = min(depth, total)
        stats["rounds"] += 1
        stats["searches"] += int(pending.size)
        stats["max_depth"] = depth
        again = []
        for p0 in range(0, pending.size, batch):
            part = pending[p0 : p0 + batch]
            ids, scores = store.search(queries[part], depth)
            for i, hits, row in zip(part, ids, scores, strict=True):
                found = _pick(hits, row[: len(hits)], held, k, complete=len(hits) < depth or depth >= total)
                if found is None:
                    again.append(i)
                else:
                    out[i] = found
        pending = np.asarray(again, dtype=np.int64)
        depth *= _DEPTH_GROWTH
    return out, stats


def _pick(hits: list[str], scores: np.ndarray, held: set[str], k: int, *, complete: bool) -> list[str] | None:
    """The first ``k`` hits outside ``held`` and those tied with the ``k``-th, or None if the list may be short.

    Stores score in their own arithmetic (and units), so a hit the store ranks just below the
    ``k``-th may score higher here: every hit within ``_TIE_TOLERANCE`` of the ``k``-th is kept. The
    list is conclusive when the store has nothing more (``complete``) or its last hit is clearly below.
    """
    kept = [j for j, d in enumerate(hits) if d not in held]
    if len(kept) < k:
        return [hits[j] for j in kept] if complete else None
    ref = scores[kept[k - 1]]
    tol = _TIE_TOLERANCE * max(1.0, abs(float(ref)))
    ties = [j for j in kept[k:] if abs(scores[j] - ref) <= tol]
    if complete or abs(scores[-1] - ref) > tol or len(ties) >= _MAX_TIES:
        return [hits[j] for j in kept[:k] + ties[:_MAX_TIES]]
    return None


def _rescore(
    queries: np.ndarray, candidates: list[list[str]], cand_ids: list[str], cand_rows: np.ndarray, k: int, batch: int
) -> np.ndarray:
    """Top ``k`` scores per query over its candidates, computed here; shape (n_val, k), ``-inf`` padded.

    Scores come from one matrix product per block of queries (the corpus pass's arithmetic).
    """
    column = {d: j for j, d in enumerate(cand_ids)}
    out = np.full((queries.shape[0], k), -np.inf, dtype=queries.dtype)
    for r0 in range(0, queries.shape[0], batch):
        r1 = min(r0 + batch, queries.shape[0])
        cols = [[column[d] for d in candidates[i]] for i in range(r0, r1)]
        used = np.unique(np.fromiter(chain.from_iterable(cols), dtype=np.int64))
        if used.size == 0:
            continue
        scores = queries[r0:r1] @ cand_rows[used].T
        width = max(map(len, cols))
        own = np.full((r1 - r0, width), -np.inf, dtype=queries.dtype)
        for i, c in enumerate(cols):
            own[i, : len(c)] = scores[i, np.searchsorted(used, c)]
        top = -np.sort(-own, axis=1)[:, :k]
        out[r0:r1, : top.shape[1]] = top
    return out


# ---------------------------------------------------------------------------------- applying
def apply_to_store(
    store: VectorStore, fit: StoreFit, *, backup: str | os.PathLike, dry_run: bool = False
) -> StoreReport:
    """Write ``fit``'s moved vectors into ``store`` (only those), keeping the originals in ``backup``.

    :func:`nudge.production.stores.apply_nudge_to_store` with ``fit.doc_ids_``, after two checks: ``fit``
    comes from this store, and if ``backup`` already holds originals (an earlier apply wrote into
    the store) the fit read them (``fit_from_store(..., backup=...)``) rather than the nudged vectors.
    """
    if not isinstance(fit, StoreFit):
        raise ValueError(f"fit must be a StoreFit from fit_from_store, got {type(fit).__name__}")
    if fit.embeddings_sha256_ != store_fingerprint(store):
        raise ValueError(
            f"fit was made from another store than {store!r} (type, collection, dimension or metric differ)"
        )
    if Path(backup).is_file():
        seen = set(fit.backup_ids_)
        unseen = [i for i in read_backup(backup).ids if i not in seen]
        if unseen:
            raise ValueError(
                f"backup {str(backup)!r} shows that an earlier apply wrote into the store (e.g. {unseen[0]!r}, "
                f"{len(unseen)} ids), but this fit read the store without it: fit again with "
                f"fit_from_store(..., backup={str(backup)!r}) so it sees the original vectors"
            )
    return apply_nudge_to_store(store, fit, fit.doc_ids_, backup=backup, dry_run=dry_run)
