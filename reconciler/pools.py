"""Default address pools for bridge networks that declare no `ipam`, as libnetwork does.

Candidates are walked in order (172.17.0.0/16 ... 172.31.0.0/16, then
192.168.0.0/16 in /20s, unless configured otherwise); a network takes the
first candidate that overlaps nothing the host already uses (an address or a
route that cnm does not own) and no other network's subnet. Stable: a network
keeps the subnet the kernel shows it already has, so adding or removing
another network never re-addresses it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from reconciler.drivers import driver_for
from reconciler.errors import ManifestError, ManifestProblem
from reconciler.manifest_set import Manifests
from reconciler.model import IpamPool, Network
from reconciler.state import ResourceKey, State

IPv4Network = ipaddress.IPv4Network
AnyNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class AddressPool:
    """A base range cut into subnets of `size` bits, like dockerd's --default-address-pool."""

    base: IPv4Network
    size: int

    def subnets(self) -> Iterator[IPv4Network]:
        if self.size < self.base.prefixlen:
            yield self.base
            return
        yield from self.base.subnets(new_prefix=self.size)

    @classmethod
    def parse(cls, text: str) -> AddressPool:
        """`base=172.80.0.0/16,size=24` (dockerd's syntax) or `172.80.0.0/16/24`."""
        fields = dict(part.split("=", 1) for part in text.split(",") if "=" in part)
        if fields:
            base, size = fields.get("base", ""), fields.get("size", "")
        else:
            base, _, size = text.rpartition("/")
        try:
            network = ipaddress.IPv4Network(base)
            bits = int(size)
        except ValueError as exc:
            raise ValueError(
                f"bad address pool {text!r}: use base=A.B.C.D/N,size=M (IPv4, M >= N)"
            ) from exc
        if not network.prefixlen <= bits <= 30:
            raise ValueError(
                f"bad address pool {text!r}: size must be between /{network.prefixlen} and /30"
            )
        return cls(network, bits)


DEFAULT_POOLS: tuple[AddressPool, ...] = (
    *(AddressPool(IPv4Network(f"172.{n}.0.0/16"), 16) for n in range(17, 32)),
    AddressPool(IPv4Network("192.168.0.0/16"), 20),
)


def _overlaps(candidate: IPv4Network, taken: Sequence[AnyNetwork]) -> bool:
    return any(t.version == 4 and candidate.overlaps(t) for t in taken)


def _kept_subnet(observed: State, name: str) -> IPv4Network | None:
    resource = observed.get(ResourceKey("Network", name))
    subnets = resource.get("subnets") if resource is not None else None
    if not isinstance(subnets, tuple):
        return None
    for text in subnets:
        subnet = ipaddress.ip_network(str(text))
        if isinstance(subnet, IPv4Network):
            return subnet
    return None


def assign_default_pools(
    manifests: Manifests, observed: State, pools: Sequence[AddressPool] = DEFAULT_POOLS
) -> Manifests:
    """Manifests where every network without `ipam` whose driver takes a default pool
    (a bridge network) has one IPv4 pool."""
    needing = [
        n for n in manifests.networks.values()
        if not n.spec.ipam and driver_for(n.spec.driver).default_pools
    ]
    if not needing:
        return manifests
    taken: list[AnyNetwork] = [
        ipaddress.ip_network(p) for p in observed.reserved_prefixes
    ]
    taken += [pool.subnet for n in manifests.networks.values() for pool in n.spec.ipam]
    chosen: dict[str, IPv4Network] = {}
    for network in needing:  # keep what the kernel already shows first
        kept = _kept_subnet(observed, network.metadata.name)
        if kept is not None and not _overlaps(kept, taken):
            chosen[network.metadata.name] = kept
            taken.append(kept)
    for network in needing:
        if network.metadata.name in chosen:
            continue
        subnet = next((s for p in pools for s in p.subnets() if not _overlaps(s, taken)), None)
        if subnet is None:
            source = manifests.source_of(network.key)
            raise ManifestError([ManifestProblem(
                source.file, source.line, str(network.key), "spec.ipam",
                "no default address pool is free (all overlap host routes, addresses or other "
                "networks); set spec.ipam or configure --default-address-pool",
            )])
        chosen[network.metadata.name] = subnet
        taken.append(subnet)
    return _with_pools(manifests, chosen)


def _with_pools(manifests: Manifests, chosen: dict[str, IPv4Network]) -> Manifests:
    def updated(network: Network) -> Network:
        subnet = chosen.get(network.metadata.name)
        if subnet is None:
            return network
        spec = network.spec.model_copy(update={"ipam": [IpamPool(subnet=subnet)]})
        return network.model_copy(update={"spec": spec})

    return Manifests(
        networks={name: updated(n) for name, n in manifests.networks.items()},
        sandboxes=manifests.sandboxes,
        endpoints=manifests.endpoints,
        sources=manifests.sources,
        duplicates=manifests.duplicates,
    )
