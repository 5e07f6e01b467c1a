"""Network drivers: each turns a Network manifest (and its endpoints) into resource attributes.

A driver plugs in through the small `Driver` protocol and the registry below;
adding one touches no other driver.
"""

from __future__ import annotations

from reconciler.drivers.base import Driver, EndpointContext
from reconciler.drivers.bridge import BridgeDriver

REGISTRY: dict[str, Driver] = {"bridge": BridgeDriver()}


def driver_for(name: str) -> Driver:
    """The driver registered under `name` (validation has already rejected unknown ones)."""
    return REGISTRY[name]


__all__ = ["REGISTRY", "Driver", "EndpointContext", "driver_for"]
