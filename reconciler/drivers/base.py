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


class Driver(Protocol):
    """What a network driver provides to the desired-state builder."""

    name: str

    def network_attrs(self, network: Network) -> dict[str, AttrValue]:
        """Attributes of the Network resource as the kernel will show them."""
        ...

    def endpoint_attrs(self, ctx: EndpointContext) -> dict[str, AttrValue]:
        """Attributes of an Endpoint resource joined to a sandbox."""
        ...
