"""A fit that explains itself: what a NUDGE fit saw on validation and what it did (notebook 04).

Every fit (:class:`nudge.Nudge`, :func:`nudge.estimator.fit_nudge`, so also fitting from a store
and the streaming state) builds a :class:`FitDiagnostics`: the shape of the validation curve,
whether gamma = 0 is among the best (then nothing is moved, and the report says why), how many
validation questions could gain at all, whether the validation set is large enough to trust,
how many documents moved and the largest move. Its warnings are also issued through
:mod:`warnings` as :class:`FitWarning`; the library never prints.

The rules, in one place:

- **gamma = 0 rule.** When gamma = 0 scores as well as the best gamma on validation (moving helps
  no validation question), gamma is 0 and nothing moves: NUDGE-M takes 0 whatever
  ``gamma_choice`` says, NUDGE-N returns 0 (the first grid value, or 0 when the grid lacks it).
- **small validation set.** Below :data:`SMALL_VALIDATION` (50) questions one question moves the
  score by more than 2 points: gamma is chosen on noise.
- **perfect validation score.** A score of 1.000 means gamma was pushed until every validation
  question ranks its answer first: such a gamma overfits the validation set (in one run, 12
  validation questions at 1.000 and the test went from 0.912 to 0.835). Check on a hold-out test.
- **no reachable question.** Only validation questions with an answer that has training
  questions can gain (NUDGE moves no other document); with none, validation cannot see a gain.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from .directions import nudge_n_rotation

__all__ = [
    "SMALL_VALIDATION",
    "WARNING_SOURCE",
    "DroppedQueryWarning",
    "FitDiagnostics",
    "FitWarning",
    "NudgeWarning",
    "curve_shape",
]

#: Below this many validation questions the fit warns that gamma is chosen on noise.
SMALL_VALIDATION = 50
#: Where the kit's warnings say they come from (instead of a file path: the same text on every run).
WARNING_SOURCE = "nudge"


class NudgeWarning(UserWarning):
    """Base class of the kit's warnings (filter them all with ``warnings.simplefilter(..., NudgeWarning)``)."""


class FitWarning(NudgeWarning):
    """A NUDGE fit that may not do what you expect; the same text is in ``diagnostics_.warnings``."""


class DroppedQueryWarning(NudgeWarning):
    """Queries without a relevant document were left out (of a fit, a validation set or an evaluation)."""


def issue(message: str, category: type[Warning]) -> None:
    """Issue one of the kit's warnings, located at :data:`WARNING_SOURCE` rather than at a file
    and line: a notebook shows ``nudge:0: FitWarning: ...`` identically on every run, without a
    machine path, and every occurrence is shown (filter by category to silence them)."""
    warnings.warn_explicit(message, category, filename=WARNING_SOURCE, lineno=0)


def curve_shape(best_regions: Sequence[tuple[float, float]], zero_is_best: bool, constant: bool) -> str:
    """Name the shape of a validation curve from its best regions.

    Returns ``"flat"`` (the same score everywhere), ``"flat from 0"`` (gamma = 0 is among the best:
    moving helps no validation question), ``"single peak"`` (one best region away from 0) or
    ``"several peaks"`` (the best score is reached in separate regions).
    """
    if constant:
        return "flat"
    if zero_is_best:
        return "flat from 0"
    return "single peak" if len(best_regions) == 1 else "several peaks"


@dataclass(frozen=True)
class FitDiagnostics:
    """What a NUDGE fit saw on validation and what it did; ``str()`` or :meth:`summary` reads it.

    Attributes
    ----------
    method : str
        "M" or "N".
    gamma : float
        The step size chosen (or fixed).
    gamma_fixed : bool
        True when gamma was given, not chosen (the validation fields are then None or 0).
    k : int
        Gamma maximised the validation share of answers in the top ``k``.
    grade_threshold : float
        Training and validation labels count as relevant when their grade is above it.
    n_train : int
        Training questions used (with at least one relevant document).
    n_train_dropped : int
        Training questions left out: no label above ``grade_threshold``.
    n_val : int
        Validation questions used to choose gamma (0 when gamma was fixed).
    n_val_dropped : int
        Validation questions left out: no label above ``grade_threshold``.
    n_val_reachable : int or None
        Validation questions with an answer that has training questions: only they can gain.
    score_at_zero : float or None
        Validation score without moving anything (gamma = 0).
    val_score : float or None
        Validation score at ``gamma``.
    best_regions : tuple of (float, float)
        Every region of gamma where the validation score is best: exact for NUDGE-M, runs of grid
        values for NUDGE-N (``()`` when unknown).
    curve_shape : str or None
        See :func:`curve_shape`; None when gamma was fixed or the curve is unknown.
    zero_is_best : bool or None
        Whether gamma = 0 is among the best (then ``gamma`` is 0 and nothing was gained).
    n_documents, n_support, n_moved : int
        Documents in the corpus, with training questions, and moved at ``gamma``.
    largest_move : float
        Largest ``||e_i' - e_i||`` (NUDGE-M: ``gamma`` for every moved document; NUDGE-N:
        ``sqrt(2 - 2 cos theta_i)``); 0 when nothing moved.
    largest_move_document : int or None
        Its document number (row of the embeddings); among equal moves (NUDGE-M: all of them),
        the one with the largest query sum ``||G_i||`` (training questions pulling one way).
    largest_move_questions : int
        Training questions of that document.
    warnings : tuple of str
        What to look at before trusting the fit (also issued as :class:`FitWarning`).
    train_unit : str
        What ``n_train`` and ``largest_move_questions`` count: "questions", or "pairs" when the
        fit saw per-document query sums (:class:`nudge.production.streaming.NudgeState`).
    gamma_rule : str
        How gamma was picked among the best, in words (see :func:`gamma_rule`); "" when unknown.
    doc_ids : tuple of str or None
        One id per document row, when the caller gave them (:meth:`with_ids`): the summary then
        names the most-moved document by id; otherwise by row number.
    """

    method: str
    gamma: float
    gamma_fixed: bool
    k: int
    grade_threshold: float
    n_train: int
    n_train_dropped: int
    n_val: int
    n_val_dropped: int
    n_val_reachable: int | None
    score_at_zero: float | None
    val_score: float | None
    best_regions: tuple[tuple[float, float], ...]
    curve_shape: str | None
    zero_is_best: bool | None
    n_documents: int
    n_support: int
    n_moved: int
    largest_move: float
    largest_move_document: int | None
    largest_move_questions: int
    warnings: tuple[str, ...] = ()
    train_unit: str = "questions"
    gamma_rule: str = ""
    doc_ids: tuple[str, ...] | None = field(default=None, repr=False)

    def with_ids(self, doc_ids: Sequence[str]) -> FitDiagnostics:
        """The same report naming documents by id: ``doc_ids`` holds one id per document row, shape (N,)."""
        ids = tuple(str(d) for d in doc_ids)
        if len(ids) != self.n_documents:
            raise ValueError(f"doc_ids has {len(ids)} ids but the fit saw {self.n_documents} documents")
        return replace(self, doc_ids=ids)

    @property
    def gain(self) -> float | None:
        """Validation score at ``gamma`` minus at gamma = 0 (None when gamma was fixed)."""
        if self.val_score is None or self.score_at_zero is None:
            return None
        return self.val_score - self.score_at_zero

    def summary(self, doc_ids: Sequence[str] | None = None) -> str:
        """A few lines for a person: the curve, the gamma = 0 rule, the counts, the warnings.

        ``doc_ids`` (one id per document row; default the ids given to :meth:`with_ids`) names
        the most-moved document by id; without ids it is named by its row number.
        """
        doc_ids = self.doc_ids if doc_ids is None else doc_ids
        name = f"NUDGE-{self.method}"
        how = "fixed" if self.gamma_fixed else f"chosen on validation, top-{self.k}"
        lines = [f"{name}: gamma = {self.gamma:.4g} ({how})"]
        if self.gamma_rule and not self.gamma_fixed:
            lines.append(f"  rule: {self.gamma_rule}")
        above = f"grade > {self.grade_threshold:g}"
        dropped = (
            f", {self.n_train_dropped} without a relevant document ({above}) left out" if self.n_train_dropped else ""
        )
        lines.append(f"  training: {self.n_train} {self.train_unit}{dropped}")
        if not self.gamma_fixed:
            dropped = f", {self.n_val_dropped} without a relevant document left out" if self.n_val_dropped else ""
            reach = (
                ""
                if self.n_val_reachable is None
                else (f"; {self.n_val_reachable} have an answer with training questions (only those can gain)")
            )
            lines.append(f"  validation: {self.n_val} questions{dropped}{reach}")
            if self.curve_shape is not None and self.val_score is not None and self.score_at_zero is not None:
                regions = ", ".join(f"[{lo:.4g}, {hi:.4g}]" for lo, hi in self.best_regions)
                lines.append(
                    f"  validation curve: {self.curve_shape}; best {self.val_score:.3f} for gamma in {regions}; "
                    f"at gamma = 0: {self.score_at_zero:.3f} (gain {self._gain_text()})"
                )
            elif self.val_score is not None:
                lines.append(f"  validation score {self.val_score:.3f} (curve not computed)")
            if self.zero_is_best:
                lines.append("  gamma = 0 is among the best: moving helps no validation question, so nothing moved")
        moved = f"  moved: {self.n_moved} of {self.n_documents} documents ({self.n_support} have training questions)"
        if self.method == "N" and self.gamma > 0 and self.n_moved < self.n_support:
            moved += (
                f"; the other {self.n_support - self.n_moved} stay: their query sum points away from them "
                "(e.G < 0), and NUDGE-N leaves such a document unchanged, as the reference package does"
            )
        if self.n_moved and self.largest_move_document is not None:
            d = self.largest_move_document
            label = f"document {doc_ids[d]!r}" if doc_ids is not None else f"document at row {d}"
            n, unit = self.largest_move_questions, self.train_unit
            who = f"{label}, {n} training {unit if n != 1 else unit[:-1]}"
            if self.method == "M":
                moved += f"; each by {self.largest_move:.4g} (= gamma; largest query sum: {who})"
            else:
                moved += f"; largest move {self.largest_move:.4g} ({who})"
        lines.append(moved)
        if self.warnings:
            lines.append("  warnings:")
            lines += [f"  - {w}" for w in self.warnings]
        return "\n".join(lines)

    def _gain_text(self) -> str:
        gain = self.gain or 0.0
        if self.k == 1 and self.n_val:
            n = round(gain * self.n_val)
            return f"{gain:+.3f}, {n:+d} question{'s' if abs(n) != 1 else ''}"
        return f"{gain:+.3f}"

    def __str__(self) -> str:
        return self.summary()


def gamma_rule(method: str, choice: str = "middle") -> str:
    """How a fit picks gamma among the best, in words (``choice``: NUDGE-M's ``gamma_choice``)."""
    zero = "gamma = 0 whenever not moving scores as well as the best"
    if method == "N":
        return f"the first grid value (in grid order) with the best validation score; {zero}"
    if choice == "smallest":
        return f"the left end of the first best region (the reference's choice); {zero}"
    return f"the middle of the first best region (1.5 x its start if it has no end); {zero}"


def fit_warnings(
    *,
    method: str,
    gamma_fixed: bool,
    n_train_dropped: int,
    n_val: int,
    n_val_dropped: int,
    n_val_reachable: int | None,
    val_score: float | None,
    zero_is_best: bool | None,
    grade_threshold: float,
) -> tuple[str, ...]:
    """The warnings of a fit, in words (see the module's rules)."""
    out = []
    above = f"grade > {grade_threshold:g}"
    if n_train_dropped:
        out.append(f"{n_train_dropped} training question(s) have no relevant document ({above}) and were left out")
    if gamma_fixed:
        return tuple(out)
    if n_val_dropped:
        out.append(
            f"{n_val_dropped} validation question(s) have no relevant document ({above}) and were left out of "
            "choosing gamma"
        )
    if zero_is_best:
        why = "no gamma in the grid scores better" if method == "N" else "no gamma scores better"
        out.append(f"gamma = 0: nothing was gained on validation ({why} than not moving), so no document moved")
    if n_val_reachable == 0:
        out.append(
            "no validation question has an answer with training questions: NUDGE moves only those documents, "
            "so validation cannot show a gain; use validation questions about documents that have training questions"
        )
    if n_val < SMALL_VALIDATION:
        out.append(
            f"only {n_val} validation questions (fewer than {SMALL_VALIDATION}): one question is "
            f"{100 / max(n_val, 1):.1f} points of the score, so gamma is chosen on noise; label more"
        )
    if val_score is not None and val_score >= 1.0 and not zero_is_best:
        out.append(
            f"perfect validation score (1.000 on {n_val} questions): gamma was pushed until every validation "
            "question ranks first, which overfits; check the result on a hold-out test set"
        )
    return tuple(out)


def move_sizes(method: str, gamma: float, cos_angle: np.ndarray | None, n: int) -> np.ndarray:
    """``||e_i' - e_i||`` of the ``n`` support documents at ``gamma``, shape (n,).

    NUDGE-M: ``gamma`` each. NUDGE-N: ``sqrt(2 - 2 cos theta_i)`` with ``cos theta_i`` from
    :func:`nudge.directions.nudge_n_rotation` (``cos_angle``: cosine between each row and its
    query sum).
    """
    if gamma == 0 or n == 0:
        return np.zeros(n)
    if method == "M":
        return np.full(n, float(gamma))
    cos_t, _ = nudge_n_rotation(np.asarray(cos_angle, dtype=np.float64), gamma)
    return np.sqrt(np.clip(2.0 - 2.0 * cos_t, 0.0, None))
