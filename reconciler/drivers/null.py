"""The null driver: endpoints get no interface; their sandbox has only `lo`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.drivers.base import (
    Driver,
    FieldProblem,
    NoKernelObjects,
)
from reconciler.drivers.common import addressless_problems, no_ipam_problems

if TYPE_CHECKING:
    from reconciler.model import Endpoint, Network


class NullDriver(NoKernelObjects):
    name = "null"
    has_interfaces = False
    shares_host_namespace = False
    serves_names = False

    def check_network(self, network: Network) -> list[FieldProblem]:
        return no_ipam_problems(network)

    def check_endpoint(self, endpoint: Endpoint, network: Network) -> list[FieldProblem]:
        problems = addressless_problems(endpoint, network)
        if endpoint.spec.ports:
            problems.append(("spec.ports", f"{network.key} uses the null driver: nothing can "
                                           "be published; remove spec.ports"))
        return problems


DRIVER: Driver = NullDriver()
