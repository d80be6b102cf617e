"""Self-checks for the "your turn" exercises at the end of each notebook.

Each ``check_*`` function recomputes the expected answer with the library on the bundled data
and returns a :class:`Check`, which prints as one line: a tick and what was right, or a cross and
a hint. ``None`` (the placeholder in the notebooks) gets a reminder, not a failure.

Every exercise asks for something the notebook has not printed: ``accepted_answer(name)`` gives
the value a check accepts, and ``tests/test_notebooks.py`` checks that no committed output of the
notebook shows it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = [
    "Check",
    "accepted_answer",
    "check_fixed_gamma_weeks",
    "check_k3_on_test",
    "check_length_on_n",
    "check_nearest_passage",
    "check_query_sum",
    "check_quickstart",
    "check_seed_gain",
    "check_store_hit1",
    "check_validation_overlap",
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
    from ..evaluation import evaluate_embeddings, paired_difference

    t = _tessera()
    m, n = (evaluate_embeddings(_fit(x).transform(t.doc_embeddings), t.query_set("test")) for x in ("M", "N"))
    expected = m["ndcg@10"]
    value = _number(answer)
    if value is None:
        return Check(False, f"expected a number, got {answer!r}")
    if abs(value - expected) < 5e-4:
        diff = paired_difference(n["per_query"]["ndcg@10"], m["per_query"]["ndcg@10"])
        verdict = "a clear difference" if diff.clear else "within the noise: no clear winner on these questions"
        return Check(
            True,
            f"NUDGE-M reaches nDCG@10 = {expected:.3f} on the test questions; minus NUDGE-N's: {diff}, {verdict}",
        )
    if abs(value - n["ndcg@10"]) < 5e-4:
        return Check(False, 'that is NUDGE-N\'s score: fit Nudge("M") instead')
    return Check(False, "evaluate the test questions on the NUDGE-M vectors (evaluate_embeddings(...)['ndcg@10'])")


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


def _hits(doc_embeddings: np.ndarray, queries) -> np.ndarray:
    from ..evaluation import evaluate_embeddings

    return (evaluate_embeddings(doc_embeddings, queries)["ranks"] == 1).astype(float)


@lru_cache(maxsize=1)
def _validation_overlap() -> int:
    from ..pairs import split_queries

    t = _tessera()
    n = len(t.query_ids) - len(t.split.get("test_never_asked", []))  # the labelled questions only
    a, b = (set(split_queries(n, val_fraction=0.2, test_fraction=0.2, seed=s).val.tolist()) for s in (0, 1))
    return len(a & b)


def check_validation_overlap(answer: object) -> Check:
    """Notebook 01: how many validation questions the splits with seed 0 and seed 1 share."""
    if answer is None:
        return _todo("the number of questions in both validation sets (seed 0 and seed 1)")
    expected = _validation_overlap()
    value = _number(answer)
    if value == expected:
        n_val = len(_tessera().split["val"])
        return Check(
            True,
            f"only {expected} of {n_val} validation questions are shared: another seed means another gamma "
            "judge, so a gamma (or a method choice) that wins by one question on one seed may lose on the next",
        )
    if value == len(_tessera().split["val"]):
        return Check(False, "that is the size of one validation set; count the questions in both (set(a) & set(b))")
    return Check(
        False, "make both splits with split_queries(..., seed=0) and seed=1, then len(set(a.val) & set(b.val))"
    )


@lru_cache(maxsize=1)
def _k3_on_test() -> tuple[float, float, float]:
    from ..evaluation import evaluate_embeddings

    t = _tessera()
    test = t.query_set("test")
    share = [
        float(np.mean(evaluate_embeddings(_fit("M", k).transform(t.doc_embeddings), test)["ranks"] <= 3))
        for k in (3, 1)
    ]
    base = float(np.mean(evaluate_embeddings(t.doc_embeddings, test)["ranks"] <= 3))
    return share[0], share[1], base


def check_k3_on_test(answer: object) -> Check:
    """Notebook 04: test share of answers in the top 3 for ``Nudge("M", k=3)``."""
    if answer is None:
        return _todo("the share of test questions with an answer in the top 3, for NUDGE-M fitted with k=3")
    k3, k1, base = _k3_on_test()
    value = _number(answer)
    if value is not None and abs(value - k3) < 5e-4:
        verdict = "worse than" if k3 < k1 else "no better than" if k3 == k1 else "better than"
        return Check(
            True,
            f"{k3:.3f} with k=3's gamma, {verdict} {k1:.3f} with the k=1 model's gamma (no fine-tuning {base:.3f}): "
            "the long vectors that won on validation do not pay off on test, a small validation gain can be noise",
        )
    if value is not None and abs(value - k1) < 5e-4:
        return Check(False, 'that is the k=1 model; fit nudge.Nudge("M", k=3) and count test ranks <= 3')
    return Check(False, 'np.mean(evaluate_embeddings(model.transform(docs), test)["ranks"] <= 3) for Nudge("M", k=3)')


@lru_cache(maxsize=1)
def _length_on_n():
    from ..baselines import PopularityControl
    from ..evaluation import paired_difference

    t = _tessera()
    train, val, test = t.query_set("train"), t.query_set("val"), t.query_set("test")
    nudged = _fit("N").transform(t.doc_embeddings)
    control = PopularityControl().fit(nudged, train, val)
    return control.factor_, paired_difference(_hits(nudged, test), _hits(control.transform(nudged), test))


def check_length_on_n(answer: object) -> Check:
    """Notebook 05: the popularity control's factor chosen on validation *on top of* NUDGE-N's output."""
    if answer is None:
        return _todo("the factor PopularityControl chooses when fitted on the NUDGE-N vectors")
    factor, result = _length_on_n()
    value = _number(answer)
    if value is not None and abs(value - factor) < 5e-4:
        verdict = "a clear gain" if result.clear else "not a clear gain on these 194 questions"
        return Check(
            True,
            f"validation wants NUDGE-N's asked-about passages {factor:.3f} times as long; on test hit@1 that "
            f"changes NUDGE-N by {result}: {verdict}. Direction and popularity are separate levers: "
            "NUDGE-M pulls both at once, NUDGE-N only the first",
        )
    return Check(
        False, "PopularityControl().fit(nudged['NUDGE-N'], train, val).factor_ (fit it on the NUDGE-N vectors)"
    )


@lru_cache(maxsize=1)
def _fixed_gamma_weeks() -> tuple[int, int, int]:
    from ..production.streaming import NudgeState
    from .bundled import load_tessera, weekly_batches

    week1, later = _tessera(), load_tessera(week=2)
    state = NudgeState("M").add_pairs(train=week1.id_pairs("train"), val=week1.id_pairs("val"))
    gamma1 = state.fit_gamma(week1.doc_embeddings, week1.doc_ids).gamma_
    for week in weekly_batches(later, n_weeks=3, seed=0):  # one fit on all the pairs equals the weekly loop
        state.add_pairs(train=later.id_pairs(week["train"]), val=later.id_pairs(week["val"]))
    docs = later.doc_embeddings
    model = state.fit_gamma(docs, later.doc_ids).to_nudge(docs, later.doc_ids)
    test = week1.query_set("test", later.doc_ids)
    kept, repicked = (int(_hits(model.transform(docs, gamma=g), test).sum()) for g in (gamma1, None))
    return kept, repicked, len(test)


def check_fixed_gamma_weeks(answer: object) -> Check:
    """Notebook 07: week-1 test questions NUDGE-M gets right at rank 1 after three weeks, keeping week 1's gamma."""
    if answer is None:
        return _todo(
            "the number of week-1 test questions ranked right at 1 by the three-week NUDGE-M with week 1's gamma"
        )
    kept, repicked, n = _fixed_gamma_weeks()
    value = _number(answer)
    if value == kept:
        return Check(
            True,
            f"{kept} of {n} with week 1's gamma against {repicked} with the re-picked one: the grown validation "
            "set chose a smaller gamma; paired_difference tells you whether that gap is more than noise",
        )
    if value == repicked:
        return Check(False, "that is the re-picked gamma; pass gamma=<week 1's gamma> to model.transform")
    if value is not None and 0 < value < 1:
        return Check(False, "count the questions (the sum of per-question hit@1), not their share")
    return Check(
        False, "state.to_nudge(docs, later.doc_ids).transform(docs, gamma=week-1 gamma), then count test hits at 1"
    )


@lru_cache(maxsize=4)
def _seed_gain(seed: int):
    from ..estimator import Nudge
    from ..evaluation import paired_difference
    from ..pairs import QuerySet, split_queries
    from ..production.datasets import load_pairs
    from .bundled import data_dir, tessera_embedder

    dataset, _ = load_pairs(data_dir() / "examples" / "support_pairs.csv")
    embedder, qids, doc_ids = tessera_embedder(), dataset.query_ids, dataset.doc_ids
    docs = embedder.embed_documents([dataset.corpus[d] for d in doc_ids])
    vectors = dict(zip(qids, embedder.embed_queries([dataset.queries[q] for q in qids]), strict=True))
    split = split_queries(len(qids), val_fraction=0.2, test_fraction=0.2, seed=seed)
    sets = {}
    for name in ("train", "val", "test"):
        ids = [qids[i] for i in getattr(split, name)]
        sets[name] = QuerySet(np.stack([vectors[q] for q in ids]), dataset.answers(ids, doc_ids))
    models = {m: Nudge(m).fit(docs, sets["train"], sets["val"]) for m in ("M", "N")}
    best = max(models, key=lambda m: models[m].val_score_)
    return best, paired_difference(_hits(docs, sets["test"]), _hits(models[best].transform(docs), sets["test"]))


def check_seed_gain(answer: object, seed: int = 2) -> Check:
    """Notebook 08: with ``SEED = seed``, the lower end of the paired 95% interval of the chosen method's test gain."""
    if answer is None:
        return _todo(f"the lower end (.low) of the paired interval of the test hit@1 gain with SEED = {seed}")
    best, result = _seed_gain(seed)
    value = _number(answer)
    if value is not None and abs(value - result.low) < 5e-4:
        return Check(
            True,
            f"with SEED = {seed} validation picks NUDGE-{best}; its test gain is {result.difference:+.3f} "
            f"({result.n_better} better, {result.n_worse} worse of {result.n}), interval [{result.low:+.3f}, "
            f"{result.high:+.3f}]: {'clear' if result.clear else 'not distinguishable from no gain'}. "
            "Fifty test questions cannot tell a small gain from none",
        )
    return Check(
        False,
        f"set SEED = {seed} in the first cell, run all, then paired_difference(base hits, nudged hits).low on test",
    )


def accepted_answer(check: str):
    """The value the self-check ``check`` (a function name) accepts, for the tests (arrays for vectors)."""
    t = _tessera()
    if check == "check_quickstart":
        from ..evaluation import evaluate_embeddings

        return evaluate_embeddings(_fit("M").transform(t.doc_embeddings), t.query_set("test"))["ndcg@10"]
    if check == "check_validation_overlap":
        return _validation_overlap()
    if check == "check_nearest_passage":
        return t.doc_ids[int(np.argmax(t.doc_embeddings @ t.query_set("test").embeddings[0]))]
    if check == "check_query_sum":
        train, row = t.query_set("train"), t.doc_ids.index("ops-001")
        return train.embeddings[[i for i, a in enumerate(train.answers) if row in a]].astype(np.float64).sum(axis=0)
    if check == "check_k3_on_test":
        return _k3_on_test()[0]
    if check == "check_length_on_n":
        return _length_on_n()[0]
    if check == "check_store_hit1":
        return _hits(_fit("N").transform(t.doc_embeddings), t.query_set("test")).mean()
    if check == "check_fixed_gamma_weeks":
        return _fixed_gamma_weeks()[0]
    if check == "check_seed_gain":
        return _seed_gain(2)[1].low
    raise ValueError(f"check: no self-check named {check!r}")
