"""Progress of an apply: a bar on a terminal for long plans, plain lines otherwise.

The engine reports each step as `[n/N] verb Kind/name` through its `progress`
callback. `ProgressReporter` is such a callback: when its stream is a terminal
and the plan has more than `BAR_THRESHOLD` steps it redraws one bar line in
place; otherwise (a pipe, a log file, a short plan) it prints each step on a
line of its own, which is what logs and CI want.
"""

from __future__ import annotations

import re
import shutil
import sys
import time
from collections.abc import Callable
from typing import TextIO

#: Plans with more steps than this get a bar on a terminal ("more than a few dozen").
BAR_THRESHOLD = 36
#: Redraw at most this often (the last step is always drawn).
REDRAW_SECONDS = 0.05

_STEP_RE = re.compile(r"^\[(\d+)/(\d+)\] (.*)$")


class ProgressReporter:
    """Callable progress sink for `engine.execute`; call `close()` when the apply ends."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        threshold: int = BAR_THRESHOLD,
        clock: Callable[[], float] = time.monotonic,
        width: int | None = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.threshold = threshold
        self.clock = clock
        self.width = width
        self.tty = _isatty(self.stream)
        self._open = False  # a bar line is on screen without its newline
        self._drawn_at = float("-inf")
        self._started = 0.0

    def __call__(self, message: str) -> None:
        match = _STEP_RE.match(message)
        if match is None or not self.tty or int(match[2]) <= self.threshold:
            self._line(message)
            return
        number, total = int(match[1]), int(match[2])
        now = self.clock()
        if number == 1:
            self._started = now
        if number < total and now - self._drawn_at < REDRAW_SECONDS:
            return
        self._drawn_at = now
        self._draw(number, total, match[3], now - self._started)

    def _line(self, message: str) -> None:
        self.close()
        self.stream.write(message + "\n")
        self.stream.flush()

    def _draw(self, number: int, total: int, what: str, elapsed: float) -> None:
        width = self.width or shutil.get_terminal_size((80, 24)).columns
        done = number - 1  # the step named is about to run
        counter = f" {number}/{total} {100 * done // total:3d}% {elapsed:5.1f}s "
        bar_width = max(10, min(40, width // 3))
        filled = bar_width * done // total
        bar = "[" + "#" * filled + "-" * (bar_width - filled) + "]"
        line = (bar + counter + what)[: max(1, width - 1)]
        self.stream.write("\r" + line + "\x1b[K")
        self.stream.flush()
        self._open = True

    def close(self) -> None:
        """End the bar line (if one is on screen) so the next output starts cleanly."""
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
