"""The SciFact protocol from the command line on the stored vectors (nothing embedded): BEIR's train qrels split
80/20 into train and validation (seed 0), BEIR's test qrels as hold-out. Checks the CLI against the same split in
Python (benchmarks/reproduce_scifact.py's protocol) and the math note's figures, and every block of the README's
section "Your own vectors and test set" (tools/readme_tables.scifact_outputs recomputes them)."""

from __future__ import annotations

import importlib.util

import pytest
from conftest import REPO, SCIFACT

from nudge import Nudge
from nudge.evaluation import evaluate_embeddings
from tools.readme_tables import README, SCIFACT_MARKERS, scifact_block, scifact_outputs


def protocol():
    spec = importlib.util.spec_from_file_location("reproduce_scifact", REPO / "benchmarks" / "reproduce_scifact.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.protocol


def ndcg(table: str, row: str) -> float:
    line = next(line for line in table.splitlines() if line.startswith(row))
    return float(line.split()[-2])


@pytest.mark.slow
def test_cli_reproduces_the_scifact_protocol_and_the_readme(scifact):
    outputs = scifact_outputs(SCIFACT)
    text = README.read_text()
    for marker in SCIFACT_MARKERS:
        assert scifact_block(text, marker) == outputs[marker], f"README block {marker!r} is stale: run " \
            "python tools/readme_tables.py"  # fmt: skip
    corpus, test, sets = protocol()(SCIFACT)
    train, val = sets(0)
    base = evaluate_embeddings(corpus, test)["ndcg@10"]
    for method in ("M", "N"):
        table = outputs[f"cli-{method}"]
        assert ndcg(table, "no fine-tuning") == pytest.approx(base, abs=5e-4)
        assert round(base, 3) == 0.649  # the math note's figure: does not depend on the split
        model = Nudge(method).fit(corpus, train, val)  # the same split in Python
        after = evaluate_embeddings(model.transform(corpus), test)["ndcg@10"]
        assert ndcg(table, f"NUDGE-{method}") == pytest.approx(after, abs=5e-4)
        # the note's 0.778 / 0.818 are means over 40 splits; one split lies within their spread
        assert abs(after - {"M": 0.778, "N": 0.818}[method]) < 0.03
    script = outputs["script-output"].splitlines()
    assert [float(line.split()[-1]) for line in script] == [
        ndcg(outputs["cli-M"], "no fine-tuning"),
        ndcg(outputs["cli-M"], "NUDGE-M"),
        ndcg(outputs["cli-N"], "NUDGE-N"),
    ]
