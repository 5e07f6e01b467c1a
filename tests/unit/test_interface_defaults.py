"""Default interface names and default routes of a sandbox's endpoints
(reconciler/interface_defaults.py), alone and through the desired state."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.desired import build_desired
from reconciler.errors import ManifestError
from reconciler.interface_defaults import Member, Placement, place_alone, place_sandbox
from reconciler.loader import load_text
from reconciler.plan import make_plan
from reconciler.state import ResourceKey, State

from builders import endpoint, manifests, network, sandbox


def names(placed: dict[str, Placement]) -> dict[str, str]:
    return {name: p.ifname for name, p in placed.items()}


def carriers(placed: dict[str, Placement]) -> dict[int, str]:
    return {v: name for name, p in placed.items() for v in p.routes}


def test_fresh_sandbox_names_eth0_eth1_in_endpoint_name_order() -> None:
    placed = place_sandbox([Member("web-back"), Member("web-front")], {})
    assert names(placed) == {"web-back": "eth0", "web-front": "eth1"}


def test_existing_names_are_kept_and_new_endpoints_take_the_lowest_free() -> None:
    held = {"b": "eth0", "c": "eth2"}  # eth1's endpoint was removed earlier
    placed = place_sandbox([Member("a"), Member("b"), Member("c")], held)
    assert names(placed) == {"a": "eth1", "b": "eth0", "c": "eth2"}


def test_hand_written_names_win_and_defaults_avoid_them() -> None:
    placed = place_sandbox([Member("a"), Member("b", ifname="eth0"), Member("c", ifname="lan")],
                           {})
    assert names(placed) == {"a": "eth1", "b": "eth0", "c": "lan"}


def test_a_name_that_is_not_a_default_is_not_kept_once_the_manifest_drops_it() -> None:
    assert names(place_sandbox([Member("a")], {"a": "web0"})) == {"a": "eth0"}


def test_default_route_highest_gw_priority_then_endpoint_name() -> None:
    members = [Member("a"), Member("b", gw_priority=5), Member("c", gw_priority=5)]
    assert carriers(place_sandbox(members, {})) == {4: "b", 6: "b"}
    assert carriers(place_sandbox([Member("a"), Member("b")], {})) == {4: "a", 6: "a"}


def test_internal_networks_never_carry_the_default_route() -> None:
    members = [Member("a", internal=True, gw_priority=100), Member("b")]
    assert carriers(place_sandbox(members, {})) == {4: "b", 6: "b"}
    assert carriers(place_sandbox([Member("a", internal=True)], {})) == {}


def test_explicit_gateway_overrides_and_false_opts_out() -> None:
    members = [Member("a", gw_priority=9), Member("b", gateway=True)]
    assert carriers(place_sandbox(members, {})) == {4: "b", 6: "b"}
    assert carriers(place_sandbox([Member("a", gateway=False), Member("b")], {})) == {
        4: "b", 6: "b"}
    assert carriers(place_sandbox([Member("a", gateway=False)], {})) == {}


def test_routes_are_chosen_per_ip_version() -> None:
    members = [Member("a", families=frozenset({4})), Member("b", families=frozenset({6}))]
    assert carriers(place_sandbox(members, {})) == {4: "a", 6: "b"}


# --- properties: adding or removing an endpoint never renames another -------------------

member_names = st.sampled_from([f"ep{i}" for i in range(12)])
hand_written = st.sampled_from(["lan", "wan", "eth7", "mgmt"])


@st.composite
def sandboxes(draw: st.DrawFn) -> list[Member]:
    chosen = draw(st.lists(member_names, unique=True, max_size=8))
    members, used = [], set()
    for name in chosen:
        explicit = draw(st.one_of(st.none(), hand_written))
        if explicit in used:
            explicit = None
        if explicit is not None:
            used.add(explicit)
        members.append(Member(name, ifname=explicit))
    return members


@settings(max_examples=120, deadline=None)
@given(sandboxes(), member_names, st.booleans())
def test_adding_an_endpoint_never_renames_another(
    before: list[Member], extra: str, remove_first: bool
) -> None:
    held = names(place_sandbox(before, {}))
    after = [m for m in before if m.name != extra] + [Member(extra)]
    if remove_first and before:
        after = [m for m in after if m.name != before[0].name]
    placed = names(place_sandbox(after, held))
    for member in after:
        if member.name in held and member.name != extra:
            assert placed[member.name] == held[member.name]
    assert len(set(placed.values())) == len(placed)  # never two interfaces with one name


@settings(max_examples=120, deadline=None)
@given(sandboxes(), st.data())
def test_removing_endpoints_never_renames_the_others(
    before: list[Member], data: st.DataObject
) -> None:
    held = names(place_sandbox(before, {}))
    kept = [m for m in before if data.draw(st.booleans())]
    placed = names(place_sandbox(kept, held))
    assert placed == {m.name: held[m.name] for m in kept}


@settings(max_examples=80, deadline=None)
@given(sandboxes(), st.permutations(range(8)))
def test_placement_ignores_the_order_endpoints_come_in(
    members: list[Member], order: list[int]
) -> None:
    shuffled = [members[i] for i in order if i < len(members)]
    assert place_sandbox(shuffled, {}) == place_sandbox(members, {})


@settings(max_examples=120, deadline=None)
@given(st.builds(
    Member, name=member_names, ifname=st.one_of(st.none(), hand_written),
    gateway=st.one_of(st.none(), st.booleans()), gw_priority=st.integers(-5, 5),
    internal=st.booleans(), families=st.frozensets(st.sampled_from([4, 6])),
), st.one_of(st.none(), st.sampled_from(["eth0", "eth3", "web0"])))
def test_the_one_endpoint_fast_path_agrees_with_the_general_one(
    member: Member, held: str | None
) -> None:
    general = place_sandbox([member], {member.name: held} if held is not None else {})
    assert place_alone(member, held) == general[member.name]


# --- through the desired state and validation -------------------------------------------


def _two_networks(**second: object) -> object:
    return manifests(
        network("front", "10.1.0.0/24"), network("back", "10.2.0.0/24", **second),
        sandbox("app"),
        endpoint("app-front", "front", "app"), endpoint("app-back", "back", "app"),
    )


def test_a_sandbox_on_two_networks_needs_no_hand_written_fields() -> None:
    desired = build_desired(_two_networks(), "default", State("default"))  # type: ignore[arg-type]
    back = desired.resources[ResourceKey("Endpoint", "app-back")]
    front = desired.resources[ResourceKey("Endpoint", "app-front")]
    assert (back.get("ifname"), front.get("ifname")) == ("eth0", "eth1")
    assert back.get("gateway4") == ("10.2.0.1",) and front.get("gateway4") is None


def test_an_internal_network_gives_no_default_route() -> None:
    desired = build_desired(_two_networks(internal=True), "default",  # type: ignore[arg-type]
                            State("default"))
    back = desired.resources[ResourceKey("Endpoint", "app-back")]
    front = desired.resources[ResourceKey("Endpoint", "app-front")]
    assert back.get("gateway4") is None and front.get("gateway4") == ("10.1.0.1",)


def test_adding_an_endpoint_to_a_kernel_keeps_its_interface_names() -> None:
    one = manifests(network("front", "10.1.0.0/24"), network("back", "10.2.0.0/24"),
                    sandbox("app"), endpoint("app-front", "front", "app"))
    applied = build_desired(one, "default", State("default"))
    assert applied.resources[ResourceKey("Endpoint", "app-front")].get("ifname") == "eth0"
    plan = make_plan(build_desired(_two_networks(), "default", applied),  # type: ignore[arg-type]
                     applied)
    changed = {str(a.key): a for a in plan}
    assert changed["Endpoint/app-back"].verb == "create"
    assert changed["Endpoint/app-back"].desired.get("ifname") == "eth1"  # type: ignore[union-attr]
    # app-back sorts first: the default route moves to it (an update, no rename)
    assert {c.path for c in changed["Endpoint/app-front"].changes} == {"gateway4"}


def test_hand_written_manifests_of_today_plan_the_same() -> None:
    """Migration: `ifname` and `gateway: false` written by hand keep their meaning."""
    written = manifests(
        network("front", "10.1.0.0/24"), network("back", "10.2.0.0/24"), sandbox("app"),
        endpoint("app-front", "front", "app", ifname="eth0"),
        endpoint("app-back", "back", "app", ifname="eth1", gateway=False),
    )
    desired = build_desired(written, "default", State("default"))
    back = desired.resources[ResourceKey("Endpoint", "app-back")]
    front = desired.resources[ResourceKey("Endpoint", "app-front")]
    assert (front.get("ifname"), front.get("gateway4")) == ("eth0", ("10.1.0.1",))
    assert (back.get("ifname"), back.get("gateway4")) == ("eth1", None)


INTERNAL_GATEWAY = """\
apiVersion: cnm/v1
kind: Network
metadata: {name: vault}
spec: {internal: true, ipam: [{subnet: 10.3.0.0/24}]}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: app}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: app-vault}
spec:
  network: vault
  sandbox: app
  gateway: true
"""


def test_gateway_true_on_an_internal_network_is_refused_naming_the_field() -> None:
    with pytest.raises(ManifestError) as info:
        load_text(INTERNAL_GATEWAY, name="m.yaml")
    lines = str(info.value).splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("m.yaml:16: Endpoint/app-vault: spec.gateway: Network/vault is "
                               "internal")
