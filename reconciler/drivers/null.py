"""The null driver: endpoints get no interface; their sandbox has only `lo`."""

from __future__ import annotations

from reconciler.drivers.base import EndpointContext
from reconciler.model import Network
from reconciler.state import AttrValue


class NullDriver:
    name = "null"
    has_interfaces = False
    shares_host_namespace = False

    def network_attrs(self, network: Network) -> dict[str, AttrValue] | None:
        return None

    def endpoint_attrs(self, ctx: EndpointContext) -> dict[str, AttrValue] | None:
        return None
