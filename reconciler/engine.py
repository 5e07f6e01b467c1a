"""reconcile(): load -> desire -> observe -> diff -> plan -> render or apply -> verify.

The only module that strings the pipeline together; the CLI and the Python
API both go through it, so they cannot disagree about what a plan means.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from reconciler import faults
from reconciler.confirm import Interrupts, Outcome, wait_for_confirmation
from reconciler.desired import build_desired
from reconciler.errors import CnmError, VerifyError
from reconciler.kernel.apply import ApplyContext, run_step, settle_teardown
from reconciler.kernel.debris import find_debris, remove_debris
from reconciler.kernel.firewall_steps import run_own_step
from reconciler.kernel.live import LiveObservation
from reconciler.kernel.observe import observe
from reconciler.kernel.session import KernelSession, require_privileges
from reconciler.loader import load
from reconciler.lock import apply_lock
from reconciler.model import Manifests
from reconciler.plan import Plan, make_plan
from reconciler.pools import DEFAULT_POOLS, AddressPool
from reconciler.render import render_text
from reconciler.rollback import ApplyFailedError, RestorePoint, restore_plan, restore_point
from reconciler.state import Resource, State

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Planned:
    """A plan together with the states it was computed from."""

    plan: Plan
    desired: State
    observed: State


@dataclass(frozen=True)
class ApplyResult:
    planned: Planned
    seconds: float


class EmptyManifestsError(CnmError):
    """Refusal to prune a whole set because the manifests hold no object."""


def load_manifests(paths: Sequence[str], stdin: TextIO | None = None) -> Manifests:
    """Load and validate; raises ManifestError before anything is observed."""
    return load(paths, stdin=stdin)


def compute_plan(
    manifests: Manifests, observed: State, pools: Sequence[AddressPool] = DEFAULT_POOLS
) -> Planned:
    """Pure planning: manifests + observed state -> plan."""
    desired = build_desired(manifests, observed.set_name, observed, pools)
    return Planned(make_plan(desired, observed), desired, observed)


def observe_set(set_name: str, session: KernelSession | None = None) -> State:
    """Observe one apply set (needs privileges); namespaces are read on every core."""
    require_privileges("observation")
    return _observe_live(set_name, session)[1]


def _observe_live(
    set_name: str, session: KernelSession | None
) -> tuple[LiveObservation, State]:
    """A fresh live observation and its state; `session` learns the namespaces seen."""
    live = LiveObservation(set_name)
    state = live.state()
    if session is not None:
        session.netns_seen.update(live.identities)
    return live, state


def plan_manifests(
    manifests: Manifests, set_name: str, pools: Sequence[AddressPool] = DEFAULT_POOLS
) -> Planned:
    return compute_plan(manifests, observe_set(set_name), pools)


def deletion_plan(manifests: Manifests, observed: State) -> Planned:
    """Plan that removes the owned objects these manifests name, and nothing else.

    Endpoints on a network or in a sandbox that goes away go with it, since
    they cannot exist without it.
    """
    named = {m.key for m in manifests.objects()}
    gone = {(k.kind.lower(), k.name) for k in named if k.kind in ("Network", "Sandbox")}

    def kept(resource: Resource) -> bool:
        if resource.key in named:
            return False
        parents = {("network", resource.get("network")), ("sandbox", resource.get("sandbox"))}
        return resource.key.kind != "Endpoint" or not parents & gone

    desired = State(observed.set_name, {r.key: r for r in observed if kept(r)})
    return Planned(make_plan(desired, observed), desired, observed)


def execute(
    planned: Planned,
    *,
    session: KernelSession,
    progress: Progress | None = None,
) -> None:
    """Run every step of the plan in phase order."""
    removed = frozenset(
        str(a.observed.get("netns"))
        for a in planned.plan.actions
        if a.key.kind == "Sandbox" and a.verb in ("delete", "replace") and a.observed is not None
    )
    ctx = ApplyContext(session, planned.desired, planned.observed, removed_sandboxes=removed)
    steps = planned.plan.steps()
    acted_on = {a.key.name for a in planned.plan.actions
                if a.key.kind == "Endpoint" and a.verb != "delete"}
    for number, step in enumerate(steps, 1):
        if step.verb != "delete":
            settle_teardown(ctx)
        if progress is not None:
            progress(f"[{number}/{len(steps)}] {step.verb} {step.action.key}")
        if faults.skip_step(number):
            continue
        if not run_own_step(step, planned.desired, progress, acted_on):
            run_step(ctx, step)
        faults.point(f"after step {number}/{len(steps)}: {step.verb} {step.action.key}")
    settle_teardown(ctx)


def verify(
    planned: Planned,
    replan: Callable[[State], Planned] | None,
    session: KernelSession,
    live: LiveObservation | None = None,
) -> None:
    """Re-observe; the plan must now be empty.

    `replan` recomputes the plan from the manifests (the same planner the apply
    used); without it the desired state of the plan itself is the reference.
    With `live` (the observation the plan was computed from, taken under this
    apply's lock), only what the plan touched is read again: the host, the
    namespaces of changed sandboxes and endpoints (just the files, when a
    sandbox's files were all that changed) and cnm's nftables tables; the rest
    is what was read before the first step, and nothing but this apply has
    changed it since. The whole plan is then computed again as usual.
    """
    if live is not None:
        live.mark_plan(planned)
        observed = live.state()
    else:
        observed = observe(planned.desired.set_name, session)
    after = replan(observed).plan if replan is not None else make_plan(planned.desired, observed)
    if not after.empty:
        raise VerifyError("the kernel still differs after apply:\n" + render_text(after))


def apply_planned(
    manifests: Manifests | None,
    planner: Callable[[State], Planned],
    set_name: str,
    *,
    lock_timeout: float = 60.0,
    confirm: Callable[[Planned], bool] | None = None,
    progress: Progress | None = None,
    notify: Progress | None = None,
    rollback: bool = True,
    confirm_seconds: float | None = None,
) -> ApplyResult | Planned:
    """Lock, observe, plan, (confirm), execute, verify. Returns the plan if not confirmed.

    A failed step or verification rolls back to the pre-apply state (unless
    `rollback` is False) and raises ApplyFailedError; with `confirm_seconds`,
    the verified changes are rolled back too unless `cnm confirm` arrives in time.
    """
    require_privileges("apply")
    start = time.monotonic()
    with apply_lock(lock_timeout, notify), KernelSession() as session:
        live, observed = _observe_live(set_name, session)
        planned = planner(observed)
        # Under the lock no cnm run can leave new debris: what is found now is all there is.
        debris = find_debris(session.rtnl(None)) if _has_orphans(observed) else []
        if planned.plan.empty:
            if debris:
                clear_debris(session, notify)
            return ApplyResult(planned, time.monotonic() - start)
        if debris:
            _tell(notify, debris_note(debris))
        if confirm is not None and not confirm(planned):
            return planned
        if debris:
            clear_debris(session, notify)
        execute_verified(
            planned, planner if manifests is not None else None, session, progress=progress,
            notify=notify, rollback=rollback, confirm_seconds=confirm_seconds, live=live,
        )
    return ApplyResult(planned, time.monotonic() - start)


def clear_debris(session: KernelSession, notify: Progress | None = None) -> None:
    """Remove links that a killed apply created but never labelled (see kernel/debris.py)."""
    host = session.rtnl(None)
    debris = find_debris(host)
    if debris:
        remove_debris(host, debris)
        _tell(notify, "removed " + ", ".join(str(d) for d in debris)
              + " left behind by an interrupted cnm run")


def debris_note(debris: Sequence[object]) -> str:
    return (f"Note: apply will also remove {', '.join(str(d) for d in debris)}, left behind "
            "by an interrupted cnm run.")


def pending_debris(observed: State) -> list[str]:
    """What the next apply would remove as debris (read-only; for `cnm plan`)."""
    if not _has_orphans(observed):
        return []
    with KernelSession() as own:
        return [str(d) for d in find_debris(own.rtnl(None))]


def _has_orphans(observed: State) -> bool:
    """Debris is always among the links observation saw with cnm's group and no label:
    without any, the host need not be listed again to look for it."""
    return any(name.startswith("link:") for name in observed.orphans)


def _tell(say: Progress | None, text: str) -> None:
    """Report without ever letting a dead terminal (EIO after a hang-up) stop a rollback."""
    if say is not None:
        with contextlib.suppress(OSError):
            say(text)


def execute_verified(
    planned: Planned,
    replan: Callable[[State], Planned] | None,
    session: KernelSession,
    *,
    progress: Progress | None = None,
    notify: Progress | None = None,
    rollback: bool = True,
    confirm_seconds: float | None = None,
    live: LiveObservation | None = None,
) -> None:
    """Execute and verify; on failure (or no confirmation) restore the pre-apply state.

    `live`: the observation `planned` was computed from (verification then reads
    again only what the plan touched)."""
    point = restore_point(planned.observed, planned.desired)  # before the first change
    current = ["before the first step"]

    def track(line: str) -> None:
        if line.startswith("["):  # a step line; steps may also report details
            current[0] = f"at step {line}"
        _tell(progress, line)

    interrupts = Interrupts()
    with interrupts.installed() if confirm_seconds is not None else contextlib.nullcontext():
        try:
            faults.point("before the first change")
            execute(planned, session=session, progress=track)
            current[0] = "at verification"
            verify(planned, replan, session, live)
        except (CnmError, OSError, KeyboardInterrupt) as exc:
            reason = exc.one_line() if isinstance(exc, CnmError) else str(exc) or "interrupted"
            if isinstance(exc, VerifyError):
                reason = "the kernel still differs: " + _plan_summary(exc)
            failure = f"apply failed {current[0]}: {reason}"
            if not rollback:
                raise ApplyFailedError(
                    f"{failure}; --no-rollback: the partial state is kept "
                    "(`cnm plan` shows what is left, `cnm apply` converges)"
                ) from exc
            raise ApplyFailedError(
                f"{failure}; {roll_back(point, planned.desired.set_name, progress)}"
            ) from exc
        if confirm_seconds is None:
            return
        seconds = confirm_seconds
        try:
            outcome = wait_for_confirmation(
                seconds, planned.desired.set_name, interrupts=interrupts,
                ready=lambda: _tell(notify, "Applied and verified. Keep these changes? Run "
                                    f"`cnm confirm` within {seconds:g} s, or they are rolled "
                                    "back."),
            )
        except KeyboardInterrupt:
            outcome = Outcome(False, "interrupted")
        except OSError as exc:  # the record could not be written: nobody can confirm
            outcome = Outcome(False, f"cannot wait for `cnm confirm` ({exc})")
    if outcome.confirmed:
        _tell(notify, "Confirmed: the changes are kept.")
        return
    if outcome.reason == "timeout":
        why = f"not confirmed within {confirm_seconds:g} s"
    elif outcome.reason.startswith("cannot"):
        why = outcome.reason
    else:
        why = f"{outcome.reason} while waiting for confirmation"
    raise ApplyFailedError(f"{why}; {roll_back(point, planned.desired.set_name, progress)}")


def _plan_summary(error: VerifyError) -> str:
    lines = [line.strip() for line in str(error).splitlines()[1:] if line.strip()]
    return "; ".join(lines)


def roll_back(point: RestorePoint, set_name: str, progress: Progress | None = None) -> str:
    """Bring the kernel back to the restore point; a one-line account of how it went.

    Uses a fresh netlink session: the apply's own may have been interrupted
    in the middle of a request.
    """

    def tell(line: str) -> None:
        _tell(progress, f"rollback {line}")

    try:
        with KernelSession() as session:
            clear_debris(session, tell)
            now = observe(set_name, session)
            undo = restore_plan(point, now)
            if undo.empty:
                return "rolled back: nothing had changed yet"
            execute(Planned(undo, point.target, now), session=session, progress=tell)
            left = restore_plan(point, observe(set_name, session))
            if not left.empty:
                raise VerifyError("the kernel still differs:\n" + render_text(left))
    except (CnmError, OSError) as exc:
        text = exc.one_line() if isinstance(exc, CnmError) else str(exc)
        return (f"the rollback failed too ({text}); the kernel is between the two states: "
                "fix the cause and run `cnm apply` to converge")
    count = len(undo.actions)
    return (f"rolled back: {count} change{'s' if count != 1 else ''} undone, the kernel is "
            "as before this apply (verified)")


def check_not_empty(manifests: Manifests, observed: State, allow_empty: bool) -> None:
    if manifests.is_empty() and len(observed) and not allow_empty:
        raise EmptyManifestsError(
            f"the manifests hold no object but apply set '{observed.set_name}' owns "
            f"{len(observed)}; applying would delete them all (use --allow-empty to mean it)"
        )
