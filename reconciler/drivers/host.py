"""The host driver: endpoints use the host namespace; nothing is created.

A sandbox joined to a host network *is* the host namespace, so it has no
named namespace and no files of its own either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.drivers.base import (
    HOST_SANDBOX_KEY,
    Driver,
    FieldProblem,
    NoKernelObjects,
)
from reconciler.drivers.common import addressless_problems, no_ipam_problems

if TYPE_CHECKING:
    from reconciler.model import Endpoint, Network

__all__ = ["DRIVER", "HOST_SANDBOX_KEY", "HostDriver"]


class HostDriver(NoKernelObjects):
    name = "host"
    has_interfaces = False
    shares_host_namespace = True
    serves_names = False

    def check_network(self, network: Network) -> list[FieldProblem]:
        return no_ipam_problems(network)

    def check_endpoint(self, endpoint: Endpoint, network: Network) -> list[FieldProblem]:
        problems = addressless_problems(endpoint, network)
        if endpoint.spec.ports:
            problems.append(("spec.ports", f"{network.key} uses the host driver: services listen "
                                           "on the host's addresses themselves, nothing is "
                                           "published; remove spec.ports"))
        return problems


DRIVER: Driver = HostDriver()
