"""Deterministic address allocation that keeps what the kernel already shows.

The kernel is the state: an endpoint's current address is read back from its
interface, so there is no allocation database to drift or to lose in a crash.
Rules, in order:

1. static addresses (`ipv4Address` / `ipv6Address`) are taken as written;
2. an address an endpoint already holds (observed) is kept while it is still
   inside the dynamic range of one of its network's pools (`ipRange`, else the
   subnet) and nobody else has a claim on it;
3. every other endpoint gets the lowest free address of the first pool of
   that family with room, endpoints taken in name order.

Reserved and never handed out: the subnet's network address, the IPv4
broadcast address, the gateway and every `auxAddresses` entry. Dynamic
addresses come only from `ipRange` when it is set.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from reconciler.caching import memoize
from reconciler.errors import ManifestProblem
from reconciler.model import Endpoint, IpamPool, Manifests, Network

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

#: How far a dynamic search walks before giving up on a pool (IPv6 pools are huge).
_MAX_SCAN = 1 << 20


@dataclass(frozen=True)
class Assignment:
    """The addresses one endpoint gets, with their pool's prefix length."""

    ipv4: ipaddress.IPv4Interface | None = None
    ipv6: ipaddress.IPv6Interface | None = None

    def for_family(self, version: int) -> IPInterface | None:
        return self.ipv4 if version == 4 else self.ipv6


class AllocationError(Exception):
    """A pool ran out of addresses; carries the problem to report."""

    def __init__(self, problem: ManifestProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def reserved_addresses(pool: IpamPool) -> set[IPAddress]:
    """Addresses of `pool` that are never handed to an endpoint."""
    subnet = pool.subnet
    reserved: set[IPAddress] = {subnet.network_address, pool.effective_gateway()}
    if subnet.version == 4:
        reserved.add(subnet.broadcast_address)
    reserved.update(pool.aux_addresses.values())
    return reserved


def _candidates(pool: IpamPool) -> Iterator[IPAddress]:
    source = pool.ip_range if pool.ip_range is not None else pool.subnet
    first = int(source.network_address)
    last = int(source.broadcast_address)
    for value in range(first, min(last, first + _MAX_SCAN) + 1):
        yield ipaddress.ip_address(value)


def _pools_of(network: Network, version: int) -> list[IpamPool]:
    return [p for p in network.spec.ipam if p.subnet.version == version]


def _pool_holding(pools: Sequence[IpamPool], address: IPAddress) -> IpamPool | None:
    return next((p for p in pools if address in p.subnet), None)


def _in_dynamic_range(pools: Sequence[IpamPool], address: IPAddress) -> bool:
    """True when cnm could have handed out `address` itself (inside ipRange, or the subnet)."""
    return any(
        address in (p.ip_range if p.ip_range is not None else p.subnet) for p in pools
    )


def _static_address(endpoint: Endpoint, version: int) -> IPAddress | None:
    return endpoint.spec.ipv4_address if version == 4 else endpoint.spec.ipv6_address


def allocate(
    manifests: Manifests,
    held: Mapping[str, Sequence[IPAddress]],
    joined: Sequence[str],
) -> dict[str, Assignment]:
    """Assign addresses to the `joined` endpoints (the ones that get an interface).

    `held` maps an endpoint name to the addresses its interface shows now.
    Raises AllocationError when a pool has no free address left.
    """
    result: dict[str, dict[int, IPInterface]] = {name: {} for name in sorted(joined)}
    for network_name, network in manifests.networks.items():
        members = manifests.endpoints_of_network(network_name)
        for version in (4, 6):
            pools = _pools_of(network, version)
            if not pools:
                continue
            assigned = _allocate_family(manifests, pools, members, held, version, set(result))
            for name, iface in assigned.items():
                result[name][version] = iface
    return {
        name: Assignment(
            ipv4=_as_v4(families.get(4)),
            ipv6=_as_v6(families.get(6)),
        )
        for name, families in result.items()
    }


def _as_v4(iface: IPInterface | None) -> ipaddress.IPv4Interface | None:
    return iface if isinstance(iface, ipaddress.IPv4Interface) else None


def _as_v6(iface: IPInterface | None) -> ipaddress.IPv6Interface | None:
    return iface if isinstance(iface, ipaddress.IPv6Interface) else None


def _allocate_family(
    manifests: Manifests,
    pools: Sequence[IpamPool],
    members: Sequence[Endpoint],
    held: Mapping[str, Sequence[IPAddress]],
    version: int,
    joined: set[str],
) -> dict[str, IPInterface]:
    """Addresses of one family for the joined members of one network."""
    taken: set[IPAddress] = set()
    for pool in pools:
        taken |= reserved_addresses(pool)
    chosen: dict[str, IPAddress] = {}
    # 1. static addresses, across every endpoint of the network (joined or not)
    for endpoint in members:
        static = _static_address(endpoint, version)
        if static is not None:
            chosen[endpoint.metadata.name] = static
    claimed = set(chosen.values())  # static claims, then kept addresses as they are kept
    # 2. keep what is held, first come in name order
    for endpoint in members:
        name = endpoint.metadata.name
        if name in chosen or name not in joined:
            continue
        for address in held.get(name, ()):
            if (
                address.version == version
                and address not in taken
                and address not in claimed
                and _in_dynamic_range(pools, address)
            ):
                chosen[name] = address
                claimed.add(address)
                break
    taken |= claimed
    # 3. lowest free address for the rest, in name order
    free = _free_addresses(pools, taken)
    for endpoint in members:
        name = endpoint.metadata.name
        if name in chosen or name not in joined:
            continue
        found = next(free, None)
        if found is None:
            source = manifests.source_of(endpoint.key)
            subnets = ", ".join(str(p.subnet) for p in pools)
            raise AllocationError(
                ManifestProblem(
                    source.file, source.line, str(endpoint.key), "spec.network",
                    f"no free IPv{version} address left in {subnets} of network "
                    f"'{endpoint.spec.network}' (widen the subnet or ipRange)",
                )
            )
        chosen[name] = found
    result: dict[str, IPInterface] = {}
    for name, address in chosen.items():
        holder = _pool_holding(pools, address)
        if name in joined and holder is not None:
            result[name] = _interface(address, holder.subnet.prefixlen)
    return result


@memoize(maxsize=1 << 16)
def _interface(address: IPAddress, prefixlen: int) -> IPInterface:
    """address/prefixlen as an interface (cached: `cnm watch` builds the same ones each time)."""
    return ipaddress.ip_interface(f"{address}/{prefixlen}")


def _free_addresses(pools: Sequence[IpamPool], taken: set[IPAddress]) -> Iterator[IPAddress]:
    """Free addresses in ascending order, pool by pool; one pass, so allocation stays linear."""
    for pool in pools:
        for address in _candidates(pool):
            if address not in taken and address in pool.subnet:
                yield address
