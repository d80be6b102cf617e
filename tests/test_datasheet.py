"""The figures in data/README.md are the ones the code computes: every table and every number."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import REPO

from nudge.production.datasets import load_llamaindex
from nudge.teaching.bundled import data_dir
from nudge.teaching.demo import METHODS, run
from tools.build_tessera import AREAS, NEVER_ASKED_FRACTION, NEVER_ASKED_SEED, never_asked_holdout, read_sources

README = REPO / "data" / "README.md"
TESSERA = data_dir() / "tessera"
GROUP_TITLES = {"known passages": "known", "never-asked passages": "never asked"}


@pytest.fixture(scope="module")
def demo():
    return run()


@pytest.fixture(scope="module")
def text():
    raw = README.read_text()
    return raw, " ".join(raw.split())  # the file, and its words on one line (prose wraps)


def result_tables(raw: str) -> dict[str, dict[str, list[str]]]:
    """``{group: {method: [cells]}}`` of the 'Measured difficulty' tables."""
    tables, group = {}, None
    for line in raw.splitlines():
        head = re.match(r"^\| (known passages|never-asked passages) \((\d+) test questions\) \|", line)
        if head:
            group = GROUP_TITLES[head.group(1)]
            tables[group] = {"n": [head.group(2)]}
            continue
        if group and line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            tables[group][cells[0]] = cells[1:]
        elif not line.startswith("|"):
            group = None
    return tables


def test_result_tables_match_the_demo(demo, text):
    tables = result_tables(text[0])
    assert set(tables) == {"known", "never asked"}
    for group, rows in tables.items():
        assert int(rows.pop("n")[0]) == demo["sizes"][group]
        assert list(rows) == list(METHODS)
        for name, cells in rows.items():
            computed = [demo["groups"][group][name][c] for c in ("hit@1", "mrr@10", "ndcg@10", "recall@10")]
            assert cells[:4] == [f"{v:.3f}" for v in computed], (group, name)
            expected = "" if name == "no fine-tuning" else str(demo["differences"][group][name]["hit@1"])
            assert cells[4] == expected, (group, name)


def test_the_data_teaches(demo):
    """Neither solved nor hopeless for the base model; NUDGE helps known passages and hurts never-asked ones."""
    known, never = demo["groups"]["known"], demo["groups"]["never asked"]
    assert 0.2 < known["no fine-tuning"]["hit@1"] < 0.8
    for name in ("NUDGE-M", "NUDGE-N"):
        assert known[name]["ndcg@10"] > known["no fine-tuning"]["ndcg@10"]
        assert never[name]["ndcg@10"] < never["no fine-tuning"]["ndcg@10"]
        assert demo["differences"]["never asked"][name]["hit@1"].high < 0


def test_numbers_quoted_in_the_prose(demo, text):
    words = text[1]
    known, never = demo["groups"]["known"], demo["groups"]["never asked"]
    info = demo["info"]["NUDGE-M"]
    n_never = demo["sizes"]["never asked"]
    base_tenths = ["", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    quotes = [
        f"answers {base_tenths[round(10 * known['no fine-tuning']['hit@1'])]} known questions in ten at rank 1",
        f"NUDGE-M fixes {info['fixed@1']} known test questions at rank 1 and breaks {info['broken@1']}.",
        f"NUDGE-M answers {round(never['NUDGE-M']['hit@1'] * n_never)} of {n_never} at rank 1 instead of "
        f"{round(never['no fine-tuning']['hit@1'] * n_never)}",
        f"{demo['sizes']['train']} train** and **{demo['sizes']['val']} validation** questions",
        f"**{demo['sizes']['known']} hold-out test** questions",
    ]
    for quote in quotes:
        assert quote in words, quote
    assert never["NUDGE-N"]["hit@1"] > never["NUDGE-M"]["hit@1"]  # "NUDGE-N ... loses less"
    assert not demo["differences"]["known"]["guide's formula"]["hit@1"].clear  # "its interval contains 0"
    assert demo["models"]["popularity control"].factor_ > 1  # the control does scale up


def _statistics():
    """Every figure of the 'Statistics' section and the never-asked section, computed from the files."""
    week1, _ = load_llamaindex(TESSERA / "tessera.json")
    never, _ = load_llamaindex(TESSERA / "tessera_never_asked.json")
    week2, _ = load_llamaindex(TESSERA / "tessera_week2.json")
    split = json.loads((TESSERA / "split.json").read_text())
    meta = json.loads((TESSERA / "metadata.json").read_text())
    held = split["test_never_asked"]
    held_passages = split["never_asked"]["passages"]
    labelled = week1.query_ids
    area = lambda kind, i: meta[kind][i]["area"]  # noqa: E731
    rows = {}
    for a in AREAS:
        answered = {d for q in labelled for d in week1.relevant[q] if area("documents", d) == a}
        rows[a] = [
            sum(area("documents", d) == a for d in week1.doc_ids),
            len(answered),
            sum(area("queries", q) == a for q in labelled),
            sum(area("documents", d) == a for d in week2.doc_ids if d not in week1.corpus),
            sum(area("queries", q) == a for q in week2.query_ids),
            sum(area("documents", d) == a for d in held_passages),
            sum(area("queries", q) == a for q in held),
        ]
    rows["total"] = [int(x) for x in np.sum(list(rows.values()), axis=0)]
    per_passage = {}
    for q in labelled:
        for d in week1.relevant[q]:
            per_passage[d] = per_passage.get(d, 0) + 1
    counts = np.array(list(per_passage.values()))
    multi = sum(len(week1.relevant[q]) > 1 for q in labelled)
    passage_words = [len(week1.corpus[d].split("\n", 1)[1].split()) for d in week1.doc_ids]
    question_words = [len(week1.queries[q].split()) for q in labelled]
    held_words = [len(never.queries[q].split()) for q in held]
    new_pages = set(week2.doc_ids) - set(week1.doc_ids)
    distractors = set(week1.doc_ids) - set(per_passage)
    answered2 = {d for r in week2.relevant.values() for d in r}
    docs, queries = read_sources()
    week2_written = [q for q in queries.values() if q["week"] == 2]
    eligible = [
        d for d in distractors if any(d in q["relevant"] for q in week2_written)
        and all(set(q["relevant"]) <= distractors for q in week2_written if d in q["relevant"])
    ]  # fmt: skip
    assert never_asked_holdout(docs, queries) == (held_passages, held)
    prose = [
        f"Week 1: {sum(len(week1.relevant[q]) for q in labelled):,} (question, passage) pairs; "
        f"{counts.min()}-{counts.max()} questions per answer passage (mean {counts.mean():.1f}); "
        f"{multi} questions ({multi / len(labelled):.0%}) have several relevant passages; passages have "
        f"{min(passage_words)}-{max(passage_words)} words (median {np.median(passage_words):.0f}), questions "
        f"{min(question_words)}-{max(question_words)} words (median {np.median(question_words):.0f}).",
        f"Week 2: {len(week2.query_ids)} questions, {sum(len(r) for r in week2.relevant.values())} pairs: the "
        f"{len(answered2 & new_pages)} new pages, {len(answered2 & distractors)} week-1 distractors (answered for "
        f"the first time) and {len(answered2 - new_pages - distractors)} week-1 answer passages.",
        f"Never-asked hold-out: {len(held)} questions, "
        f"{'one relevant passage each' if all(len(never.relevant[q]) == 1 for q in held) else 'NOT one each'}, "
        f"about {len(held_passages)} of the {len(distractors)} week-1 distractors; "
        f"{min(held_words)}-{max(held_words)} words (median {np.median(held_words):.0f}).",
        f"holds **{len(held)}** questions about **{len(held_passages)}** passages",
        f"the *distractors* are the {len(distractors)} week-1 passages no week-1 question names; "
        f"{len(eligible)} of them are *eligible*",
        f"(`numpy.random.default_rng({NEVER_ASKED_SEED})`, fraction {NEVER_ASKED_FRACTION}: "
        f"{len(held_passages)} passages) are set aside with every question naming them, {len(held)} questions",
        f"split of the {len(labelled)} labelled week-1 questions",
        f"`nudge.split_queries({len(labelled)}, val_fraction={split['val_fraction']}, "
        f"test_fraction={split['test_fraction']}, seed={split['seed']})`",
    ]
    return rows, prose


def test_statistics_are_what_the_files_hold(text):
    rows, prose = _statistics()
    names = {"payments": "payments", "billing and auth": "billing_auth", "webhooks, limits, errors": "webhooks_limits"}
    names |= {"SDKs and data": "sdks_data", "**total**": "total"}
    found = {}
    for line in text[0].split("## Statistics")[1].split("##")[0].splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] in names:
            found[names[cells[0]]] = [int(c.strip("*").replace(",", "")) for c in cells[1:]]
    assert found == rows
    for quote in prose:
        assert quote in text[1], quote
