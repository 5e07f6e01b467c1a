"""Pieces several drivers share: manifest checks, attributes of an endpoint's
interface (desired and observed), and reading typed attribute values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # validation loads the drivers, not the kernel-state model
    from reconciler.drivers.base import EndpointContext, FieldProblem
    from reconciler.drivers.kernel_view import PeerEnd
    from reconciler.model import Endpoint, Network
    from reconciler.state import AttrValue, Resource

#: The broadcast-and-unknown destination of a VXLAN forwarding database (one entry per VTEP)
FLOOD_MAC = "00:00:00:00:00:00"


def addressless_problems(endpoint: Endpoint, network: Network) -> list[FieldProblem]:
    """An endpoint with no interface of its own cannot ask for addresses or a MAC."""
    return [
        (path, f"{network.key} uses the {network.spec.driver} driver: its endpoints have no "
               "interface to address; remove it")
        for path, value in (("spec.ipv4Address", endpoint.spec.ipv4_address),
                            ("spec.ipv6Address", endpoint.spec.ipv6_address),
                            ("spec.macAddress", endpoint.spec.mac_address))
        if value is not None
    ]


def no_ipam_problems(network: Network) -> list[FieldProblem]:
    """A network whose endpoints get no interface has nothing to address."""
    if not network.spec.ipam:
        return []
    return [("spec.ipam", f"a {network.spec.driver} network takes no ipam: its endpoints get "
                          "no interface of their own; remove spec.ipam")]


def gateways(ctx: EndpointContext) -> dict[str, AttrValue]:
    """`gateway4`/`gateway6`: the first pool's gateway of a family the endpoint is addressed
    in and carries the default route of (`interface_defaults` chose)."""
    pools = ctx.network.spec.ipam
    result: dict[str, AttrValue] = {}
    for version, attr in ((4, "gateway4"), (6, "gateway6")):
        gateway = next((p.effective_gateway() for p in pools if p.subnet.version == version), None)
        addressed = ctx.assignment.for_family(version) is not None
        wanted = version in ctx.routes and gateway and addressed
        result[attr] = (str(gateway),) if wanted else None
    return result


def addresses(ctx: EndpointContext) -> dict[str, AttrValue]:
    ipv4, ipv6 = ctx.assignment.ipv4, ctx.assignment.ipv6
    return {"ipv4": (str(ipv4),) if ipv4 else None, "ipv6": (str(ipv6),) if ipv6 else None}


def interface_attrs(peer: PeerEnd) -> dict[str, AttrValue]:
    """What observation reads off an endpoint's interface, whatever its driver."""
    v4 = tuple(a for a in peer.addresses if ":" not in a)
    v6 = tuple(a for a in peer.addresses if ":" in a)
    return {
        "ifname": peer.link.name,
        "mac": peer.link.mac,
        "ipv4": v4 or None,
        "ipv6": v6 or None,
        "gateway4": tuple(peer.gateways[4]) or None,
        "gateway6": tuple(peer.gateways[6]) or None,
    }


def text_values(resource: Resource, *attrs: str) -> list[str]:
    """The texts of tuple-valued attributes `attrs`, in that order."""
    values: list[str] = []
    for attr in attrs:
        value = resource.get(attr)
        if isinstance(value, tuple):
            values += [str(v) for v in value]
    return values


def first_text(resource: Resource, attr: str) -> str | None:
    """The first value of a tuple-valued attribute (a desired endpoint has at most one
    gateway per family)."""
    value = resource.get(attr)
    return str(value[0]) if isinstance(value, tuple) and value else None


def wants_ipv6(resource: Resource) -> bool:
    """IPv4-only interfaces get no IPv6 link-local address.

    Otherwise every interface coming up sends DAD, MLD and router solicitations
    that a bridge floods to all its ports: at 1000 endpoints on one bridge that
    made creation quadratic (12 s instead of 5 s for the links alone).
    """
    return resource.get("ipv6") is not None


def interface_summary(resource: Resource, link: str) -> str:
    """`<link> -> sandbox:ifname  addresses` of an endpoint (plan lines)."""
    from reconciler.state import external

    text = link
    if resource.get("sandbox") is not None:
        text += f" -> {resource.get('sandbox')}:{resource.get('ifname')}"
    held = [str(external(a, resource.get(a))) for a in ("ipv4", "ipv6") if resource.get(a)]
    text = f"{text}  {', '.join(held)}" if held else text
    owner = resource.get("network_set")  # on another apply set's network (shared_networks.py)
    return f"{text}  (network {resource.get('network')} of set '{owner}')" if owner else text


def int_attr(resource: Resource, attr: str) -> int:
    return int(str(resource.get(attr)))


def remote_entries(
    vteps: Mapping[str, str], peers: Sequence[tuple[str, str, Sequence[str]]]
) -> dict[str, AttrValue]:
    """`fdb` and `neighbours` of a network: `vteps` maps each remote host to its VTEP,
    `peers` are (host, MAC, addresses) of the remote endpoints (a host without a VTEP
    is skipped: it has not joined the network yet)."""
    fdb = {f"{FLOOD_MAC} {vtep}" for vtep in vteps.values()}
    neighbours: set[str] = set()
    for host, mac, held in peers:
        vtep = vteps.get(host)
        if vtep is None:
            continue
        fdb.add(f"{mac} {vtep}")
        neighbours.update(f"{address} {mac}" for address in held)
    return {"fdb": tuple(sorted(fdb)), "neighbours": tuple(sorted(neighbours))}
