"""reconcile(): load -> desire -> observe -> diff -> plan -> render or apply -> verify.

The only module that strings the pipeline together; the CLI and the Python
API both go through it, so they cannot disagree about what a plan means.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from reconciler.desired import build_desired
from reconciler.errors import CnmError, VerifyError
from reconciler.kernel.apply import ApplyContext, run_step, settle_teardown
from reconciler.kernel.firewall_steps import run_own_step
from reconciler.kernel.observe import observe
from reconciler.kernel.session import KernelSession, require_privileges
from reconciler.loader import load
from reconciler.lock import apply_lock
from reconciler.model import Manifests
from reconciler.plan import Plan, make_plan
from reconciler.pools import DEFAULT_POOLS, AddressPool
from reconciler.render import render_text
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
    """Observe one apply set (needs privileges)."""
    require_privileges("observation")
    if session is not None:
        return observe(set_name, session)
    with KernelSession() as own:
        return observe(set_name, own)


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
    for number, step in enumerate(steps, 1):
        if step.verb != "delete":
            settle_teardown(ctx)
        if progress is not None:
            progress(f"[{number}/{len(steps)}] {step.verb} {step.action.key}")
        if not run_own_step(step, planned.desired, progress):
            run_step(ctx, step)
    settle_teardown(ctx)


def verify(
    planned: Planned, replan: Callable[[State], Planned] | None, session: KernelSession
) -> None:
    """Re-observe; the plan must now be empty.

    `replan` recomputes the plan from the manifests (the same planner the apply
    used); without it the desired state of the plan itself is the reference.
    """
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
) -> ApplyResult | Planned:
    """Lock, observe, plan, (confirm), execute, verify. Returns the plan if not confirmed."""
    require_privileges("apply")
    start = time.monotonic()
    with apply_lock(lock_timeout, notify), KernelSession() as session:
        planned = planner(observe(set_name, session))
        if planned.plan.empty:
            return ApplyResult(planned, time.monotonic() - start)
        if confirm is not None and not confirm(planned):
            return planned
        execute(planned, session=session, progress=progress)
        verify(planned, planner if manifests is not None else None, session)
    return ApplyResult(planned, time.monotonic() - start)


def check_not_empty(manifests: Manifests, observed: State, allow_empty: bool) -> None:
    if manifests.is_empty() and len(observed) and not allow_empty:
        raise EmptyManifestsError(
            f"the manifests hold no object but apply set '{observed.set_name}' owns "
            f"{len(observed)}; applying would delete them all (use --allow-empty to mean it)"
        )
