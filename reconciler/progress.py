"""Progress of an apply: typed events, and their display (a bar on a terminal, lines otherwise).

The pipeline reports each step as a `StepStarted` event, what a step says
about its work as `StepDetail`, and everything a rollback does wrapped in
`RollingBack`. Each event's text is its `str()`. `ProgressReporter` is a
progress callback: when its stream is a terminal and the plan has more than
`BAR_THRESHOLD` steps it redraws one bar line in place; otherwise (a pipe, a
log file, a short plan) it prints each event on a line of its own, which is
what logs and CI want.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from reconciler.state import ResourceKey

#: Plans with more steps than this get a bar on a terminal ("more than a few dozen").
BAR_THRESHOLD = 36
#: Redraw at most this often (the last step is always drawn).
REDRAW_SECONDS = 0.05


@dataclass(frozen=True)
class StepStarted:
    """Step `number` of `total` is about to run."""

    number: int
    total: int
    verb: str
    key: ResourceKey

    @property
    def what(self) -> str:
        return f"{self.verb} {self.key}"

    def __str__(self) -> str:
        return f"[{self.number}/{self.total}] {self.what}"


@dataclass(frozen=True)
class StepsDone:
    """Every one of the `total` steps has run (the bar's 100 %; no line of its own)."""

    total: int

    def __str__(self) -> str:
        return f"[{self.total}/{self.total}] done"


@dataclass(frozen=True)
class StepDetail:
    """What the running step reports about its work (shown indented under it)."""

    text: str

    def __str__(self) -> str:
        return "      " + self.text


@dataclass(frozen=True)
class DebrisRemoved:
    """Links a killed cnm run left half-made were removed (see kernel/debris.py)."""

    debris: tuple[str, ...]

    def __str__(self) -> str:
        return f"removed {', '.join(self.debris)} left behind by an interrupted cnm run"


@dataclass(frozen=True)
class RollingBack:
    """An event of the rollback that undoes a failed apply."""

    event: ProgressEvent

    def __str__(self) -> str:
        return f"rollback {self.event}"


ProgressEvent = StepStarted | StepsDone | StepDetail | DebrisRemoved | RollingBack
Progress = Callable[[ProgressEvent], None]


class ProgressReporter:
    """Progress callback for the pipeline; call `close()` when the apply ends."""

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

    def __call__(self, event: ProgressEvent) -> None:
        if isinstance(event, StepsDone):  # the bar ends full; a log needs no extra line
            if self._open and self.tty and event.total > self.threshold:
                self._draw(event.total, event.total, "done", self.clock() - self._started,
                           done=event.total)
            return
        if not isinstance(event, StepStarted) or not self.tty or event.total <= self.threshold:
            self._line(str(event))
            return
        now = self.clock()
        if event.number == 1:
            self._started = now
        if event.number < event.total and now - self._drawn_at < REDRAW_SECONDS:
            return
        self._drawn_at = now
        self._draw(event.number, event.total, event.what, now - self._started)

    def _line(self, message: str) -> None:
        self.close()
        self.stream.write(message + "\n")
        self.stream.flush()

    def _draw(
        self, number: int, total: int, what: str, elapsed: float, done: int | None = None
    ) -> None:
        width = self.width or shutil.get_terminal_size((80, 24)).columns
        done = number - 1 if done is None else done  # the step named is about to run
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
