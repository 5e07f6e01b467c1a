"""`cnm watch`: keep the kernel converged on a manifest directory, on change and on drift.

One loop, one thread doing kernel work:

* a file watcher thread (watchfiles, which debounces an editor's save burst)
  reports manifest changes, namespaces appearing in /run/netns and edits of
  sandbox files under /etc/netns;
* netlink subscriptions (`kernel/events.py`) report link, address and route
  changes in the host namespace and in every owned sandbox namespace;
* SIGTERM / SIGINT and a periodic full resync (`--resync`, default 30 s).

Triggers arriving together are coalesced (`--debounce`) into one reconcile:
load (only changed files are parsed again, `loader.LoadCache`), then the
very pipeline `cnm apply` runs (`pipeline.run`: lock, observe, plan, debris,
execute, verify, roll back on failure) on the in-memory observed state
(`kernel/live.py`: only namespaces that had events, or that the apply
touched, are read again).

A manifest tree that does not load or validate never prunes anything: the
error is logged with its file:line and the last good manifests stay in force
(drift is still repaired against them) until the files are fixed. A file
that held objects and is now empty is taken for one being written (editors
truncate, then write) and treated the same way; delete a file to remove its
objects. Errors the kernel says are temporary (and a busy apply lock) are
retried with exponential backoff; permanent ones are logged and the loop goes
on. A failed step or verification rolls the apply back, as `cnm apply` does,
and the log line says so. A stop signal ends the loop after the step in
progress (no rollback): the plan's remaining steps are left to the next run,
which converges them.

Logging: one line per reconcile that was asked for by a file change, the
start, a resync or a retry, or that changed something or failed. Kernel
events that turn out to need nothing (cnm's own changes, other software's
links) are checked silently unless `--verbose`.
"""

from __future__ import annotations

import contextlib
import gc
import os
import queue
import resource
import selectors
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from reconciler import engine, pipeline
from reconciler.caching import PlanCaches
from reconciler.errors import CnmError, ManifestError
from reconciler.firewall.problems import unresolved
from reconciler.kernel import netns
from reconciler.kernel.resolver import ProcessWatch
from reconciler.kernel.session import require_privileges
from reconciler.kernel.watched import WatchedObservation
from reconciler.loader import LoadCache
from reconciler.manifest_set import Manifests
from reconciler.pipeline import ApplyOptions, ApplyResult, Hooks, VerifyError
from reconciler.plan import Plan, Planned, Verb
from reconciler.progress import DebrisRemoved, ProgressEvent, StepStarted
from reconciler.render import SYMBOLS
from reconciler.rollback import ApplyFailedError
from reconciler.shared_networks import networks_of
from reconciler.state import State
from reconciler.watch_paths import WatchedPaths

Log = Callable[[str], None]

RETRY_FIRST = 0.5
RETRY_MAX = 30.0
#: Longest a burst of triggers may delay a reconcile.
DEBOUNCE_MAX = 1.0
#: Changed objects named in a log line before "(+N more)".
LOG_KEYS = 6


@dataclass(frozen=True)
class WatchOptions:
    paths: tuple[str, ...]
    set_name: str = "default"
    resync: float = 30.0
    debounce: float = 0.1
    allow_empty: bool = False
    lock_timeout: float = 1.0
    verbose: bool = False


@dataclass
class Trigger:
    """Why a reconcile runs; accumulates until the reconcile starts."""

    start: bool = False
    resync: bool = False
    retry: bool = False
    files: set[str] = field(default_factory=set)
    kernel: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return self.start or self.resync or self.retry or bool(self.files or self.kernel)

    @property
    def quiet(self) -> bool:
        """Only kernel events: log only if something had to be done."""
        return not (self.start or self.resync or self.retry or self.files)

    def describe(self) -> str:
        parts = [word for word, on in (("start", self.start), ("resync", self.resync),
                                       ("retry", self.retry)) if on]
        if self.files:
            parts.append("files: " + _short(sorted(self.files)))
        if self.kernel:
            parts.append("kernel: " + _short(sorted(self.kernel)))
        return "; ".join(parts)


def _short(items: Sequence[str], limit: int = 4) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


class Stopped(Exception):
    """A stop signal arrived during an apply; raised between two steps."""


class Watcher:
    """The watch loop. `run()` returns the exit code (0 after a stop signal)."""

    def __init__(self, options: WatchOptions, log: Log) -> None:
        self.options = options
        self.log_line = log
        self.cache = LoadCache()
        #: what planning keeps from one reconcile to the next (caching.py)
        self.plan_caches = PlanCaches()
        self.selector = selectors.DefaultSelector()
        #: seconds per phase of the reconcile in progress (logged with --verbose)
        self.phases: dict[str, float] = {}
        self.observation = WatchedObservation(options.set_name, self.selector, self.phases)
        self.live = self.observation.live
        self.wake_read, self.wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.selector.register(self.wake_read, selectors.EVENT_READ, ("wake", None))
        self.file_reports: queue.SimpleQueue[set[tuple[object, str]] | BaseException] = (
            queue.SimpleQueue()
        )
        self.stop_event = threading.Event()
        self.stop_signal: int | None = None
        self.good: Manifests | None = None
        self.pending = Trigger(start=True)
        self.count = 0
        self.backoff = 0.0
        self.retry_at: float | None = None
        self.next_resync = time.monotonic() + options.resync
        self.last_error: str | None = None
        self.last_invalid: str | None = None
        self._lapped = 0.0  # when the last phase ended
        #: (manifests, observed state, desired state) objects last found in sync: skip
        #: planning them again
        self.converged: tuple[Manifests, State, State] | None = None
        self.paths = WatchedPaths(options.paths)
        self.resolver = ProcessWatch(self.selector, options.set_name)  # its death wakes us

    # --- the loop ---

    def _warm_up(self) -> None:
        """Pay one-time import costs now, not in the first reconcile that changes something."""
        import reconciler.kernel.apply  # noqa: F401

    def run(self) -> int:
        self._warm_up()
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGTERM, signal.SIGINT)}
        thread = threading.Thread(target=self._watch_files, name="cnm-watch-files", daemon=True)
        thread.start()
        try:
            self._log(f"watching {', '.join(self.options.paths)} (set {self.options.set_name}, "
                      f"resync every {self.options.resync:g} s)")
            while self.stop_signal is None:
                if self.pending:
                    self._settle()
                    if self.stop_signal is not None:
                        break
                    trigger, self.pending = self.pending, Trigger()
                    self._reconcile(trigger)
                    continue
                self._wait(self._timeout())
                now = time.monotonic()
                if now >= self.next_resync:
                    self.pending.resync = True
                if self.retry_at is not None and now >= self.retry_at:
                    self.retry_at = None
                    self.pending.retry = True
        except Stopped:
            pass
        finally:
            self.stop_event.set()
            thread.join(timeout=2.0)
            self.observation.close()
            self.resolver.close()
            self.selector.close()
            os.close(self.wake_read)
            os.close(self.wake_write)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        name = signal.Signals(self.stop_signal).name if self.stop_signal else "stop"
        self._log(f"stopped ({name})")
        return 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop_signal = signum
        with contextlib.suppress(OSError):
            os.write(self.wake_write, b"s")

    def _timeout(self) -> float:
        deadlines = [self.next_resync]
        if self.retry_at is not None:
            deadlines.append(self.retry_at)
        return max(0.0, min(deadlines) - time.monotonic())

    def _wait(self, timeout: float) -> None:
        """Wait for anything; record what it was into `self.pending`."""
        for key, _ in self.selector.select(timeout):
            source, namespace = key.data
            if source == "kernel":
                what = self.observation.notified(namespace)
                if what is not None:
                    self.pending.kernel.add(what)
            elif source == "resolver":
                self.resolver.close()
                self.pending.kernel.add("resolver")
            elif source == "nftables":
                if self.observation.nftables_notified():
                    self.pending.kernel.add("nftables")
            else:
                with contextlib.suppress(OSError):
                    while os.read(self.wake_read, 4096):
                        pass
        self._take_file_reports()

    def _settle(self) -> None:
        """Coalesce a burst: wait until `debounce` passes without news (at most DEBOUNCE_MAX)."""
        if self.pending.start or self.options.debounce <= 0:
            return
        now = time.monotonic()
        deadline, news = now + DEBOUNCE_MAX, now
        while self.stop_signal is None:
            remaining = min(news + self.options.debounce, deadline) - time.monotonic()
            if remaining <= 0:
                return
            before = self.pending.describe()
            self._wait(remaining)
            if self.pending.describe() != before:
                news = time.monotonic()

    # --- files ---

    def _watch_files(self) -> None:
        import watchfiles

        try:
            for changes in watchfiles.watch(
                *self.paths.directories(netns.NETNS_RUN_DIR, netns.NETNS_ETC_DIR),
                watch_filter=None, debounce=1600, step=50,
                stop_event=self.stop_event, rust_timeout=1000, raise_interrupt=False,
            ):
                self.file_reports.put({(c, p) for c, p in changes})
                with contextlib.suppress(OSError):
                    os.write(self.wake_write, b"f")
        except BaseException as exc:  # reported by the loop, which goes on with resyncs
            self.file_reports.put(exc)
            with contextlib.suppress(OSError):
                os.write(self.wake_write, b"f")

    def _take_file_reports(self) -> None:
        while True:
            try:
                report = self.file_reports.get_nowait()
            except queue.Empty:
                return
            if isinstance(report, BaseException):
                if not self.stop_event.is_set():
                    self._log(f"file watching stopped ({report}); "
                              f"only resyncs every {self.options.resync:g} s from now on")
                continue
            for change, path in report:
                self._file_changed(str(getattr(change, "name", change)), Path(path))

    def _file_changed(self, change: str, path: Path) -> None:
        for directory, kind in ((netns.NETNS_RUN_DIR, "run"), (netns.NETNS_ETC_DIR, "etc")):
            with contextlib.suppress(ValueError):
                parts = path.relative_to(directory).parts
                if kind == "run" and len(parts) == 1:
                    self.live.mark_netns(parts[0])
                    self.pending.kernel.add(f"/run/netns/{parts[0]}")
                elif kind == "run":
                    self.live.mark_netns_list()
                    self.pending.kernel.add("/run/netns")
                elif parts:  # only the sandbox's files: its links did not change
                    self.live.mark_files(parts[0])
                    self.pending.kernel.add(f"/etc/netns/{parts[0]}")
                return
        file = self.paths.manifest_file(change, path)
        if file is not None:
            self.cache.forget(file)
            self.pending.files.add(self.paths.display_name(file))

    # --- one reconcile ---

    def _lap(self, name: str) -> None:
        """Phase `name` ends now (timings for --verbose)."""
        now = time.monotonic()
        self.phases[name] = self.phases.get(name, 0.0) + now - self._lapped
        self._lapped = now

    def _reconcile(self, trigger: Trigger) -> None:
        """One reconcile, without the cycle collector: reference counting frees almost
        all it allocates, and a collection in the middle of it (thousands of new
        resources per reconcile reach the older generations) cost up to 50 ms. The
        collector runs again between reconciles."""
        gc.disable()
        try:
            self._reconcile_now(trigger)
        finally:
            gc.enable()
            self.resolver.follow()

    def _reconcile_now(self, trigger: Trigger) -> None:
        start = self._lapped = time.monotonic()
        self.phases.clear()
        self.count += 1
        if trigger.resync or trigger.start:
            self.cache.forget()
            self.live.mark_all()
            self.next_resync = start + self.options.resync
        previous = self.good
        manifests, invalid = self._manifests()
        self._lap("load")
        if not (trigger.start or trigger.resync):
            # name what the files really changed, whichever event woke us up
            trigger.files = {self.paths.display_name(f) for f in self.cache.changed}
            if manifests is not None and not invalid and (
                    manifests is previous or manifests == previous):
                trigger.files.clear()  # saved again unchanged, or a temporary file
        notes = []
        if invalid and not (trigger.quiet and invalid == self.last_invalid):
            notes.append(f"manifests invalid, keeping the last good state: {invalid}")
        self.last_invalid = invalid
        if manifests is None:
            if notes:
                self._log(f"#{self.count} {trigger.describe()}: {notes[0]}; nothing applied "
                          "(no good state so far)")
            return
        try:
            result = self._converge(manifests)
        except Stopped as stop:
            self._log(f"#{self.count} {trigger.describe()}: stop signal: halted before {stop}; "
                      "the next run converges the rest")
            raise
        except Exception as exc:  # noqa: BLE001 - the loop must survive anything
            self.live.mark_all()
            message = exc.one_line() if isinstance(exc, CnmError) else f"internal error: {exc!r}"
            cause = exc.cause if isinstance(exc, ApplyFailedError) and exc.cause else exc
            # a verify failure means something changed meanwhile: look again soon
            if getattr(cause, "retryable", False) or not isinstance(cause, CnmError) \
                    or isinstance(cause, VerifyError):
                self.backoff = min(RETRY_MAX, self.backoff * 2 if self.backoff else RETRY_FIRST)
                self.retry_at = time.monotonic() + self.backoff
                message += f" (temporary; retrying in {self.backoff:g} s)"
            if not (trigger.quiet and message == self.last_error):
                self._log(f"#{self.count} {trigger.describe()}: failed: {message}"
                          + "".join(f"; {n}" for n in notes))
            self.last_error = message
            return
        self.backoff = 0.0
        self.retry_at = None
        self.last_error = None
        seconds = time.monotonic() - start
        plan = result.planned.plan
        if result.debris:
            notes.append(str(DebrisRemoved(result.debris)))
        notes += [f"PROBLEM {line}" for line in unresolved(plan.problems)]
        if plan.empty:
            if trigger.quiet and not notes and not self.options.verbose:
                return
            notes.append(f"in sync ({len(result.observed)} objects)")
        else:
            notes.append("applied " + _plan_summary(plan))
        if self.options.verbose:
            notes.append("(" + ", ".join(f"{k} {v:.3f}".rstrip("0").rstrip(".")
                                         for k, v in self.phases.items()) + ")")
        self._log(f"#{self.count} {trigger.describe()}: {'; '.join(notes)} in {seconds:.3f} s")
        if trigger.start or trigger.resync:
            _compact_heap()


    def _manifests(self) -> tuple[Manifests | None, str | None]:
        """The manifests to converge on: the files now, else the last good ones (and why)."""
        try:
            try:
                manifests = self.cache.load(self.options.paths)
            except ManifestError as exc:  # an endpoint may join another set's network
                if not any(p.field == "spec.network" for p in exc.problems):
                    raise
                elsewhere = networks_of(self.observation.state().borrowable)
                manifests = self.cache.load(self.options.paths, elsewhere)
        except ManifestError as exc:
            return self.good, " | ".join(str(p) for p in exc.problems)
        emptied = self._emptied_files(manifests)
        if emptied:
            return self.good, (f"{_short(emptied)}: now empty (being written?); delete a file "
                               "to remove its objects")
        self.good = manifests
        return manifests, None

    def _emptied_files(self, manifests: Manifests) -> list[str]:
        if self.good is None:
            return []
        now = {s.file for s in manifests.sources.values()}
        held = sorted({s.file for s in self.good.sources.values()} - now)
        return [f for f in held if os.path.isfile(f) and os.path.getsize(f) == 0]

    def _converge(self, manifests: Manifests) -> ApplyResult:
        """One run of the pipeline (`cnm apply`'s own) on the in-memory observation."""
        last = self.converged

        def planner(observed: State) -> Planned:
            if last is not None and last[0] is manifests and last[1] is observed:
                return Planned(Plan(observed.set_name, ()), last[2], observed)  # neither changed
            engine.check_not_empty(manifests, observed, self.options.allow_empty)
            return engine.compute_plan(manifests, observed, caches=self.plan_caches)

        result = pipeline.run(self.observation, planner, ApplyOptions(self.options.lock_timeout),
                              Hooks(progress=self._step, phase=self._lap))
        assert isinstance(result, ApplyResult)  # nothing asks for a confirmation
        # in sync now: the echo of cnm's own writes, read back unchanged, needs no plan
        self.converged = (manifests, result.observed, result.planned.desired)
        return result

    def _step(self, event: ProgressEvent) -> None:
        """Progress callback: a stop signal ends the apply before the next step starts."""
        if self.stop_signal is not None and isinstance(event, StepStarted):
            raise Stopped(f"step {event.number} of {event.total}")

    def _log(self, text: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.log_line(f"{stamp} cnm watch {text}")


def _plan_summary(plan: Plan) -> str:
    words: tuple[tuple[Verb, str], ...] = (
        ("create", "created"), ("update", "updated"), ("delete", "deleted"),
        ("replace", "replaced"),
    )
    counts = ", ".join(f"{plan.count(v)} {w}" for v, w in words if plan.count(v))
    keys = [f"{SYMBOLS[a.verb]}{a.key}" for a in plan.actions]
    return f"{counts} ({_short(keys, LOG_KEYS)})"


def _compact_heap() -> None:
    """Collect now, then exempt what survives from future collections.

    A watch of 1000 endpoints holds millions of long-lived objects (parsed
    manifests, observed fragments); without this, Python's full collections
    scan them all at unpredictable moments, in the middle of a reconcile
    (about a second). Done after each full reconcile, so nothing leaks.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _raise_file_limit() -> None:
    """One subscription socket per sandbox: allow as many descriptors as the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for wanted in (hard, 1 << 20, 1 << 16):
        if soft >= wanted != resource.RLIM_INFINITY:
            return
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            return


def watch(options: WatchOptions, log: Log,
          make: Callable[[WatchOptions, Log], Watcher] | None = None) -> int:
    """Run `cnm watch` until a stop signal; returns the exit code. `make`: the loop's
    class, if not `Watcher` (the fleet's keeps the store's view too: fleet/watch.py)."""
    require_privileges("watch")
    if "-" in options.paths:
        raise CnmError("watch cannot read manifests from stdin; give files or directories")
    missing = [p for p in options.paths if not os.path.exists(p)]
    if missing:
        raise CnmError(f"{', '.join(missing)}: no such file or directory")
    _raise_file_limit()
    return (make or Watcher)(options, log).run()
