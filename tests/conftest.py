"""Shared test helpers: brute-force reference metrics and the SciFact loader."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parents[1]

# Property tests draw new examples on every run on a laptop; in CI (CI=true) they draw the same
# examples every time, so that a red run is a reproducible failure, not the luck of the draw.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def _scifact_folder() -> Path:
    """$NUDGE_SCIFACT_DIR, else ../shared/data/scifact beside the repository, else the
    workplace's /work/shared/data/scifact (a clone elsewhere, e.g. a CI check in /tmp)."""
    if os.environ.get("NUDGE_SCIFACT_DIR"):
        return Path(os.environ["NUDGE_SCIFACT_DIR"])
    candidates = [REPO.parent / "shared" / "data" / "scifact", Path("/work/shared/data/scifact")]
    return next((c for c in candidates if (c / "qrels" / "test.tsv").is_file()), candidates[0])


SCIFACT = _scifact_folder()


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_score(new_embeddings: np.ndarray, queries: np.ndarray, answers, k: int = 1, tol: float = 1e-7) -> float:
    """The validation metric by scoring every document: a pair counts while fewer than ``k``
    documents score more than ``tol`` above it; a query's hits, capped at min(|A|, k), are divided by it."""
    s = queries.astype(np.float64) @ new_embeddings.astype(np.float64).T
    total = 0.0
    for i, ans in enumerate(answers):
        hits = sum(int(np.count_nonzero(s[i] > s[i, a] + tol) < k) for a in ans)
        total += min(hits, len(ans), k) / min(len(ans), k)
    return total / len(answers)


@pytest.fixture(scope="session")
def scifact():
    """The SciFact folder (../shared/data/scifact); skips where it is absent."""
    if not (SCIFACT / "qrels" / "test.tsv").is_file():
        if os.environ.get("NUDGE_REQUIRE_SCIFACT") == "1":
            pytest.fail(f"NUDGE_REQUIRE_SCIFACT=1 but SciFact was not found at {SCIFACT}")
        pytest.skip(f"SciFact data not found at {SCIFACT} (it ships with the workplace's shared/ folder)")
    return SCIFACT
