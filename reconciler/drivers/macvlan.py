"""The macvlan driver: each endpoint is a macvlan child of `spec.parent`, created
directly inside its sandbox. The network itself has no kernel object."""

from __future__ import annotations

from reconciler.drivers.base import EndpointContext, addresses, gateways
from reconciler.model import Network
from reconciler.state import AttrValue

DEFAULT_MODE = "bridge"


class MacvlanDriver:
    name = "macvlan"
    has_interfaces = True
    shares_host_namespace = False

    def network_attrs(self, network: Network) -> dict[str, AttrValue] | None:
        return None

    def endpoint_attrs(self, ctx: EndpointContext) -> dict[str, AttrValue] | None:
        spec, network = ctx.endpoint.spec, ctx.network.spec
        attrs: dict[str, AttrValue] = {
            "network": ctx.network.metadata.name,
            "sandbox": ctx.sandbox.metadata.name,
            "parent": network.parent,
            "mode": network.mode or DEFAULT_MODE,
            "ifname": spec.ifname,
            **addresses(ctx),
            **gateways(ctx),
            "up": True,
        }
        if network.mtu is not None:  # else the child keeps its parent's MTU
            attrs["mtu"] = network.mtu
        if spec.mac_address is not None:
            attrs["mac"] = spec.mac_address
        return attrs
