"""nudge: NUDGE, non-parametric fine-tuning of retrieval embeddings, in numpy.

NUDGE (Zeighami, Wellmer, Parameswaran, arXiv 2409.02343) fine-tunes a retrieval system without
touching the embedding model: it moves the stored document vectors towards the training queries
they answer. The core modules follow the phases of the practical guide and need only numpy:

=================  ==========================================================  ========
phase              where                                                        notebook
=================  ==========================================================  ========
1 pairs, splits    :mod:`nudge.pairs`                                           01
3 MaxS-EFT         :mod:`nudge.directions`                                      03
4 MaxA-EFT         :mod:`nudge.gamma`                                           04
5 apply            :mod:`nudge.apply`                                           05
all at once        :class:`nudge.Nudge` (:mod:`nudge.estimator`)                 05
monitoring         :mod:`nudge.retrieval`, :mod:`nudge.metrics`, :mod:`nudge.evaluation`  05
on one page        :mod:`nudge.plain` (the whole algorithm, plain numpy, to copy)  03, 04
controls           :mod:`nudge.baselines` (popularity control, the guide's formula)  03, 05
alternatives       :mod:`nudge.adapter` (a query-side linear adapter)                09
=================  ==========================================================  ========

Around the core, two sub-packages (never imported by it):

- :mod:`nudge.production`: vector stores (guide step 6), weekly updates (:class:`NudgeState`),
  fitting from a store, embedders, dataset loaders, the ``nudge`` command, and the drop-in
  ``NUDGEM`` / ``NUDGEN`` for code written for the nudge-ft package.
- :mod:`nudge.teaching`: the bundled data, plots, the gamma explorer widget, exercises, the demo.

``from nudge import NudgeState, NUDGEM, NUDGEN`` keeps working: those names are loaded from
:mod:`nudge.production` on first use, so ``import nudge`` alone loads numpy and the core only.
"""

from ._io import load_embeddings, save_embeddings
from ._version import __version__
from .apply import apply_nudge
from .estimator import NotFittedError, Nudge
from .gamma import REFERENCE_GRID
from .pairs import QuerySet, Split, as_query_set, group_pairs, index_answers, split_queries

__all__ = [
    "NUDGEM",
    "NUDGEN",
    "REFERENCE_GRID",
    "NotFittedError",
    "Nudge",
    "NudgeState",
    "QueriesAnswersDict",
    "QuerySet",
    "Split",
    "__version__",
    "apply_nudge",
    "as_query_set",
    "group_pairs",
    "index_answers",
    "load_embeddings",
    "save_embeddings",
    "split_queries",
]

# Names that live outside the core, loaded on first use (PEP 562) so that ``import nudge`` stays numpy-only.
_LAZY = {
    "NUDGEM": "nudge.production.compat",
    "NUDGEN": "nudge.production.compat",
    "QueriesAnswersDict": "nudge.production.compat",
    "NudgeState": "nudge.production.streaming",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nudge' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
