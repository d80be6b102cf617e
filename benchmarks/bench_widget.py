"""How fast the gamma explorer redraws on the bundled data (the target: well under a second).

Prints the time to build the explorer (fits and curves) and, for slider moves over the whole
range and for method/k switches, the time from setting the widget value to the new readout and
plot being ready (the callback's work, which is all the kernel does for a slider move).

Usage: ``python benchmarks/bench_widget.py``
"""

from __future__ import annotations

import time

import matplotlib
import numpy as np

matplotlib.use("Agg")

from nudge.teaching.bundled import load_tessera
from nudge.teaching.widgets import GammaExplorer, gamma_widget


def main() -> None:
    data = load_tessera()
    t0 = time.perf_counter()
    explorer = GammaExplorer(
        data.doc_embeddings, data.query_set("train"), data.query_set("val"), data.query_set("test")
    )
    box = gamma_widget(explorer, data.texts(data.split["test"]))
    print(f"build explorer and widget: {time.perf_counter() - t0:.3f} s (once per notebook)")
    moves = []
    for value in np.linspace(0, box.gamma.max, 21):
        t0 = time.perf_counter()
        box.gamma.value = float(value)
        moves.append(time.perf_counter() - t0)
    print(
        f"slider move: median {np.median(moves) * 1000:.0f} ms, max {max(moves) * 1000:.0f} ms over {len(moves)} moves"
    )
    plots = []
    for value in np.linspace(0, box.gamma.max, 21):
        t0 = time.perf_counter()
        explorer.render_png(box.method.value, box.k.value, float(value))
        plots.append(time.perf_counter() - t0)
    print(f"  of which the plot (PNG): median {np.median(plots) * 1000:.0f} ms")
    switches = []
    for method, k in (("M", 1), ("M", 3), ("N", 10), ("N", 1)):
        t0 = time.perf_counter()
        box.method.value, box.k.value = method, k
        switches.append(time.perf_counter() - t0)
    print(f"method/k switch: max {max(switches) * 1000:.0f} ms (first use of a setting fits it)")


if __name__ == "__main__":
    main()
