"""Teaching helpers around the core: the bundled Tessera data, plots, widgets, exercises, the demo.

Nothing here is needed to run NUDGE on your own data; the notebooks use it to show the core at work.

==================  =====================================================
module              what
==================  =====================================================
``bundled``         load the Tessera dataset shipped in ``data/`` (and its weekly batches)
``synthetic``       small random problems with a known answer, for tests and pictures
``plotting``        pure plotting functions (``ax=None``) used by the notebooks
``widgets``         the gamma explorer: a pure class plus a thin ipywidgets wrapper
``exercises``       self-checks for each notebook's "your turn"
``quiz``            each notebook's "check your understanding" quiz (``quizzes/*.json``)
``demo``            ``python -m nudge.teaching.demo``: the whole pipeline, headless
==================  =====================================================
"""
