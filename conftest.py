"""Root pytest hooks for the notebooks (tests/conftest.py serves the tests folder).

Notebook 09 compares methods on the bundled data AND on SciFact, a third-party benchmark that is
not in this repository (it lies in the workplace's shared/ folder, or $NUDGE_SCIFACT_DIR). Its
committed outputs include SciFact's tables, so on a machine without SciFact nbval would report
every SciFact table as changed: there it is skipped, saying why. NUDGE_REQUIRE_SCIFACT=1 (set by
.ci/run) turns the skip into a failure.
"""

from __future__ import annotations

import os

import pytest

NEEDS_SCIFACT = {"09_when_to_use_nudge.ipynb"}


def pytest_collection_modifyitems(config, items):
    from nudge.teaching.learning_curve import scifact_folder

    if scifact_folder() is not None:
        return
    reason = (
        "SciFact not found (set NUDGE_SCIFACT_DIR to its BEIR folder): notebook 09's committed SciFact "
        "tables cannot be compared here"
    )
    for item in items:
        if item.path.name in NEEDS_SCIFACT and item.path.suffix == ".ipynb":
            if os.environ.get("NUDGE_REQUIRE_SCIFACT") == "1":
                raise pytest.UsageError(f"NUDGE_REQUIRE_SCIFACT=1 but {reason}")
            item.add_marker(pytest.mark.skip(reason=reason))
