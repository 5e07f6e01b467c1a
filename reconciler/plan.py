"""Plans: the ordered actions that turn the observed state into the desired one.

One declared phase table orders every (verb, kind) for execution; a
replacement runs as a delete in the delete phases and a create in the create
phases. Display order is separate and stable: creates, updates, deletes,
replacements, each in phase order, then by name.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from reconciler.caching import PlanCaches
from reconciler.diff import Change, diff_resources
from reconciler.drivers import REPLACEMENT_FIELDS, Driver, driver_of, kernel_names
from reconciler.errors import ConflictError
from reconciler.firewall import needed_tables
from reconciler.host_settings import settings_changes
from reconciler.state import KINDS, Resource, ResourceKey, State, attrs_digest, key_order

Verb = Literal["create", "update", "delete", "replace"]
StepVerb = Literal["create", "update", "delete"]

#: Pseudo-kind of the step that brings cnm's nftables tables (one atomic
#: transaction) and the forwarding switches to the desired state of the set.
FIREWALL = "Firewall"
#: Pseudo-kind of the step that sets the link switches published ports need (hairpin
#: mode of bridge ports, `route_localnet` of bridges) once the links exist.
BRIDGE_PORTS = "BridgePorts"

#: Execution order. The firewall goes first, so deletes remove rules before the
#: links they name, and isolation rules exist before a new bridge comes up. Then
#: deletes (endpoints before the networks and sandboxes they sit in), then creates
#: and updates (namespaces, bridges, then veths). The resolver goes before the
#: networks it listens on and comes (or reloads) once their addresses are there.
PHASES: tuple[tuple[StepVerb, str], ...] = (
    ("update", FIREWALL),
    ("delete", "Resolver"),
    ("delete", "Endpoint"),
    ("delete", "Network"),
    ("delete", "Sandbox"),
    ("create", "Sandbox"),
    ("update", "Sandbox"),
    ("create", "Network"),
    ("update", "Network"),
    ("create", "Endpoint"),
    ("update", "Endpoint"),
    ("create", "Resolver"),
    ("update", "Resolver"),
    ("update", BRIDGE_PORTS),
)
DISPLAY_ORDER: tuple[Verb, ...] = ("create", "update", "delete", "replace")


def phase_of(verb: StepVerb, kind: str) -> int:
    """Position of (verb, kind) in the phase table; every pair has one."""
    return PHASES.index((verb, kind))


@dataclass(frozen=True)
class Action:
    """One object-level change; `forced_by` says why a replacement cannot be in place."""

    verb: Verb
    key: ResourceKey
    changes: tuple[Change, ...] = ()
    forced_by: tuple[str, ...] = ()
    desired: Resource | None = None
    observed: Resource | None = None
    #: the kernel differs from a desired state that is the one last applied (the
    #: object's marker carries its digest): changed outside cnm, not by the manifests
    outside: bool = False

    def steps(self) -> list[StepVerb]:
        if self.verb == "replace":
            return ["delete", "create"]
        return [self.verb]


@dataclass(frozen=True)
class Step:
    """One executable unit of a plan: an action's delete, create or update half."""

    verb: StepVerb
    action: Action


@dataclass(frozen=True)
class Plan:
    """What apply would do, in display order, plus why nothing was planned for the rest."""

    set_name: str
    actions: tuple[Action, ...]
    in_sync: tuple[ResourceKey, ...] = field(default=())
    #: host-wide settings the Firewall step turns on (host_settings.py), shown as lines
    settings: tuple[Change, ...] = ()
    #: how many objects the apply set owns now (the prune line: "N of the M ...")
    owned: int = 0
    #: deletes are of objects missing from the manifests (apply), not asked for (delete)
    prunes: bool = True
    #: endpoints of the manifests that have no sandbox, so no kernel object (yet)
    unjoined: tuple[str, ...] = ()
    #: What keeps desired networks from working that no action of this plan changes
    #: by itself: a drop in another firewall's chain (`firewall/host_accept.problems`).
    problems: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not self.actions

    def count(self, verb: Verb) -> int:
        return sum(1 for a in self.actions if a.verb == verb)

    def steps(self) -> list[Step]:
        """Executable steps in phase order (ties broken by name)."""
        steps = [Step(verb, action) for action in self.actions for verb in action.steps()]
        if any(a.key.kind in ("Network", "Endpoint") for a in self.actions):
            steps.append(Step("update", Action("update", ResourceKey(FIREWALL, self.set_name))))
        if any(a.key.kind in ("Network", "Endpoint") and a.verb != "delete"
               for a in self.actions):
            steps.append(Step("update", Action("update", ResourceKey(BRIDGE_PORTS, self.set_name))))
        return sorted(steps, key=lambda s: (phase_of(s.verb, s.action.key.kind),
                                            key_order(s.action.key)))

    def __iter__(self) -> Iterator[Action]:
        return iter(self.actions)


def display_key(action: Action) -> tuple[int, int, ResourceKey]:
    verb_rank = DISPLAY_ORDER.index(action.verb)
    step: StepVerb = "create" if action.verb == "replace" else action.verb
    return (verb_rank, phase_of(step, action.key.kind), action.key)


def check_conflicts(desired: State, observed: State, caches: PlanCaches | None = None) -> None:
    """Refuse to create anything whose kernel name something else already holds.
    `caches`: a planner's own, keeping each resource's kernel names (`PlanCaches.names`)."""
    problems: list[str] = []
    memo = caches.names.next_build() if caches is not None else None
    drivers: list[tuple[Resource, Driver]] = []
    occupied = observed.occupied
    for resource in desired:
        known = memo.get(resource.key, (resource,)) if memo is not None else None
        if known is None:
            known = ((*kernel_names(resource), *needed_tables(resource)), driver_of(resource))
            if memo is not None:
                memo.put(resource.key, (resource,), known)
        names, driver = known
        if driver is not None:
            drivers.append((resource, driver))
        for name in names:
            holder = occupied.get(name)
            if holder is None or name in observed.orphans:
                continue
            mine = observed.get(resource.key)
            if mine is not None and name in kernel_names(mine):
                continue
            problems.append(f"{resource.key}: {name.replace(':', ' ', 1)} is taken by {holder}")
    for resource, driver in drivers:  # what the driver needs of the kernel (a macvlan's parent)
        problems += driver.kernel_problems(resource, observed)
    if problems:
        raise ConflictError("; ".join(problems))


def make_plan(desired: State, observed: State, caches: PlanCaches | None = None) -> Plan:
    """Compare desired with observed (same set) and order the actions.

    `caches`: a planner's own (`caching.PlanCaches`), so that a pair of desired and
    observed resources found in sync last time, the very same objects with the same
    marker digests, is not compared again (`PlanCaches.in_sync`)."""
    check_conflicts(desired, observed, caches)
    actions: dict[ResourceKey, Action] = {}
    in_sync: list[ResourceKey] = []
    memo = caches.in_sync.next_build() if caches is not None else None
    digests, applied = desired.applied_digests, observed.applied_digests
    # keys are (kind, name) tuples: their own order is `key_order`'s
    for key in sorted(desired.resources.keys() | observed.resources.keys()):
        want, have = desired.get(key), observed.get(key)
        if have is None and want is not None:
            actions[key] = Action("create", key, desired=want)
        elif want is None and have is not None:
            actions[key] = Action("delete", key, observed=have)
        elif want is not None and have is not None:
            inputs = (want, have, digests.get(key), applied.get(key))
            if memo is not None and memo.get(key, inputs):
                in_sync.append(key)
                continue
            changes = tuple(diff_resources(want, have)) + _marker_change(key, desired, observed)
            forced = tuple(c.path for c in changes if c.path in REPLACEMENT_FIELDS[key.kind])
            outside = bool(changes) and observed.applied_digests.get(key) == attrs_digest(want) \
                if key in observed.applied_digests else False
            if forced:
                actions[key] = Action("replace", key, changes, forced, want, have, outside)
            elif changes:
                actions[key] = Action("update", key, changes, (), want, have, outside)
            else:
                in_sync.append(key)
                if memo is not None:
                    memo.put(key, inputs, True)
    _cascade_replacements(actions, desired, observed)
    ordered = tuple(sorted(actions.values(), key=display_key))
    settings = settings_changes(desired, observed) if ordered else ()
    return Plan(desired.set_name, ordered, tuple(k for k in in_sync if k not in actions),
                settings, len(observed), problems=_host_problems(desired, observed))


def _marker_change(key: ResourceKey, desired: State, observed: State) -> tuple[Change, ...]:
    """A desired state that records markers (a rollback's target) wants them back."""
    wanted = desired.applied_digests.get(key)
    have = observed.applied_digests.get(key)
    return () if wanted is None or wanted == have else (Change("marker digest", have, wanted),)


def _host_problems(desired: State, observed: State) -> tuple[str, ...]:
    """Problem lines about the host's other firewall, when observation read it."""
    if observed.host_firewall is None:
        return ()
    from reconciler.firewall import foreign, problems

    return problems.problems(desired, foreign.of_state(observed))


def _cascade_replacements(
    actions: dict[ResourceKey, Action], desired: State, observed: State
) -> None:
    """Endpoints on a replaced network or in a replaced sandbox are replaced with it."""
    replaced = {a.key for a in actions.values() if a.verb == "replace"}
    if not replaced:
        return
    for resource in desired.of_kind("Endpoint"):
        parents = (
            ResourceKey("Network", str(resource.get("network"))),
            ResourceKey("Sandbox", str(resource.get("sandbox"))),
        )
        reasons = tuple(f"{parent} is replaced" for parent in parents if parent in replaced)
        current = actions.get(resource.key)
        if not reasons or (current is not None and current.verb in ("create", "replace")):
            continue
        have = observed.get(resource.key)
        if have is None:
            continue
        actions[resource.key] = Action(
            "replace", resource.key, current.changes if current else (), reasons, resource, have
        )


def every_phase_pair() -> Sequence[tuple[StepVerb, str]]:
    """All (verb, kind) pairs a plan can contain, for the completeness test."""
    verbs: tuple[StepVerb, ...] = ("create", "update", "delete")
    return [("update", FIREWALL), ("update", BRIDGE_PORTS),
            *((verb, kind) for verb in verbs for kind in KINDS)]


@dataclass(frozen=True)
class Planned:
    """A plan together with the states it was computed from."""

    plan: Plan
    desired: State
    observed: State

    def touched(self) -> Touched:
        return touched(self.plan, self.desired, self.observed)


@dataclass(frozen=True)
class Touched:
    """What executing a plan may change in the kernel, and so what must be read again.

    Computed once per plan (`touched`): the steps learn which namespaces go away
    (with the endpoints inside them), the observation reads again exactly these
    parts to verify the apply, and `cnm watch` lets go of its subscriptions to the
    removed namespaces before they are removed.
    """

    #: links and addresses of the host namespace (bridges, host ends of veth pairs)
    host: bool = False
    #: cnm's nftables tables (the plan's Firewall step rewrites them)
    firewall: bool = False
    #: named namespaces whose links, addresses, routes and files may change
    netns: frozenset[str] = frozenset()
    #: the subset of `netns` that may appear or go (created, removed, replaced sandboxes)
    listed: frozenset[str] = frozenset()
    #: namespaces of sandboxes whose files alone change (links and addresses stay)
    files: frozenset[str] = frozenset()
    #: namespaces the plan removes
    removed: frozenset[str] = frozenset()
    #: netns in `files` -> (its sandbox, the digest apply writes on its `lo`): reading
    #: only the files again, the observation learns the new marker from here
    relabelled: Mapping[str, tuple[ResourceKey, str]] = field(default_factory=dict)


def touched(plan: Plan, desired: State, observed: State) -> Touched:
    """What executing `plan` (computed from `desired` and `observed`) may change."""
    links = any(a.key.kind != "Sandbox" for a in plan.actions)
    netns: set[str] = set()
    listed: set[str] = set()
    files: set[str] = set()
    removed: set[str] = set()
    relabelled: dict[str, tuple[ResourceKey, str]] = {}
    for action in plan.actions:
        if action.key.kind == "Sandbox":
            sandboxes = [action.key.name]
            if action.verb != "update":
                names = {str(r.get("netns")) for r in (action.desired, action.observed)
                         if r is not None}
                listed |= names
                netns |= names
                if action.verb in ("delete", "replace") and action.observed is not None:
                    removed.add(str(action.observed.get("netns")))
            elif _only_files_differ(action):
                assert action.desired is not None
                files.add(str(action.desired.get("netns")))
                relabelled[str(action.desired.get("netns"))] = (
                    action.key, desired.applied_digests.get(action.key)
                    or attrs_digest(action.desired))
                continue
        else:  # an endpoint's sandbox end, wherever it was and wherever it goes
            sandboxes = [str(r.get("sandbox")) for r in (action.desired, action.observed)
                         if r is not None and r.get("sandbox") is not None]
        for sandbox in sandboxes:
            for state in (desired, observed):
                found = state.get(ResourceKey("Sandbox", sandbox))
                if found is not None:
                    netns.add(str(found.get("netns")))
    return Touched(links, links, frozenset(netns), frozenset(listed),
                   frozenset(files - netns), frozenset(removed),
                   {name: label for name, label in relabelled.items() if name not in netns})


def _only_files_differ(action: Action) -> bool:
    """True for a Sandbox update that changes nothing but its files (hosts, resolv.conf...):
    the plan's own changes say so, no need to compare the two resources again."""
    if action.desired is None or action.observed is None:
        return False
    return all(change.path.startswith("files.") for change in action.changes)
