"""The one way a desired state reaches the kernel: `run`.

`cnm apply` and `cnm delete` (through `engine.apply_planned`), the Python API
(the same) and every reconcile of `cnm watch` call `run`, so what is proven
for one holds for all. As nmstate's `netapplier.apply`, one entry point wraps
the change in a checkpoint that is verified, and undone if it fails:

    lock -> observe -> plan -> debris -> confirm -> execute -> verify (-> roll back)

* lock: `/run/cnm/apply.lock`, held from the observation to the verification.
* observe: through the caller's `Observation`: a fresh `LiveObservation` for
  a one-shot command, watch's long-lived one (kept current by notifications).
* plan: the caller's planner (from manifests, a deletion, a saved plan).
* debris of killed runs (kernel/debris.py) goes once the plan is accepted.
* execute: the steps in phase order, reported as typed progress events.
* verify: the observation reads again what the plan touches (`plan.Touched`,
  computed once); what the plan acted on, and whatever reads back different,
  must now be as desired (`VerifyError` carries the plan that is left).
* roll back: a failed step or verification, Ctrl-C, or a missing `cnm
  confirm` restores the state from before (`rollback.py`) on a fresh session
  and a fresh observation, and verifies that too.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from reconciler import faults
from reconciler.confirm import Interrupts, Outcome, Reason, wait_for_confirmation
from reconciler.diff import diff_resources
from reconciler.errors import CnmError
from reconciler.kernel.apply import ApplyContext, run_step, settle_teardown
from reconciler.kernel.debris import find_debris, remove_debris
from reconciler.kernel.firewall_steps import run_own_step
from reconciler.kernel.live import LiveObservation
from reconciler.kernel.resolver import standby_for
from reconciler.kernel.session import KernelSession
from reconciler.lock import apply_lock
from reconciler.plan import Plan, Planned, Touched, make_plan
from reconciler.progress import (
    DebrisRemoved,
    Progress,
    ProgressEvent,
    RollingBack,
    StepsDone,
    StepStarted,
)
from reconciler.render import render_text
from reconciler.rollback import ApplyFailedError, restore_plan, restore_point
from reconciler.state import Resource, State

Planner = Callable[[State], Planned]
Notify = Callable[[str], None]
_Said = TypeVar("_Said")


class Observation(Protocol):
    """Where the pipeline reads the kernel (`kernel.live.LiveObservation`, or watch's)."""

    @property
    def identities(self) -> Mapping[str, Any]:
        """netns name -> (identity, `lo` marker) as last read (see KernelSession.netns_seen)."""
        ...

    def state(self) -> State:
        """The observed state now."""
        ...

    def mark_touched(self, touched: Touched) -> None:
        """What an apply is about to change: read it again on the next `state()`."""
        ...

    def reload_host(self) -> None:
        """Read the host namespace from the kernel itself on the next `state()`."""
        ...


@dataclass(frozen=True)
class ApplyOptions:
    lock_timeout: float = 60.0
    #: restore the pre-apply state when a step or the verification fails
    rollback: bool = True
    #: keep the changes only if `cnm confirm` arrives within this many seconds
    confirm_seconds: float | None = None
    #: what the run is called in its messages ("delete failed at step ...")
    operation: str = "apply"


@dataclass(frozen=True)
class Hooks:
    """How a caller takes part in a run; every hook is optional."""

    #: sees the plan before any change; False cancels the run (nothing is changed)
    confirm: Callable[[Planned], bool] | None = None
    #: the steps as they run, and the rollback's
    progress: Progress | None = None
    #: one-line notices: waiting for the lock, debris, the confirmation question
    notify: Notify | None = None
    #: called as each phase ends (lock, observe, plan, apply, verify), for timings
    phase: Callable[[str], None] | None = None


@dataclass(frozen=True)
class ApplyResult:
    planned: Planned
    seconds: float
    #: the observed state at the end: verified after an apply, the planned one otherwise
    observed: State
    #: debris of interrupted runs that this run removed
    debris: tuple[str, ...] = ()


class VerifyError(CnmError):
    """After an apply the kernel still differs; `remaining` is the plan that is left."""

    def __init__(self, remaining: Plan, what: str = "the kernel still differs after apply") -> None:
        super().__init__(f"{what}:\n{render_text(remaining)}")
        self.remaining = remaining


def run(
    observation: Observation,
    planner: Planner,
    options: ApplyOptions = ApplyOptions(),
    hooks: Hooks = Hooks(),
) -> ApplyResult | Planned:
    """Lock, observe, plan, (confirm), execute, verify. Returns the plan if not confirmed.

    A failed step or verification rolls back to the pre-apply state (unless
    `options.rollback` is False) and raises ApplyFailedError; with
    `confirm_seconds`, the verified changes are rolled back too unless `cnm
    confirm` arrives in time.
    """
    start = time.monotonic()
    lap = hooks.phase or _ignore
    with apply_lock(options.lock_timeout, hooks.notify), KernelSession() as session:
        lap("lock")
        observed = observation.state()
        session.netns_seen.update(observation.identities)
        lap("observe")
        planned = planner(observed)
        lap("plan")
        # Under the lock no cnm run can leave new debris: what is found now is all there is.
        debris = find_debris(session.rtnl(None)) if has_orphans(observed) else []
        if not planned.plan.empty and hooks.confirm is not None:
            if debris:
                _tell(hooks.notify, debris_note(debris))
            if not hooks.confirm(planned):
                return planned
        removed = clear_debris(session, hooks.notify) if debris else ()
        if planned.plan.empty:
            return ApplyResult(planned, time.monotonic() - start, observed, removed)
        verified = _apply(observation, planned, session, options, hooks)
    return ApplyResult(planned, time.monotonic() - start, verified, removed)


def _apply(
    observation: Observation, planned: Planned, session: KernelSession,
    options: ApplyOptions, hooks: Hooks,
) -> State:
    """Execute and verify; on failure (or no confirmation) restore the pre-apply state."""
    lap = hooks.phase or _ignore
    # The state to restore is the one observed before the first change (immutable);
    # its restore target is derived only if a rollback happens (it costs a full copy).
    before = planned.observed
    touched = planned.touched()
    observation.mark_touched(touched)  # watch lets go of the namespaces that will go
    where = ["before the first step"]

    def track(event: ProgressEvent) -> None:
        if isinstance(event, StepStarted):
            where[0] = f"at step {event}"
        _tell(hooks.progress, event)

    interrupts = Interrupts()
    seconds = options.confirm_seconds
    with interrupts.installed() if seconds is not None else contextlib.nullcontext():
        try:
            faults.point("before the first change")
            execute(planned, session=session, touched=touched, progress=track)
            lap("apply")
            where[0] = "at verification"
            verified = verify(planned, observation, touched)
            lap("verify")
        except (CnmError, OSError, KeyboardInterrupt) as exc:
            raise _failed(exc, where[0], before, options, hooks.progress) from exc
        if seconds is None:
            return verified
        outcome = _wait_for_confirmation(seconds, planned.desired.set_name, interrupts,
                                         hooks.notify)
    if outcome.confirmed:
        _tell(hooks.notify, "Confirmed: the changes are kept.")
        return verified
    raise ApplyFailedError(f"{outcome.describe(seconds)}; {roll_back(before, hooks.progress)}")


def _failed(
    exc: BaseException, where: str, before: State, options: ApplyOptions,
    progress: Progress | None,
) -> ApplyFailedError:
    """The error that ends a failed apply, once it is rolled back (or kept, as asked)."""
    if isinstance(exc, VerifyError):
        reason = "the kernel still differs: " + summary(exc.remaining)
    elif isinstance(exc, CnmError):
        reason = exc.one_line()
    else:
        reason = str(exc) or "interrupted"
    failure = f"{options.operation} failed {where}: {reason}"
    if not options.rollback:
        return ApplyFailedError(f"{failure}; --no-rollback: the partial state is kept "
                                "(`cnm plan` shows what is left, `cnm apply` converges)", exc)
    return ApplyFailedError(f"{failure}; {roll_back(before, progress)}", exc)


def _wait_for_confirmation(
    seconds: float, set_name: str, interrupts: Interrupts, notify: Notify | None
) -> Outcome:
    def ready() -> None:
        _tell(notify, f"Applied and verified. Keep these changes? Run `cnm confirm` within "
                      f"{seconds:g} s, or they are rolled back.")

    try:
        return wait_for_confirmation(seconds, set_name, interrupts=interrupts, ready=ready)
    except KeyboardInterrupt:
        return Outcome(False, Reason.INTERRUPTED)
    except OSError as exc:  # the record could not be written: nobody can confirm
        return Outcome(False, Reason.CANNOT_WAIT, str(exc))


def execute(
    planned: Planned,
    *,
    session: KernelSession,
    touched: Touched | None = None,
    progress: Progress | None = None,
) -> None:
    """Run every step of the plan in phase order (`touched`: `planned.touched()`)."""
    touched = touched if touched is not None else planned.touched()
    # A resolver this plan starts gets its interpreter now, loading while the steps run.
    standby = standby_for(planned.desired.set_name, (
        (a.verb, a.key.kind, a.observed) for a in planned.plan.actions))
    ctx = ApplyContext(session, planned.desired, planned.observed,
                       removed_sandboxes=touched.removed, resolver_standby=standby)
    try:
        _execute_steps(planned, ctx, progress)
    finally:
        if standby is not None:
            standby.release()  # unless the resolver's step used it


def _execute_steps(planned: Planned, ctx: ApplyContext, progress: Progress | None) -> None:
    steps = planned.plan.steps()
    acted_on = {a.key.name for a in planned.plan.actions
                if a.key.kind == "Endpoint" and a.verb != "delete"}
    for number, step in enumerate(steps, 1):
        if step.verb != "delete":
            settle_teardown(ctx)
        if progress is not None:
            progress(StepStarted(number, len(steps), step.verb, step.action.key))
        if faults.skip_step(number):
            continue
        if not run_own_step(step, planned.desired, progress, acted_on):
            run_step(ctx, step)
        faults.point(f"after step {number}/{len(steps)}: {step.verb} {step.action.key}")
    settle_teardown(ctx)
    if progress is not None and steps:
        progress(StepsDone(len(steps)))


def verify(planned: Planned, observation: Observation, touched: Touched | None = None) -> State:
    """Read again what the plan touched; it must now be as desired. Returns that state.

    The observation was told what the plan touches before the first step
    (`mark_touched`: the host and cnm's nftables tables when a network or
    endpoint changes, the namespaces of changed sandboxes and endpoints, only
    the files of a sandbox whose files were all that changed) and reads just
    that again; the rest is as read before the first step, under the same lock.

    Where the observation keeps the host from notifications (`cnm watch`), a
    difference is checked once more against a dump of the host before it
    counts: the kernel announces a new IPv6 address only once its duplicate
    address detection starts, milliseconds after the address is there.
    """
    after = observation.state()
    left = remaining(planned, after)
    if not left.empty and (touched if touched is not None else planned.touched()).host:
        observation.reload_host()
        after = observation.state()
        left = remaining(planned, after)
    if not left.empty:
        raise VerifyError(left)
    return after


def remaining(planned: Planned, after: State) -> Plan:
    """`make_plan(planned.desired, after)`, comparing only the resources that may differ.

    A resource the plan did not act on was in sync when the plan was made. If
    `after` holds the very same object the plan was computed from, observation
    did not read it again, or read it back equal (`LiveObservation` keeps the
    objects of whatever reads back unchanged): it is in sync still. Any other
    object is compared, so an observation that keeps nothing costs time, never
    a wrong verdict. Only what differs is planned (usually nothing).
    """
    desired, before, now = planned.desired.resources, planned.observed.resources, after.resources
    candidates = {action.key for action in planned.plan.actions}
    # acted on, yet the same object as before: a step that did nothing (by identity:
    # cheaper than a key lookup per resource, which a big state pays thousands of times)
    untouched = {id(a.observed) for a in planned.plan.actions if a.observed is not None}
    found = 0
    for key, have in now.items():
        had = before.get(key)
        found += had is not None
        if have is not had or id(have) in untouched:
            candidates.add(key)
    if found < len(before):  # something observed before is gone
        candidates |= before.keys() - now.keys()
    differing = {k for k in candidates if _differs(desired.get(k), now.get(k))}
    return make_plan(
        State(planned.desired.set_name, {k: desired[k] for k in differing if k in desired}),
        State(after.set_name, {k: now[k] for k in differing if k in now}, after.occupied,
              after.orphans, after.reserved_prefixes),
    )


def _differs(want: Resource | None, have: Resource | None) -> bool:
    if want is None or have is None:
        return want is not have
    return bool(diff_resources(want, have))


def summary(plan: Plan) -> str:
    """A plan's text on one line (its lines joined by "; ")."""
    return "; ".join(line.strip() for line in render_text(plan).splitlines() if line.strip())


def roll_back(before: State, progress: Progress | None = None) -> str:
    """Bring the kernel back to the state observed `before` the apply (its restore
    point); a one-line account of how it went.

    Uses a fresh netlink session and a fresh observation: the apply's own may
    have been interrupted in the middle of a request.
    """

    def tell(event: ProgressEvent) -> None:
        _tell(progress, RollingBack(event))

    try:
        point = restore_point(before)
        with KernelSession() as session:
            removed = clear_debris(session)
            if removed:
                tell(DebrisRemoved(removed))
            observation = LiveObservation(before.set_name)
            now = observation.state()
            session.netns_seen.update(observation.identities)
            undo = restore_plan(point, now)
            if undo.empty:
                return "rolled back: nothing had changed yet"
            planned = Planned(undo, point.target, now)
            touched = planned.touched()
            observation.mark_touched(touched)
            execute(planned, session=session, touched=touched, progress=tell)
            left = restore_plan(point, observation.state())
            if not left.empty:
                raise VerifyError(left, "the kernel still differs")
    except (CnmError, OSError) as exc:
        text = exc.one_line() if isinstance(exc, CnmError) else str(exc)
        return (f"the rollback failed too ({text}); the kernel is between the two states: "
                "fix the cause and run `cnm apply` to converge")
    count = len(undo.actions)
    return (f"rolled back: {count} change{'s' if count != 1 else ''} undone, the kernel is "
            "as before this apply (verified)")


# --- debris of interrupted runs ---


def has_orphans(observed: State) -> bool:
    """Debris is always among the links observation saw with cnm's group and no label:
    without any, the host need not be listed again to look for it."""
    return any(name.startswith("link:") for name in observed.orphans)


def clear_debris(session: KernelSession, notify: Notify | None = None) -> tuple[str, ...]:
    """Remove links that a killed apply created but never labelled (see kernel/debris.py)."""
    host = session.rtnl(None)
    debris = find_debris(host)
    if not debris:
        return ()
    remove_debris(host, debris)
    removed = tuple(str(d) for d in debris)
    _tell(notify, str(DebrisRemoved(removed)))
    return removed


def debris_note(debris: Sequence[object]) -> str:
    return (f"Note: apply will also remove {', '.join(str(d) for d in debris)}, left behind "
            "by an interrupted cnm run.")


def pending_debris(observed: State) -> list[str]:
    """What the next apply would remove as debris (read-only; for `cnm plan`)."""
    if not has_orphans(observed):
        return []
    with KernelSession() as own:
        return [str(d) for d in find_debris(own.rtnl(None))]


def _tell(say: Callable[[_Said], None] | None, what: _Said) -> None:
    """Report without ever letting a dead terminal (EIO after a hang-up) stop a rollback."""
    if say is not None:
        with contextlib.suppress(OSError):
            say(what)


def _ignore(phase: str) -> None:
    pass
