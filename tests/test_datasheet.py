"""The figures in data/README.md are the ones the code computes."""

from __future__ import annotations

import re

import pytest
from conftest import REPO

from nudge.teaching.demo import run


@pytest.fixture(scope="module")
def demo():
    return run()


def table_rows(text: str) -> dict[str, list[float]]:
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^\| (no fine-tuning|NUDGE-M|NUDGE-N) \|((?: [0-9.]+ \|)+)$", line)
        if m:
            rows[m.group(1)] = [float(x) for x in m.group(2).split("|") if x.strip()]
    return rows


def test_difficulty_table_matches_the_demo(demo):
    rows = table_rows((REPO / "data" / "README.md").read_text())
    assert set(rows) == {"no fine-tuning", "NUDGE-M", "NUDGE-N"}
    for name, values in rows.items():
        computed = [demo["results"][name][c] for c in ("hit@1", "mrr@10", "ndcg@10", "recall@10")]
        assert values == [round(v, 3) for v in computed], name


def test_the_data_teaches(demo):
    """Neither solved nor hopeless for the base model, and NUDGE helps on the hold-out test."""
    base = demo["results"]["no fine-tuning"]
    assert 0.2 < base["hit@1"] < 0.8
    for name in ("NUDGE-M", "NUDGE-N"):
        assert demo["results"][name]["ndcg@10"] > base["ndcg@10"]


def test_fixed_and_broken_counts_quoted_in_the_datasheet(demo):
    text = (REPO / "data" / "README.md").read_text()
    info = demo["info"]["NUDGE-M"]
    assert f"NUDGE-M\nfixes {info['fixed@1']} test questions at rank 1 and breaks {info['broken@1']}" in text
