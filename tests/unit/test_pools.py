"""Default address pools: first free candidate, host prefixes avoided, existing subnets kept."""

from __future__ import annotations

import pytest

from reconciler.desired import build_desired
from reconciler.errors import ManifestError
from reconciler.pools import DEFAULT_POOLS, AddressPool, assign_default_pools
from reconciler.state import Resource, ResourceKey, State

from builders import endpoint, manifests, network, sandbox


def _subnets(m: object) -> dict[str, list[str]]:
    return {name: [str(p.subnet) for p in n.spec.ipam]
            for name, n in m.networks.items()}  # type: ignore[attr-defined]


def test_first_candidate_when_nothing_is_taken() -> None:
    m = assign_default_pools(manifests(network("a")), State("default"))
    assert _subnets(m) == {"a": ["172.17.0.0/16"]}


def test_host_prefixes_and_explicit_subnets_are_skipped() -> None:
    observed = State("default", reserved_prefixes=frozenset({"172.17.0.0/16", "172.19.4.0/24"}))
    m = assign_default_pools(
        manifests(network("a"), network("b"), network("c", "172.18.0.0/16")), observed
    )
    assert _subnets(m) == {"a": ["172.20.0.0/16"], "b": ["172.21.0.0/16"],
                           "c": ["172.18.0.0/16"]}


def test_a_network_keeps_the_subnet_it_has_when_another_is_added() -> None:
    before = build_desired(manifests(network("beta")), "default", State("default"))
    assert before.get(ResourceKey("Network", "beta")).get("subnets") == ("172.17.0.0/16",)  # type: ignore[union-attr]
    after = assign_default_pools(manifests(network("alpha"), network("beta")), before)
    assert _subnets(after) == {"alpha": ["172.18.0.0/16"], "beta": ["172.17.0.0/16"]}


def test_after_the_16s_come_192_168_slash_20s() -> None:
    taken = frozenset(f"172.{n}.0.0/16" for n in range(17, 32))
    m = assign_default_pools(manifests(network("a"), network("b")),
                             State("default", reserved_prefixes=taken))
    assert _subnets(m) == {"a": ["192.168.0.0/20"], "b": ["192.168.16.0/20"]}


def test_configured_pools_and_exhaustion() -> None:
    pools = [AddressPool.parse("base=10.10.0.0/23,size=24")]
    m = assign_default_pools(manifests(network("a"), network("b")), State("default"), pools)
    assert _subnets(m) == {"a": ["10.10.0.0/24"], "b": ["10.10.1.0/24"]}
    with pytest.raises(ManifestError, match="Network/c: spec.ipam: no default address pool"):
        assign_default_pools(manifests(network("a"), network("b"), network("c")),
                             State("default"), pools)


def test_pool_syntax() -> None:
    assert AddressPool.parse("10.0.0.0/8/24") == AddressPool.parse("base=10.0.0.0/8,size=24")
    with pytest.raises(ValueError, match="size must be between"):
        AddressPool.parse("base=10.0.0.0/16,size=8")
    with pytest.raises(ValueError, match="bad address pool"):
        AddressPool.parse("nonsense")
    assert len(list(DEFAULT_POOLS[-1].subnets())) == 16


def test_endpoints_get_addresses_from_the_default_pool() -> None:
    desired = build_desired(
        manifests(network("a"), sandbox("s"), endpoint("e", "a", "s")), "default",
        State("default", {}, {}, frozenset(), frozenset({"172.17.0.0/16"})),
    )
    resource = desired.get(ResourceKey("Endpoint", "e"))
    assert isinstance(resource, Resource)
    assert resource.get("ipv4") == ("172.18.0.2/16",)
    assert resource.get("gateway4") == ("172.18.0.1",)
