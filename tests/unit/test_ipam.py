"""IPAM: deterministic, keeps held addresses, respects reservations and ipRange."""

from __future__ import annotations

import ipaddress

import pytest

from reconciler.ipam import AllocationError, allocate

from builders import endpoint, manifests, network, sandbox

A = ipaddress.ip_address


def _world(*endpoints_: object, **net_spec: object) -> object:
    net = network("n", **net_spec) if "ipam" in net_spec else network("n", "10.0.0.0/24")
    return manifests(net, sandbox("s"), *endpoints_)  # type: ignore[arg-type]


def test_lowest_free_in_name_order_skips_network_and_gateway() -> None:
    m = _world(endpoint("b", "n", "s"), endpoint("a", "n", "s"))
    result = allocate(m, {}, ["a", "b"])  # type: ignore[arg-type]
    assert str(result["a"].ipv4) == "10.0.0.2/24"
    assert str(result["b"].ipv4) == "10.0.0.3/24"
    assert result["a"].ipv6 is None


def test_held_address_is_kept_when_a_new_endpoint_sorts_first() -> None:
    m = _world(endpoint("b", "n", "s"), endpoint("a", "n", "s"))
    result = allocate(m, {"b": [A("10.0.0.2")]}, ["a", "b"])  # type: ignore[arg-type]
    assert str(result["b"].ipv4) == "10.0.0.2/24"
    assert str(result["a"].ipv4) == "10.0.0.3/24"


def test_static_address_wins_over_a_held_one() -> None:
    m = _world(endpoint("a", "n", "s"), endpoint("b", "n", "s", ipv4Address="10.0.0.2"))
    result = allocate(m, {"a": [A("10.0.0.2")]}, ["a", "b"])  # type: ignore[arg-type]
    assert str(result["b"].ipv4) == "10.0.0.2/24"
    assert str(result["a"].ipv4) == "10.0.0.3/24"


def test_ip_range_aux_addresses_and_explicit_gateway() -> None:
    pool = {"subnet": "10.0.0.0/24", "gateway": "10.0.0.254", "ipRange": "10.0.0.128/25",
            "auxAddresses": {"router": "10.0.0.128"}}
    m = _world(endpoint("a", "n", "s"), ipam=[pool])
    result = allocate(m, {}, ["a"])  # type: ignore[arg-type]
    assert str(result["a"].ipv4) == "10.0.0.129/24"


def test_dual_stack_gets_one_address_per_family() -> None:
    m = manifests(network("n", "10.0.0.0/24", "fd00:1::/64"), sandbox("s"),
                  endpoint("a", "n", "s"))
    result = allocate(m, {}, ["a"])
    assert str(result["a"].ipv4) == "10.0.0.2/24"
    assert str(result["a"].ipv6) == "fd00:1::2/64"


def test_unjoined_endpoints_take_no_dynamic_address() -> None:
    m = _world(endpoint("a", "n"), endpoint("b", "n", "s"))
    result = allocate(m, {}, ["b"])  # type: ignore[arg-type]
    assert set(result) == {"b"}
    assert str(result["b"].ipv4) == "10.0.0.2/24"


def test_exhausted_pool_is_a_manifest_problem() -> None:
    m = manifests(network("n", "10.0.0.0/30"), sandbox("s"),
                  endpoint("a", "n", "s"), endpoint("b", "n", "s"))
    with pytest.raises(AllocationError) as info:
        allocate(m, {}, ["a", "b"])
    assert info.value.problem.obj == "Endpoint/b"
    assert "no free IPv4 address" in info.value.problem.message


def test_same_input_same_output() -> None:
    m = _world(*(endpoint(f"e{i}", "n", "s") for i in range(20)))
    names = [f"e{i}" for i in range(20)]
    assert allocate(m, {}, names) == allocate(m, {}, list(reversed(names)))  # type: ignore[arg-type]


def test_held_address_outside_ip_range_is_not_kept() -> None:
    pool = {"subnet": "10.0.0.0/24", "ipRange": "10.0.0.128/25"}
    m = _world(endpoint("a", "n", "s"), ipam=[pool])
    result = allocate(m, {"a": [A("10.0.0.99")]}, ["a"])  # type: ignore[arg-type]
    assert str(result["a"].ipv4) == "10.0.0.128/24"
