"""The driver interface: manifest objects in, kernel-visible attributes out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from reconciler.ipam import Assignment
from reconciler.model import Endpoint, Network, Sandbox
from reconciler.state import AttrValue


@dataclass(frozen=True)
class EndpointContext:
    """Everything a driver needs to describe one joined endpoint."""

    endpoint: Endpoint
    network: Network
    sandbox: Sandbox
    assignment: Assignment
    veth: str


def gateways(ctx: EndpointContext) -> dict[str, AttrValue]:
    """`gateway4`/`gateway6`: the first pool's gateway of a family the endpoint is addressed in."""
    pools = ctx.network.spec.ipam
    result: dict[str, AttrValue] = {}
    for version, attr in ((4, "gateway4"), (6, "gateway6")):
        gateway = next((p.effective_gateway() for p in pools if p.subnet.version == version), None)
        addressed = ctx.assignment.for_family(version) is not None
        result[attr] = str(gateway) if ctx.endpoint.spec.gateway and gateway and addressed else None
    return result


def addresses(ctx: EndpointContext) -> dict[str, AttrValue]:
    ipv4, ipv6 = ctx.assignment.ipv4, ctx.assignment.ipv6
    return {"ipv4": str(ipv4) if ipv4 else None, "ipv6": str(ipv6) if ipv6 else None}


class Driver(Protocol):
    """What a network driver provides to the desired-state builder."""

    name: str
    #: endpoints get an interface, addressed from the network's pools
    has_interfaces: bool
    #: a sandbox joined through this driver is the host namespace itself
    shares_host_namespace: bool

    def network_attrs(self, network: Network) -> dict[str, AttrValue] | None:
        """The Network resource as the kernel will show it; None: no kernel object."""
        ...

    def endpoint_attrs(self, ctx: EndpointContext) -> dict[str, AttrValue] | None:
        """The Endpoint resource of a joined endpoint; None: no kernel object."""
        ...
