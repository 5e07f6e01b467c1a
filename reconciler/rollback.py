"""Undoing an apply: back to the state observed before its first change.

The pre-apply observation (an immutable `State`) is the restore point; if an
apply has to be undone, `restore_point` turns it into a desired state (the
*restore target*). Objects the observation shows half-made (by an earlier
crash) cannot be re-made as they were and are left out, and alone.

When a step fails, verification finds the kernel still differs, or an
`apply --confirm` is not confirmed in time, the pipeline plans that target
against what the kernel shows at that moment (`restore_plan`), so exactly
what this apply changed, and only that, is undone, whichever step it stopped
at. Nothing is planned up front: an apply that succeeds (almost all of them)
never pays for its inverse.

Pure: no kernel access here; the pipeline executes and verifies the plans.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.drivers import driver_of
from reconciler.errors import CnmError
from reconciler.plan import Plan, make_plan
from reconciler.state import Resource, ResourceKey, State


class ApplyFailedError(CnmError):
    """An apply stopped before the kernel matched its manifests; says what was restored.

    `cause` is what stopped it (a step's error, a failed verification, no confirmation).
    """

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause


@dataclass(frozen=True)
class RestorePoint:
    """What an apply is rolled back to, derived from the state observed before it."""

    #: the pre-apply kernel state as a desired state
    target: State
    #: objects the snapshot shows half-made (an earlier crash): left as they are
    unrestorable: frozenset[ResourceKey]


def _restorable(resource: Resource) -> bool:
    """Whether the resource can be created again as it is: a sandbox needs its netns
    name; a network or endpoint, whatever its driver needs."""
    if resource.key.kind == "Sandbox":
        return resource.get("netns") is not None
    if resource.key.kind == "Resolver":  # its configuration file could be read back
        return resource.get("listen") is not None
    driver = driver_of(resource)
    return driver is not None and driver.restorable(resource)


def restore_target(snapshot: State) -> tuple[State, frozenset[ResourceKey]]:
    """The desired state that puts the kernel back the way `snapshot` shows it.

    Objects cnm creates are always up, so the target says so even where the
    snapshot caught a link down; half-made objects cannot be re-made as they
    were and are left out (and left alone).
    """
    kept: dict[ResourceKey, Resource] = {}
    broken: set[ResourceKey] = set()
    for resource in snapshot:
        if not _restorable(resource):
            broken.add(resource.key)
            continue
        attrs = dict(resource.attrs)
        for flag in ("up", "lo_up"):
            if flag in attrs:
                attrs[flag] = True
        if resource.key.kind == "Resolver":  # started again if it had died
            attrs["process"] = "serving"
        kept[resource.key] = Resource(resource.key, resource.set_name, attrs)
    target = State(snapshot.set_name, kept, reserved_prefixes=snapshot.reserved_prefixes,
                   borrowable=snapshot.borrowable,  # the networks its endpoints join
                   applied_digests={k: d for k, d in snapshot.applied_digests.items()
                                    if k in kept})  # the markers as they were, too
    return target, frozenset(broken)


def restore_point(snapshot: State) -> RestorePoint:
    """The rollback of an apply that started from `snapshot`."""
    target, broken = restore_target(snapshot)
    return RestorePoint(target, broken)


def restore_plan(point: RestorePoint, observed: State) -> Plan:
    """The plan that brings the kernel as `observed` now back to the restore target."""
    return _without(make_plan(point.target, observed), point.unrestorable)


def _without(plan: Plan, keys: frozenset[ResourceKey]) -> Plan:
    if not keys:
        return plan
    actions = tuple(a for a in plan.actions if a.key not in keys)
    return Plan(plan.set_name, actions, plan.in_sync)
