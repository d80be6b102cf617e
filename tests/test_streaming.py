"""The persistent NUDGE state: incremental updates equal one fit, growth, removal, persistence, refusals."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nudge.production.streaming as streaming
from nudge import NotFittedError, Nudge, split_queries
from nudge.production.streaming import NudgeState
from nudge.teaching.bundled import load_tessera
from nudge.teaching.synthetic import make_retrieval_problem

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def names(n: int) -> list[str]:
    return [f"d{i}" for i in range(n)]


def as_ids(answers, ids) -> list[list[str]]:
    return [[ids[i] for i in a] for a in answers]


def quantised(q: np.ndarray) -> np.ndarray:
    """Queries on a 2**-8 grid: every sum of them is exact, so summation order cannot matter."""
    return (np.round(q.astype(np.float64) * 256) / 256).astype(q.dtype)


@pytest.fixture(scope="module")
def problem():
    p = make_retrieval_problem(n_docs=300, dim=16, n_train=200, n_val=60, n_test=1, multi_answer_rate=0.3, seed=5)
    return p


@pytest.fixture(scope="module")
def ids(problem):
    return names(problem.embeddings.shape[0])


def state_for(problem, ids, method="N", quantise=False) -> NudgeState:
    tq = quantised(problem.train.embeddings) if quantise else problem.train.embeddings
    return NudgeState(method).add_pairs(
        train=(tq, as_ids(problem.train.answers, ids)), val=(problem.val.embeddings, as_ids(problem.val.answers, ids))
    )


# ---------------------------------------------------------------------------------------------
# After any sequence of updates: the same result as one fit on all the pairs at once
# ---------------------------------------------------------------------------------------------


def cuts(draw, n: int, weeks: int) -> list[int]:
    """Chunk boundaries 0 = c0 < c1 <= ... <= n, the first chunk non-empty."""
    inner = sorted(draw(st.lists(st.integers(1, n), min_size=weeks - 1, max_size=weeks - 1)))
    return [0, *inner, n]


@st.composite
def weekly_problems(draw):
    problem = make_retrieval_problem(
        n_docs=draw(st.integers(15, 100)),
        dim=draw(st.integers(3, 12)),
        n_train=draw(st.integers(2, 50)),
        n_val=draw(st.integers(2, 25)),
        n_test=1,
        multi_answer_rate=draw(st.sampled_from([0.0, 0.4])),
        seed=draw(st.integers(0, 2**32 - 1)),
    )
    weeks = draw(st.integers(1, 4))
    plan = {
        "method": draw(st.sampled_from("MN")),
        "weeks": weeks,
        "train_cuts": cuts(draw, len(problem.train), weeks),
        "val_cuts": cuts(draw, len(problem.val), weeks),
        "removals": draw(st.lists(st.booleans(), min_size=weeks, max_size=weeks)),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }
    return problem, plan


def first_reference_week(problem, plan) -> np.ndarray:
    """Week (0-based) in which each document is first named by a pair (``weeks`` if never)."""
    first = np.full(problem.embeddings.shape[0], plan["weeks"])
    for part, key in ((problem.train, "train_cuts"), (problem.val, "val_cuts")):
        for w in range(plan["weeks"]):
            for a in part.answers[plan[key][w] : plan[key][w + 1]]:
                first[a] = np.minimum(first[a], w)
    return first


def keep_pairs(queries, answers, removed: set[int]):
    """Drop answers pointing at removed documents, and queries left without answers."""
    kept = [[d for d in a if d not in removed] for a in answers]
    rows = [i for i, a in enumerate(kept) if a]
    return queries[rows], [kept[i] for i in rows]


@SETTINGS
@given(weekly_problems())
def test_any_sequence_of_weeks_equals_one_fit_on_all_pairs(case):
    """Weekly batches, documents arriving with their first pairs (and some earlier), random removals:
    every week the state's gamma and vectors equal ``Nudge.fit`` on everything so far, bit for bit."""
    problem, plan = case
    rng = np.random.default_rng(plan["seed"])
    e, n = problem.embeddings, problem.embeddings.shape[0]
    ids = names(n)
    # a document arrives at the latest with its first pair (never-named ones in any week)
    first = first_reference_week(problem, plan)
    arrives = np.array([rng.integers(0, min(f, plan["weeks"] - 1) + 1) for f in first])
    train_q, val_q = quantised(problem.train.embeddings), problem.val.embeddings
    state, removed = NudgeState(plan["method"]), set()
    seen = {"train": [], "val": []}
    for w in range(plan["weeks"]):
        if w > 0 and plan["removals"][w]:
            present = [i for i in range(n) if arrives[i] <= w and i not in removed]
            doc = int(rng.choice(present))
            removed.add(doc)
            state.remove_documents([ids[doc]])
        batch = {}
        parts = (("train", train_q, problem.train, "train_cuts"), ("val", val_q, problem.val, "val_cuts"))
        for name, q, part, key in parts:
            lo, hi = plan[key][w], plan[key][w + 1]
            seen[name] += list(range(lo, hi))
            bq, ba = keep_pairs(q[lo:hi], part.answers[lo:hi], removed)
            if ba:
                batch[name] = (bq, as_ids(ba, ids))
        if batch:
            state.add_pairs(**batch)
        corpus = [i for i in range(n) if arrives[i] <= w and i not in removed]
        row = {d: r for r, d in enumerate(corpus)}
        tq, ta = keep_pairs(train_q[seen["train"]], [problem.train.answers[i] for i in seen["train"]], removed)
        vq, va = keep_pairs(val_q[seen["val"]], [problem.val.answers[i] for i in seen["val"]], removed)
        if not ta or not va:
            continue
        e_w, ids_w = e[corpus], [ids[i] for i in corpus]
        out = state.fit_gamma(e_w, ids_w).apply(e_w, ids_w)
        ref = Nudge(plan["method"]).fit(
            e_w, (tq, [[row[d] for d in a] for a in ta]), (vq, [[row[d] for d in a] for a in va])
        )
        assert state.gamma_ == ref.gamma_ and state.val_score_ == ref.val_score_
        np.testing.assert_array_equal(out, ref.transform(e_w))
        assert state.doc_ids_ == ids_w


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    method=st.sampled_from("MN"),
    n_chunks=st.integers(2, 5),
    data=st.data(),
)
def test_chunked_updates_equal_one_update_bit_for_bit_on_raw_queries(seed, method, n_chunks, data):
    """Unrounded float32 queries: the float64 sums are the same left-to-right sums whatever the chunks."""
    p = make_retrieval_problem(n_docs=80, dim=8, n_train=60, n_val=20, n_test=1, multi_answer_rate=0.3, seed=seed)
    ids = names(80)
    tc, vc = cuts(data.draw, 60, n_chunks), cuts(data.draw, 20, n_chunks)
    chunked = NudgeState(method)
    for c in range(n_chunks):
        batch = {}
        if tc[c + 1] > tc[c]:
            batch["train"] = (p.train.embeddings[tc[c] : tc[c + 1]], as_ids(p.train.answers[tc[c] : tc[c + 1]], ids))
        if vc[c + 1] > vc[c]:
            batch["val"] = (p.val.embeddings[vc[c] : vc[c + 1]], as_ids(p.val.answers[vc[c] : vc[c + 1]], ids))
        if batch:
            chunked.add_pairs(**batch)
    once = NudgeState(method).add_pairs(
        train=(p.train.embeddings, as_ids(p.train.answers, ids)), val=(p.val.embeddings, as_ids(p.val.answers, ids))
    )
    a, b = chunked.query_sums(), once.query_sums()
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[2], b[2])
    out_a = chunked.fit_gamma(p.embeddings, ids).apply(p.embeddings, ids)
    out_b = once.fit_gamma(p.embeddings, ids).apply(p.embeddings, ids)
    assert chunked.gamma_ == once.gamma_
    np.testing.assert_array_equal(out_a, out_b)


def _tessera_pairs(t, part) -> tuple[np.ndarray, list[list[str]]]:
    qs = t.query_set(part)
    return qs.embeddings, as_ids(qs.answers, t.doc_ids)


@pytest.mark.parametrize("method", ["M", "N"])
def test_bundled_week_one_then_week_two_in_three_chunks_equals_everything_at_once(method):
    t1, t2 = load_tessera(1), load_tessera(2)
    s = split_queries(len(t2.query_ids), val_fraction=0.2, test_fraction=0, seed=0)
    train2 = [t2.query_ids[i] for i in s.train]
    val2 = [t2.query_ids[i] for i in s.val]
    state = NudgeState(method).add_pairs(train=_tessera_pairs(t1, "train"), val=_tessera_pairs(t1, "val"))
    state.fit_gamma(t1.doc_embeddings, t1.doc_ids)
    assert state.doc_ids_ == t1.doc_ids
    for c in range(3):
        state.add_pairs(
            train=_tessera_pairs(t2, list(np.array_split(train2, 3)[c])),
            val=_tessera_pairs(t2, list(np.array_split(val2, 3)[c])),
        )
        state.fit_gamma(t2.doc_embeddings, t2.doc_ids)
    out = state.apply(t2.doc_embeddings, t2.doc_ids)

    parts = [_tessera_pairs(t1, "train"), _tessera_pairs(t2, train2)]
    train = (np.concatenate([p[0] for p in parts]), parts[0][1] + parts[1][1])
    parts = [_tessera_pairs(t1, "val"), _tessera_pairs(t2, val2)]
    val = (np.concatenate([p[0] for p in parts]), parts[0][1] + parts[1][1])
    once = NudgeState(method).add_pairs(train=train, val=val).fit_gamma(t2.doc_embeddings, t2.doc_ids)
    assert once.gamma_ == state.gamma_
    np.testing.assert_array_equal(once.apply(t2.doc_embeddings, t2.doc_ids), out)

    # Nudge.fit sums in float32 like the reference package: equal up to that rounding.
    row = {d: i for i, d in enumerate(t2.doc_ids)}
    as_rows = lambda pairs: (pairs[0], [[row[d] for d in a] for a in pairs[1]])  # noqa: E731
    est = Nudge(method).fit(t2.doc_embeddings, as_rows(train), as_rows(val))
    assert est.gamma_ == pytest.approx(state.gamma_, rel=1e-5) and est.val_score_ == state.val_score_
    # Nudge sums queries in float32 (as nudge-ft does), the state in float64: gamma agrees to 1e-5
    # relative, and a moved row moves by gamma, so rows agree to about 1e-5 * gamma.
    np.testing.assert_allclose(est.transform(t2.doc_embeddings), out, rtol=0, atol=1e-5 * max(1.0, state.gamma_))

    # week 2 added passages, some of them answers to new pairs: recorded and moved
    new_docs = set(t2.doc_ids) - set(t1.doc_ids)
    assert state.doc_ids_ == t2.doc_ids and len(new_docs) > 0
    moved_new = [d for d in new_docs if np.any(out[row[d]] != t2.doc_embeddings[row[d]])]
    assert moved_new and set(moved_new) <= set(state.query_sums()[0])


def test_to_nudge_is_an_equivalent_fitted_estimator(problem, ids):
    for method in "MN":
        state = state_for(problem, ids, method).fit_gamma(problem.embeddings, ids)
        est = state.to_nudge(problem.embeddings, ids)
        assert est.gamma_ == state.gamma_ and est.val_score_ == state.val_score_
        np.testing.assert_array_equal(est.transform(problem.embeddings), state.apply(problem.embeddings, ids))


# ---------------------------------------------------------------------------------------------
# Cost: add_pairs touches only the new pairs' documents
# ---------------------------------------------------------------------------------------------


def test_add_pairs_touches_only_the_documents_of_the_new_pairs(problem, ids, monkeypatch):
    state = state_for(problem, ids)
    before_ids, before_sums, before_counts = state.query_sums()
    old_val_batch = state._val_batches[0]
    calls = []
    real = streaming._accumulate

    def spy(sums, counts, slots, queries, query_of_pair):
        calls.append((slots.copy(), queries.shape[0], query_of_pair.size))
        real(sums, counts, slots, queries, query_of_pair)

    monkeypatch.setattr(streaming, "_accumulate", spy)
    new_q = problem.test.embeddings[:1].repeat(3, axis=0)
    new_answers = [["d3"], ["d3", "d250"], ["brand-new"]]
    state.add_pairs(train=(new_q, new_answers), val=(new_q[:1], [["d9"]]))

    (slots, n_queries, n_pairs) = calls[0]
    assert len(calls) == 1 and n_queries == 3 and n_pairs == 4 and slots.size == 4  # the new pairs, nothing more
    after_ids, after_sums, after_counts = state.query_sums()
    appended = [d for d in ["d3", "d250", "brand-new"] if d not in before_ids]
    assert after_ids == before_ids + appended and "brand-new" in appended
    touched = {after_ids[s] for s in slots}
    assert touched == {"d3", "d250", "brand-new"}
    untouched = [i for i, d in enumerate(before_ids) if d not in touched]
    np.testing.assert_array_equal(after_sums[untouched], before_sums[untouched])
    np.testing.assert_array_equal(after_counts[untouched], before_counts[untouched])
    assert state._val_batches[0] is old_val_batch  # earlier validation queries are not copied
    assert state.n_val_queries == len(problem.val) + 1


# ---------------------------------------------------------------------------------------------
# Persistence
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["M", "N"])
def test_save_and_load_round_trip_and_continue(problem, ids, method, tmp_path):
    half = len(problem.train) // 2
    state = NudgeState(method).add_pairs(
        train=(problem.train.embeddings[:half], as_ids(problem.train.answers[:half], ids)),
        val=(problem.val.embeddings, as_ids(problem.val.answers, ids)),
    )
    state.fit_gamma(problem.embeddings, ids)
    path = state.save(tmp_path / "state.npz")
    assert sorted(os.listdir(tmp_path)) == ["state.npz"]  # no temporary file left behind
    loaded = NudgeState.load(path)
    assert (loaded.method, loaded.k, loaded.gamma_, loaded.val_score_) == (method, 1, state.gamma_, state.val_score_)
    assert loaded.best_region_ == state.best_region_ and loaded.doc_ids_ == state.doc_ids_
    np.testing.assert_array_equal(loaded.validation_curve_["score"], state.validation_curve_["score"])
    np.testing.assert_array_equal(loaded.apply(problem.embeddings, ids), state.apply(problem.embeddings, ids))
    # next week: the loaded state and the one kept in memory stay identical
    rest = (problem.train.embeddings[half:], as_ids(problem.train.answers[half:], ids))
    for s in (state, loaded):
        s.add_pairs(train=rest).fit_gamma(problem.embeddings, ids)
    assert loaded.gamma_ == state.gamma_
    np.testing.assert_array_equal(loaded.apply(problem.embeddings, ids), state.apply(problem.embeddings, ids))


def test_save_of_an_empty_and_of_an_unfitted_state_round_trips(problem, ids, tmp_path):
    empty = NudgeState.load(NudgeState("M", k=2).save(tmp_path / "empty.npz"))
    assert (empty.method, empty.k, empty.n_train_pairs, empty.n_val_queries) == ("M", 2, 0, 0)
    unfitted = NudgeState.load(state_for(problem, ids).save(tmp_path / "unfitted.npz"))
    with pytest.raises(NotFittedError, match=r"call fit_gamma"):
        unfitted.apply(problem.embeddings, ids)
    assert unfitted.n_val_pairs == problem.val.n_pairs and unfitted.n_train_pairs == problem.train.n_pairs


def test_failed_save_keeps_the_previous_file(problem, ids, tmp_path, monkeypatch):
    state = state_for(problem, ids)
    path = state.save(tmp_path / "state.npz")
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        state.add_pairs(val=(problem.test.embeddings, [["d1"]])).save(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["state.npz"]


def test_load_refuses_foreign_files(problem, ids, tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match=r"is not a saved NudgeState"):
        NudgeState.load(junk)
    with pytest.raises(ValueError, match=r"does not exist"):
        NudgeState.load(tmp_path / "missing.npz")
    fit = Nudge("M").fit(problem.embeddings, problem.train, problem.val).save(tmp_path / "fit.npz")
    with pytest.raises(ValueError, match=r"format 'nudge-fit/1', expected 'nudge-state/1'"):
        NudgeState.load(fit)


# ---------------------------------------------------------------------------------------------
# Refusals: other embeddings, nudged embeddings, stale gamma
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["M", "N"])
def test_already_nudged_vectors_are_refused(problem, ids, method):
    state = state_for(problem, ids, method).fit_gamma(problem.embeddings, ids)
    nudged = state.apply(problem.embeddings, ids)
    for call in (state.apply, state.fit_gamma, state.to_nudge):
        with pytest.raises(ValueError, match=r"already-nudged vectors.*nudging nudged vectors applies the step twice"):
            call(nudged, ids)
    # also when the rows come in another order (checked row by row)
    order = np.random.default_rng(0).permutation(len(ids))
    with pytest.raises(ValueError, match=r"already-nudged"):
        state.apply(nudged[order], [ids[i] for i in order])
    # the original embeddings in another order are fine, and give the same rows
    out = state.apply(problem.embeddings[order], [ids[i] for i in order])
    np.testing.assert_array_equal(out, state.apply(problem.embeddings, ids)[order])


def test_embeddings_that_do_not_match_the_record_are_refused(problem, ids, tmp_path):
    state = state_for(problem, ids).fit_gamma(problem.embeddings, ids)
    other = problem.embeddings.copy()
    unlabelled = next(i for i in range(len(ids)) if ids[i] not in set(state.query_sums()[0]))
    other[unlabelled, 0] += 1e-3
    with pytest.raises(ValueError, match=rf"ORIGINAL embeddings .* 1 document\(s\) .*'{ids[unlabelled]}'.*base-model"):
        state.apply(other, ids)
    with pytest.raises(ValueError, match=r"ORIGINAL embeddings"):
        state.fit_gamma(other, ids)
    loaded = NudgeState.load(state.save(tmp_path / "s.npz"))
    with pytest.raises(ValueError, match=r"ORIGINAL embeddings"):
        loaded.apply(other, ids)
    with pytest.raises(ValueError, match=r"dimension 15 but the state's queries have 16"):
        state.apply(problem.embeddings[:, :15].copy(), ids)
    with pytest.raises(ValueError, match=r"dtype float64 but the state's queries have dtype float32"):
        state.apply(problem.embeddings.astype(np.float64), ids)
    with pytest.raises(ValueError, match=r"doc_ids has 299 ids but embeddings have 300 rows"):
        state.apply(problem.embeddings, ids[:-1])
    with pytest.raises(
        ValueError, match=r"lacks 1 document\(s\) this state recorded, e.g. \['d299'\].*remove_documents"
    ):
        state.apply(problem.embeddings[:-1], ids[:-1])
    grown = np.concatenate([problem.embeddings, problem.test.embeddings[:1]])
    with pytest.raises(ValueError, match=r"1 document\(s\) the state has not seen.*call fit_gamma"):
        state.apply(grown, [*ids, "new"])
    state.fit_gamma(grown, [*ids, "new"])  # the record grows
    assert state.doc_ids_[-1] == "new" and state.apply(grown, [*ids, "new"]).shape == grown.shape


def test_gamma_must_be_re_picked_after_updates(problem, ids):
    state = state_for(problem, ids)
    with pytest.raises(NotFittedError, match=r"not been chosen yet"):
        state.apply(problem.embeddings, ids)
    state.fit_gamma(problem.embeddings, ids)
    state.add_pairs(val=(problem.test.embeddings, [["d1"]]))
    with pytest.raises(ValueError, match=r"since gamma was chosen: call fit_gamma"):
        state.apply(problem.embeddings, ids)
    state.fit_gamma(problem.embeddings, ids)
    state.remove_documents(["d1"])
    with pytest.raises(ValueError, match=r"since gamma was chosen"):
        state.to_nudge(problem.embeddings[1:], ids[1:])


def test_pairs_pointing_outside_the_corpus_are_refused(problem, ids):
    state = state_for(problem, ids).add_pairs(train=(problem.test.embeddings, [["not-yet"]]))
    with pytest.raises(ValueError, match=r"lacks 1 document\(s\) that labelled pairs point at, e.g. \['not-yet'\]"):
        state.fit_gamma(problem.embeddings, ids)


# ---------------------------------------------------------------------------------------------
# Removed documents
# ---------------------------------------------------------------------------------------------


def test_removed_documents_are_dropped_reported_and_equal_a_fit_without_them(problem, ids, caplog):
    state = state_for(problem, ids, "M", quantise=True).fit_gamma(problem.embeddings, ids)
    multi = next(i for i, a in enumerate(problem.val.answers) if len(a) > 1)
    single = next(i for i, a in enumerate(problem.val.answers) if len(a) == 1 and a[0] != problem.val.answers[multi][0])
    gone = {problem.val.answers[multi][0], problem.val.answers[single][0], problem.train.answers[0][0]}
    gone_ids = [ids[i] for i in sorted(gone)]
    with caplog.at_level(logging.INFO, logger="nudge.production.streaming"):
        summary = state.remove_documents([*gone_ids, "never-seen"])
    assert summary["removed"] == gone_ids and summary["not_found"] == ["never-seen"]
    assert summary["train_pairs_dropped"] == sum(d in gone for a in problem.train.answers for d in a)
    assert summary["val_pairs_dropped"] == sum(d in gone for a in problem.val.answers for d in a)
    assert summary["val_queries_dropped"] == sum(set(a) <= gone for a in problem.val.answers)
    assert "removed 3 documents" in caplog.text and "never-seen" in caplog.text
    assert not set(gone_ids) & set(state.query_sums()[0]) and not set(gone_ids) & set(state.doc_ids_)
    assert state.embeddings_sha256_ is None

    keep = [i for i in range(len(ids)) if i not in gone]
    row = {d: r for r, d in enumerate(keep)}
    e, kept_ids = problem.embeddings[keep], [ids[i] for i in keep]
    with pytest.raises(ValueError, match=r"ORIGINAL embeddings"):  # rows are still checked one by one
        state.fit_gamma(e * 2, kept_ids)
    out = state.fit_gamma(e, kept_ids).apply(e, kept_ids)

    def without(queries, answers):
        pairs = [(i, [row[d] for d in a if d not in gone]) for i, a in enumerate(answers)]
        pairs = [(i, a) for i, a in pairs if a]
        return queries[[i for i, _ in pairs]], [a for _, a in pairs]

    train = without(quantised(problem.train.embeddings), problem.train.answers)
    ref = Nudge("M").fit(e, train, without(problem.val.embeddings, problem.val.answers))
    assert state.gamma_ == ref.gamma_ and state.n_val_queries == len(problem.val) - summary["val_queries_dropped"]
    np.testing.assert_array_equal(out, ref.transform(e))


def test_removing_only_unknown_ids_changes_nothing(problem, ids):
    state = state_for(problem, ids).fit_gamma(problem.embeddings, ids)
    summary = state.remove_documents(["nope"])
    assert summary == {
        "removed": [],
        "not_found": ["nope"],
        "train_pairs_dropped": 0,
        "val_pairs_dropped": 0,
        "val_queries_dropped": 0,
    }
    state.apply(problem.embeddings, ids)  # still fitted: nothing changed


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------

Q = np.eye(2, 4, dtype=np.float32)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: NudgeState("X"), r"method must be 'M' .* got 'X'"),
        (lambda: NudgeState(k=0), r"k must be a positive integer"),
        (lambda: NudgeState("M", grid=[0.1]), r"grid applies to NUDGE-N only"),
        (lambda: NudgeState(grid=[5.0]), r"grid value must be < 4"),
        (lambda: NudgeState().add_pairs(), r"add_pairs needs train and/or val"),
        (lambda: NudgeState().add_pairs(train=[Q, [["a"], ["b"]]]), r"train must be a QuerySet"),
        (
            lambda: NudgeState().add_pairs(train=(Q, [[0], [1]])),
            r"train answers\[0\]\[0\] must be a string id",
        ),
        (lambda: NudgeState().add_pairs(train=(Q, [["a"], []])), r"train answers\[1\] is empty"),
        (
            lambda: NudgeState().add_pairs(train=(Q, [["a"], ["b", "b"]])),
            r"train answers\[1\] lists .* 'b' more than once",
        ),
        (
            lambda: NudgeState().add_pairs(train=(Q, [["a"]])),
            r"train answers has 1 answer lists but there are 2 queries",
        ),
        (lambda: NudgeState().add_pairs(train=(Q, "ab")), r"train answers must be a list"),
        (lambda: NudgeState().add_pairs(val=(Q, ["a", "b"])), r"val answers\[0\] must be a list of document ids"),
        (lambda: NudgeState().add_pairs(val=(Q[:, :0], [["a"], ["b"]])), r"val embeddings has 0 columns"),
        (lambda: NudgeState().add_pairs(val=(Q * np.nan, [["a"], ["b"]])), r"val embeddings contains NaN"),
        (
            lambda: NudgeState().add_pairs(train=(Q, [["a"], ["b"]]), val=(Q[:, :3], [["a"], ["b"]])),
            r"val embeddings has dimension 3 but the state's queries have dimension 4",
        ),
        (
            lambda: NudgeState().add_pairs(train=(Q, [["a"], ["b"]])).add_pairs(val=(Q.astype(float), [["a"], ["b"]])),
            r"val embeddings has dtype float64 but the state's queries have dtype float32",
        ),
        (lambda: NudgeState().fit_gamma(Q, ["a", "b"]), r"no training pairs"),
        (lambda: NudgeState().add_pairs(train=(Q, [["a"], ["b"]])).fit_gamma(Q, ["a", "b"]), r"no validation pairs"),
        (lambda: NudgeState().remove_documents("a"), r"doc_ids must be a sequence of string ids"),
        (lambda: NudgeState().remove_documents([1]), r"doc_ids\[0\] must be a string id"),
    ],
)
def test_bad_input_is_refused_naming_the_argument(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_corpus_arguments(problem, ids):
    state = state_for(problem, ids)
    with pytest.raises(ValueError, match=r"doc_ids lists the id 'd0' more than once"):
        state.fit_gamma(problem.embeddings, ["d0", *ids[:-1]])
    with pytest.raises(ValueError, match=r"doc_ids\[0\] must be a string id, got int"):
        state.fit_gamma(problem.embeddings, list(range(len(ids))))
    with pytest.raises(ValueError, match=r"embeddings must be a 2-D"):
        state.fit_gamma(problem.embeddings[0], ids)


def test_failed_add_pairs_leaves_the_state_unchanged(problem, ids):
    state = state_for(problem, ids)
    before = state.query_sums()
    with pytest.raises(ValueError, match=r"val answers\[0\] is empty"):
        state.add_pairs(train=(problem.test.embeddings, [["d1"]]), val=(problem.test.embeddings, [[]]))
    after = state.query_sums()
    assert before[0] == after[0] and state.n_val_queries == len(problem.val)
    np.testing.assert_array_equal(before[1], after[1])


def test_inputs_are_not_modified(problem, ids):
    e = problem.embeddings.copy()
    tq, vq = problem.train.embeddings.copy(), problem.val.embeddings.copy()
    ta, va = as_ids(problem.train.answers, ids), as_ids(problem.val.answers, ids)
    ta_copy, va_copy, ids_copy = [list(a) for a in ta], [list(a) for a in va], list(ids)
    state = NudgeState("M").add_pairs(train=(tq, ta), val=(vq, va))
    vq[0] = 0.0  # later changes by the caller do not reach the stored validation queries
    assert state._val_batches[0][0].any()
    vq[0] = problem.val.embeddings[0]
    state.fit_gamma(e, ids).apply(e, ids)
    state.remove_documents([ids[problem.val.answers[0][0]]])
    np.testing.assert_array_equal(e, problem.embeddings)
    np.testing.assert_array_equal(tq, problem.train.embeddings)
    assert ta == ta_copy and va == va_copy and ids == ids_copy


def test_k_and_grid_are_those_of_nudge_and_survive_save(problem, ids, tmp_path):
    grid = np.linspace(0.0, 0.3, 7)
    state = NudgeState("N", k=2, grid=grid)
    state.add_pairs(
        train=(quantised(problem.train.embeddings), as_ids(problem.train.answers, ids)),
        val=(problem.val.embeddings, as_ids(problem.val.answers, ids)),
    ).fit_gamma(problem.embeddings, ids)
    train = (quantised(problem.train.embeddings), problem.train.answers)
    ref = Nudge("N", k=2, grid=grid).fit(problem.embeddings, train, problem.val)
    assert state.gamma_ == ref.gamma_ and state.val_score_ == ref.val_score_
    np.testing.assert_array_equal(state.validation_curve_["gamma"], grid)
    loaded = NudgeState.load(state.save(tmp_path / "s.npz"))
    assert loaded.k == 2 and loaded.grid == tuple(grid) and "k=2, grid=<7 values>" in repr(loaded)
    np.testing.assert_array_equal(loaded.apply(problem.embeddings, ids), ref.transform(problem.embeddings))
