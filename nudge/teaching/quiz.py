"""End-of-notebook quizzes: "Check your understanding", with feedback for every option.

Each notebook ``notebooks/NN_topic.ipynb`` has a quiz file ``nudge/teaching/quizzes/NN_topic.json``
(shipped with the package). Its format, fixed so that every notebook's quiz is written the same way::

    {"notebook": "NN_topic",                 # the notebook's file stem, equal to the file's stem
     "questions": [                          # 3 or 4 questions
        {"question": "...",                  # non-empty text
         "options": [                        # 3 or 4 options, EXACTLY ONE with "correct": true
            {"text": "...",                  # non-empty text
             "correct": false,               # a JSON boolean
             "why": "..."},                  # non-empty: why this option is right, or why it is wrong
            ...]},
        ...]}

No other keys are allowed (a typo is refused, not ignored). Options are shown lettered A, B, C, D
in file order; questions are numbered from 1. Questions test understanding (what a plot means,
what would happen if..., which number to trust given the noise), not recall of a word; the tests
also refuse a quiz whose right option is always at the same letter, or is the longest option in
more than half of its questions.

In the notebook, a ``## Check your understanding`` markdown cell and one code cell calling
``show_quiz`` sit after ``## Summary`` and before ``## Your turn``; ``tools/add_quiz_cells.py``
adds them (and tags the exercise cell ``exercise`` for the solution tests).

In a notebook::

    from nudge.teaching.quiz import show_quiz
    show_quiz("NN_topic")

shows the questions as plain text (readable in a printed notebook and without widgets) and, when
ipywidgets is importable, a small widget under each question (an option, a "Check" button and
the feedback). Without widgets, ``quiz_answer("NN_topic", 2, "B")`` returns the same feedback as
a string. :func:`load_quiz` validates a file into dataclasses and raises ``ValueError`` naming the
file and the question on any problem. :func:`quiz_widgets` builds the widgets without displaying
them, so the tests drive them headless by setting values and clicking.
"""

from __future__ import annotations

import html
import json
import sys
import textwrap
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = [
    "QUIZ_DIR",
    "Quiz",
    "QuizOption",
    "QuizQuestion",
    "format_quiz",
    "load_quiz",
    "quiz_answer",
    "quiz_notebooks",
    "quiz_widgets",
    "show_quiz",
]

#: Where the quiz files live (package data: ``nudge/teaching/quizzes/*.json``).
QUIZ_DIR = Path(__file__).resolve().parent / "quizzes"

LETTERS = "ABCD"
N_QUESTIONS = (3, 4)
N_OPTIONS = (3, 4)
WIDTH = 96


@dataclass(frozen=True)
class QuizOption:
    """One answer option: its text, whether it is the right one, and why (right or wrong)."""

    text: str
    correct: bool
    why: str


@dataclass(frozen=True)
class QuizQuestion:
    """A question and its options (exactly one correct)."""

    question: str
    options: tuple[QuizOption, ...]

    @property
    def correct_letter(self) -> str:
        return next(LETTERS[i] for i, o in enumerate(self.options) if o.correct)


@dataclass(frozen=True)
class Quiz:
    """A notebook's quiz, as loaded from ``QUIZ_DIR / f"{notebook}.json"``."""

    notebook: str
    questions: tuple[QuizQuestion, ...]


def quiz_notebooks(folder: Path | None = None) -> list[str]:
    """The notebooks (file stems) that have a quiz file in ``folder`` (default :data:`QUIZ_DIR`)."""
    return sorted(p.stem for p in Path(folder or QUIZ_DIR).glob("*.json"))


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where} must be a non-empty string, got {value!r}")
    return value.strip()


def _keys(obj: object, expected: set[str], where: str) -> dict:
    if not isinstance(obj, dict):
        raise ValueError(f"{where} must be a JSON object, got {type(obj).__name__}")
    if set(obj) != expected:
        missing, extra = sorted(expected - set(obj)), sorted(set(obj) - expected)
        raise ValueError(f"{where} must have exactly the keys {sorted(expected)} (missing {missing}, unknown {extra})")
    return obj


def _count(items: object, allowed: tuple[int, int], what: str, where: str) -> list:
    if not isinstance(items, list) or not allowed[0] <= len(items) <= allowed[1]:
        n = len(items) if isinstance(items, list) else type(items).__name__
        raise ValueError(f"{where} must be a list of {allowed[0]} to {allowed[1]} {what}, got {n}")
    return items


def _question(raw: object, where: str) -> QuizQuestion:
    raw = _keys(raw, {"question", "options"}, where)
    text = _text(raw["question"], f"{where}: 'question'")
    options = []
    for j, opt in enumerate(_count(raw["options"], N_OPTIONS, "options", f"{where}: 'options'")):
        at = f"{where}, option {LETTERS[j]}"
        opt = _keys(opt, {"text", "correct", "why"}, at)
        if not isinstance(opt["correct"], bool):
            raise ValueError(f"{at}: 'correct' must be true or false, got {opt['correct']!r}")
        options.append(
            QuizOption(_text(opt["text"], f"{at}: 'text'"), opt["correct"], _text(opt["why"], f"{at}: 'why'"))
        )
    n_correct = sum(o.correct for o in options)
    if n_correct != 1:
        raise ValueError(f"{where}: exactly one option must be correct, got {n_correct}")
    if len({o.text for o in options}) != len(options):
        raise ValueError(f"{where}: two options have the same text")
    return QuizQuestion(text, tuple(options))


def load_quiz(notebook: str, *, folder: Path | None = None) -> Quiz:
    """Load and validate a notebook's quiz.

    Parameters
    ----------
    notebook : str
        The notebook's file stem, e.g. ``"03_directions"``.
    folder : Path, optional
        Where the quiz files are (default :data:`QUIZ_DIR`).

    Returns
    -------
    Quiz

    Raises
    ------
    ValueError
        If there is no such quiz, or the file breaks the format (the message names the file and
        the question).
    """
    if not isinstance(notebook, str) or not notebook or Path(notebook).name != notebook:
        raise ValueError(f"notebook must be a notebook's file stem such as '03_directions', got {notebook!r}")
    path = Path(folder or QUIZ_DIR) / f"{notebook}.json"
    if not path.is_file():
        raise ValueError(f"notebook {notebook!r} has no quiz file {path.name}; quizzes: {quiz_notebooks(folder)}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"quiz file {str(path)!r} is not valid JSON: {err}") from None
    try:
        raw = _keys(raw, {"notebook", "questions"}, "the file")
        if raw["notebook"] != notebook:
            raise ValueError(f"'notebook' is {raw['notebook']!r}, but the file is named for {notebook!r}")
        items = _count(raw["questions"], N_QUESTIONS, "questions", "'questions'")
        questions = tuple(_question(q, f"question {i}") for i, q in enumerate(items, 1))
    except ValueError as err:
        raise ValueError(f"quiz file {str(path)!r}: {err}") from None
    return Quiz(notebook, questions)


def _question_number(quiz: Quiz, question_number: object) -> QuizQuestion:
    n = len(quiz.questions)
    if isinstance(question_number, bool) or not isinstance(question_number, int) or not 1 <= question_number <= n:
        raise ValueError(f"question_number must be 1 to {n} for {quiz.notebook!r}, got {question_number!r}")
    return quiz.questions[question_number - 1]


def _feedback(quiz: Quiz, question_number: int, option_letter: object) -> str:
    question = _question_number(quiz, question_number)
    letters = LETTERS[: len(question.options)]
    letter = option_letter.strip().upper() if isinstance(option_letter, str) else None
    if letter is None or len(letter) != 1 or letter not in letters:
        raise ValueError(f"option_letter must be one of {', '.join(letters)}, got {option_letter!r}")
    option = question.options[letters.index(letter)]
    if option.correct:
        return f"Question {question_number}, {letter}: correct. {option.why}"
    return f"Question {question_number}, {letter}: not this one. {option.why} Try another option."


class Feedback(str):
    """Feedback text that a notebook shows as plain text (a bare ``str`` would show in quotes)."""

    def __repr__(self) -> str:
        return str(self)


def quiz_answer(notebook: str, question_number: int, option_letter: str) -> Feedback:
    """The feedback for one answer, as text (no widgets needed).

    Parameters
    ----------
    notebook : str
        The notebook's file stem, e.g. ``"03_directions"``.
    question_number : int
        1 for the first question.
    option_letter : str
        ``"A"`` for the first option (case does not matter).

    Returns
    -------
    Feedback
        A ``str``: whether the option is right, and why (the correct option is not revealed by a wrong
        one). Shown without quotes as a cell's last line.
    """
    return Feedback(_feedback(load_quiz(notebook), question_number, option_letter))


def _wrap(text: str, indent: str, first: str = "") -> str:
    return textwrap.fill(
        " ".join(text.split()),
        WIDTH,
        initial_indent=indent + first,
        subsequent_indent=indent + " " * len(first),
        break_on_hyphens=False,
    )


def _header(quiz: Quiz, widgets: bool = False) -> str:
    how = "Answer with the widget under a question, or in code" if widgets else "Answer in code"
    return (
        f"Check your understanding: {len(quiz.questions)} questions. {how}: "
        f'quiz_answer("{quiz.notebook}", 1, "B") tells you whether B is right for question 1, and why.'
    )


def _question_text(number: int, question: QuizQuestion) -> str:
    lines = [_wrap(question.question, "", f"{number}. ")]
    lines += [_wrap(o.text, "   ", f"{LETTERS[j]}. ") for j, o in enumerate(question.options)]
    return "\n".join(lines)


def format_quiz(quiz: Quiz) -> str:
    """The whole quiz as plain text (header, then each question with its lettered options)."""
    parts = [_wrap(_header(quiz), "")]
    parts += [_question_text(i, q) for i, q in enumerate(quiz.questions, 1)]
    return "\n\n".join(parts) + "\n"


@lru_cache(maxsize=1)
def _answer_box_class():
    import ipywidgets as w

    class AnswerBox(w.VBox):
        """A VBox whose text form (a saved or printed notebook, where the widget cannot render) says what it is."""

        question_number = 0

        def __repr__(self) -> str:
            return f"[answer widget {self.question_number}; without widgets: quiz_answer(...)]"

    return AnswerBox


def quiz_widgets(quiz: Quiz) -> list:
    """One small widget per question (no display).

    Each is an ``ipywidgets.VBox`` with attributes ``choice`` (RadioButtons over the option
    letters, nothing chosen at first), ``check`` (the "Check" Button) and ``feedback`` (HTML,
    filled by a click with :func:`quiz_answer`'s text, emptied when the choice changes).
    """
    import ipywidgets as w

    boxes = []
    for number, question in enumerate(quiz.questions, 1):
        choice = w.RadioButtons(
            options=list(LETTERS[: len(question.options)]), value=None, description=f"Answer {number}"
        )
        check = w.Button(description="Check", tooltip=f"check your answer to question {number}")
        feedback = w.HTML()

        def on_check(_button, number=number, choice=choice, feedback=feedback) -> None:
            if choice.value is None:
                feedback.value = "Choose an option first."
            else:
                feedback.value = html.escape(_feedback(quiz, number, choice.value))

        def on_choice(_change, feedback=feedback) -> None:
            feedback.value = ""

        check.on_click(on_check)
        choice.observe(on_choice, names="value")
        box = _answer_box_class()([w.HBox([choice, check]), feedback])
        box.question_number, box.choice, box.check, box.feedback = number, choice, check, feedback
        boxes.append(box)
    return boxes


def _widgets_available() -> bool:
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


def show_quiz(notebook: str, *, widgets: bool | None = None) -> None:
    """Show a notebook's quiz: each question as plain text and, with ipywidgets, its widget.

    Parameters
    ----------
    notebook : str
        The notebook's file stem, e.g. ``"03_directions"``.
    widgets : bool, optional
        Show the widgets (default: when ipywidgets is importable). The plain text is always shown.

    Outside IPython (a plain script) the plain text is written to standard output, without widgets.
    """
    quiz = load_quiz(notebook)
    if not _in_ipython():
        sys.stdout.write(format_quiz(quiz))
        return
    from IPython.display import display

    boxes = quiz_widgets(quiz) if (_widgets_available() if widgets is None else widgets) else []
    display({"text/plain": _wrap(_header(quiz, bool(boxes)), "")}, raw=True)
    for i, question in enumerate(quiz.questions):
        display({"text/plain": _question_text(i + 1, question)}, raw=True)
        if boxes:
            display(boxes[i])
