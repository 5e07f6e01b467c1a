"""Network drivers: each one a whole slice (options and validation, desired resources,
observation of its links, apply steps, export) behind the `Driver` protocol of base.py.

The rest of cnm reaches a driver only through this registry: by the name a
manifest gives (`driver_for`), by a resource it made (`driver_of`), or by the
kind of a link observation found. Adding a driver is one new module here that
defines `DRIVER`, and its name in names.py.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from reconciler.drivers.base import HOST_SANDBOX_KEY, Driver, EndpointContext, FieldProblem
from reconciler.drivers.kernel_view import LinkInfo, StepContext
from reconciler.drivers.names import DEFAULT, NAMES
from reconciler.state import COMMON_REPLACEMENT_FIELDS, Resource, State

if TYPE_CHECKING:
    from reconciler.model import Network

REGISTRY: Mapping[str, Driver] = MappingProxyType(
    {name: importlib.import_module(f"{__name__}.{name}").DRIVER for name in NAMES}
)

#: Attributes whose change forces a replacement, by kind: the common ones and each driver's.
REPLACEMENT_FIELDS: Mapping[str, frozenset[str]] = MappingProxyType({
    kind: fields.union(*(d.replacement_fields.get(kind, ()) for d in REGISTRY.values()))
    for kind, fields in COMMON_REPLACEMENT_FIELDS.items()
})

# Link kind -> the driver that makes links of that kind (as a network, a host end, an interface).
_NETWORK_LINKS: dict[str | None, Driver] = {
    d.network_link_kind: d for d in REGISTRY.values() if d.network_link_kind}
_HOST_ENDS: dict[str | None, Driver] = {
    d.host_end_kind: d for d in REGISTRY.values() if d.host_end_kind}
_INTERFACES: dict[str | None, Driver] = {
    d.interface_kind: d for d in REGISTRY.values() if d.interface_kind}
_ALL = tuple(REGISTRY.values())

#: Kinds of the host-namespace ends of endpoints (observation collects these links).
HOST_END_KINDS = frozenset(kind for kind in _HOST_ENDS if kind is not None)


def driver_for(name: str) -> Driver:
    """The driver registered under `name` (validation has already rejected unknown ones)."""
    return REGISTRY[name]


def driver_of(resource: Resource) -> Driver | None:
    """The driver that made (or would make) a Network or Endpoint resource; None for a
    Sandbox. One no driver claims (firewall rules whose links are gone) goes to the
    default driver, as in observation: its steps find nothing of it to touch."""
    if resource.key.kind not in ("Network", "Endpoint"):
        return None
    for driver in _ALL:
        if driver.owns(resource):
            return driver
    return REGISTRY[DEFAULT]


def network_link_driver(kind: str | None) -> Driver | None:
    """The driver whose networks are host links of `kind`."""
    return _NETWORK_LINKS.get(kind)


def endpoint_driver(host_kind: str | None, interface_kind: str | None) -> Driver:
    """The driver of an endpoint whose ends observation found: by its host end, else by
    its interface; an interface of a kind no driver makes goes to the default driver
    (as a half-made endpoint of its: planning replaces or deletes it)."""
    driver = _HOST_ENDS.get(host_kind) or _INTERFACES.get(interface_kind)
    return driver if driver is not None else REGISTRY[DEFAULT]


def kernel_names(resource: Resource) -> list[str]:
    """The kernel names a resource claims, in the form used by `State.occupied`."""
    if resource.key.kind == "Sandbox":
        netns = resource.get("netns")
        return [f"netns:{netns}"] if isinstance(netns, str) else []
    driver = driver_of(resource)
    link = driver.host_link(resource) if driver is not None else None
    return [f"link:{link}"] if link is not None else []


def is_cluster_scoped(driver_name: str) -> bool:
    """True for a driver whose networks span hosts (their addresses, identifiers and
    peers are kept in the cluster store: reconciler/fleet/)."""
    return bool(getattr(REGISTRY[driver_name], "cluster_scoped", False))


def network_problems(network: Network) -> list[FieldProblem]:
    """A network's problems its driver knows: fields only another driver takes (its
    `exclusive_options`), then the driver's own rules."""
    problems: list[FieldProblem] = []
    for other in REGISTRY.values():
        if other.name == network.spec.driver:
            continue
        for option in other.exclusive_options:
            if getattr(network.spec, option) is not None:
                problems.append(
                    (f"spec.{option}", f"{option} is for {other.name} networks only; remove it"))
    return problems + driver_for(network.spec.driver).check_network(network)


def is_leftover(link: LinkInfo, masters: set[int], addressed: set[int]) -> bool:
    """True for an unlabelled host link of cnm's group that a driver's interrupted
    creation left (see kernel/debris.py)."""
    return any(d.is_leftover(link, masters, addressed) for d in _ALL)


def describe(resource: Resource) -> str:
    """A Network or Endpoint resource's kernel objects in a few words, as its driver says."""
    driver = driver_of(resource)
    return driver.describe(resource) if driver is not None else ""


def rebuild_networks(observed: State) -> dict[str, Resource]:
    """Networks that have no kernel object of their own, rebuilt from their endpoints."""
    networks: dict[str, Resource] = {}
    for driver in REGISTRY.values():
        networks.update(driver.rebuild_networks(observed))
    return networks


__all__ = [
    "HOST_END_KINDS", "HOST_SANDBOX_KEY", "REGISTRY", "REPLACEMENT_FIELDS", "Driver",
    "EndpointContext", "StepContext", "describe", "driver_for", "driver_of", "endpoint_driver",
    "is_cluster_scoped", "is_leftover", "kernel_names", "network_link_driver", "network_problems",
    "rebuild_networks",
]
