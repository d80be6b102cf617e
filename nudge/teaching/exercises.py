"""Self-checks for the "your turn" exercises at the end of each notebook.

Each ``check_*`` function recomputes the expected answer with the library on the bundled data
and returns a :class:`Check`, which prints as one line: a tick and what was right, or a cross and
a hint. ``None`` (the placeholder in the notebooks) gets a reminder, not a failure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = [
    "Check",
    "check_best_gamma",
    "check_cosine_trap",
    "check_moved_after_weeks",
    "check_nearest_passage",
    "check_query_sum",
    "check_quickstart",
    "check_saved_model",
    "check_store_hit1",
    "check_validation_size",
]


@dataclass(frozen=True)
class Check:
    """The verdict of a self-check."""

    passed: bool
    message: str

    def __repr__(self) -> str:
        return ("✅ Correct: " if self.passed else "❌ Not yet: ") + self.message

    def __bool__(self) -> bool:
        return self.passed


def _todo(what: str) -> Check:
    return Check(False, f"replace None with {what}, then run the cell again")


def _number(answer: object) -> float | None:
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


@lru_cache(maxsize=1)
def _tessera():
    from .bundled import load_tessera

    return load_tessera()


@lru_cache(maxsize=4)
def _fit(method: str, k: int = 1):
    from ..estimator import Nudge

    t = _tessera()
    return Nudge(method, k=k).fit(t.doc_embeddings, t.query_set("train"), t.query_set("val"))


def check_quickstart(answer: object) -> Check:
    """Notebook 00: test nDCG@10 of NUDGE-M (the quick start with "M" instead of "N")."""
    if answer is None:
        return _todo("NUDGE-M's nDCG@10 on the test questions (a number between 0 and 1)")
    from ..evaluation import evaluate_embeddings

    t = _tessera()
    expected = evaluate_embeddings(_fit("M").transform(t.doc_embeddings), t.query_set("test"))["ndcg@10"]
    value = _number(answer)
    if value is None:
        return Check(False, f"expected a number, got {answer!r}")
    if abs(value - expected) < 5e-4:
        return Check(True, f"NUDGE-M reaches nDCG@10 = {expected:.3f} on the test questions")
    if abs(value - evaluate_embeddings(_fit("N").transform(t.doc_embeddings), t.query_set("test"))["ndcg@10"]) < 5e-4:
        return Check(False, 'that is NUDGE-N\'s score: fit Nudge("M") instead')
    return Check(False, "evaluate the test questions on the NUDGE-M vectors (evaluate_embeddings(...)['ndcg@10'])")


def check_validation_size(answer: object, seed: int = 1) -> Check:
    """Notebook 01: number of validation questions of ``split_queries(n, seed=1)`` on week 1."""
    if answer is None:
        return _todo("the number of validation questions")
    from ..pairs import split_queries

    n = len(_tessera().query_ids)
    expected = len(split_queries(n, val_fraction=0.2, test_fraction=0.2, seed=seed).val)
    if _number(answer) == expected:
        return Check(True, f"{expected} of {n} questions: 20% of the {n - round(0.2 * n)} left after the test share")
    return Check(
        False, "use split_queries(len(questions), val_fraction=0.2, test_fraction=0.2, seed=1) and len(...val)"
    )


def check_nearest_passage(answer: object) -> Check:
    """Notebook 02: id of the passage closest to the first test question (dot product)."""
    if answer is None:
        return _todo("a passage id such as 'pay-012'")
    t = _tessera()
    q = t.query_set("test").embeddings[0]
    expected = t.doc_ids[int(np.argmax(t.doc_embeddings @ q))]
    if answer == expected:
        right = expected in [t.doc_ids[i] for i in t.query_set("test").answers[0]]
        return Check(True, f"{expected}, which is {'also' if right else 'not'} a relevant passage for that question")
    return Check(False, "score every passage with doc_embeddings @ question and take the argmax's id")


def check_query_sum(doc_id: str, answer: object) -> Check:
    """Notebook 03: the query sum ``G`` of one passage, from the training questions."""
    if answer is None:
        return _todo("the sum of the training question embeddings that list this passage")
    t = _tessera()
    if doc_id not in t.doc_ids:
        return Check(False, f"doc_id {doc_id!r} is not a week-1 passage")
    row = t.doc_ids.index(doc_id)
    train = t.query_set("train")
    mine = [i for i, a in enumerate(train.answers) if row in a]
    expected = train.embeddings[mine].astype(np.float64).sum(axis=0) if mine else np.zeros(train.embeddings.shape[1])
    value = np.asarray(answer, dtype=np.float64)
    if value.shape != expected.shape:
        return Check(False, f"expected a vector of shape {expected.shape}, got shape {value.shape}")
    if np.allclose(value, expected, atol=1e-4):
        return Check(
            True, f"G is the sum of {len(mine)} training questions; its norm is {np.linalg.norm(expected):.3f}"
        )
    if mine and np.allclose(value, expected / len(mine), atol=1e-4):
        return Check(False, "that is the mean; NUDGE sums the questions (the direction is the same, the norm is not)")
    return Check(False, "select the training questions whose answers contain the passage's row, then sum them")


def check_best_gamma(answer: object, k: int = 3) -> Check:
    """Notebook 04: a NUDGE-M gamma in the best validation region for top-``k``."""
    if answer is None:
        return _todo(f"a gamma that maximises NUDGE-M's validation share of answers in the top {k}")
    value = _number(answer)
    if value is None or value < 0:
        return Check(False, f"expected a number >= 0, got {answer!r}")
    model = _fit("M", k)
    start, end = model.best_region_
    if start <= value <= end:
        return Check(True, f"every gamma in [{start:.4f}, {end:.4f}] scores {model.val_score_:.3f} on validation")
    return Check(False, f"Nudge('M', k={k}) finds the best region exactly: look at best_region_ after fit")


def check_cosine_trap(answer: object) -> Check:
    """Notebook 05: test nDCG@10 of NUDGE-M's vectors retrieved with cosine instead of dot."""
    if answer is None:
        return _todo("the test nDCG@10 with metric='cosine' on the NUDGE-M vectors")
    from ..evaluation import evaluate_embeddings

    t = _tessera()
    moved = _fit("M").transform(t.doc_embeddings)
    cos = evaluate_embeddings(moved, t.query_set("test"), metric="cosine")["ndcg@10"]
    dot = evaluate_embeddings(moved, t.query_set("test"), metric="dot")["ndcg@10"]
    value = _number(answer)
    if value is not None and abs(value - cos) < 5e-4:
        return Check(True, f"cosine gives {cos:.3f} against {dot:.3f} with the dot product the nudge was made for")
    if value is not None and abs(value - dot) < 5e-4:
        return Check(False, "that is the dot-product score: pass metric='cosine' to evaluate_embeddings")
    return Check(False, "evaluate_embeddings(moved, test, metric='cosine')['ndcg@10'] on the NUDGE-M vectors")


def check_saved_model(path: object, embeddings: np.ndarray | None = None) -> Check:
    """Notebook 08: a saved NUDGE result that loads back and applies to ``embeddings``."""
    if path is None:
        return _todo("the path you saved the fitted model to")
    from ..estimator import Nudge

    path = Path(str(path))
    if not path.is_file():
        return Check(False, f"no file at {path.name!r}: call model.save(path) first")
    try:
        model = Nudge.load(path, embeddings=embeddings)
    except ValueError as exc:
        return Check(False, str(exc))
    what = "and matches your embeddings" if embeddings is not None else "(pass embeddings= to check it matches them)"
    return Check(True, f"NUDGE-{model.method_} with gamma {model.gamma_:.4g} loads back {what}")


def check_store_hit1(answer: object) -> Check:
    """Notebook 06: test hit@1 of a store holding the NUDGE-N vectors."""
    if answer is None:
        return _todo("the store's test hit@1 after applying NUDGE-N")
    from ..evaluation import evaluate_embeddings

    t = _tessera()
    expected = evaluate_embeddings(_fit("N").transform(t.doc_embeddings), t.query_set("test"))["hit@1"]
    base = evaluate_embeddings(t.doc_embeddings, t.query_set("test"))["hit@1"]
    value = _number(answer)
    if value is not None and abs(value - expected) < 5e-4:
        return Check(True, f"NUDGE-N in the store: hit@1 {expected:.3f} (from {base:.3f} before)")
    if value is not None and abs(value - base) < 5e-4:
        return Check(False, "that is the score before NUDGE: call apply_nudge_to_store with the NUDGE-N model first")
    return Check(False, "fit nudge.Nudge('N') on train and val, apply it to the store, then evaluate_store(...)")


def check_moved_after_weeks(answer: object) -> Check:
    """Notebook 07: passages moved by the state after week 1 and the three later weeks."""
    if answer is None:
        return _todo("the number of passages the state moves after the three weeks")
    from ..production.streaming import NudgeState
    from .bundled import load_tessera, weekly_batches

    week1, later = _tessera(), load_tessera(week=2)
    state = NudgeState("M").add_pairs(train=week1.id_pairs("train"), val=week1.id_pairs("val"))
    for week in weekly_batches(later, n_weeks=3, seed=0):  # one fit on all the pairs equals the weekly loop
        state.add_pairs(train=later.id_pairs(week["train"]), val=later.id_pairs(week["val"]))
    moved = state.fit_gamma(later.doc_embeddings, later.doc_ids).to_nudge(later.doc_embeddings, later.doc_ids).moved_
    if _number(answer) == moved.size:
        return Check(True, f"{moved.size} of {len(later.doc_ids)} passages move after the three weeks")
    return Check(False, "state.to_nudge(docs, later.doc_ids).moved_.size")
