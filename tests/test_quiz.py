"""The quizzes: the loader refuses bad files, the feedback explains every option, the widgets work headless."""

from __future__ import annotations

import copy
import json

import pytest

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
    assert repr(boxes[1]).startswith("[the answer widget of question 2: it shows where")  # its text/plain
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
