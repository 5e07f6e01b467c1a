"""What the commands and the API ask of cnm: load, plan, observe, apply.

Planning is pure (`compute_plan`, `deletion_plan`); observing is a fresh
`LiveObservation`; applying is `pipeline.run`, the one path by which any
caller (the CLI, the Python API, `cnm watch`) changes the kernel.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TextIO

from reconciler import pipeline, shared_networks
from reconciler.caching import PlanCaches
from reconciler.desired import build_desired
from reconciler.desired_delta import rebuild
from reconciler.errors import CnmError
from reconciler.kernel.applying import ApplyObservation
from reconciler.kernel.live import LiveObservation
from reconciler.kernel.session import KernelSession, require_privileges
from reconciler.loader import load
from reconciler.manifest_set import Manifests
from reconciler.pipeline import (
    ApplyOptions,
    ApplyResult,
    Hooks,
    Notify,
    debris_note,
    execute,
    pending_debris,
    verify,
)
from reconciler.plan import Planned, make_plan
from reconciler.plan_delta import make_plan_reusing
from reconciler.pools import DEFAULT_POOLS, AddressPool
from reconciler.progress import Progress
from reconciler.state import Resource, ResourceKey, State

__all__ = [
    "ApplyResult", "EmptyManifestsError", "Planned", "apply_planned", "check_not_empty",
    "compute_plan", "debris_note", "deletion_plan", "execute", "load_manifests",
    "observe_set", "pending_debris", "plan_manifests", "verify",
]


class EmptyManifestsError(CnmError):
    """Refusal to prune a whole set because the manifests hold no object."""


def load_manifests(paths: Sequence[str], stdin: TextIO | None = None) -> Manifests:
    """Load and validate; raises ManifestError before anything is observed."""
    return load(paths, stdin=stdin)


def compute_plan(
    manifests: Manifests,
    observed: State,
    pools: Sequence[AddressPool] = DEFAULT_POOLS,
    caches: PlanCaches | None = None,
) -> Planned:
    """Pure planning: manifests + observed state -> plan. A planner that plans again
    (verification, watch, the API) passes its `caches` to reuse unchanged results."""
    manifests = single_host_share(manifests)
    manifests = shared_networks.borrowed_now(manifests, observed)
    manifests = shared_networks.reserve_shared(manifests, observed)
    desired = rebuild(manifests, observed.set_name, observed, pools, caches) \
        if caches is not None else None
    if desired is None:
        desired = build_desired(manifests, observed.set_name, observed, pools, caches=caches)
    if observed.host_firewall is not None:
        desired = host_firewall_desired(manifests, desired, observed)
    plan = make_plan_reusing(desired, observed, caches) if caches is not None \
        else make_plan(desired, observed)
    shared_networks.refuse_shared_deletes([(a.verb, a.key) for a in plan.actions], observed)
    unjoined = tuple(sorted(e.metadata.name for e in manifests.endpoints.values()
                            if e.spec.sandbox is None))
    if unjoined:  # visible, not silently left out (plan_lines.py)
        plan = dataclasses.replace(plan, unjoined=unjoined)
    return Planned(plan, desired, observed)


def host_firewall_desired(manifests: Manifests, desired: State, observed: State) -> State:
    """`desired` with the accepts its networks need in the host's other firewall."""
    from reconciler.firewall import foreign, host_accept

    opt_in = {name for name, network in manifests.networks.items()
              if network.spec.host_firewall == "accept"}
    return host_accept.desire(desired, observed, foreign.of_state(observed), opt_in)


def single_host_share(manifests: Manifests) -> Manifests:
    """Without a store, a fleet's manifests are planned for this machine's hostname; an
    overlay network needs the store (`cnm ... --store`: reconciler/fleet/)."""
    from reconciler.fleet.placement import host_share, needs_fleet, refuse_overlay_without_store

    if not needs_fleet(manifests):
        return manifests
    import socket

    host = socket.gethostname()
    refuse_overlay_without_store(manifests, host)
    return host_share(manifests, host)


def observe_set(set_name: str, session: KernelSession | None = None) -> State:
    """Observe one apply set (needs privileges); namespaces are read on every core.

    `session`, if given, learns the namespaces seen (see KernelSession.netns_seen).
    """
    require_privileges("observing the kernel")
    observation = LiveObservation(set_name)
    state = observation.state()
    if session is not None:
        session.netns_seen.update(observation.identities)
    return state


def plan_manifests(
    manifests: Manifests, set_name: str, pools: Sequence[AddressPool] = DEFAULT_POOLS
) -> Planned:
    return compute_plan(manifests, observe_set(set_name), pools)


def deletion_plan(manifests: Manifests, observed: State, *, placed: bool = False) -> Planned:
    """Plan that removes the owned objects these manifests name, and nothing else.

    Endpoints on a network or in a sandbox that goes away go with it, since
    they cannot exist without it.
    """
    if not placed:  # `placed`: already one host's share (reconciler/fleet/)
        manifests = single_host_share(manifests)
    named = {m.key for m in manifests.objects()}
    gone = {(k.kind.lower(), k.name) for k in named if k.kind in ("Network", "Sandbox")}

    def kept(resource: Resource) -> bool:
        if resource.key in named:
            return False
        parents = {("network", resource.get("network")), ("sandbox", resource.get("sandbox"))}
        return resource.key.kind != "Endpoint" or not parents & gone

    desired = State(observed.set_name, {r.key: r for r in observed if kept(r)})
    desired = _resolver_kept(desired, observed)
    plan = dataclasses.replace(make_plan(desired, observed), prunes=False)  # asked for
    shared_networks.refuse_shared_deletes([(a.verb, a.key) for a in plan.actions], observed)
    return Planned(plan, desired, observed)


def _resolver_kept(desired: State, observed: State) -> State:
    """`desired` with the resolver serving only what stays (or without one)."""
    from reconciler.drivers.common import text_values
    from reconciler.resolver.records import KIND, resolver_without

    resolver = desired.get(ResourceKey(KIND, observed.set_name))
    if resolver is None:
        return desired
    gone = [r for r in observed if r.key not in desired.resources]
    kinds = {kind: {r.key.name for r in gone if r.key.kind == kind}
             for kind in ("Network", "Sandbox")}
    addresses = {text.split("/")[0] for r in gone if r.key.kind == "Endpoint"
                 for text in text_values(r, "ipv4", "ipv6")}
    kept = resolver_without(resolver, kinds["Network"], kinds["Sandbox"], addresses)
    resources = {k: r for k, r in desired.resources.items() if k != resolver.key}
    if kept is not None:
        resources[kept.key] = kept
    return State(desired.set_name, resources)


def apply_planned(
    planner: Callable[[State], Planned],
    set_name: str,
    *,
    lock_timeout: float = 60.0,
    confirm: Callable[[Planned], bool] | None = None,
    progress: Progress | None = None,
    notify: Notify | None = None,
    rollback: bool = True,
    confirm_seconds: float | None = None,
    operation: str = "apply",
) -> ApplyResult | Planned:
    """`pipeline.run` on a fresh observation of `set_name` (`kernel/applying.py`: a small
    plan is verified from the host's notifications). Returns the plan if not confirmed."""
    require_privileges("changing the kernel")
    with ApplyObservation(set_name) as observation:
        return pipeline.run(
            observation, planner,
            ApplyOptions(lock_timeout, rollback, confirm_seconds, operation),
            Hooks(confirm, progress, notify),
        )


def check_not_empty(manifests: Manifests, observed: State, allow_empty: bool) -> None:
    if manifests.is_empty() and len(observed) and not allow_empty:
        raise EmptyManifestsError(
            f"the manifests hold no object but apply set '{observed.set_name}' owns "
            f"{len(observed)}; applying would delete them all (use --allow-empty to mean it)"
        )
