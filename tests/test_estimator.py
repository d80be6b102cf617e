"""The scikit-learn style estimator: conventions, transform, save/load and stale artefacts."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from nudge import NUDGEM, NUDGEN, NotFittedError, Nudge
from nudge.gamma import best_gamma_from_intervals
from nudge.production.compat import best_gamma_reference
from nudge.teaching.synthetic import make_retrieval_problem


@pytest.fixture(scope="module")
def problem():
    return make_retrieval_problem(n_docs=500, dim=24, n_train=300, n_val=80, n_test=80, seed=11)


def test_init_only_stores_parameters_and_fit_returns_self(problem):
    est = Nudge("M", k=2, chunk_size=7)
    assert est.get_params() == {
        "method": "M",
        "gamma": None,
        "k": 2,
        "grid": None,
        "chunk_size": 7,
        "val_batch_size": 256,
        "gamma_choice": "middle",
        "grade_threshold": 0.0,
    }
    assert not any(name.endswith("_") and not name.startswith("_") for name in vars(est))
    assert est.fit(problem.embeddings, problem.train, problem.val) is est
    assert {"gamma_", "support_", "moved_", "directions_", "val_score_", "embeddings_sha256_"} <= set(vars(est))


def test_transform_before_fit_is_refused(problem):
    with pytest.raises(NotFittedError, match=r"not fitted yet"):
        Nudge().transform(problem.embeddings)


@pytest.mark.parametrize("method", ["M", "N"])
def test_learned_state_is_consistent(problem, method):
    e = problem.embeddings
    est = Nudge(method).fit(e, problem.train, problem.val)
    trained_docs = np.unique(np.concatenate([np.asarray(a) for a in problem.train.answers]))
    np.testing.assert_array_equal(est.support_, trained_docs)
    assert set(est.moved_) <= set(est.support_)
    np.testing.assert_allclose(np.linalg.norm(est.directions_, axis=1), 1.0, atol=1e-6)
    out = est.transform(e)
    changed = np.flatnonzero(np.any(out != e, axis=1))
    np.testing.assert_array_equal(changed, est.moved_)
    # the stored curve agrees with the chosen gamma and score
    curve = est.validation_curve_
    at = np.flatnonzero(curve["gamma"] == est.gamma_)
    assert at.size == 1 and curve["score"][at[0]] == pytest.approx(est.val_score_)
    assert est.val_score_ == pytest.approx(curve["score"].max())
    if method == "N":
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
        assert est.best_region_ is None
    else:
        start, end = est.best_region_
        assert start <= est.gamma_ <= end


def test_fit_transform_equals_fit_then_transform(problem):
    for method in "MN":
        a = Nudge(method).fit_transform(problem.embeddings, problem.train, problem.val)
        b = Nudge(method).fit(problem.embeddings, problem.train, problem.val).transform(problem.embeddings)
        np.testing.assert_array_equal(a, b)


def test_estimator_matches_reference_classes_on_directions(problem):
    """Same directions and update as NUDGEM/NUDGEN at the same gamma."""
    train, val = problem.train.to_dict(), problem.val.to_dict()
    ref_m = NUDGEM()
    out_m = ref_m.finetune_embeddings(problem.embeddings, train, val)
    est = Nudge("M", gamma=ref_m.gamma_).fit(problem.embeddings, problem.train)
    np.testing.assert_array_equal(est.transform(problem.embeddings), out_m)
    ref_n = NUDGEN()
    out_n = ref_n.finetune_embeddings(problem.embeddings, train, val)
    est = Nudge("N").fit(problem.embeddings, problem.train, problem.val)
    assert est.gamma_ == ref_n.gamma_
    np.testing.assert_array_equal(est.transform(problem.embeddings), out_n)


def test_smallest_choice_is_the_left_end_of_the_best_region(problem):
    mid = Nudge("M").fit(problem.embeddings, problem.train, problem.val)
    left = Nudge("M", gamma_choice="smallest").fit(problem.embeddings, problem.train, problem.val)
    assert left.gamma_ == mid.best_region_[0] < mid.gamma_ < mid.best_region_[1]
    assert left.val_score_ == mid.val_score_


def test_stale_embeddings_are_refused(problem):
    est = Nudge("N").fit(problem.embeddings, problem.train, problem.val)
    changed = problem.embeddings.copy()
    changed[123, 0] += 1e-3
    with pytest.raises(ValueError, match=r"not the ones this NUDGE was fitted on .* stale"):
        est.transform(changed)
    with pytest.raises(ValueError, match=r"fitted on shape \(500, 24\)"):
        est.transform(problem.embeddings[:-1])
    with pytest.raises(ValueError, match=r"dtype float64 but this NUDGE was fitted on float32"):
        est.transform(problem.embeddings.astype(np.float64))


@pytest.mark.parametrize("method", ["M", "N"])
def test_save_and_load_round_trip(problem, method, tmp_path):
    est = Nudge(method, k=2).fit(problem.embeddings, problem.train, problem.val)
    path = est.save(tmp_path / "fit.npz")
    assert sorted(os.listdir(tmp_path)) == ["fit.npz"]  # no temporary file left behind
    loaded = Nudge.load(path, embeddings=problem.embeddings)
    assert loaded.get_params() == est.get_params()
    for attr in ("method_", "gamma_", "k_", "val_score_", "embeddings_sha256_", "n_documents_", "n_features_in_"):
        assert getattr(loaded, attr) == getattr(est, attr)
    np.testing.assert_array_equal(loaded.transform(problem.embeddings), est.transform(problem.embeddings))
    np.testing.assert_array_equal(loaded.moved_, est.moved_)
    np.testing.assert_array_equal(loaded.validation_curve_["score"], est.validation_curve_["score"])
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
    assert meta["method"] == method and meta["n_documents"] == 500 and len(meta["embeddings_sha256"]) == 64


def test_load_refuses_stale_and_foreign_files(problem, tmp_path):
    path = Nudge("M").fit(problem.embeddings, problem.train, problem.val).save(tmp_path / "fit.npz")
    other = problem.embeddings[::-1].copy()
    with pytest.raises(ValueError, match=r"not the ones .*fit.npz.* was fitted on .* stale"):
        Nudge.load(path, embeddings=other)
    loaded = Nudge.load(path)
    with pytest.raises(ValueError, match=r"stale"):
        loaded.transform(other)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match=r"is not a saved NUDGE result"):
        Nudge.load(junk)
    with pytest.raises(ValueError, match=r"does not exist"):
        Nudge.load(tmp_path / "missing.npz")


def test_failed_save_keeps_the_previous_file(problem, tmp_path, monkeypatch):
    est = Nudge("M").fit(problem.embeddings, problem.train, problem.val)
    path = est.save(tmp_path / "fit.npz")
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        est.save(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["fit.npz"]
    with pytest.raises(ValueError, match=r"folder .* does not exist"):
        est.save(tmp_path / "nope" / "fit.npz")


def test_chunk_sizes_do_not_change_the_result(problem):
    a = Nudge("M", chunk_size=4096, val_batch_size=256).fit(problem.embeddings, problem.train, problem.val)
    b = Nudge("M", chunk_size=7, val_batch_size=3).fit(problem.embeddings, problem.train, problem.val)
    assert a.gamma_ == pytest.approx(b.gamma_, rel=1e-9) and a.val_score_ == b.val_score_
    c = Nudge("N", chunk_size=13, val_batch_size=5).fit(problem.embeddings, problem.train, problem.val)
    d = Nudge("N").fit(problem.embeddings, problem.train, problem.val)
    assert c.gamma_ == d.gamma_ and c.val_score_ == d.val_score_


def test_finer_grid_is_at_least_as_good_on_validation(problem):
    coarse = Nudge("N").fit(problem.embeddings, problem.train, problem.val)
    fine = Nudge("N", grid=np.round(np.linspace(0, 0.48, 97), 10)).fit(problem.embeddings, problem.train, problem.val)
    assert fine.val_score_ >= coarse.val_score_
    assert len(fine.validation_curve_["gamma"]) == 97


def test_sweeps_on_hand_made_intervals():
    lo = np.array([0.0, 0.5, 0.5, 1.0, 2.0])
    hi = np.array([1.0, 1.0, 3.0, 1.0, 4.0])
    w = np.ones(5, dtype=np.int64)
    # closed intervals: at gamma = 1.0 four intervals overlap (the degenerate [1, 1] included)
    assert best_gamma_from_intervals(lo, hi, w) == (1.0, 4, 1.0)
    # the reference counts lo <= v < hi, so it never counts [1, 1] nor intervals ending at v
    assert best_gamma_reference(lo, hi) == 0.5
    assert best_gamma_from_intervals(lo[:0], hi[:0], w[:0])[0] == 0.0
    assert best_gamma_reference(lo[:0], hi[:0]) == 0.0


def test_repr_shows_changed_parameters_including_an_array_grid():
    assert repr(Nudge("N")) == "Nudge(method='N')"
    assert repr(Nudge("M", k=3, gamma_choice="smallest")) == "Nudge(method='M', k=3, gamma_choice='smallest')"
    assert repr(Nudge("N", grid=np.linspace(0, 0.6, 121))) == "Nudge(method='N', grid=<121 values from 0 to 0.6>)"
    assert repr(Nudge("N", grid=[0.1, 0.2])) == "Nudge(method='N', grid=[0.1, 0.2])"


def test_huge_gamma_is_refused_instead_of_returning_inf_rows(problem):
    est = Nudge("M", gamma=1e39).fit(problem.embeddings, problem.train)
    with pytest.raises(ValueError, match=r"gamma=1e\+39 is too large: the moved rows overflow float32"):
        est.transform(problem.embeddings)


def _edit_saved(path, meta_edit=None, **arrays):
    """Rewrite a saved model with edited metadata or arrays (as a hostile user could)."""
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        data = {k: z[k] for k in z.files if k != "meta"}
    if meta_edit:
        meta_edit(meta)
    data.update(arrays)
    np.savez(path, meta=np.array(json.dumps(meta)), **data)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda m: m.update(method="X"), "method"),
        (lambda m: m.update(gamma=None), "gamma"),
        (lambda m: m.update(gamma=-1), "gamma"),
        (lambda m: m.update(gamma=5.0), "gamma"),
        (lambda m: m.update(k=0), "k"),
        (lambda m: m.update(n_documents=-3), "n_documents"),
        (lambda m: m.update(dtype="int8"), "dtype"),
        (lambda m: m.update(embeddings_sha256="abc"), "embeddings_sha256"),
        (lambda m: m.update(val_score=7), "val_score"),
        (lambda m: m.update(best_region=[2, 1]), "best_region"),
        (lambda m: m["params"].update(k="two"), "params"),
        (lambda m: m.pop("params"), "params"),
        (lambda m: m.update(k=2), "params"),
        (lambda m: m.update(method="M"), "params"),
    ],
)
def test_load_refuses_edited_metadata(problem, tmp_path, edit, field):
    path = Nudge("N").fit(problem.embeddings, problem.train, problem.val).save(tmp_path / "fit.npz")
    _edit_saved(path, edit)
    with pytest.raises(ValueError, match=rf"fit.npz' is not a valid saved NUDGE result: field '{field}'"):
        Nudge.load(path)


def test_load_refuses_edited_arrays(problem, tmp_path):
    est = Nudge("N").fit(problem.embeddings, problem.train, problem.val)
    path = est.save(tmp_path / "fit.npz")
    cases = [
        ({"moved": est.moved_[1:]}, "moved", True),  # only visible against the embeddings
        ({"moved": np.append(est.moved_, 10**6)}, "moved", False),
        ({"support": est.support_[::-1]}, "support", False),
        ({"query_sums": est.query_sums_[:, :3]}, "query_sums", False),
        ({"query_sums": np.full_like(est.query_sums_, np.nan)}, "query_sums", False),
    ]
    for arrays, field, needs_embeddings in cases:
        est.save(path)
        _edit_saved(path, **arrays)
        if needs_embeddings:
            Nudge.load(path)  # consistent on its own ...
        with pytest.raises(ValueError, match=rf"field '{field}'"):  # ... but not with the embeddings
            Nudge.load(path, embeddings=problem.embeddings)
    m = Nudge("M").fit(problem.embeddings, problem.train, problem.val)
    m.save(path)
    _edit_saved(path, moved=m.moved_[:-1])
    with pytest.raises(ValueError, match=r"field 'moved' does not list the documents this gamma moves"):
        Nudge.load(path)
    m.save(path)
    _edit_saved(path, lambda meta: meta.update(gamma=1e300))
    with pytest.raises(ValueError, match=r"field 'gamma' is too large for float32"):
        Nudge.load(path)


def test_choose_method_takes_the_higher_validation_score_and_n_on_a_tie():
    from types import SimpleNamespace

    from nudge.estimator import choose_method

    def models(m, n):
        return {"M": SimpleNamespace(val_score_=m), "N": SimpleNamespace(val_score_=n)}

    assert choose_method(models(0.7, 0.6)) == "M"
    assert choose_method(models(0.6, 0.7)) == "N"
    assert choose_method(models(0.7, 0.7)) == "N"  # max(models, key=...) would give "M" here
    with pytest.raises(ValueError, match="keys 'M' and 'N'"):
        choose_method({"M": models(1, 1)["M"]})
    with pytest.raises(ValueError, match=r"models\['M'\] has no validation score"):
        choose_method(models(None, 0.5))
