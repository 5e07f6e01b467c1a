"""The plan of a planner that plans again and again (`cnm watch`), from its last plan:
only the keys whose desired or observed resource (or marker digest) is not the very
object of the last plan are compared again.

`plan.make_plan` is the definition; this gives the same plan (tests compare the
two over random sequences of changes). An action of the last plan, or a key it
found in sync, stands while neither of its resources nor its digests changed and
nothing global did: the names other software holds (`occupied`, `orphans`), the
host's settings and firewall, the networks (they carry the host-wide settings
and the problem lines, and a replaced network cascades). Any of those, or a
replacement (which cascades to endpoints), makes a full plan.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler import caching
from reconciler.caching import PlanCaches
from reconciler.host_settings import settings_changes
from reconciler.plan import Plan, display_key, make_plan
from reconciler.state import ResourceKey, State


@dataclass(frozen=True)
class LastPlan:
    desired: State
    observed: State
    plan: Plan


def make_plan_reusing(desired: State, observed: State, caches: PlanCaches) -> Plan:
    """`make_plan(desired, observed, caches)`, from the last plan where it may."""
    plan = _replan(desired, observed, caches.last_plan) if caching.ENABLED else None
    if plan is None:
        plan = make_plan(desired, observed, caches)
    caches.last_plan = LastPlan(desired, observed, plan)
    return plan


def _replan(desired: State, observed: State, last: object) -> Plan | None:
    if not isinstance(last, LastPlan) or last.desired.set_name != desired.set_name:
        return None
    before = last.observed
    if observed.occupied != before.occupied or observed.orphans != before.orphans \
            or observed.host_settings != before.host_settings \
            or observed.host_firewall != before.host_firewall \
            or any(a.verb == "replace" for a in last.plan.actions):
        return None
    acted = {a.key for a in last.plan.actions}
    dirty = _changed(last.desired, desired, acted) | _changed(before, observed, acted)
    if any(key.kind == "Network" for key in dirty):
        return None
    if not dirty:
        return last.plan
    part = make_plan(_part(desired, dirty), _part(observed, dirty))
    if any(a.verb == "replace" for a in part.actions):
        return None
    actions = [a for a in last.plan.actions if a.key not in dirty]
    actions += part.actions
    ordered = tuple(sorted(actions, key=display_key))
    in_sync = tuple(sorted({k for k in last.plan.in_sync if k not in dirty} | set(part.in_sync)))
    return Plan(desired.set_name, ordered, in_sync,
                settings_changes(desired, observed) if ordered else (), len(observed),
                problems=last.plan.problems)


def _changed(old: State, new: State, acted: set[ResourceKey]) -> set[ResourceKey]:
    """Keys whose resource or marker digest changed between the two states.

    A resource that is another object but equal (observation reads a network again
    when any host link changed; the host firewall's accepts are added anew each
    plan) leaves a key in sync as it was; a key the last plan acted on is compared
    again all the same, so that its action carries the objects of now."""
    mine, theirs = new.resources, old.resources
    changed = {key for key, resource in mine.items()
               if (had := theirs.get(key)) is not resource
               and (key in acted or had is None or had != resource)}
    if len(mine) - len(changed) != len(theirs):  # some went
        changed |= theirs.keys() - mine.keys()
    if new.applied_digests != old.applied_digests:
        changed |= {key for key in new.applied_digests.keys() | old.applied_digests.keys()
                    if new.applied_digests.get(key) != old.applied_digests.get(key)}
    return changed


def _part(state: State, keys: set[ResourceKey]) -> State:
    """`state` restricted to `keys` (its kernel names held by others kept whole)."""
    return State(state.set_name, {k: state.resources[k] for k in keys if k in state.resources},
                 state.occupied, state.orphans, state.reserved_prefixes,
                 applied_digests={k: state.applied_digests[k] for k in keys
                                  if k in state.applied_digests})
