"""Cross-object validation: every rule that needs more than one value to decide.

The pydantic models (`reconciler.model`) check what one value alone can tell,
so a loaded object is always well-typed; `validate()` checks everything that
needs context (other objects, the kernel's name limits, address plans). It
returns `ManifestProblem`s instead of raising, so the loader can report every
problem of every file at once, and the Python API can run the very same rules
on objects it built itself.

`objects` holds the rules about one object (and the objects it names),
`across` the rules about clashes between objects.
"""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.errors import ManifestProblem
from reconciler.model import Manifests
from reconciler.resource_key import ResourceKey
from reconciler.validation.across import CROSS_CHECKS, check_duplicate_names
from reconciler.validation.objects import check_endpoint, check_network, check_sandbox
from reconciler.validation.report import Reporter

__all__ = ["validate"]


def validate(
    manifests: Manifests,
    *,
    field_lines: Mapping[tuple[ResourceKey, str], int] | None = None,
    unloaded: frozenset[ResourceKey] | None = frozenset(),
    external_networks: bool = False,
) -> list[ManifestProblem]:
    """Every rule that a single value cannot check alone; empty when the manifests are good.

    `field_lines` maps (object key, dotted camelCase path) to a line, so problems
    point at the offending field rather than at the document. `unloaded`: objects
    whose documents did not load (None: possibly any), so a reference to them is
    not reported as unknown. `external_networks`: nor is a network the manifests do
    not define (another apply set's, which only plan and apply can look for).
    """
    report = Reporter(manifests, field_lines or {}, unloaded, external_networks)
    check_duplicate_names(report)
    for network in manifests.networks.values():
        check_network(report, network)
    for sandbox in manifests.sandboxes.values():
        check_sandbox(report, sandbox)
    for endpoint in manifests.endpoints.values():
        check_endpoint(report, endpoint)
    for check in CROSS_CHECKS:
        check(report)
    return report.problems
