"""The host driver: endpoints use the host namespace; nothing is created.

A sandbox joined to a host network *is* the host namespace, so it has no
named namespace and no files of its own either.
"""

from __future__ import annotations

from reconciler.drivers.base import EndpointContext
from reconciler.model import Network
from reconciler.state import AttrValue

#: What `Endpoint.join` returns as the sandbox key of a host-mode sandbox.
HOST_SANDBOX_KEY = "/proc/1/ns/net"


class HostDriver:
    name = "host"
    has_interfaces = False
    shares_host_namespace = True

    def network_attrs(self, network: Network) -> dict[str, AttrValue] | None:
        return None

    def endpoint_attrs(self, ctx: EndpointContext) -> dict[str, AttrValue] | None:
        return None
