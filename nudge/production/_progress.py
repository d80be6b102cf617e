"""A minimal text progress bar for long jobs (no dependency), written to stderr.

Library code never prints: a caller that passes ``enabled=False`` gets no output at all.
"""

from __future__ import annotations

import sys
import time
from typing import IO


class ProgressBar:
    """``desc [#######.......] done/total`` on one line, redrawn at most every ``min_interval`` seconds.

    Parameters
    ----------
    total : int
        Number of units the job has (texts, batches, ...).
    desc : str
        Label shown before the bar.
    enabled : bool
        ``False`` makes every method a no-op.
    file : text stream, optional
        Where to draw; ``sys.stderr`` at the time of each write when not given (so test capture sees it).
    min_interval : float
        Seconds between redraws; the first and last states are always drawn.
    width : int
        Characters in the bar.

    Use it as a context manager so the line is finished even when the job fails::

        with ProgressBar(len(texts), "embedding") as bar:
            for batch in batches:
                ...
                bar.update(len(batch))
    """

    def __init__(
        self,
        total: int,
        desc: str = "",
        *,
        enabled: bool = True,
        file: IO[str] | None = None,
        min_interval: float = 0.2,
        width: int = 30,
    ) -> None:
        self.total = max(int(total), 0)
        self.desc = desc
        self.enabled = bool(enabled)
        self.done = 0
        self._file = file
        self._min_interval = float(min_interval)
        self._width = int(width)
        self._last_draw = -float("inf")
        self._drawn: int | None = None  # the ``done`` value on screen
        self._closed = False

    def __enter__(self) -> ProgressBar:
        if self.enabled:
            self._draw(force=True)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        """Advance by ``n`` units and redraw if enough time has passed (or the job is done)."""
        self.done = min(self.done + int(n), self.total)
        if self.enabled:
            self._draw(force=self.done >= self.total)

    def close(self) -> None:
        """Draw the final state and end the line (once)."""
        if self._closed:
            return
        self._closed = True
        if self.enabled and self._drawn is not None:
            if self._drawn != self.done:
                self._draw(force=True)
            self._stream().write("\n")
            self._stream().flush()

    def _stream(self) -> IO[str]:
        return self._file if self._file is not None else sys.stderr

    def _draw(self, *, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < self._min_interval:
            return
        self._last_draw = now
        frac = self.done / self.total if self.total else 1.0
        filled = round(frac * self._width)
        bar = "#" * filled + "." * (self._width - filled)
        label = f"{self.desc} " if self.desc else ""
        stream = self._stream()
        stream.write(f"\r{label}[{bar}] {self.done}/{self.total} ({frac:.0%})")
        stream.flush()
        self._drawn = self.done
