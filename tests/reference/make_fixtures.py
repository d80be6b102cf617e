"""Generate reference fixtures from the published ``nudge-ft`` package (PyPI).

What this is
------------
This script runs the *published* NUDGE implementation (``nudge-ft`` 0.1.2,
``from nudge import NUDGEM, NUDGEN``) on a set of small, seeded, structured
synthetic problems and stores inputs + outputs as ``.npz`` files, one per case.
Our own numpy re-implementation is tested against these files; the tests only
need numpy to read them (no torch, no nudge-ft).

Why it needs its own environment
--------------------------------
``nudge-ft`` installs a top-level package called ``nudge``, which clashes with
this repository's own ``nudge/`` package. The script therefore MUST run in a
separate virtualenv and must NOT be run with the repository root on
``sys.path`` (do not set PYTHONPATH to the repo, do not ``python -m`` it from
the repo root). Running the file as a script only puts its own directory
(``tests/reference``) on ``sys.path``, which is harmless; the script also
drops any ``sys.path`` entry pointing at the repo root and checks that the
imported ``nudge`` really is the installed nudge-ft.

How to run (from the repository root)
-------------------------------------
torch must be pinned to 2.13.0 (on the build machine that is the local CPU
wheel; any other version pulls a multi-GB CUDA build). Install torch first so
nudge-ft's unpinned ``torch`` requirement is already satisfied::

    python3 -m venv /tmp/nudgeft-venv
    /tmp/nudgeft-venv/bin/pip install torch==2.13.0
    /tmp/nudgeft-venv/bin/pip install numpy nudge-ft==0.1.2
    /tmp/nudgeft-venv/bin/python tests/reference/make_fixtures.py --out tests/reference/fixtures

Fixture format (``<case_name>.npz``, written with ``np.savez_compressed``)
-------------------------------------------------------------------------
``embeddings`` (N, d)          document embeddings given to the reference
``train_q`` (nt, d)            training query embeddings
``train_ans_flat`` int64       answers of all training queries, concatenated
``train_ans_offsets`` int64    length nt+1; answers of query i are
                               ``train_ans_flat[off[i]:off[i+1]]`` (CSR style)
``val_q``, ``val_ans_flat``, ``val_ans_offsets``   same for validation
``nontrain`` (n2, d)           only if the case passes ``nontrain_embeddings``
``output`` (N, d)              array returned by ``finetune_embeddings``
``gamma`` 0-d float64          gamma used for the returned output (see below)
``meta`` 0-d unicode str       JSON: method ("M"/"N"), val_k (int or null),
                               gamma_arg (float or null), val_batch_size,
                               description, versions, plus seed, dtype, stats
Optional extra arrays:
``gamma_grid``, ``val_acc_grid`` (NUDGE-N, grid search only): each gamma of the
    reference's grid [0.02*x for x in range(25)] and the validation accuracy
    the reference computes for it (recomputed here exactly the way the
    reference does, in float32 like the reference; the script checks that
    its first arg-max equals the gamma the reference selected).
``val_acc_exact_grid``, ``gamma_exact_argmax_set`` (same cases): the same
    accuracies in exact rational arithmetic, and every grid gamma attaining
    the exact maximum. With val_k > 1 the reference's float32 sum can break
    an exact tie towards a LATER gamma (happens in ``n_valk3``: 0.14 and 0.16
    tie exactly at 337/480, float32 rounding selects 0.16). ``meta`` key
    ``float32_tie_break`` is true when the selected gamma is not the first
    exact arg-max.
``interval_lows``, ``interval_highs`` (NUDGE-M, gamma search only): the
    feasible gamma intervals [low, high] of the validation (query, answer)
    pairs that the reference passes to ``_get_point_of_most_intersection``
    (infeasible pairs already dropped, in the reference's order).

Every answer list is non-empty and has no duplicate indices. All arrays of a
case share one float dtype (float32, except the ``*_float64`` cases).

How gamma is captured (the reference does not return it)
--------------------------------------------------------
NUDGE-M: the instance's ``_get_point_of_most_intersection`` is wrapped and its
return value recorded; if ``gamma=`` is passed explicitly, that value is used.
NUDGE-N: the instance's ``_sol_maxm`` is wrapped; the gamma of its LAST call
(the final call with the selected best gamma) is recorded.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import sys
import tempfile
import warnings
from fractions import Fraction

# --- keep our repo's own ``nudge/`` package off sys.path ---------------------
_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO_ROOT = os.path.dirname(os.path.dirname(_HERE))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != _REPO_ROOT]

import importlib.metadata as importlib_metadata  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import nudge as _nudge_pkg  # noqa: E402

_NUDGE_FILE = os.path.abspath(getattr(_nudge_pkg, "__file__", None) or str(list(_nudge_pkg.__path__)))
if not hasattr(_nudge_pkg, "NUDGEM") or _NUDGE_FILE.startswith(_REPO_ROOT + os.sep):
    raise SystemExit(
        f"imported 'nudge' from {_NUDGE_FILE}, which is not nudge-ft "
        "(probably this repo's own package). Run this script in the nudge-ft "
        "virtualenv, without the repo root on sys.path/PYTHONPATH (see the "
        "module docstring)."
    )

from nudge.nudge import compute_topk_sims  # noqa: E402

from nudge import NUDGEM, NUDGEN  # noqa: E402

DEVICE = torch.device("cpu")

VERSIONS = {
    "nudge-ft": importlib_metadata.version("nudge-ft"),
    "torch": torch.__version__,
    "numpy": np.__version__,
    "python": sys.version.split()[0],
}

N_GRID = [0.02 * x for x in range(25)]  # NUDGE-N's default grid (reference)


# =============================================================================
# Synthetic, structured data
# =============================================================================


def _unit(x):
    x = np.asarray(x, dtype=np.float64)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def _pick_k(rng, probs):
    """Number of answers (1, 2, 3, ...) drawn with the given probabilities."""
    probs = np.asarray(probs, dtype=np.float64)
    return int(rng.choice(len(probs), p=probs / probs.sum())) + 1


def _secondary_answers(rng, first, k, pool, unit_docs, labels):
    """k-1 extra answers for a query whose first answer is ``first``.

    Taken among ``pool`` from the same cluster, preferring near neighbours
    (random among the 5 nearest); falls back to the nearest docs of the whole
    pool. Never returns duplicates or ``first``.
    """
    chosen = [first]
    pool = np.asarray(sorted(set(int(i) for i in pool) - {first}), dtype=np.int64)
    if k <= 1 or len(pool) == 0:
        return chosen
    same = pool[labels[pool] == labels[first]]
    for cand_set in (same, pool):
        if len(chosen) >= k:
            break
        cand_set = np.asarray([c for c in cand_set if c not in chosen], dtype=np.int64)
        if len(cand_set) == 0:
            continue
        sims = unit_docs[cand_set] @ unit_docs[first]
        order = cand_set[np.argsort(-sims)][:5]
        rng.shuffle(order)
        for c in order:
            if len(chosen) >= k:
                break
            chosen.append(int(c))
    return chosen


def _query_from(rng, unit_docs, answers, noise, d, sign=None):
    """Noisy, random convex-ish combination of the given unit vectors (rows of
    ``unit_docs``: documents themselves or their query prototypes)."""
    w = rng.uniform(0.5, 1.0, size=len(answers))
    base = (w[:, None] * unit_docs[answers]).sum(0)
    if sign is not None:
        base = sign * base
    q = _unit(base) + noise * rng.standard_normal(d) / math.sqrt(d)
    return _unit(q)


def make_dataset(spec):
    """Build one synthetic case from a spec dict. Returns a dict of inputs.

    Structure:
    * documents scattered around ``n_clusters`` random unit centres;
    * a random ``untrained_frac`` of documents never gets a training query;
    * ``n_popular`` documents are ``popular_weight`` times more likely to be a
      training query's (first) answer -> some documents have many queries;
    * queries = noisy combinations of their answer documents; extra answers
      come from the same cluster (near neighbours), 1-3 answers per query;
    * ``val_untrained_frac`` of validation queries have their first answer
      among documents with no training query;
    * optional: unnormalised doc norms, ``nontrain`` extra docs (never answers),
      "negated" docs whose training queries are ~ -doc (doc . G < 0), and
      "distractor" validation (answers far from their queries).
    """
    rng = np.random.default_rng(spec["seed"])
    N, d, nt, nv = spec["N"], spec["d"], spec["nt"], spec["nv"]
    n_clusters = spec.get("n_clusters", 5)
    spread = spec.get("spread", 0.6)
    q_noise = spec.get("q_noise", 0.35)
    train_k_probs = spec.get("train_k_probs", (0.7, 0.2, 0.1))
    val_k_probs = spec.get("val_k_probs", (0.7, 0.2, 0.1))

    centres = _unit(rng.standard_normal((n_clusters, d)))
    labels = rng.integers(0, n_clusters, size=N)
    unit_docs = _unit(centres[labels] + spread * rng.standard_normal((N, d)) / math.sqrt(d))
    # Per-document "query prototype": queries about doc j live around
    # normalize(e_j + q_offset * r_j) with a random direction r_j, i.e. the
    # pre-trained embedding is systematically off -> fine-tuning can help.
    q_offset = spec.get("q_offset", 0.9)
    protos = _unit(unit_docs + q_offset * _unit(rng.standard_normal((N, d))))
    norm_range = spec.get("doc_norm_range")
    if norm_range is not None:
        norms = rng.uniform(norm_range[0], norm_range[1], size=N)
        docs = unit_docs * norms[:, None]
    else:
        docs = unit_docs.copy()

    perm = rng.permutation(N)
    n_untrained = max(1, int(round(spec.get("untrained_frac", 0.25) * N)))
    untrained = np.sort(perm[:n_untrained])
    trained = np.sort(perm[n_untrained:])

    n_neg = spec.get("n_negated", 0)
    negated = np.sort(rng.choice(trained, size=n_neg, replace=False)) if n_neg else np.zeros(0, np.int64)
    neg_set = set(int(i) for i in negated)
    regular_trained = np.asarray([i for i in trained if int(i) not in neg_set], dtype=np.int64)

    weights = np.ones(len(regular_trained))
    n_pop = min(spec.get("n_popular", 3), len(regular_trained))
    pop_idx = rng.choice(len(regular_trained), size=n_pop, replace=False)
    weights[pop_idx] = spec.get("popular_weight", 12.0)
    weights /= weights.sum()

    # ---- training queries ----
    train_q, train_ans = [], []
    # each negated doc gets 1-2 single-answer queries pointing away from it
    for doc in negated:
        for _ in range(int(rng.integers(1, 3))):
            if len(train_q) >= nt:
                break
            train_q.append(_query_from(rng, unit_docs, [int(doc)], 0.3, d, sign=-1.0))
            train_ans.append([int(doc)])
    while len(train_q) < nt:
        first = int(rng.choice(regular_trained, p=weights))
        k = _pick_k(rng, train_k_probs)
        ans = _secondary_answers(rng, first, k, regular_trained, unit_docs, labels)
        train_q.append(_query_from(rng, protos, ans, q_noise, d))
        train_ans.append(ans)
    order = rng.permutation(len(train_q))  # interleave negated queries
    train_q = [train_q[i] for i in order]
    train_ans = [train_ans[i] for i in order]

    has_train = np.zeros(N, bool)
    for a in train_ans:
        has_train[a] = True
    no_train_docs = np.flatnonzero(~has_train)

    # ---- validation queries ----
    val_q, val_ans = [], []
    if spec.get("val_distractor", False):
        # answers and queries both among docs without training queries; the
        # query is a noisy copy of a DIFFERENT such doc (the distractor), and
        # the answer is a such doc far from it (low cosine).
        pool = no_train_docs
        assert len(pool) >= 4, "need docs without training queries"
        for _ in range(nv):
            distractor = int(rng.choice(pool))
            q = _query_from(rng, unit_docs, [distractor], 0.15, d)
            others = pool[pool != distractor]
            sims = unit_docs[others] @ q
            far = others[np.argsort(sims)][: max(1, len(others) // 3)]
            k = _pick_k(rng, val_k_probs)
            ans = [int(x) for x in rng.choice(far, size=min(k, len(far)), replace=False)]
            val_q.append(q)
            val_ans.append(ans)
    else:
        vu = spec.get("val_untrained_frac", 0.3)
        all_docs = np.arange(N)
        for _ in range(nv):
            if rng.uniform() < vu and len(no_train_docs):
                first = int(rng.choice(no_train_docs))
            else:
                first = int(rng.choice(np.flatnonzero(has_train)))
            k = _pick_k(rng, val_k_probs)
            ans = _secondary_answers(rng, first, k, all_docs, unit_docs, labels)
            val_q.append(_query_from(rng, protos, ans, q_noise, d))
            val_ans.append(ans)

    out = {
        "embeddings": docs,
        "train_q": np.asarray(train_q),
        "train_ans": train_ans,
        "val_q": np.asarray(val_q),
        "val_ans": val_ans,
        "negated": negated,
    }

    n2 = spec.get("n_nontrain", 0)
    if n2:
        lab2 = rng.integers(0, n_clusters, size=n2)
        nt_docs = _unit(centres[lab2] + spread * rng.standard_normal((n2, d)) / math.sqrt(d))
        nr = spec.get("nontrain_norm_range", (0.5, 2.0))
        nt_docs = nt_docs * rng.uniform(nr[0], nr[1], size=n2)[:, None]
        out["nontrain"] = nt_docs

    dtype = np.dtype(spec.get("dtype", "float32"))
    for key in ("embeddings", "train_q", "val_q", "nontrain"):
        if key in out:
            out[key] = np.ascontiguousarray(out[key], dtype=dtype)
    return out


def to_csr(lists):
    offsets = np.zeros(len(lists) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(a) for a in lists])
    flat = np.asarray([x for a in lists for x in a], dtype=np.int64)
    return flat, offsets


def check_answers(lists, n_docs, what):
    assert len(lists) > 0, what
    for i, a in enumerate(lists):
        assert len(a) > 0, f"{what}[{i}] empty"
        assert len(set(a)) == len(a), f"{what}[{i}] has duplicates: {a}"
        assert all(0 <= x < n_docs for x in a), f"{what}[{i}] out of range"


# =============================================================================
# Running the reference with gamma capture
# =============================================================================


def _n_val_acc(new_embs, qs_val, answer_val, nontrain_sims, val_k, val_batch_size, n_docs):
    """Validation accuracy exactly as in NUDGEN.finetune_embeddings."""
    label_counts = torch.clamp(answer_val.sum(dim=-1), max=val_k)
    preds = []
    for b in range(int(math.ceil(n_docs / val_batch_size))):
        preds.append(torch.matmul(qs_val, torch.t(new_embs[b * val_batch_size : (b + 1) * val_batch_size])))
    preds = torch.cat(preds, dim=1)
    if nontrain_sims is not None:
        preds = torch.cat([preds, nontrain_sims], dim=1)
    out_val = torch.topk(preds, val_k).indices.view(-1, val_k)
    truths = torch.gather(answer_val, 1, out_val).sum(dim=-1)
    acc = (truths / label_counts).sum() / out_val.shape[0]
    # the same accuracy in exact rational arithmetic (no float32 rounding)
    exact = sum(Fraction(int(t), int(c)) for t, c in zip(truths.tolist(), label_counts.tolist()))
    return acc, float(exact / out_val.shape[0])


def run_reference(spec, data):
    method = spec["method"]
    vbs = spec.get("val_batch_size", 256)
    gamma_arg = spec.get("gamma")
    train_set = {"q_embs": data["train_q"], "q_ans_indx": data["train_ans"]}
    val_set = {"q_embs": data["val_q"], "q_ans_indx": data["val_ans"]}
    nontrain = data.get("nontrain")
    extra = {}
    log = io.StringIO()

    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(log):
        warnings.simplefilter("always")
        if method == "M":
            model = NUDGEM(device=DEVICE)
            rec = {}
            orig_point = model._get_point_of_most_intersection
            orig_all = model._get_all_I_i

            def point_wrapper(mins, maxs):
                g = orig_point(mins, maxs)
                rec.setdefault("gammas", []).append(g)
                return g

            def all_wrapper(*a, **kw):
                lows, highs = orig_all(*a, **kw)
                rec["lows"], rec["highs"] = np.array(lows), np.array(highs)
                return lows, highs

            model._get_point_of_most_intersection = point_wrapper
            model._get_all_I_i = all_wrapper
            kwargs = {"nontrain_embeddings": nontrain, "val_batch_size": vbs}
            if gamma_arg is not None:
                kwargs["gamma"] = gamma_arg
            output = model.finetune_embeddings(data["embeddings"], train_set, val_set, **kwargs)
            if gamma_arg is None:
                assert len(rec["gammas"]) == 1
                gamma = float(rec["gammas"][0])
                extra["interval_lows"] = rec["lows"].astype(np.float64)
                extra["interval_highs"] = rec["highs"].astype(np.float64)
            else:
                assert "gammas" not in rec
                gamma = float(gamma_arg)
        else:
            val_k = spec.get("val_k", 1)
            model = NUDGEN(device=DEVICE)
            calls = []
            orig_sol = model._sol_maxm

            def sol_wrapper(g, *a, **kw):
                res = orig_sol(g, *a, **kw)
                calls.append((g, res.clone()))
                return res

            model._sol_maxm = sol_wrapper
            kwargs = {"nontrain_embeddings": nontrain, "val_batch_size": vbs, "val_k": val_k}
            if gamma_arg is not None:
                kwargs["gamma"] = gamma_arg
            output = model.finetune_embeddings(data["embeddings"], train_set, val_set, **kwargs)
            gamma = float(calls[-1][0])
            grid = [gamma_arg] if gamma_arg is not None else N_GRID
            assert [c[0] for c in calls[:-1]] == grid, "unexpected _sol_maxm call sequence"
            if gamma_arg is None:
                # recompute the per-gamma validation accuracy like the reference
                n_docs = data["embeddings"].shape[0]
                _, _, qs_val, answer_val = model._get_train_val_sets(train_set, val_set, n_docs)
                nts = None
                if nontrain is not None:
                    nts = compute_topk_sims(qs_val, nontrain, val_k, "cos", vbs).reshape((-1, val_k))
                    answer_val = torch.cat([answer_val, torch.zeros_like(answer_val[:, :val_k])], dim=1)
                res = [_n_val_acc(e, qs_val, answer_val, nts, val_k, vbs, n_docs) for _, e in calls[:-1]]
                accs = [r[0] for r in res]
                best, max_acc = 0, -1
                for g, a in zip(grid, accs):
                    if a > max_acc:
                        max_acc, best = a, g
                assert best == gamma, f"recomputed best gamma {best} != captured {gamma}"
                exact = np.asarray([r[1] for r in res], dtype=np.float64)
                extra["gamma_grid"] = np.asarray(grid, dtype=np.float64)
                extra["val_acc_grid"] = np.asarray([float(a) for a in accs], dtype=np.float64)
                extra["val_acc_exact_grid"] = exact
                # gammas whose exact accuracy equals the exact maximum (ties)
                extra["gamma_exact_argmax_set"] = np.asarray(
                    [g for g, e in zip(grid, exact) if np.isclose(e, exact.max(), rtol=0, atol=1e-12)], dtype=np.float64
                )

    warn_msgs = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    return np.asarray(output), gamma, extra, warn_msgs


# =============================================================================
# Cases
# =============================================================================

CASES = [
    # --- 1. NUDGE-M, default gamma search, float32 -------------------------
    dict(
        name="m_default_s11",
        method="M",
        seed=11,
        N=50,
        d=8,
        nt=20,
        nv=10,
        n_clusters=3,
        description="NUDGE-M default gamma search; tiny (N=50, d=8), few train queries so many docs have none.",
    ),
    dict(
        name="m_default_s12",
        method="M",
        seed=12,
        N=250,
        d=24,
        nt=150,
        nv=60,
        n_clusters=6,
        description="NUDGE-M default gamma search; medium size, 6 clusters, popular docs.",
    ),
    dict(
        name="m_default_s13",
        method="M",
        seed=13,
        N=600,
        d=16,
        nt=300,
        nv=120,
        n_clusters=10,
        description="NUDGE-M default gamma search; largest N (600), 300 train / 120 val queries.",
    ),
    # --- 2. NUDGE-N, default grid search, float32 --------------------------
    dict(
        name="n_default_s21",
        method="N",
        seed=21,
        N=40,
        d=8,
        nt=10,
        nv=5,
        n_clusters=3,
        description="NUDGE-N default grid search; minimal sizes (N=40, nt=10, nv=5).",
    ),
    dict(
        name="n_default_s22",
        method="N",
        seed=22,
        N=300,
        d=32,
        nt=180,
        nv=80,
        n_clusters=7,
        description="NUDGE-N default grid search; medium size (N=300, d=32).",
    ),
    dict(
        name="n_default_s23",
        method="N",
        seed=23,
        N=200,
        d=48,
        nt=200,
        nv=100,
        n_clusters=5,
        q_noise=0.5,
        description="NUDGE-N default grid search; largest d (48), noisier queries.",
    ),
    # --- 3. NUDGE-N val_k=3 --------------------------------------------------
    dict(
        name="n_valk3",
        method="N",
        seed=31,
        N=200,
        d=24,
        nt=150,
        nv=80,
        n_clusters=5,
        val_k=3,
        train_k_probs=(0.4, 0.3, 0.3),
        val_k_probs=(0.2, 0.4, 0.4),
        description="NUDGE-N grid search with val_k=3; most val queries have 2-3 answers.",
    ),
    # --- 4. unnormalised document embeddings --------------------------------
    dict(
        name="m_unnormalised",
        method="M",
        seed=41,
        N=150,
        d=20,
        nt=80,
        nv=40,
        doc_norm_range=(0.5, 3.0),
        description="NUDGE-M default search; document rows have norms in [0.5, 3] (queries unit norm).",
    ),
    dict(
        name="n_unnormalised",
        method="N",
        seed=42,
        N=150,
        d=20,
        nt=80,
        nv=40,
        doc_norm_range=(0.5, 3.0),
        description="NUDGE-N default grid; document rows have norms in [0.5, 3] (queries unit norm).",
    ),
    # --- 5. nontrain_embeddings ---------------------------------------------
    dict(
        name="m_nontrain",
        method="M",
        seed=51,
        N=120,
        d=16,
        nt=70,
        nv=40,
        n_nontrain=60,
        description="NUDGE-M default search with nontrain_embeddings (60 extra docs, norms in [0.5, 2], never answers).",
    ),
    dict(
        name="n_nontrain",
        method="N",
        seed=52,
        N=120,
        d=16,
        nt=70,
        nv=40,
        n_nontrain=80,
        description="NUDGE-N default grid with nontrain_embeddings (80 extra docs, norms in [0.5, 2], never answers).",
    ),
    dict(
        name="n_nontrain_valk2_batch7",
        method="N",
        seed=53,
        N=90,
        d=12,
        nt=50,
        nv=30,
        n_nontrain=40,
        val_k=2,
        val_batch_size=7,
        val_k_probs=(0.4, 0.4, 0.2),
        description="NUDGE-N default grid, nontrain_embeddings (40) + val_k=2 + val_batch_size=7 combined.",
    ),
    dict(
        name="m_nontrain_batch7",
        method="M",
        seed=54,
        N=90,
        d=12,
        nt=50,
        nv=30,
        n_nontrain=40,
        val_batch_size=7,
        description="NUDGE-M default search, nontrain_embeddings (40) + val_batch_size=7 combined.",
    ),
    # --- 6. small val_batch_size --------------------------------------------
    dict(
        name="m_val_batch7",
        method="M",
        seed=61,
        N=140,
        d=12,
        nt=80,
        nv=45,
        val_batch_size=7,
        description="NUDGE-M default search with val_batch_size=7 (45 val queries -> 7 batches).",
    ),
    dict(
        name="n_val_batch7",
        method="N",
        seed=62,
        N=140,
        d=12,
        nt=80,
        nv=45,
        val_batch_size=7,
        description="NUDGE-N default grid with val_batch_size=7 (reference batches over documents).",
    ),
    # --- 7. explicit gamma ----------------------------------------------------
    dict(
        name="m_gamma_0p3",
        method="M",
        seed=71,
        N=100,
        d=16,
        nt=60,
        nv=30,
        gamma=0.3,
        description="NUDGE-M with explicit gamma=0.3 (no search).",
    ),
    dict(
        name="n_gamma_0p3",
        method="N",
        seed=72,
        N=100,
        d=16,
        nt=60,
        nv=30,
        gamma=0.3,
        description="NUDGE-N with explicit gamma=0.3 (single-value 'grid').",
    ),
    dict(
        name="n_gamma_1p0",
        method="N",
        seed=73,
        N=100,
        d=16,
        nt=60,
        nv=30,
        gamma=1.0,
        description="NUDGE-N with explicit gamma=1.0 (every doc with training queries hits the cap e.normalize(G) >= 0.5 and becomes normalize(G)).",
    ),
    # --- 8. NUDGE-N with doc . G < 0 ----------------------------------------
    dict(
        name="n_negative_vtc",
        method="N",
        seed=81,
        N=120,
        d=16,
        nt=70,
        nv=35,
        n_negated=8,
        description="NUDGE-N default grid; 8 docs whose only training queries are ~ -doc, so doc . G < 0 (left unchanged).",
    ),
    # --- 9. NUDGE-M with no feasible validation pair -> gamma 0 -------------
    dict(
        name="m_no_feasible_gamma0",
        method="M",
        seed=91,
        N=80,
        d=12,
        nt=40,
        nv=20,
        untrained_frac=0.4,
        val_distractor=True,
        description="NUDGE-M default search where every val answer is a doc without training queries and each "
        "val query is a copy of another such doc (higher score, equal G=0) -> no feasible pair, gamma 0.",
    ),
    # --- 10. float64 ----------------------------------------------------------
    dict(
        name="m_float64",
        method="M",
        seed=101,
        N=100,
        d=16,
        nt=50,
        nv=25,
        dtype="float64",
        description="NUDGE-M default search, all arrays float64.",
    ),
    dict(
        name="n_float64",
        method="N",
        seed=102,
        N=100,
        d=16,
        nt=50,
        nv=25,
        dtype="float64",
        description="NUDGE-N default grid, all arrays float64.",
    ),
    # --- 11. gamma=2.5 deviation ---------------------------------------------
    dict(
        name="n_gamma_2p5_deviation",
        method="N",
        seed=111,
        N=80,
        d=12,
        nt=40,
        nv=20,
        gamma=2.5,
        n_negated=3,
        description="NUDGE-N explicit gamma=2.5 (>2): reference replaces every doc with e.normalize(G) >= -0.25 "
        "by normalize(G), so docs without training queries become ZERO vectors (known deviation).",
    ),
]


def data_stats(data):
    N = data["embeddings"].shape[0]
    per_doc = np.zeros(N, np.int64)
    for a in data["train_ans"]:
        per_doc[a] += 1
    no_train = per_doc == 0
    val_first_no_train = sum(bool(no_train[a[0]]) for a in data["val_ans"])
    val_any_no_train = sum(any(no_train[x] for x in a) for a in data["val_ans"])
    G = np.zeros_like(data["embeddings"], dtype=np.float64)
    for q, a in zip(data["train_q"], data["train_ans"]):
        G[a] += q
    e_unit = data["embeddings"] / np.linalg.norm(data["embeddings"], axis=1, keepdims=True)
    vtc = (G * e_unit).sum(1)
    return {
        "n_docs_without_train_query": int(no_train.sum()),
        "max_train_queries_per_doc": int(per_doc.max()),
        "n_docs_with_5plus_train_queries": int((per_doc >= 5).sum()),
        "n_train_queries_multi_answer": int(sum(len(a) > 1 for a in data["train_ans"])),
        "n_val_queries_multi_answer": int(sum(len(a) > 1 for a in data["val_ans"])),
        "n_val_queries_with_an_answer_without_train_query": int(val_any_no_train),
        "n_val_queries_first_answer_without_train_query": int(val_first_no_train),
        "n_docs_doc_dot_G_negative": int(((vtc < 0) & ~no_train).sum()),
    }


def save_atomic(path, arrays):
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp_", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def build_case(spec):
    data = make_dataset(spec)
    N = data["embeddings"].shape[0]
    check_answers(data["train_ans"], N, "train_ans")
    check_answers(data["val_ans"], N, "val_ans")
    output, gamma, extra, warn_msgs = run_reference(spec, data)

    assert output.shape == data["embeddings"].shape, (output.shape, data["embeddings"].shape)
    assert output.dtype == data["embeddings"].dtype, output.dtype
    assert np.all(np.isfinite(output)), f"{spec['name']}: non-finite output"
    assert math.isfinite(gamma)

    tr_flat, tr_off = to_csr(data["train_ans"])
    va_flat, va_off = to_csr(data["val_ans"])
    stats = data_stats(data)
    stats["n_zero_output_rows"] = int((np.linalg.norm(output, axis=1) == 0).sum())
    meta = {
        "name": spec["name"],
        "method": spec["method"],
        "val_k": spec.get("val_k", 1) if spec["method"] == "N" else None,
        "gamma_arg": None if spec.get("gamma") is None else float(spec["gamma"]),
        "val_batch_size": spec.get("val_batch_size", 256),
        "description": spec["description"],
        "versions": VERSIONS,
        "seed": spec["seed"],
        "dtype": str(data["embeddings"].dtype),
        "has_nontrain": "nontrain" in data,
        "stats": stats,
        "reference_warnings": warn_msgs,
        "extra_arrays": sorted(extra),
    }
    if "val_acc_exact_grid" in extra:
        meta["float32_tie_break"] = bool(float(extra["gamma_exact_argmax_set"][0]) != gamma)
    arrays = {
        "embeddings": data["embeddings"],
        "train_q": data["train_q"],
        "train_ans_flat": tr_flat,
        "train_ans_offsets": tr_off,
        "val_q": data["val_q"],
        "val_ans_flat": va_flat,
        "val_ans_offsets": va_off,
        "output": output,
        "gamma": np.asarray(gamma, dtype=np.float64),
        "meta": np.asarray(json.dumps(meta, sort_keys=True)),
    }
    if "nontrain" in data:
        arrays["nontrain"] = data["nontrain"]
    arrays.update(extra)
    return arrays, meta


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output folder for <case>.npz files")
    ap.add_argument("--only", nargs="*", help="only build these case names")
    args = ap.parse_args(argv)

    torch.manual_seed(0)
    np.random.seed(0)
    torch.set_num_threads(1)  # deterministic, order-stable CPU reductions

    os.makedirs(args.out, exist_ok=True)
    names = [c["name"] for c in CASES]
    assert len(set(names)) == len(names)
    print(f"nudge-ft from {_NUDGE_FILE}; versions {VERSIONS}")
    for spec in CASES:
        if args.only and spec["name"] not in args.only:
            continue
        arrays, meta = build_case(spec)
        save_atomic(os.path.join(args.out, spec["name"] + ".npz"), arrays)
        N, d = arrays["embeddings"].shape
        line = (
            f"{spec['name']:<26} method={meta['method']} N={N:<4d} d={d:<3d} "
            f"nt={arrays['train_q'].shape[0]:<4d} nv={arrays['val_q'].shape[0]:<4d} "
            f"dtype={meta['dtype']:<8} gamma={float(arrays['gamma']):.9g}"
        )
        if meta["reference_warnings"]:
            line += f"  warnings={meta['reference_warnings']}"
        print(line)
    stale = sorted(set(f[:-4] for f in os.listdir(args.out) if f.endswith(".npz")) - set(names))
    if stale:
        print(f"WARNING: files in {args.out} not produced by this script: {stale}")


if __name__ == "__main__":
    main()
