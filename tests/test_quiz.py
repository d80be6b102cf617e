"""The quizzes: the loader refuses bad files, the feedback explains every option, the widgets work headless."""

from __future__ import annotations

import copy
import itertools
import json
import re
from collections import Counter

import pytest
from conftest import REPO

from nudge.teaching import quiz as qz
from nudge.teaching.quiz import LETTERS, format_quiz, load_quiz, quiz_answer, quiz_notebooks, quiz_widgets

SHIPPED = quiz_notebooks()
GOOD = {
    "notebook": "99_demo",
    "questions": [
        {
            "question": f"Question {n}?",
            "options": [
                {"text": f"option {letter}", "correct": letter == "ABC"[n - 1], "why": f"why {n}{letter}"}
                for letter in "ABC"
            ],
        }
        for n in (1, 2, 3)
    ],
}


def _write(folder, raw, name="99_demo"):
    (folder / f"{name}.json").write_text(json.dumps(raw), encoding="utf-8")
    return folder


def test_a_good_file_loads_into_dataclasses(tmp_path):
    quiz = load_quiz("99_demo", folder=_write(tmp_path, GOOD))
    assert quiz.notebook == "99_demo" and len(quiz.questions) == 3
    assert [q.correct_letter for q in quiz.questions] == ["A", "B", "C"]
    assert quiz.questions[1].options[2] == qz.QuizOption("option C", False, "why 2C")


def _broken(change):
    raw = copy.deepcopy(GOOD)
    change(raw)
    return raw


BAD = {
    "no correct option": (lambda r: r["questions"][1]["options"][1].update(correct=False), "question 2: exactly one"),
    "two correct options": (lambda r: r["questions"][0]["options"][2].update(correct=True), "question 1: exactly one"),
    "empty why": (lambda r: r["questions"][2]["options"][0].update(why="  "), "question 3, option A: 'why'"),
    "missing why": (lambda r: r["questions"][2]["options"][1].pop("why"), "question 3, option B must have"),
    "correct as a string": (lambda r: r["questions"][0]["options"][0].update(correct="true"), "'correct' must be"),
    "unknown key": (lambda r: r["questions"][1].update(hint="x"), "question 2 must have exactly the keys"),
    "two options": (lambda r: r["questions"][1]["options"].pop(), "question 2: 'options' must be a list of 3 to 4"),
    "five options": (lambda r: r["questions"][0]["options"].extend([{"text": "d", "correct": False, "why": "w"}] * 2),
                     "question 1: 'options' must be a list of 3 to 4"),
    "two questions": (lambda r: r["questions"].pop(), "'questions' must be a list of 3 to 4"),
    "empty question": (lambda r: r["questions"][0].update(question=""), "question 1: 'question'"),
    "same option twice": (lambda r: r["questions"][0]["options"][2].update(text="option B"), "the same text"),
    "wrong notebook": (lambda r: r.update(notebook="98_other"), "named for '99_demo'"),
}  # fmt: skip


@pytest.mark.parametrize("name", BAD)
def test_a_bad_file_is_refused_naming_the_file_and_the_question(tmp_path, name):
    change, message = BAD[name]
    with pytest.raises(ValueError, match=r"99_demo\.json") as err:
        load_quiz("99_demo", folder=_write(tmp_path, _broken(change)))
    assert message in str(err.value)


def test_not_json_and_no_file_are_refused(tmp_path):
    (tmp_path / "99_demo.json").write_text("{", encoding="utf-8")
    with pytest.raises(ValueError, match=r"99_demo\.json.*not valid JSON"):
        load_quiz("99_demo", folder=tmp_path)
    with pytest.raises(ValueError, match=r"has no quiz file 42_none\.json"):
        load_quiz("42_none", folder=tmp_path)
    with pytest.raises(ValueError, match="notebook must be"):
        load_quiz("../99_demo", folder=tmp_path)


def test_feedback_says_right_or_wrong_and_why(tmp_path, monkeypatch):
    monkeypatch.setattr(qz, "QUIZ_DIR", _write(tmp_path, GOOD))
    assert quiz_answer("99_demo", 2, "b") == "Question 2, B: correct. why 2B"
    assert repr(quiz_answer("99_demo", 2, "b")) == "Question 2, B: correct. why 2B"  # no quotes in a notebook
    wrong = quiz_answer("99_demo", 2, "A")
    assert wrong.startswith("Question 2, A: not this one. why 2A") and "2B" not in wrong
    for bad, message in ((0, "question_number must be 1 to 3"), (4, "1 to 3"), (True, "1 to 3"), ("1", "1 to 3")):
        with pytest.raises(ValueError, match=message):
            quiz_answer("99_demo", bad, "A")
    for bad in ("D", "", "AB", None, 1):
        with pytest.raises(ValueError, match="option_letter must be one of A, B, C"):
            quiz_answer("99_demo", 1, bad)


def test_plain_text_shows_every_question_and_option_and_how_to_answer(tmp_path):
    quiz = load_quiz("99_demo", folder=_write(tmp_path, GOOD))
    text = format_quiz(quiz)
    assert 'quiz_answer("99_demo", 1, "B")' in text
    for n, question in enumerate(quiz.questions, 1):
        assert f"{n}. {question.question}" in text
        for letter, option in zip(LETTERS, question.options, strict=False):
            assert f"   {letter}. {option.text}" in text
    assert "why" not in text.replace("and why", ""), "the plain text does not give the answers away"


def test_widgets_give_the_same_feedback_headless(tmp_path):
    pytest.importorskip("ipywidgets")
    quiz = load_quiz("99_demo", folder=_write(tmp_path, GOOD))
    boxes = quiz_widgets(quiz)
    assert len(boxes) == 3
    assert repr(boxes[1]).startswith("[answer widget 2;")  # its text/plain (IPython cuts it after ~110 characters)
    assert "quiz_answer" in repr(boxes[1])
    for n, box in enumerate(boxes, 1):
        assert box.choice.value is None and box.feedback.value == ""
        box.check.click()
        assert box.feedback.value == "Choose an option first."
        for letter in box.choice.options:
            box.choice.value = letter
            assert box.feedback.value == "", "a new choice clears the old feedback"
            box.check.click()
            assert box.feedback.value == qz.html.escape(qz._feedback(quiz, n, letter))


def test_show_quiz_displays_text_and_one_widget_per_question(tmp_path, monkeypatch):
    pytest.importorskip("ipywidgets")
    import IPython.display

    monkeypatch.setattr(qz, "QUIZ_DIR", _write(tmp_path, GOOD))
    monkeypatch.setattr(qz, "_in_ipython", lambda: True)
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append(obj))
    qz.show_quiz("99_demo")
    texts = [o["text/plain"] for o in shown if isinstance(o, dict)]
    assert "".join(texts).count("Question") == 3 and len(shown) == 1 + 3 + 3
    shown.clear()
    qz.show_quiz("99_demo", widgets=False)
    assert all(isinstance(o, dict) for o in shown) and len(shown) == 4


def test_the_series_quizzes_follow_the_format():
    assert SHIPPED, "no quiz files shipped"
    for name in SHIPPED:
        quiz = load_quiz(name)  # validates: 3-4 questions, 3-4 options, exactly one correct, a why for each
        for question in quiz.questions:
            for option in question.options:
                assert len(option.why.split()) >= 5, f"{name}: explain why, not just yes/no: {option.why!r}"


def _right_is_longest(question) -> bool:
    right = question.options[LETTERS.index(question.correct_letter)]
    return all(len(o.text) < len(right.text) for o in question.options if o is not right)


def test_the_right_option_is_not_given_away_by_its_place_or_length():
    """Guessing 'always B' or 'the longest one' must not pass a quiz."""
    for name in SHIPPED:
        questions = load_quiz(name).questions
        assert len({q.correct_letter for q in questions}) >= 2, f"{name}: every right option has the same letter"
        longest = [q for q in questions if _right_is_longest(q)]
        assert len(longest) <= len(questions) // 2, (
            f"{name}: the right option is the longest in {len(longest)} questions"
        )


def test_show_quiz_outside_ipython_writes_the_plain_text(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(qz, "QUIZ_DIR", _write(tmp_path, GOOD))
    qz.show_quiz("99_demo")  # pytest runs no IPython shell
    assert capsys.readouterr().out == format_quiz(load_quiz("99_demo"))


def _every_question():
    return [(name, n, q) for name in SHIPPED for n, q in enumerate(load_quiz(name).questions, 1)]


def test_the_right_letters_are_balanced_over_all_quizzes():
    """Over the series, no letter is the right one more than twice as often as another (per option count)."""
    for n_options in (3, 4):
        counts = Counter(q.correct_letter for _, _, q in _every_question() if len(q.options) == n_options)
        if not counts:
            continue
        per_letter = [counts[letter] for letter in LETTERS[:n_options]]
        assert max(per_letter) <= 2 * min(per_letter), (
            f"{n_options}-option questions: right letters {dict(sorted(counts.items()))} are unbalanced"
        )


def _words(question) -> set[str]:
    text = " ".join([question.question, *(o.text for o in question.options)])
    return set(re.findall(r"[a-z0-9@.+-]+", text.lower()))


def test_no_question_repeats_one_of_another_quiz():
    """Two questions of different quizzes share at most 70% of their words (question and options)."""
    questions = [(name, n, _words(q)) for name, n, q in _every_question()]
    for (a, i, wa), (b, j, wb) in itertools.combinations(questions, 2):
        if a != b:
            shared = len(wa & wb) / min(len(wa), len(wb))
            assert shared <= 0.7, f"{a} question {i} and {b} question {j} share {shared:.0%} of their words"


def test_the_feedback_does_not_restate_the_verdict():
    """quiz_answer already says 'correct.' or 'not this one.': the why explains, in the same style in every quiz."""
    for name, n, q in _every_question():
        for letter, option in zip(LETTERS, q.options, strict=False):
            first = option.why.split()[0].strip(":.,!").lower()
            assert first not in {"right", "correct", "wrong"}, f"{name} question {n}, {letter}: {option.why!r}"


# A decimal (0.677), a signed number (+14, -0.366) or a ratio (7.9x) quoted by a quiz.
FIGURE = re.compile(r"(?<![\w.])[-+]?\d+\.\d+|(?<![\w.])[-+]\d+(?![\w.])|(?<![\w.])\d+(?:\.\d+)?x(?!\w)")
# Figures that are no notebook's output: the sign test's threshold, and the paper's ratios that 09 quotes.
NOT_COMPUTED = {"*": {"0.05"}, "09_when_to_use_nudge": {"3.3", "4.3"}}


def _printed_numbers(stem: str) -> set[str]:
    """Every number in the notebook's committed text outputs, leaving out the quiz cell (it prints the quiz)."""
    cells = json.loads((REPO / "notebooks" / f"{stem}.ipynb").read_text(encoding="utf-8"))["cells"]
    texts = []
    for cell in cells:
        if "show_quiz(" in "".join(cell["source"]):
            continue
        for out in cell.get("outputs", []):
            text = out.get("text") or out.get("data", {}).get("text/plain", "")
            texts.append("".join(text) if isinstance(text, list) else text)
    return set(re.findall(r"\d+\.\d+|\d+", "\n".join(texts)))


@pytest.mark.parametrize("name", SHIPPED)
def test_every_figure_a_quiz_quotes_is_printed_by_its_notebook(name):
    """A quiz reads the notebook's own outputs: each figure it quotes is one the notebook computed and printed."""
    printed = _printed_numbers(name) | NOT_COMPUTED["*"] | NOT_COMPUTED.get(name, set())
    missing = []
    for n, q in enumerate(load_quiz(name).questions, 1):
        texts = [q.question] + [o.text for o in q.options] + [o.why for o in q.options]
        quoted = [f for t in texts for f in FIGURE.findall(t)]
        missing += [f"question {n}: {f}" for f in quoted if f.lstrip("+-").rstrip("x") not in printed]
    assert not missing, f"{name}: figures not in the notebook's outputs: {missing}"
