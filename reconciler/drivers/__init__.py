"""Network drivers: each one a whole slice (options and validation, desired resources,
observation of its links, apply steps, export) behind the `Driver` protocol of base.py.

The rest of cnm reaches a driver only through this registry: by the name a
manifest gives (`driver_for`), by a resource it made (`driver_of`), or by the
kind of a link observation found. Adding a driver is one new module here that
defines `DRIVER`, and one line in names.py: its name and its exclusive options.
Driver modules load on first use (validation loads only the drivers it meets).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from functools import cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from reconciler.drivers.base import HOST_SANDBOX_KEY, Driver, EndpointContext, FieldProblem
from reconciler.drivers.kernel_view import LinkInfo, StepContext
from reconciler.drivers.names import DEFAULT, EXCLUSIVE_OPTIONS, NAMES

if TYPE_CHECKING:
    from reconciler.model import Network
    from reconciler.state import Resource, State

    # Built on first use by `__getattr__` (typed here for the checker).
    REGISTRY: Mapping[str, Driver]
    REPLACEMENT_FIELDS: Mapping[str, frozenset[str]]
    HOST_END_KINDS: frozenset[str]

# A driver module is loaded when first asked for by name: validation loads only the
# drivers its manifests name, and no driver loads the kernel-state model it does not need.
# What needs every driver (`REGISTRY`, `REPLACEMENT_FIELDS`, `HOST_END_KINDS`, the link
# kind maps) is built on first use by `__getattr__` below.


@cache
def driver_for(name: str) -> Driver:
    """The driver registered under `name` (validation has already rejected unknown ones)."""
    if name not in NAMES:
        raise KeyError(name)
    driver: Driver = importlib.import_module(f"{__name__}.{name}").DRIVER
    return driver


@cache
def _registry() -> Mapping[str, Driver]:
    return MappingProxyType({name: driver_for(name) for name in NAMES})


@cache
def _replacement_fields() -> Mapping[str, frozenset[str]]:
    from reconciler.state import COMMON_REPLACEMENT_FIELDS

    drivers = _registry().values()
    return MappingProxyType({
        kind: fields.union(*(d.replacement_fields.get(kind, ()) for d in drivers))
        for kind, fields in COMMON_REPLACEMENT_FIELDS.items()
    })


@cache
def _link_kinds(attr: str) -> Mapping[str | None, Driver]:
    """Link kind -> the driver that makes links of that kind (`attr` names the role:
    network_link_kind, host_end_kind, interface_kind)."""
    drivers = _registry().values()
    return MappingProxyType({getattr(d, attr): d for d in drivers if getattr(d, attr)})


def __getattr__(name: str) -> Any:
    if name == "REGISTRY":
        return _registry()
    if name == "REPLACEMENT_FIELDS":
        #: Attributes whose change forces a replacement, by kind: the common ones and each driver's.
        return _replacement_fields()
    if name == "HOST_END_KINDS":
        #: Kinds of the host-namespace ends of endpoints (observation collects these links).
        return frozenset(kind for kind in _link_kinds("host_end_kind") if kind is not None)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def driver_of(resource: Resource) -> Driver | None:
    """The driver that made (or would make) a Network or Endpoint resource; None for a
    Sandbox. One no driver claims (firewall rules whose links are gone) goes to the
    default driver, as in observation: its steps find nothing of it to touch."""
    if resource.key.kind not in ("Network", "Endpoint"):
        return None
    for driver in _registry().values():
        if driver.owns(resource):
            return driver
    return driver_for(DEFAULT)


def network_link_driver(kind: str | None) -> Driver | None:
    """The driver whose networks are host links of `kind`."""
    return _link_kinds("network_link_kind").get(kind)


def endpoint_driver(host_kind: str | None, interface_kind: str | None) -> Driver:
    """The driver of an endpoint whose ends observation found: by its host end, else by
    its interface; an interface of a kind no driver makes goes to the default driver
    (as a half-made endpoint of its: planning replaces or deletes it)."""
    driver = (_link_kinds("host_end_kind").get(host_kind)
              or _link_kinds("interface_kind").get(interface_kind))
    return driver if driver is not None else driver_for(DEFAULT)


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
    return bool(getattr(driver_for(driver_name), "cluster_scoped", False))


def network_problems(network: Network) -> list[FieldProblem]:
    """A network's problems its driver knows: fields only another driver takes (its
    exclusive options, declared in names.py so that no other driver need be loaded),
    then the driver's own rules."""
    problems: list[FieldProblem] = []
    for other, options in EXCLUSIVE_OPTIONS.items():
        if other == network.spec.driver:
            continue
        for option in options:
            if getattr(network.spec, option) is not None:
                problems.append(
                    (f"spec.{option}", f"{option} is for {other} networks only; remove it"))
    return problems + driver_for(network.spec.driver).check_network(network)


def is_leftover(link: LinkInfo, masters: set[int], addressed: set[int]) -> bool:
    """True for an unlabelled host link of cnm's group that a driver's interrupted
    creation left (see kernel/debris.py)."""
    return any(d.is_leftover(link, masters, addressed) for d in _registry().values())


def describe(resource: Resource) -> str:
    """A Network or Endpoint resource's kernel objects in a few words, as its driver says."""
    driver = driver_of(resource)
    return driver.describe(resource) if driver is not None else ""


def rebuild_networks(observed: State) -> dict[str, Resource]:
    """Networks that have no kernel object of their own, rebuilt from their endpoints."""
    networks: dict[str, Resource] = {}
    for driver in _registry().values():
        networks.update(driver.rebuild_networks(observed))
    return networks


__all__ = [
    "HOST_END_KINDS", "HOST_SANDBOX_KEY", "REGISTRY", "REPLACEMENT_FIELDS", "Driver",
    "EndpointContext", "StepContext", "describe", "driver_for", "driver_of", "endpoint_driver",
    "is_cluster_scoped", "is_leftover", "kernel_names", "network_link_driver", "network_problems",
    "rebuild_networks",
]
