"""The firewall's attributes of networks and endpoints: their values as the manifest
asks, and what plans (`summary`) and `cnm export` (`*_spec`) say about them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from reconciler.firewall.ports import PortMap, sorted_ports
from reconciler.state import AttrValue, Resource

if TYPE_CHECKING:
    from reconciler.model import Network, PortMapping

#: Attributes the firewall owns. An update that changes only these needs no link step.
FIREWALL_ATTRS = frozenset(
    {"internal", "icc", "masquerade", "ports", "hairpin", "forwarding.ipv4", "forwarding.ipv6",
     "localhost", "route_localnet"}
)


def network_attrs(network: Network) -> dict[str, AttrValue]:
    """Firewall attributes of a bridge network, as the manifest asks."""
    spec = network.spec
    attrs: dict[str, AttrValue] = {
        "internal": spec.internal,
        "icc": spec.icc,
        "masquerade": spec.masquerade and not spec.internal,
    }
    if not spec.internal:
        for version in sorted({pool.subnet.version for pool in spec.ipam}):
            attrs[f"forwarding.ipv{version}"] = True
    # published ports on the host's 127.0.0.1 (IPv4 only: the kernel never routes ::1
    # out of the host): the rules, and the bridge's switch that lets them work
    localhost = not spec.internal and any(pool.subnet.version == 4 for pool in spec.ipam)
    attrs["localhost"] = localhost
    attrs["route_localnet"] = localhost
    return attrs


def endpoint_attrs(ports: Sequence[PortMapping]) -> dict[str, AttrValue]:
    """The published ports of an endpoint, canonical and sorted; and hairpin mode on its
    bridge port when it publishes any, so that it can reach itself through them."""
    texts = {PortMap.of(p).text() for p in ports}
    return {"ports": sorted_ports(texts), "hairpin": bool(ports)}


def summary(resource: Resource) -> str:
    """What a create or delete line adds about the firewall: settings other than the
    defaults, and published ports."""
    if resource.key.kind == "Network":
        flags = [("internal", resource.get("internal") is True),
                 ("icc off", resource.get("icc") is False),
                 ("no masquerade", resource.get("masquerade") is False
                  and resource.get("internal") is False)]
        text = ", ".join(name for name, on in flags if on)
    else:
        ports = resource.get("ports")
        text = "ports " + ", ".join(str(p) for p in ports) if isinstance(ports, tuple) and ports \
            else ""
    if rules_only(resource):
        return f"firewall rules only (its links are gone){'  ' + text if text else ''}"
    return text


def rules_only(resource: Resource) -> bool:
    """A resource observation made up from rules whose owner has no link left."""
    return bool(resource.attrs) and set(resource.attrs) <= FIREWALL_ATTRS


def network_spec(resource: Resource) -> dict[str, Any]:
    """Manifest fields (`cnm export`) for a network's firewall settings that are not defaults."""
    spec: dict[str, Any] = {}
    if resource.get("internal") is True:
        spec["internal"] = True
    if resource.get("icc") is False:
        spec["icc"] = False
    if resource.get("masquerade") is False and resource.get("internal") is False:
        spec["masquerade"] = False
    return spec


def ports_spec(resource: Resource) -> list[dict[str, Any]]:
    """Manifest `ports` (`cnm export`) for an endpoint's published ports that cnm wrote."""
    ports = resource.get("ports")
    result = []
    for value in ports if isinstance(ports, tuple) else ():
        port = PortMap.parse(value) if isinstance(value, str) else None
        if port is None:
            continue  # a drift (rules that differ): not something a manifest says
        entry: dict[str, Any] = {"containerPort": port.container_port, "hostPort": port.host_port}
        if port.protocol != "tcp":
            entry["protocol"] = port.protocol
        if port.host_ip is not None:
            entry["hostIP"] = port.host_ip
        result.append(entry)
    return result
