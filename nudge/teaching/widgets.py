"""The interactive gamma explorer: pure compute and plot functions plus a thin ipywidgets wrapper.

:class:`GammaExplorer` does all the work without any widget: it fits NUDGE-M and NUDGE-N on
the training queries (gamma chosen on validation), computes the validation and test score
against gamma (exact for NUDGE-M), evaluates any gamma on demand and plots (``ax=None``).
:func:`gamma_widget` only wires a slider, a method switch and a k selector to it (laid out so that
the plot sits right under the slider on a laptop screen), so the logic is unit-tested headless by
setting widget values. ipywidgets and matplotlib are imported lazily
(the ``notebooks`` extra).
"""

from __future__ import annotations

import html
import io

import numpy as np

from ..estimator import Nudge
from ..gamma import curve_m, curve_n, query_intervals, validation_context
from ..metrics import rank_changes
from ..pairs import QuerySet, as_query_set
from ..retrieval import first_relevant_rank

__all__ = ["GammaExplorer", "gamma_widget"]

METHOD_NAMES = {"M": "NUDGE-M", "N": "NUDGE-N"}
#: The widget's plot: inches and dots per inch (shown at its pixel size, PLOT_SIZE * PLOT_DPI).
PLOT_SIZE = (8.0, 4.0)
PLOT_DPI = 80
PLOT_WIDTH_PX = round(PLOT_SIZE[0] * PLOT_DPI)


class GammaExplorer:
    """Validation and test score against gamma, for both methods and several k.

    Parameters
    ----------
    embeddings : ndarray, shape (N, d)
        Document embeddings.
    train, val, test : QuerySet or (embeddings, answers)
        Training queries (directions), validation queries (gamma) and hold-out test queries.
    ks : sequence of int
        The k values offered (score = share of answers in the top k).
    gamma_max : dict, optional
        Right end of the plotted gamma range per method (default: NUDGE-M three times its
        largest chosen gamma, at least 0.5; NUDGE-N 1.0).
    n_points : int
        Points per curve.
    """

    def __init__(self, embeddings, train, val, test, *, ks=(1, 3, 10), gamma_max=None, n_points=201) -> None:
        self.embeddings = embeddings
        self.train = as_query_set(train, "train")
        self.val = as_query_set(val, "val")
        self.test = as_query_set(test, "test")
        self.ks = tuple(int(k) for k in ks)
        if not self.ks or min(self.ks) < 1:
            raise ValueError(f"ks must hold positive integers, got {ks!r}")
        self.n_points = n_points
        self._gamma_max = dict(gamma_max or {})
        self._models: dict = {}
        self._contexts: dict = {}
        self._curves: dict = {}
        self.base_ranks = first_relevant_rank(self.test.embeddings, embeddings, self.test.answers)

    # ---------------------------------------------------------------- pure computations
    def model(self, method: str, k: int) -> Nudge:
        """The fitted :class:`Nudge` for ``method`` ("M"/"N") and ``k`` (cached)."""
        key = (method, k)
        if key not in self._models:
            self._models[key] = Nudge(method, k=k).fit(self.embeddings, self.train, self.val)
        return self._models[key]

    def _context(self, method: str, part: str):
        key = (method, part)
        if key not in self._contexts:
            qs: QuerySet = getattr(self, part)
            self._contexts[key] = validation_context(
                self.embeddings, self.model(method, self.ks[0]), qs, k=max(self.ks)
            )
        return self._contexts[key]

    def gamma_range(self, method: str) -> float:
        """Right end of the gamma axis for ``method``."""
        if method not in self._gamma_max:
            if method == "M":
                self._gamma_max[method] = max(0.5, 3 * max(self.model("M", k).gamma_ for k in self.ks))
            else:
                self._gamma_max[method] = 1.0
        return self._gamma_max[method]

    def score(self, method: str, k: int, gamma, part: str = "val") -> np.ndarray:
        """Score of ``part`` ("val" or "test") at each gamma (exact for NUDGE-M)."""
        gammas = np.atleast_1d(np.asarray(gamma, dtype=np.float64))
        ctx = self._context(method, part)
        if method == "M":
            key = ("intervals", part, k)
            if key not in self._curves:
                self._curves[key] = query_intervals(ctx, k)
            return curve_m(ctx, gammas, k, intervals=self._curves[key])
        return curve_n(ctx, gammas, k)

    def curves(self, method: str, k: int) -> dict:
        """``{"gamma", "val", "test"}`` arrays over the plotted range (cached)."""
        key = ("curve", method, k)
        if key not in self._curves:
            gammas = np.linspace(0.0, self.gamma_range(method), self.n_points)
            gammas = np.unique(np.append(gammas, self.model(method, k).gamma_))
            self._curves[key] = {
                "gamma": gammas,
                "val": self.score(method, k, gammas, "val"),
                "test": self.score(method, k, gammas, "test"),
            }
        return self._curves[key]

    def at(self, method: str, k: int, gamma: float) -> dict:
        """Everything shown for one setting: scores and the test queries whose rank changed.

        Returns
        -------
        dict
            ``val``, ``test`` (scores at ``gamma``), ``chosen_gamma``, ``ranks_before``,
            ``ranks_after`` (first relevant rank of each test query), ``fixed`` and ``broken``
            (test query positions that entered / left the top ``k``), ``moved`` (documents).
        """
        model = self.model(method, k)
        after = first_relevant_rank(
            self.test.embeddings, model.transform(self.embeddings, gamma=gamma), self.test.answers
        )
        changes = rank_changes(self.base_ranks, after, k=k)
        return {
            "val": float(self.score(method, k, gamma, "val")[0]),
            "test": float(self.score(method, k, gamma, "test")[0]),
            "chosen_gamma": model.gamma_,
            "ranks_before": self.base_ranks,
            "ranks_after": after,
            "fixed": changes["fixed"],
            "broken": changes["broken"],
            "moved": model.moved_.size if gamma > 0 else 0,
        }

    def plot(self, method: str, k: int, gamma: float | None = None, ax=None):
        """Validation and test score against gamma, chosen gamma dashed, current gamma solid."""
        if ax is None:
            import matplotlib.pyplot as plt

            ax = plt.gca()
        c = self.curves(method, k)
        ax.plot(c["gamma"], c["val"], label="validation", color="tab:blue")
        ax.plot(c["gamma"], c["test"], label="hold-out test", color="tab:orange")
        chosen = self.model(method, k).gamma_
        ax.axvline(chosen, color="grey", linestyle="--", label=f"chosen gamma = {chosen:.3g}")
        if gamma is not None:
            ax.axvline(gamma, color="black", linewidth=1.5, label=f"current gamma = {gamma:.3g}")
        ax.set_xlabel("gamma")
        ax.set_ylabel(f"share of answers in top {k}")
        ax.set_title(f"{METHOD_NAMES[method]}, k = {k}")
        ax.legend(loc="best", fontsize="small")
        return ax

    def render_png(self, method: str, k: int, gamma: float, *, size=PLOT_SIZE, dpi: int = PLOT_DPI) -> bytes:
        """The plot as PNG bytes, ``size`` inches at ``dpi`` (matplotlib's Agg backend; no pyplot state
        is touched).

        The figure of each (method, k, size, dpi) is laid out once and kept: a new gamma only moves
        the current-gamma line and redraws, which skips the layout (most of a fresh figure's cost).
        """
        key = ("figure", method, k, tuple(size), dpi)
        if key not in self._curves:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure

            fig = Figure(figsize=size, dpi=dpi, layout="constrained")
            FigureCanvasAgg(fig)
            ax = self.plot(method, k, gamma, ax=fig.add_subplot())
            fig.canvas.draw()  # the constrained layout, computed once ...
            fig.set_layout_engine("none")  # ... and kept for every gamma
            self._curves[key] = (fig, ax, ax.get_lines()[-1])
        fig, ax, current = self._curves[key]
        current.set_xdata([gamma, gamma])
        current.set_label(f"current gamma = {gamma:.3g}")
        ax.legend(loc="best", fontsize="small")
        buf = io.BytesIO()
        fig.canvas.print_png(buf)
        return buf.getvalue()

    def summary(self, method: str, k: int, gamma: float, result: dict | None = None) -> str:
        """HTML: gamma, the validation and test scores and how many test questions changed.

        ``result`` is :meth:`at`'s output for the same setting (computed if not given).
        """
        r = self.at(method, k, gamma) if result is None else result
        return "".join(
            [
                f"<b>{METHOD_NAMES[method]}</b>, gamma = {gamma:.4g} ",
                f"(chosen on validation: {r['chosen_gamma']:.4g})<br>",
                f"validation {r['val']:.3f} &nbsp; hold-out test {r['test']:.3f} (share of answers in top {k}); ",
                f"{len(r['fixed'])} test questions fixed, {len(r['broken'])} broken<br>",
                "<i>The test curve and test questions are shown to learn how well validation predicts them; "
                "choosing gamma from them is peeking (notebook 01): choose on validation.</i>",
            ]
        )

    def question_list(
        self, method: str, k: int, gamma: float, question_texts=None, limit: int = 5, result: dict | None = None
    ) -> str:
        """HTML: the first ``limit`` test questions ``gamma`` fixed and the first ``limit`` it broke,
        each with its rank before and after (``result`` as in :meth:`summary`)."""
        r = self.at(method, k, gamma) if result is None else result
        parts = []
        for label, rows in (("fixed", r["fixed"]), ("broken", r["broken"])):
            for i in rows[:limit]:
                text = question_texts[i] if question_texts is not None else f"test question {i}"
                parts.append(
                    f"{label}: rank {r['ranks_before'][i]} &rarr; {r['ranks_after'][i]}: {html.escape(str(text))}<br>"
                )
        return "".join(parts) or f"No test question entered or left the top {k} at this gamma."

    def describe(self, method: str, k: int, gamma: float, question_texts=None, limit: int = 5) -> str:
        """An HTML summary of :meth:`at`: :meth:`summary`, then :meth:`question_list`."""
        r = self.at(method, k, gamma)
        return (
            f"{self.summary(method, k, gamma, r)}<br>{self.question_list(method, k, gamma, question_texts, limit, r)}"
        )


def _questions_title(result: dict) -> str:
    return f"Test questions this gamma fixed ({len(result['fixed'])}) and broke ({len(result['broken'])})"


def gamma_widget(explorer: GammaExplorer, question_texts=None):
    """A gamma slider, a NUDGE-M / NUDGE-N switch and a k selector driving ``explorer``.

    Laid out for a laptop screen: the switch and k on top, a slider as wide as the output, and
    right under it the plot, with the scores beside it (below it where the output is narrow);
    the fixed and broken test questions are folded in an accordion under the plot, so the plot
    never moves while the slider does.

    Returns an ``ipywidgets.VBox`` with attributes ``gamma``, ``method``, ``k`` (the controls),
    ``readout`` (HTML: the scores), ``image`` (the plot as a PNG ``Image`` widget), ``questions``
    (HTML: the fixed and broken test questions) and ``accordion`` (folds ``questions``; its title
    gives their counts), so tests and notebooks can drive it by setting values.
    """
    import ipywidgets as w

    method = w.ToggleButtons(options=[("NUDGE-M", "M"), ("NUDGE-N", "N")], value="N", description="method")
    k = w.Dropdown(options=list(explorer.ks), value=explorer.ks[0], description="k", layout=w.Layout(width="160px"))
    gamma = w.FloatSlider(
        value=explorer.model("N", explorer.ks[0]).gamma_,
        min=0.0,
        max=explorer.gamma_range("N"),
        step=0.005,
        readout_format=".3f",
        description="gamma",
        continuous_update=False,
        layout=w.Layout(width="100%", max_width=f"{PLOT_WIDTH_PX + 300}px"),
    )
    width, height = (round(x * PLOT_DPI) for x in PLOT_SIZE)
    image = w.Image(format="png", layout=w.Layout(width=f"{width}px", height=f"{height}px", flex="0 0 auto"))
    readout = w.HTML(layout=w.Layout(width="280px", margin="0 0 0 12px"))
    questions = w.HTML()
    accordion = w.Accordion(children=[questions], selected_index=None)

    def redraw(_=None) -> None:
        result = explorer.at(method.value, k.value, gamma.value)
        readout.value = explorer.summary(method.value, k.value, gamma.value, result)
        questions.value = explorer.question_list(method.value, k.value, gamma.value, question_texts, result=result)
        accordion.set_title(0, _questions_title(result))
        image.value = explorer.render_png(method.value, k.value, gamma.value)

    def reset(_=None) -> None:
        # A new method or k: show its range and jump to its chosen gamma (one redraw).
        with gamma.hold_trait_notifications():
            gamma.max = explorer.gamma_range(method.value)
            gamma.step = gamma.max / 200
            gamma.value = min(explorer.model(method.value, k.value).gamma_, gamma.max)
        redraw()

    gamma.observe(redraw, names="value")
    method.observe(reset, names="value")
    k.observe(reset, names="value")
    plot_row = w.HBox([image, readout], layout=w.Layout(flex_flow="row wrap", align_items="flex-start"))
    box = w.VBox([w.HBox([method, k]), gamma, plot_row, accordion])
    box.gamma, box.method, box.k, box.readout, box.image = gamma, method, k, readout, image
    box.questions, box.accordion = questions, accordion
    reset()
    return box
