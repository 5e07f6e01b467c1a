"""Apply progress: a bar on a terminal for long plans, plain lines otherwise."""

from __future__ import annotations

import io

from reconciler.progress import (
    BAR_THRESHOLD,
    DebrisRemoved,
    ProgressReporter,
    RollingBack,
    StepDetail,
    StepStarted,
)
from reconciler.state import ResourceKey


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _feed(reporter: ProgressReporter, total: int) -> None:
    for number in range(1, total + 1):
        reporter(StepStarted(number, total, "create", ResourceKey("Endpoint", f"e{number:04d}")))
    reporter.close()


def test_long_plan_on_a_terminal_draws_one_bar_in_place() -> None:
    screen = Terminal()
    ticks = iter(float(n) for n in range(10_000))
    _feed(ProgressReporter(screen, clock=lambda: next(ticks), width=100), 200)
    text = screen.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    assert text.count("\r") == 200
    last = text.rsplit("\r", 1)[1]
    assert "200/200" in last and "create Endpoint/e0200" in last and last.startswith("[#")
    assert all(len(part.rstrip("\n").replace("\x1b[K", "")) <= 99 for part in text.split("\r"))


def test_redraws_are_throttled_but_the_last_step_is_shown() -> None:
    screen = Terminal()
    _feed(ProgressReporter(screen, clock=lambda: 0.0, width=80), 500)
    text = screen.getvalue()
    assert text.count("\r") == 2  # first step, then the last one
    assert "500/500" in text


def test_short_plan_on_a_terminal_prints_lines() -> None:
    screen = Terminal()
    _feed(ProgressReporter(screen), BAR_THRESHOLD)
    assert screen.getvalue().splitlines()[0] == f"[1/{BAR_THRESHOLD}] create Endpoint/e0001"
    assert "\r" not in screen.getvalue()


def test_not_a_terminal_prints_every_step_as_a_line() -> None:
    log = io.StringIO()
    _feed(ProgressReporter(log), 100)
    lines = log.getvalue().splitlines()
    assert len(lines) == 100 and lines[-1] == "[100/100] create Endpoint/e0100"


def test_other_messages_end_the_bar_line_first() -> None:
    screen = Terminal()
    reporter = ProgressReporter(screen, clock=lambda: 0.0, width=80)
    reporter(StepStarted(1, 100, "create", ResourceKey("Sandbox", "a")))
    reporter(StepDetail("nftables: 2 rules removed, 1 added, one transaction"))
    assert screen.getvalue().endswith(
        "\n      nftables: 2 rules removed, 1 added, one transaction\n")


def test_events_read_as_the_lines_of_before() -> None:
    """The text of each event is what the engine printed when progress was a string."""
    step = StepStarted(3, 9, "delete", ResourceKey("Network", "old"))
    assert str(step) == "[3/9] delete Network/old"
    assert str(RollingBack(step)) == "rollback [3/9] delete Network/old"
    assert str(RollingBack(DebrisRemoved(("bridge br-x", "veth cnm0123456ab")))) == (
        "rollback removed bridge br-x, veth cnm0123456ab left behind by an interrupted cnm run")
    log = io.StringIO()
    reporter = ProgressReporter(log)
    reporter(RollingBack(step))
    assert log.getvalue() == "rollback [3/9] delete Network/old\n"


def test_the_bar_reaches_100_percent_when_every_step_ran() -> None:
    from reconciler.progress import StepsDone

    screen = Terminal()
    ticks = iter(float(n) for n in range(10_000))
    reporter = ProgressReporter(screen, clock=lambda: next(ticks), width=100)
    for number in range(1, 201):
        reporter(StepStarted(number, 200, "create", ResourceKey("Endpoint", f"e{number:04d}")))
    assert " 99%" in screen.getvalue().rsplit("\r", 1)[1]  # the last step is about to run
    reporter(StepsDone(200))
    reporter.close()
    last = screen.getvalue().rsplit("\r", 1)[1]
    assert "200/200 100%" in last and last.startswith("[" + "#" * 33 + "]")


def test_steps_done_adds_no_line_to_a_log() -> None:
    from reconciler.progress import StepsDone

    log = io.StringIO()
    reporter = ProgressReporter(log)
    reporter(StepStarted(1, 1, "create", ResourceKey("Sandbox", "a")))
    reporter(StepsDone(1))
    assert log.getvalue() == "[1/1] create Sandbox/a\n"
