"""Planning an endpoint on another apply set's network (shared_networks.py), with fakes:
the network comes from the observed state's view of the other set, addresses other
sets hold are never handed out, the plan line names the network's set, and deleting a
network another set still uses is refused, naming its users."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from reconciler.engine import compute_plan, deletion_plan
from reconciler.errors import ConflictError, ManifestError
from reconciler.loader import load
from reconciler.render import render_text
from reconciler.shared_networks import BorrowedNetwork, network_of
from reconciler.state import Resource, ResourceKey, State

from builders import endpoint, manifests, network, sandbox

A_SET = manifests(
    network("front", "10.50.0.0/24", mtu=1400), sandbox("a1"),
    endpoint("a1-front", "front", "a1"),
)
B_TEXT = """\
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: b1}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: b1-front}
spec: {network: front, sandbox: b1, ports: [{hostPort: 8080, containerPort: 80}]}
"""


def _applied_a(sharers: dict[str, tuple[tuple[str, str, tuple[str, ...]], ...]]) -> State:
    """Set a as a perfect apply leaves it, plus what observation reads of other sets."""
    desired = compute_plan(A_SET, State("a")).desired
    return dataclasses.replace(desired, sharers=sharers)


def _a_network() -> Resource:
    return _applied_a({}).resources[ResourceKey("Network", "front")]


def _b_observed(holders: tuple[tuple[str, str, tuple[str, ...]], ...]) -> State:
    return State("b", borrowable={"front": _a_network()}, sharers={"a/front": holders})


def _load_b(tmp_path: Path, text: str = B_TEXT) -> object:
    path = tmp_path / "b.yaml"
    path.write_text(text)
    return load([str(path)], elsewhere={"front": network_of(_a_network())})


def test_the_borrowed_network_is_the_other_sets_as_the_kernel_shows_it() -> None:
    model = network_of(_a_network())
    assert isinstance(model, BorrowedNetwork) and model.owner_set == "a"
    assert (model.spec.driver, model.spec.mtu, model.bridge_name) == (
        "bridge", 1400, _a_network().get("bridge"))
    assert [(str(p.subnet), str(p.effective_gateway())) for p in model.spec.ipam] == [
        ("10.50.0.0/24", "10.50.0.1")]


def test_an_endpoint_joins_another_sets_network_avoiding_its_addresses(tmp_path: Path) -> None:
    held = _applied_a({}).resources[ResourceKey("Endpoint", "a1-front")].get("ipv4")
    assert held == ("10.50.0.2/24",)
    planned = compute_plan(_load_b(tmp_path), _b_observed((("a", "a1-front", held),)))
    plan = planned.plan
    assert [(a.verb, str(a.key)) for a in plan.actions] == [
        ("create", "Sandbox/b1"), ("create", "Endpoint/b1-front")]  # no Network, no Resolver
    joined = planned.desired.resources[ResourceKey("Endpoint", "b1-front")]
    assert joined.get("ipv4") == ("10.50.0.3/24",)  # .2 is a1-front's
    assert (joined.get("network"), joined.get("network_set"), joined.get("mtu")) == (
        "front", "a", 1400)
    assert joined.get("ports") == ("8080->80/tcp",)
    line = next(x for x in render_text(plan).splitlines() if "Endpoint/b1-front" in x)
    assert "10.50.0.3/24  (network front of set 'a')  ports 8080->80/tcp" in line, line
    # The sandbox asks no resolver of set b for a's network: names do not cross sets.
    sandbox_files = planned.desired.resources[ResourceKey("Sandbox", "b1")]
    assert "10.50.0.1" not in str(sandbox_files.get("files.resolv.conf"))


def test_the_owner_never_hands_out_an_address_another_set_holds() -> None:
    more = manifests(*A_SET.objects(), sandbox("a2"), endpoint("a2-front", "front", "a2"))
    observed = _applied_a({"a/front": (("b", "b1-front", ("10.50.0.3/24",)),)})
    planned = compute_plan(more, observed)
    added = planned.desired.resources[ResourceKey("Endpoint", "a2-front")]
    assert added.get("ipv4") == ("10.50.0.4/24",)
    assert [str(a.key) for a in planned.plan.actions] == ["Sandbox/a2", "Endpoint/a2-front",
                                                          "Resolver/a"]


def test_deleting_or_pruning_a_network_another_set_uses_is_refused() -> None:
    observed = _applied_a({"a/front": (("b", "b1-front", ("10.50.0.3/24",)),
                                       ("c", "c9", ()))})
    with pytest.raises(ConflictError) as refused:
        deletion_plan(manifests(network("front", "10.50.0.0/24")), observed)
    assert str(refused.value) == (
        "cannot delete Network/front: another apply set still uses it (Endpoint/b1-front "
        "of set 'b', Endpoint/c9 of set 'c'); delete those endpoints first")
    with pytest.raises(ConflictError):  # pruned by apply: the manifests no longer hold it
        compute_plan(manifests(sandbox("a1")), observed)
    with pytest.raises(ConflictError):  # replaced: another subnet
        compute_plan(manifests(network("front", "10.51.0.0/24", mtu=1400), sandbox("a1"),
                               endpoint("a1-front", "front", "a1")), observed)
    # Without other users the very same deletion is planned.
    assert deletion_plan(manifests(network("front", "10.50.0.0/24")), _applied_a({})).plan


def test_a_network_gone_from_the_kernel_since_loading_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as gone:
        compute_plan(_load_b(tmp_path), State("b"))
    (problem,) = gone.value.problems
    assert (problem.obj, problem.field) == ("Endpoint/b1-front", "spec.network")
    assert "of apply set 'a' is no longer in the kernel" in problem.message


def test_loading_without_the_other_sets_network(tmp_path: Path) -> None:
    path = tmp_path / "b.yaml"
    path.write_text(B_TEXT)
    with pytest.raises(ManifestError) as unknown:
        load([str(path)])
    assert [(p.line, p.field) for p in unknown.value.problems] == [(8, "spec.network")]
    loaded = load([str(path)], external_networks=True)  # what `cnm validate` does
    assert list(loaded.networks) == [] and list(loaded.endpoints) == ["b1-front"]
    # A static address is checked against the borrowed network's pools like any other.
    bad = B_TEXT.replace("sandbox: b1,", "sandbox: b1, ipv4Address: 10.60.0.9,")
    with pytest.raises(ManifestError) as outside:
        _load_b(tmp_path, bad)
    assert [p.field for p in outside.value.problems] == ["spec.ipv4Address"]


def test_the_view_of_other_sets_round_trips_through_json() -> None:
    state = _b_observed((("a", "a1-front", ("10.50.0.2/24",)),))
    again = State.from_json(json.loads(json.dumps(state.to_json())))
    assert again.borrowable == state.borrowable and again.sharers == state.sharers
    assert "borrowable" not in State("b").to_json()  # older snapshots stay as they were


def test_on_a_network_whose_icc_is_off_the_endpoint_drops_its_own_frames(
        tmp_path: Path) -> None:
    from reconciler.firewall import wanted_rules

    observed = _b_observed(())
    off = dataclasses.replace(observed, borrowable={
        "front": observed.borrowable["front"].extended({"icc": False})})
    planned = compute_plan(_load_b(tmp_path), off)  # loaded before icc was known
    joined = planned.desired.resources[ResourceKey("Endpoint", "b1-front")]
    assert joined.get("icc") is False
    rules = wanted_rules(planned.desired)[(joined.key, "icc")]
    assert rules is not None and [(r.family, r.chain, r.comment) for r in rules] == [
        ("bridge", "forward", "cnm/v1 set=b Endpoint/b1-front icc")]
    assert str(joined.get("veth")) in json.dumps(rules[0].add_command())
    on = compute_plan(_load_b(tmp_path), observed).desired  # icc on: no drop, no attribute
    assert "icc" not in on.resources[ResourceKey("Endpoint", "b1-front")].attrs


def test_observation_names_each_networks_users_from_other_sets() -> None:
    from reconciler.kernel.observe import Fragment, sharers

    seen = Fragment("a")
    seen.bridge_networks = {5: "front"}  # a's own bridge
    seen.foreign_bridges = {9: ("c", "back")}  # c's bridge
    seen.foreign_ports = {("b", "b1-front"): 5, ("c", "c1-back"): 9, ("b", "b1-back"): 9,
                          ("d", "lost"): 77}  # a port of no known network: nobody's user
    seen.foreign_ends = {("b", "b1-front"): ("10.50.0.3/24",), ("c", "c1-back"): ("10.9.0.2/24",)}
    assert sharers(seen) == {
        "a/front": (("b", "b1-front", ("10.50.0.3/24",)),),
        "c/back": (("b", "b1-back", ()), ("c", "c1-back", ("10.9.0.2/24",))),
    }


def test_diagrams_link_the_endpoint_to_the_other_sets_network(tmp_path: Path) -> None:
    from reconciler.mermaid import host_diagram, plan_diagram

    planned = compute_plan(_load_b(tmp_path), _b_observed(()))
    drawn = plan_diagram(planned.plan)
    assert 'a__n__front(["Network front (set a)"]):::kept' in drawn
    assert "b__e__b1_front --- a__n__front" in drawn
    host = host_diagram([_applied_a({}), planned.desired])
    assert host.count("a__n__front([") == 1 and "b__e__b1_front --- a__n__front" in host
