"""The restore target of an apply, fixed before its first change, and the plans it gives."""

from __future__ import annotations

from reconciler.desired import build_desired
from reconciler.manifest_set import Manifests
from reconciler.plan import make_plan
from reconciler.rollback import restore_plan, restore_point, restore_target
from reconciler.state import Resource, ResourceKey, State

from builders import endpoint, manifests, network, sandbox


def _applied(m: Manifests) -> State:
    return build_desired(m, "default", State("default"))


def _before() -> State:
    return _applied(manifests(
        network("net", "10.0.0.0/24"), network("old", "10.1.0.0/24"), sandbox("s1"),
        sandbox("s2"), endpoint("e1", "net", "s1"), endpoint("e2", "old", "s2"),
    ))


def _after() -> State:
    return _applied(manifests(
        network("net", "10.0.0.0/24", mtu=9000), network("new", "10.2.0.0/24"), sandbox("s1"),
        sandbox("s3"), endpoint("e1", "net", "s1"), endpoint("e3", "new", "s3"),
    ))


def _summary(state_plan: object) -> list[tuple[str, str]]:
    return [(a.verb, str(a.key)) for a in state_plan]  # type: ignore[attr-defined]


def test_inverse_plan_undoes_every_action_of_the_forward_plan() -> None:
    before, after = _before(), _after()
    forward = make_plan(after, before)
    point = restore_point(before)
    inverse_plan = restore_plan(point, after)  # once every step of the forward plan ran
    assert sorted(_summary(forward)) == sorted([
        ("create", "Network/new"), ("create", "Sandbox/s3"), ("create", "Endpoint/e3"),
        ("update", "Network/net"), ("update", "Endpoint/e1"),
        ("delete", "Network/old"), ("delete", "Sandbox/s2"), ("delete", "Endpoint/e2"),
        ("update", "Resolver/default"),
    ])
    inverse = {(verb, key) for verb, key in _summary(inverse_plan)}
    assert inverse == {
        ("delete", "Network/new"), ("delete", "Sandbox/s3"), ("delete", "Endpoint/e3"),
        ("update", "Network/net"), ("update", "Endpoint/e1"),
        ("create", "Network/old"), ("create", "Sandbox/s2"), ("create", "Endpoint/e2"),
        ("update", "Resolver/default"),
    }
    # executing the inverse from the applied state gives the state from before
    assert make_plan(point.target, after).actions == inverse_plan.actions
    assert make_plan(point.target, before).empty


def test_restore_plan_undoes_only_what_already_changed() -> None:
    before, after = _before(), _after()
    point = restore_point(before)
    half = dict(before.resources)
    for key in (ResourceKey("Network", "new"), ResourceKey("Sandbox", "s3")):
        half[key] = after.resources[key]  # created before the failure
    del half[ResourceKey("Endpoint", "e2")]  # deleted before the failure
    undo = restore_plan(point, State("default", half))
    assert sorted(_summary(undo)) == [
        ("create", "Endpoint/e2"), ("delete", "Network/new"), ("delete", "Sandbox/s3"),
    ]
    assert restore_plan(point, before).empty


def test_target_is_the_snapshot_with_links_up() -> None:
    before = _before()
    e1 = before.resources[ResourceKey("Endpoint", "e1")]
    down = Resource(e1.key, e1.set_name, {**e1.attrs, "up": False, "mac": "02:00:00:00:00:01"})
    snapshot = State("default", {**before.resources, e1.key: down})
    target, broken = restore_target(snapshot)
    restored = target.resources[e1.key]
    assert restored.get("up") is True and restored.get("mac") == "02:00:00:00:00:01"
    assert broken == frozenset()


def test_half_made_objects_are_neither_restored_nor_removed() -> None:
    before = _before()
    e1 = before.resources[ResourceKey("Endpoint", "e1")]
    half = Resource(e1.key, e1.set_name, {**e1.attrs, "veth": None})  # host end missing
    snapshot = State("default", {**before.resources, e1.key: half})
    point = restore_point(snapshot)
    assert point.unrestorable == frozenset({e1.key})
    assert e1.key not in point.target.resources
    assert all(a.key != e1.key for a in restore_plan(point, _after()))
    assert all(a.key != e1.key for a in restore_plan(point, snapshot))
