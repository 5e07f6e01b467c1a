"""Network drivers: each turns a Network manifest (and its endpoints) into resource attributes.

A driver plugs in through the small `Driver` protocol and the registry below;
adding one touches no other driver.
"""

from __future__ import annotations

from reconciler.drivers.base import Driver, EndpointContext
from reconciler.drivers.bridge import BridgeDriver
from reconciler.drivers.host import HostDriver
from reconciler.drivers.macvlan import MacvlanDriver
from reconciler.drivers.null import NullDriver

REGISTRY: dict[str, Driver] = {
    driver.name: driver for driver in (BridgeDriver(), MacvlanDriver(), NullDriver(), HostDriver())
}


def driver_for(name: str) -> Driver:
    """The driver registered under `name` (validation has already rejected unknown ones)."""
    return REGISTRY[name]


__all__ = ["REGISTRY", "Driver", "EndpointContext", "driver_for"]
