"""Cluster-wide IPAM of overlay networks (pure): this host's endpoints' addresses,
planned from the store's view (who holds what, cluster-wide) and the kernel.

The store is the allocation database of a cluster-scoped network: one key per
held address, created by a transaction that fails when the key exists. Rules,
per network and IP family, this host's endpoints in name order:

1. a static address (`ipv4Address`/`ipv6Address`) as written; another
   holder's claim on it is a conflict;
2. an address the store says this endpoint holds (an earlier apply's claim,
   even one killed before it created the endpoint: nothing leaks);
3. the address the endpoint's interface shows, when nobody else holds it;
4. the first address nobody holds, no static names and the pool does not
   reserve (network address, broadcast, gateway, auxAddresses), scanning the
   pool from a starting point of this host's own (a hash of host and network)
   and wrapping around: hosts that apply at once then look in different parts
   of the pool, so their claims rarely collide (all starting at the bottom,
   three hosts creating 300 endpoints each lost nearly every claim to each
   other, attempt after attempt).

Every address that is not yet this endpoint's in the store is a `Claim` that
apply makes (a transaction) before it creates the endpoint; a lost race makes
apply plan again.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from reconciler.errors import ConflictError
from reconciler.fleet.records import ClusterView, Holder
from reconciler.ipam import IPAddress, reserved_addresses
from reconciler.manifest_set import Manifests
from reconciler.model import Endpoint, IpamPool, Network


@dataclass(frozen=True, order=True)
class Claim:
    """An address apply claims in the store for one of this host's endpoints."""

    network: str
    address: str
    endpoint: str


def _static(endpoint: Endpoint, version: int) -> IPAddress | None:
    return endpoint.spec.ipv4_address if version == 4 else endpoint.spec.ipv6_address


def _dynamic(pools: Sequence[IpamPool], address: IPAddress) -> bool:
    return any(address in (p.ip_range if p.ip_range is not None else p.subnet) for p in pools)


def _free(pools: Sequence[IpamPool], taken: set[IPAddress], start: str) -> Iterator[IPAddress]:
    """Addresses not in `taken` (read as it grows), pool by pool, each pool scanned from
    a point that `start` (host and network) picks, wrapping around."""
    seed = int.from_bytes(hashlib.sha256(start.encode()).digest()[:8], "big")
    for pool in pools:
        source = pool.ip_range if pool.ip_range is not None else pool.subnet
        first = int(source.network_address)
        count = min(int(source.broadcast_address) - first + 1, 1 << 20)
        offset = seed % count
        for step in range(count):
            address = ipaddress.ip_address(first + (offset + step) % count)
            if address not in taken and address in pool.subnet:
                yield address


def plan_addresses(
    fleet: Manifests,
    share: Manifests,
    networks: Sequence[Network],
    view: ClusterView,
    host: str,
    set_name: str,
    kernel_held: Mapping[str, Sequence[IPAddress]],
) -> tuple[dict[str, list[IPAddress]], list[Claim]]:
    """(endpoint -> its addresses, the claims to make) for this host's endpoints on the
    cluster-scoped `networks` (`fleet`: every host's manifests, for their statics)."""
    held: dict[str, list[IPAddress]] = {}
    claims: list[Claim] = []
    for network in networks:
        name = network.metadata.name
        holders = {ipaddress.ip_address(a): h for (n, a), h in view.addresses.items() if n == name}
        by_holder: dict[Holder, list[IPAddress]] = {}  # indexed once: not a scan per endpoint
        for address, holder in holders.items():
            by_holder.setdefault(holder, []).append(address)
        local = [e for e in share.endpoints_of_network(name) if e.spec.sandbox is not None]
        for version in (4, 6):
            pools = [p for p in network.spec.ipam if p.subnet.version == version]
            if not pools:
                continue
            taken: set[IPAddress] = set(holders)
            for pool in pools:
                taken |= reserved_addresses(pool)
            statics = {e.metadata.name: s for e in fleet.endpoints_of_network(name)
                       if (s := _static(e, version)) is not None}
            taken |= set(statics.values())
            free = _free(pools, taken, f"{host}\0{name}")
            for endpoint in local:
                ep = endpoint.metadata.name
                mine = Holder(host, set_name, ep)
                address = _choose(ep, mine, version, pools, holders, by_holder.get(mine, []),
                                  statics, kernel_held, taken, free, name)
                taken.add(address)
                held.setdefault(ep, []).append(address)
                if holders.get(address) != mine:
                    claims.append(Claim(name, str(address), ep))
    return held, claims


def _choose(
    ep: str, mine: Holder, version: int, pools: Sequence[IpamPool],
    holders: Mapping[IPAddress, Holder], own: Sequence[IPAddress],
    statics: Mapping[str, IPAddress],
    kernel_held: Mapping[str, Sequence[IPAddress]], taken: set[IPAddress],
    free: Iterator[IPAddress], network: str,
) -> IPAddress:
    static = statics.get(ep)
    if static is not None:
        holder = holders.get(static)
        if holder is not None and holder != mine:
            raise ConflictError(
                f"Endpoint/{ep}: address {static} on network '{network}' is held by endpoint "
                f"{holder.endpoint} of set {holder.set} on host {holder.host} (cluster store)")
        return static
    claimed = sorted(a for a in own if a.version == version and _dynamic(pools, a))
    if claimed:
        return claimed[0]
    for address in kernel_held.get(ep, ()):
        if address.version == version and address not in taken and _dynamic(pools, address):
            return address
    found = next(free, None)
    if found is None:
        subnets = ", ".join(str(p.subnet) for p in pools)
        raise ConflictError(f"Endpoint/{ep}: no free IPv{version} address left in {subnets} "
                            f"of network '{network}' cluster-wide (widen the subnet or ipRange)")
    return found
