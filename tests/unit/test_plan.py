"""Diff and plan: minimal, ordered, deterministic; replacement names its forcing field."""

from __future__ import annotations

import pytest

from reconciler.desired import build_desired
from reconciler.diff import Change, diff_attrs
from reconciler.errors import ConflictError
from reconciler.plan import PHASES, every_phase_pair, make_plan
from reconciler.state import Resource, State

from builders import endpoint, manifests, network, sandbox


def _world(mtu: int = 1500, subnet: str = "10.0.0.0/24") -> object:
    return manifests(
        network("net", subnet, mtu=mtu), sandbox("s1"), sandbox("s2"),
        endpoint("e1", "net", "s1"), endpoint("e2", "net", "s2"),
    )


def _applied(m: object) -> State:
    """The observed state after a perfect apply: the desired state itself."""
    return build_desired(m, "default", State("default"))  # type: ignore[arg-type]


def test_every_verb_kind_pair_has_a_phase() -> None:
    assert set(every_phase_pair()) == set(PHASES)
    assert len(PHASES) == len(set(PHASES))


def test_deletes_run_in_reverse_of_creates() -> None:
    creates = [kind for verb, kind in PHASES if verb == "create"]
    deletes = [kind for verb, kind in PHASES if verb == "delete"]
    assert deletes == ["Resolver", "Endpoint", "Network", "Sandbox"]
    assert creates.index("Resolver") > creates.index("Endpoint")  # listens on gateways
    assert creates.index("Endpoint") > creates.index("Network")
    assert creates.index("Endpoint") > creates.index("Sandbox")


def test_from_scratch_everything_is_created_in_phase_order() -> None:
    plan = make_plan(_applied(_world()), State("default"))
    assert [a.verb for a in plan] == ["create"] * 6
    steps = [(s.verb, str(s.action.key)) for s in plan.steps()]
    assert steps == [
        ("update", "Firewall/default"),
        ("create", "Sandbox/s1"), ("create", "Sandbox/s2"), ("create", "Network/net"),
        ("create", "Endpoint/e1"), ("create", "Endpoint/e2"), ("create", "Resolver/default"),
        ("update", "BridgePorts/default"),
    ]


def test_applied_state_plans_nothing_and_says_why() -> None:
    state = _applied(_world())
    plan = make_plan(state, state)
    assert plan.empty
    assert len(plan.in_sync) == 6  # the resolver too


def test_mtu_change_is_an_update_of_exactly_that() -> None:
    plan = make_plan(_applied(_world(mtu=9000)), _applied(_world()))
    by_key = {str(a.key): a for a in plan}
    assert by_key["Network/net"].verb == "update"
    assert by_key["Network/net"].changes == (Change("mtu", 1500, 9000),)
    assert {a.verb for a in plan} == {"update"}
    assert set(by_key) == {"Network/net", "Endpoint/e1", "Endpoint/e2"}


def test_subnet_change_forces_replacement_and_cascades_to_endpoints() -> None:
    plan = make_plan(_applied(_world(subnet="10.1.0.0/24")), _applied(_world()))
    by_key = {str(a.key): a for a in plan}
    assert by_key["Network/net"].verb == "replace"
    assert by_key["Network/net"].forced_by == ("subnets",)
    assert by_key["Endpoint/e1"].verb == "replace"
    assert by_key["Endpoint/e1"].forced_by == ("Network/net is replaced",)
    steps = [(s.verb, str(s.action.key)) for s in plan.steps()]
    assert steps.index(("delete", "Endpoint/e1")) < steps.index(("delete", "Network/net"))
    assert steps.index(("create", "Network/net")) < steps.index(("create", "Endpoint/e1"))


def test_object_no_longer_in_manifests_is_pruned() -> None:
    smaller = manifests(network("net", "10.0.0.0/24"), sandbox("s1"), sandbox("s2"),
                        endpoint("e1", "net", "s1"))
    plan = make_plan(_applied(smaller), _applied(_world()))
    deleted = [str(a.key) for a in plan if a.verb == "delete"]
    assert deleted == ["Endpoint/e2"]


def test_unsaid_attribute_is_not_drift() -> None:
    desired = {"mtu": 1500}
    observed = {"mtu": 1500, "mac": "02:00:00:00:00:01"}
    assert diff_attrs(desired, observed) == []


def test_kernel_name_held_by_a_foreign_object_is_a_conflict() -> None:
    observed = State("default", {}, {"link:br-net": "link br-net (not owned by cnm)"})
    with pytest.raises(ConflictError, match="br-net is taken by link br-net"):
        make_plan(_applied(_world()), observed)


def test_orphan_left_by_an_interrupted_apply_is_not_a_conflict() -> None:
    observed = State("default", {}, {"link:br-net": "link br-net (not owned by cnm)"},
                     frozenset({"link:br-net"}))
    assert not make_plan(_applied(_world()), observed).empty


def test_plan_is_deterministic_whatever_the_input_order() -> None:
    desired = _applied(_world())
    shuffled = State("default", dict(reversed(list(desired.resources.items()))))
    assert make_plan(desired, State("default")) == make_plan(shuffled, State("default"))


def test_adding_an_endpoint_does_not_readdress_others() -> None:
    before = _applied(_world())
    bigger = manifests(network("net", "10.0.0.0/24"), sandbox("s1"), sandbox("s2"),
                       endpoint("a0", "net", "s1"), endpoint("e1", "net", "s1"),
                       endpoint("e2", "net", "s2"))
    plan = make_plan(build_desired(bigger, "default", before), before)
    endpoint_actions = {str(a.key): a.verb for a in plan if a.key.kind == "Endpoint"}
    assert endpoint_actions == {"Endpoint/a0": "create", "Endpoint/e1": "update"}
    # a0 sorts first, so its network's gateway takes s1's default route (gwPriority ties
    # go to the endpoint name); e1 keeps its address and its interface name
    moved = next(a for a in plan if str(a.key) == "Endpoint/e1")
    assert {c.path for c in moved.changes} == {"gateway4"}
    created = next(a for a in plan if str(a.key) == "Endpoint/a0")
    assert created.desired is not None and created.desired.get("ipv4") == ("10.0.0.4/24",)


def test_resource_round_trips_through_json() -> None:
    state = _applied(_world())
    assert State.from_json(state.to_json()) == state
    resource = next(iter(state))
    assert Resource.from_json(resource.to_json()) == resource
