"""The committed full fine-tuning results (benchmarks/results/finetune_minilm.json) are complete,
consistent with the current data and settings, and reproducible: the ``small`` setting is re-run
(needs the ``embed`` extra; tens of seconds on 2 cores) and must match the stored entry within
the script's stated tolerances (``METRIC_TOLERANCE`` per metric, ``LOSS_TOLERANCE`` relative on
the training loss), so the stored numbers cannot go stale unnoticed.
"""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import pytest
from conftest import REPO

from nudge.evaluation import split_by_known
from nudge.teaching.learning_curve import bundled_problem, finetune_entry, finetune_result

RESULTS = REPO / "benchmarks" / "results" / "finetune_minilm.json"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("finetune_minilm", REPO / "benchmarks" / "finetune_minilm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def stored():
    return json.loads(RESULTS.read_text(encoding="utf-8"))


def test_entries_are_complete_and_match_the_settings(script, stored):
    assert {"small", "bundled"} <= set(stored)
    for setting, entry in stored.items():
        assert setting in script.SETTINGS, f"unknown setting {setting!r} in the results file"
        cfg = script.SETTINGS[setting]
        assert {k: entry["settings"][k] for k in cfg} == cfg, f"{setting}: made with other settings; re-run the script"
        assert entry["how"].endswith(f"--setting {setting}") and entry["made"].endswith("UTC")
        assert entry["versions"]["torch"].startswith("2.13.0")
        assert entry["fit_seconds"] > 0 and entry["reembed_corpus_seconds"] > 0
        assert len(entry["epoch_loss"]) == cfg["epochs"]
        if cfg["max_pairs"] is not None:
            assert entry["settings"]["training_pairs"] == cfg["max_pairs"]
        for group, r in entry["test"].items():
            assert group in script.GROUPS
            for m in script.METRICS:
                scores = np.asarray(r["per_query"][m])
                assert scores.size == r["n"]
                assert abs(scores.mean() - r[m]) < 1e-5


def test_stored_questions_are_the_current_test_groups(stored):
    p = bundled_problem()
    known, never = split_by_known(p.test, p.train)
    for setting in ("small", "bundled"):
        test = stored[setting]["test"]
        assert (test["known"]["n"], test["never asked"]["n"]) == (len(known), len(never))
    assert stored["bundled"]["settings"]["training_pairs"] == p.train.n_pairs


def test_the_notebook_reads_the_committed_entries(stored):
    entry = finetune_entry("bundled", live=False)
    assert entry["live"] is False and entry["made"] == stored["bundled"]["made"]
    r = finetune_result(entry, "known")
    assert r["n"] == stored["bundled"]["test"]["known"]["n"]
    assert r["per_query"]["hit@1"].shape == (r["n"],)
    assert finetune_entry("no such setting", live=False) is None


@pytest.mark.slow
def test_small_setting_is_reproduced(script, stored):
    if importlib.util.find_spec("sentence_transformers") is None or importlib.util.find_spec("torch") is None:
        if os.environ.get("NUDGE_REQUIRE_EMBED"):
            pytest.fail("NUDGE_REQUIRE_EMBED is set but sentence-transformers / torch are not installed")
        pytest.skip('full fine-tuning needs the embed extra: pip install -e ".[embed]"')
    fresh = script.run("small")
    old = stored["small"]
    assert fresh["settings"] == old["settings"]
    np.testing.assert_allclose(fresh["epoch_loss"], old["epoch_loss"], rtol=script.LOSS_TOLERANCE)
    for group in script.GROUPS:
        for m in script.METRICS:
            assert abs(fresh["test"][group][m] - old["test"][group][m]) <= script.METRIC_TOLERANCE, (group, m)
