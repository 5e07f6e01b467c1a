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

import functools
import ipaddress
from collections.abc import Container, Iterator, Mapping, Sequence
from dataclasses import dataclass

from reconciler.caching import memoize
from reconciler.errors import ManifestProblem
from reconciler.manifest_set import Manifests
from reconciler.model import Endpoint, IpamPool, Network

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

    @functools.cached_property
    def texts(self) -> tuple[str, ...]:
        """The addresses as text, IPv4 first (not a field: equality ignores it)."""
        return tuple(str(i.ip) for i in (self.ipv4, self.ipv6) if i is not None)


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


def _span(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[int, int]:
    """First and last address of `network`, as integers."""
    return int(network.network_address), int(network.broadcast_address)


def _pools_of(network: Network, version: int) -> list[IpamPool]:
    return [p for p in network.spec.ipam if p.subnet.version == version]


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
    joined_set = set(joined)
    result: dict[str, Assignment] = {}
    for network_name, network in manifests.networks.items():
        members = manifests.endpoints_of_network(network_name)
        choices = [choose_family(manifests, pools, members, held, version, joined_set)
                   for version, pools in family_pools(network)]
        result.update(assignments_of(choices, members, joined_set))
    return {name: result.get(name) or Assignment() for name in sorted(joined_set)}


def family_pools(network: Network) -> list[tuple[int, list[IpamPool]]]:
    """(IP version, the network's pools of it), for each version it has pools of."""
    return [(v, pools) for v in (4, 6) if (pools := _pools_of(network, v))]


@dataclass(frozen=True)
class FamilyChoice:
    """How one network's endpoints got their addresses of one IP version.

    `chosen`: every member's address as an integer (static ones of members that are
    not joined too); `fresh`: the members that got the lowest free address (rule 3);
    `contested`: some member skipped a held address because another claimed it.
    """

    version: int
    pools: tuple[IpamPool, ...]
    chosen: dict[str, int]
    fresh: frozenset[str]
    contested: bool


def choose_family(
    manifests: Manifests,
    pools: Sequence[IpamPool],
    members: Sequence[Endpoint],
    held: Mapping[str, Sequence[IPAddress]],
    version: int,
    joined: Container[str],
) -> FamilyChoice:
    """Addresses of one family for the members of one network (rules 1-3 above).

    Addresses are compared as integers (all of one family here): hashing and
    range checks of `ipaddress` objects run in Python, a thousand times a build.
    """
    dynamic = [_span(p.ip_range if p.ip_range is not None else p.subnet) for p in pools]
    taken = reserved_integers(pools)
    chosen: dict[str, int] = {}
    contested = False
    # 1. static addresses, across every endpoint of the network (joined or not)
    for endpoint in members:
        static = _static_address(endpoint, version)
        if static is not None:
            chosen[endpoint.metadata.name] = int(static)
    claimed = set(chosen.values())  # static claims, then kept addresses as they are kept
    # 2. keep what is held, first come in name order
    for endpoint in members:
        name = endpoint.metadata.name
        if name in chosen or name not in joined:
            continue
        for address in held.get(name, ()):
            if address.version != version:
                continue
            value = int(address)
            if value in taken or not _inside(value, dynamic):
                continue
            if value in claimed:
                contested = True
                continue
            chosen[name] = value
            claimed.add(value)
            break
    taken |= claimed
    # 3. lowest free address for the rest, in name order
    fresh = [e for e in members if e.metadata.name not in chosen and e.metadata.name in joined]
    chosen.update(lowest_free(manifests, pools, fresh, taken, version))
    return FamilyChoice(version, tuple(pools), chosen,
                        frozenset(e.metadata.name for e in fresh), contested)


def reserved_integers(pools: Sequence[IpamPool]) -> set[int]:
    """`reserved_addresses` of every pool, as integers."""
    taken: set[int] = set()
    for pool in pools:
        taken.update(int(a) for a in reserved_addresses(pool))
    return taken


def lowest_free(manifests: Manifests, pools: Sequence[IpamPool], endpoints: Sequence[Endpoint],
                taken: set[int], version: int) -> dict[str, int]:
    """The lowest free address for each of `endpoints`, in their order (rule 3)."""
    free = _free_addresses(pools, taken)
    chosen: dict[str, int] = {}
    for endpoint in endpoints:
        found = next(free, None)
        if found is None:
            source = manifests.source_of(endpoint.key)
            listed = ", ".join(str(p.subnet) for p in pools)
            raise AllocationError(
                ManifestProblem(
                    source.file, source.line, str(endpoint.key), "spec.network",
                    f"no free IPv{version} address left in {listed} of network "
                    f"'{endpoint.spec.network}' (widen the subnet or ipRange)",
                )
            )
        chosen[endpoint.metadata.name] = found
    return chosen


def assignments_of(choices: Sequence[FamilyChoice], members: Sequence[Endpoint],
                   joined: Container[str]) -> dict[str, Assignment]:
    """The `Assignment` of each joined one of `members`, from its network's choices."""
    spans = [[(_span(p.subnet), p.subnet.prefixlen) for p in c.pools] for c in choices]
    result: dict[str, Assignment] = {}
    for member in members:
        name = member.metadata.name
        if name not in joined:
            continue
        mine: dict[int, IPInterface] = {}
        for choice, subnets in zip(choices, spans, strict=True):
            value = choice.chosen.get(name)
            if value is None:
                continue
            prefix = next((length for (low, high), length in subnets if low <= value <= high),
                          None)
            if prefix is not None:
                mine[choice.version] = _interface(value, choice.version, prefix)
        result[name] = Assignment(ipv4=_as_v4(mine.get(4)), ipv6=_as_v6(mine.get(6)))
    return result


def _as_v4(iface: IPInterface | None) -> ipaddress.IPv4Interface | None:
    return iface if isinstance(iface, ipaddress.IPv4Interface) else None


def _as_v6(iface: IPInterface | None) -> ipaddress.IPv6Interface | None:
    return iface if isinstance(iface, ipaddress.IPv6Interface) else None


def _inside(value: int, spans: Sequence[tuple[int, int]]) -> bool:
    return any(first <= value <= last for first, last in spans)


@memoize(maxsize=1 << 16)
def _interface(value: int, version: int, prefixlen: int) -> IPInterface:
    """address/prefixlen as an interface (cached: `cnm watch` builds the same ones each time)."""
    address = ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value)
    return ipaddress.ip_interface(f"{address}/{prefixlen}")


def _free_addresses(pools: Sequence[IpamPool], taken: set[int]) -> Iterator[int]:
    """Free addresses in ascending order, pool by pool; one pass, so allocation stays linear.

    Each pool's candidates are its `ipRange` (else its subnet), at most `_MAX_SCAN`
    of them, that lie inside its subnet."""
    for pool in pools:
        source = pool.ip_range if pool.ip_range is not None else pool.subnet
        first, last = _span(source)
        low, high = _span(pool.subnet)
        for value in range(first, min(last, first + _MAX_SCAN) + 1):
            if value not in taken and low <= value <= high:
                yield value
