"""Self-checks for the "your turn" exercises at the end of each notebook.

Each ``check_*`` function recomputes the expected answer with the library on the bundled data
and returns a :class:`Check`, which prints as one line: a tick and what was right, or a cross and
a hint. ``None`` (the placeholder in the notebooks) gets a reminder, not a failure. A notebook
shows the Check a cell ends with; in a script, a loop or mid-cell nothing is shown unless you
print it (``print(check_query_sum("ops-001", answer))``): ``str`` and ``repr`` give the same line,
and ``bool(check)`` is whether it passed.

Every exercise asks for something the kit does not print: ``accepted_answer(name)`` gives the
value a check accepts, and ``tests/test_notebooks.py`` checks that no committed output of the
notebook shows it.

One tolerance for every numeric answer (:data:`TOLERANCE`): the value to 3 decimals (within
0.0005), or the value rounded to 2 decimals (an answer typed with 2 decimals within 0.005).
Counts and ids must be exact. Every comparison a check reports follows the kit's one rule of
significance (:data:`nudge.evaluation.RULE`): clear when the 95% paired interval excludes 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = [
    "TOLERANCE",
    "Check",
    "accepted_answer",
    "check_context_hit",
    "check_fixed_gamma_weeks",
    "check_k3_on_test",
    "check_length_on_n",
    "check_mixed_traffic",
    "check_nearest_passage",
    "check_query_sum",
    "check_seed_gain",
    "check_store_n_over_m",
    "check_validation_overlap",
]

#: How close a numeric answer must be, in words (every check uses :func:`_agrees`).
TOLERANCE = "3 decimals, or rounded to 2"


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


def _agrees(value: float | None, expected: float) -> bool:
    """The one tolerance: within 0.0005, or typed with 2 decimals and within 0.005 (rounding)."""
    if value is None:
        return False
    if abs(value - expected) < 5e-4:
        return True
    two_decimals = abs(value * 100 - round(value * 100)) < 1e-6
    return two_decimals and abs(value - expected) <= 0.005 + 1e-9


def _interval(before: np.ndarray, after: np.ndarray) -> str:
    """``after - before`` with its paired interval (the verdict is the learner's to state)."""
    from ..evaluation import paired_difference

    return str(paired_difference(before, after))


@lru_cache(maxsize=1)
def _tessera():
    from .bundled import load_tessera

    return load_tessera()


@lru_cache(maxsize=4)
def _fit(method: str, k: int = 1):
    from ..estimator import Nudge

    t = _tessera()
    return Nudge(method, k=k).fit(t.doc_embeddings, t.query_set("train"), t.query_set("val"))


#: Share of traffic about never-asked pages in notebook 00's exercise.
MIXED_NEVER_ASKED = 0.2


@lru_cache(maxsize=1)
def _mixed_traffic():
    """NUDGE-M minus no fine-tuning, hit@1, on traffic with MIXED_NEVER_ASKED never-asked questions."""
    from ..evaluation import mixed_difference

    t = _tessera()
    groups = (t.query_set("test"), t.query_set("test_never_asked"))
    moved = _fit("M").transform(t.doc_embeddings)
    before = [_hits(t.doc_embeddings, g) for g in groups]
    after = [_hits(moved, g) for g in groups]
    weights = (1 - MIXED_NEVER_ASKED, MIXED_NEVER_ASKED)
    return mixed_difference(before, after, weights), before, after


def check_mixed_traffic(answer: object) -> Check:
    """Notebook 00: the upper bound of the 95% paired interval of NUDGE-M minus no fine-tuning,
    hit@1, on traffic where 20% of the questions are about never-asked pages
    (:func:`nudge.evaluation.mixed_difference`). The check prints the interval; the learner states
    the verdict."""
    if answer is None:
        return _todo("the upper bound of the mixed_difference interval (NUDGE-M minus no fine-tuning, 80/20 mix)")
    value = _number(getattr(answer, "high", answer))
    if value is None:
        return Check(False, f"expected a number (the interval's upper bound), got {answer!r}")
    diff, before, after = _mixed_traffic()
    if _agrees(value, diff.high):
        return Check(
            True,
            f"NUDGE-M minus no fine-tuning on the 80/20 mix, hit@1: {diff}. With only {before[1].size} "
            "never-asked questions behind the 20%, the interval is wide. Now state the verdict yourself by "
            "the kit's rule (does the interval exclude 0?), and what you would need to know about your "
            "own traffic before shipping NUDGE-M.",
        )
    if _agrees(value, diff.difference):
        return Check(False, "that is the difference itself: put the interval's upper bound (.high) in answer")
    if _agrees(value, diff.low):
        return Check(False, "that is the lower bound: put the upper bound (.high) in answer")
    pooled = float(np.concatenate(after).mean() - np.concatenate(before).mean())
    if _agrees(value, pooled):
        return Check(False, "that weighs the groups by their sizes here, not 80% and 20%: use mixed_difference")
    return Check(
        False,
        "mixed_difference([base_known, base_never], [m_known, m_never], (0.8, 0.2)) with each system's "
        "per-question hit@1 (evaluate_embeddings(...)['per_query']['hit@1']), then its .high",
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
        row = t.doc_ids.index(expected)
        asked = any(row in a for a in t.query_set("train").answers)
        more = (
            " It has no training question, so NUDGE never moves it: NUDGE can fix this question only by "
            "moving the right passage up past it, and a never-answered page can win rank 1 (notebooks 05, 07)"
            if not asked
            else ""
        )
        return Check(
            True, f"{expected}, which is {'also' if right else 'not'} a relevant passage for that question.{more}"
        )
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


@lru_cache(maxsize=1)
def _store_n_over_m() -> tuple[np.ndarray, np.ndarray]:
    t = _tessera()
    test = t.query_set("test")
    return tuple(_hits(_fit(m).transform(t.doc_embeddings), test) for m in ("M", "N"))


def check_store_n_over_m(answer: object) -> Check:
    """Notebook 06: test questions the NUDGE-N store ranks right at 1 and the NUDGE-M store did not."""
    if answer is None:
        return _todo("the number of test questions right at 1 with NUDGE-N in the store but not with NUDGE-M")
    m, n = _store_n_over_m()
    n_only, m_only = int(((n == 1) & (m == 0)).sum()), int(((m == 1) & (n == 0)).sum())
    value = _number(answer)
    if value == n_only:
        return Check(
            True,
            f"{n_only} questions go to NUDGE-N, {m_only} to NUDGE-M; NUDGE-N minus NUDGE-M: "
            f"{_interval(m, n)}. Choose between them for your store (NUDGE-N is unit length, accepted by "
            "cosine collections) and for never-asked pages (notebook 05), not on this difference",
        )
    if value == m_only:
        return Check(False, "that is the other way round: right with NUDGE-M, wrong with NUDGE-N")
    if value is not None and 0 < value < 1:
        return Check(False, "count the questions, not their share")
    return Check(
        False,
        'keep evaluate_store(...)["per_query"]["hit@1"] for NUDGE-M (results["after NUDGE-M"]) and for NUDGE-N, '
        "then count the questions with 1 for N and 0 for M",
    )


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
        n_all = len(_tessera().query_ids) - len(_tessera().split.get("test_never_asked", []))
        chance = n_val * n_val / n_all
        return Check(
            True,
            f"only {expected} of {n_val} validation questions are shared; two sets of {n_val} drawn at random "
            f"from {n_all} share {n_val}*{n_val}/{n_all} = {chance:.1f} on average, so the seeds overlap about "
            "as much as chance says: another seed means another judge of gamma, and a gamma (or a method "
            "choice) that wins by one question on one seed may lose on the next",
        )
    if value == len(_tessera().split["val"]):
        return Check(False, "that is the size of one validation set; count the questions in both (set(a) & set(b))")
    return Check(
        False, "make both splits with split_queries(..., seed=0) and seed=1, then len(set(a.val) & set(b.val))"
    )


@lru_cache(maxsize=1)
def _k3_on_test() -> dict:
    from ..evaluation import evaluate_embeddings

    t = _tessera()
    groups = {"known": t.query_set("test"), "never": t.query_set("test_never_asked")}
    systems = {"k3": _fit("M", 3).transform(t.doc_embeddings), "k1": _fit("M", 1).transform(t.doc_embeddings)}
    systems["base"] = t.doc_embeddings
    return {
        (name, g): (evaluate_embeddings(x, q)["ranks"] <= 3).astype(float)
        for name, x in systems.items()
        for g, q in groups.items()
    }


def check_k3_on_test(answer: object) -> Check:
    """Notebook 04: test share of answers in the top 3 for ``Nudge("M", k=3)``."""
    if answer is None:
        return _todo("the share of test questions with an answer in the top 3, for NUDGE-M fitted with k=3")
    r = _k3_on_test()
    k3, k1, base = (float(r[(n, "known")].mean()) for n in ("k3", "k1", "base"))
    value = _number(answer)
    if _agrees(value, k3):
        return Check(
            True,
            f"{k3:.3f} with k=3's gamma against {k1:.3f} with the k=1 model's (no fine-tuning {base:.3f}); "
            f"k=3 minus k=1 on the known questions: {_interval(r[('k1', 'known')], r[('k3', 'known')])}. "
            "On the never-asked questions (test_never_asked), top 3: "
            f"{r[('base', 'never')].mean():.3f} with no fine-tuning, {r[('k1', 'never')].mean():.3f} with the "
            f"k=1 model, {r[('k3', 'never')].mean():.3f} with k=3's; k=3 minus k=1: "
            f"{_interval(r[('k1', 'never')], r[('k3', 'never')])}. Now state the verdict on each interval "
            "yourself by the kit's rule (does it exclude 0?), and which model, if any, you would ship",
        )
    if _agrees(value, k1):
        return Check(False, 'that is the k=1 model; fit nudge.Nudge("M", k=3) and count test ranks <= 3')
    return Check(False, 'np.mean(evaluate_embeddings(model.transform(docs), test)["ranks"] <= 3) for Nudge("M", k=3)')


@lru_cache(maxsize=1)
def _length_on_n():
    from ..baselines import PopularityControl

    t = _tessera()
    train, val = t.query_set("train"), t.query_set("val")
    nudged = _fit("N").transform(t.doc_embeddings)
    scaled = PopularityControl().fit(nudged, train, val)
    hits = {
        (name, g): _hits(x, t.query_set(q))
        for name, x in (("N", nudged), ("scaled", scaled.transform(nudged)))
        for g, q in (("known", "test"), ("never", "test_never_asked"))
    }
    return scaled.factor_, hits


@lru_cache(maxsize=1)
def _length_on_m() -> float:
    """The factor of the same mistake made on NUDGE-M's vectors (to tell it from the right answer)."""
    from ..baselines import PopularityControl

    t = _tessera()
    nudged = _fit("M").transform(t.doc_embeddings)
    return float(PopularityControl().fit(nudged, t.query_set("train"), t.query_set("val")).factor_)


def check_length_on_n(answer: object) -> Check:
    """Notebook 05: the popularity control's factor chosen on validation *on top of* NUDGE-N's output."""
    if answer is None:
        return _todo("the factor PopularityControl chooses when fitted on the NUDGE-N vectors")
    factor, h = _length_on_n()
    value = _number(answer)
    on_m = _length_on_m()
    if value is not None and abs(value - on_m) < 5e-4 and abs(value - factor) >= 5e-4:
        if _agrees(value, factor):  # 2 decimals cannot tell the two fits apart: ask for 3
            return Check(False, "give 3 decimals: to 2 decimals this is also the factor fitted on NUDGE-M's vectors")
        return Check(False, "that is the factor fitted on the NUDGE-M vectors: fit it on nudged['NUDGE-N']")
    if _agrees(value, factor):
        return Check(
            True,
            f"validation wants NUDGE-N's asked-about passages {factor:.3f} times as long. Test hit@1, scaled "
            f"minus NUDGE-N alone: known questions {_interval(h[('N', 'known')], h[('scaled', 'known')])}; "
            f"never-asked questions {h[('N', 'never')].mean():.3f} -> {h[('scaled', 'never')].mean():.3f}, "
            f"{_interval(h[('N', 'never')], h[('scaled', 'never')])}. Now state the verdict on each interval "
            "yourself by the kit's rule (does it exclude 0?): what does the extra length buy on known "
            "questions, and what does it cost the pages nobody asked about?",
        )
    return Check(
        False, "PopularityControl().fit(nudged['NUDGE-N'], train, val).factor_ (fit it on the NUDGE-N vectors)"
    )


@lru_cache(maxsize=1)
def _fixed_gamma_weeks() -> tuple[int, int, int, str]:
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
    hits = [_hits(model.transform(docs, gamma=g), test) for g in (gamma1, None)]
    return int(hits[0].sum()), int(hits[1].sum()), len(test), _interval(hits[1], hits[0])


def check_fixed_gamma_weeks(answer: object) -> Check:
    """Notebook 07: week-1 test questions NUDGE-M gets right at rank 1 after three weeks, keeping week 1's gamma."""
    if answer is None:
        return _todo(
            "the number of week-1 test questions ranked right at 1 by the three-week NUDGE-M with week 1's gamma"
        )
    kept, repicked, n, diff = _fixed_gamma_weeks()
    value = _number(answer)
    if value == kept:
        return Check(
            True,
            f"{kept} of {n} with week 1's gamma against {repicked} with the re-picked one; week 1's gamma minus "
            f"the re-picked one, hit@1: {diff}. Now state the verdict yourself by the kit's rule (does the "
            "interval exclude 0?): do the data show that re-picking gamma changed these questions' results?",
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
    best = "N" if models["N"].val_score_ >= models["M"].val_score_ else "M"  # a tie goes to N, as in notebook 08
    return best, paired_difference(_hits(docs, sets["test"]), _hits(models[best].transform(docs), sets["test"]))


def check_seed_gain(answer: object, seed: int = 2) -> Check:
    """Notebook 08: with ``SEED = seed``, the lower end of the paired 95% interval of the chosen method's test gain."""
    if answer is None:
        return _todo(f"the lower end (.low) of the paired interval of the test hit@1 gain with SEED = {seed}")
    best, result = _seed_gain(seed)
    value = _number(answer)
    if _agrees(value, result.low):
        return Check(
            True,
            f"with SEED = {seed} notebook 08 uses NUDGE-{best}; its test hit@1 minus no fine-tuning's is {result} "
            f"({result.verdict}). Fifty test questions cannot tell a small gain from none",
        )
    return Check(
        False,
        f"set SEED = {seed} in the first cell, run all, then paired_difference(base hits, nudged hits).low on test",
    )


@lru_cache(maxsize=4)
def _context_hits(k: int) -> dict:
    from ..production.rag import context_hit

    t = _tessera()
    test = t.query_set("test")
    out = {"original": context_hit(test, t.doc_embeddings, k)}
    out.update({m: context_hit(test, _fit(m).transform(t.doc_embeddings), k) for m in ("M", "N")})
    return out


def check_context_hit(answer: object, k: int = 2) -> Check:
    """Notebook 10: share of the hold-out test questions with a relevant passage in a top-``k`` prompt,
    with the NUDGE-N vectors."""
    if answer is None:
        return _todo(
            f"the share of test questions whose relevant passage is in a top-{k} prompt with the NUDGE-N "
            "vectors (a number between 0 and 1)"
        )
    value = _number(answer)
    if value is None:
        return Check(False, f"expected a number between 0 and 1, got {answer!r}")
    hits = _context_hits(k)
    expected, original = float(hits["N"].mean()), float(hits["original"].mean())
    if _agrees(value, expected):
        return Check(
            True,
            f"{expected:.3f} with NUDGE-N against {original:.3f} with the original vectors (top {k}); NUDGE-N "
            f"minus original: {_interval(hits['original'], hits['N'])}",
        )
    if _agrees(value, original):
        return Check(False, "that is the share with the original vectors: use vectors['NUDGE-N']")
    if _agrees(value, float(hits["M"].mean())):
        return Check(False, "that is NUDGE-M's share: use vectors['NUDGE-N']")
    if any(_agrees(value, float(_context_hits(cut)["N"].mean())) for cut in (1, 3, 5) if cut != k):
        return Check(False, f"that is another prompt size: count the questions whose rank is <= {k}")
    return Check(False, f"context_hit(test, vectors['NUDGE-N'], k={k}).mean(): the share of 1s")


def _squared_adapter():
    """Paired difference in test hit@1, squared-loss adapter minus softmax adapter, on the bundled
    data's known test questions (both fitted on train, chosen on val), and the two val scores."""
    from ..adapter import QueryAdapter
    from ..evaluation import evaluate_embeddings, paired_difference
    from ..pairs import QuerySet
    from .learning_curve import bundled_problem, single_thread_blas

    p = bundled_problem()
    scores, val = {}, {}
    for loss in ("softmax", "squared"):
        with single_thread_blas():
            adapter = QueryAdapter(loss=loss).fit(p.docs, p.train, p.val)
        mapped = QuerySet(adapter.transform_queries(p.test.embeddings), p.test.answers)
        scores[loss] = evaluate_embeddings(p.docs, mapped)["per_query"]["hit@1"]
        val[loss] = adapter.val_score_
    return paired_difference(scores["softmax"], scores["squared"]), val


def check_squared_adapter(answer: object) -> Check:
    """Notebook 09: the difference in test hit@1, squared-loss adapter minus softmax adapter, on all
    the bundled data's test questions. The check confirms the number and prints the paired
    interval; the verdict (was validation's preference shown on test?) is the learner's to state."""
    if answer is None:
        return _todo("the squared-loss adapter's test hit@1 minus the softmax adapter's (all test questions)")
    value = _number(answer)
    if value is None:
        return Check(False, f"expected a difference of two hit@1 values (a number), got {answer!r}")
    diff, val = _squared_adapter()
    if _agrees(value, diff.difference):
        return Check(
            True,
            f"squared minus softmax, test hit@1 on all {diff.n} test questions: {diff}. Validation top-1: softmax "
            f"{val['softmax']:.3f}, squared {val['squared']:.3f}. Now state the verdict yourself by the "
            "kit's rule (does this interval exclude 0?), and what it says about validation's choice.",
        )
    if _agrees(value, -diff.difference):
        return Check(False, "that is softmax minus squared: take the squared adapter's hit@1 minus the softmax one's")
    return Check(
        False,
        "fit QueryAdapter(loss='squared') and QueryAdapter(loss='softmax') on train with val, map all the "
        "test questions with transform_queries, and subtract the two evaluate_embeddings(...)['hit@1']",
    )


def accepted_answer(check: str):
    """The value the self-check ``check`` (a function name) accepts, for the tests (arrays for vectors)."""
    t = _tessera()
    if check == "check_mixed_traffic":
        return _mixed_traffic()[0].high
    if check == "check_validation_overlap":
        return _validation_overlap()
    if check == "check_nearest_passage":
        return t.doc_ids[int(np.argmax(t.doc_embeddings @ t.query_set("test").embeddings[0]))]
    if check == "check_query_sum":
        train, row = t.query_set("train"), t.doc_ids.index("ops-001")
        return train.embeddings[[i for i, a in enumerate(train.answers) if row in a]].astype(np.float64).sum(axis=0)
    if check == "check_k3_on_test":
        return float(_k3_on_test()[("k3", "known")].mean())
    if check == "check_length_on_n":
        return _length_on_n()[0]
    if check == "check_store_n_over_m":
        m, n = _store_n_over_m()
        return int(((n == 1) & (m == 0)).sum())
    if check == "check_context_hit":
        return float(_context_hits(2)["N"].mean())
    if check == "check_fixed_gamma_weeks":
        return _fixed_gamma_weeks()[0]
    if check == "check_seed_gain":
        return _seed_gain(2)[1].low
    if check == "check_squared_adapter":
        return _squared_adapter()[0].difference
    raise ValueError(f"check: no self-check named {check!r}")
