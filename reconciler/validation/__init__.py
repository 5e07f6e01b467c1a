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

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

from reconciler.errors import ManifestProblem
from reconciler.manifest_set import Manifests
from reconciler.resource_key import ResourceKey
from reconciler.validation.across import CROSS_CHECKS, check_duplicate_names
from reconciler.validation.objects import check_endpoint, check_network, check_sandbox
from reconciler.validation.report import Reporter

if TYPE_CHECKING:
    from reconciler.caching import BuildMemo
    from reconciler.model import Endpoint, Network, Sandbox

__all__ = ["validate"]

_Object = TypeVar("_Object", "Network", "Sandbox", "Endpoint")


def validate(
    manifests: Manifests,
    *,
    field_lines: Mapping[tuple[ResourceKey, str], int] | None = None,
    unloaded: frozenset[ResourceKey] | None = frozenset(),
    memo: BuildMemo[ResourceKey, bool] | None = None,
    external_networks: bool = False,
) -> list[ManifestProblem]:
    """Every rule that a single value cannot check alone; empty when the manifests are good.

    `field_lines` maps (object key, dotted camelCase path) to a line, so problems
    point at the offending field rather than at the document. `unloaded`: objects
    whose documents did not load (None: possibly any), so a reference to them is
    not reported as unknown. `external_networks`: nor is a network the manifests do
    not define (another apply set's, which only plan and apply can look for).

    `memo` (its owner: `loader.LoadCache`): the objects the previous validation found
    without a problem of their own, by the inputs of their rules (the object itself,
    and for an endpoint the network it names, whether its sandbox exists and
    `external_networks`); an object whose inputs are the very same is not checked
    again. Only "no problem" is remembered, and only when no document failed to load
    and no name is duplicated (then a problem's wording and line could depend on
    other files). The rules across objects always run, on everything.
    """
    report = Reporter(manifests, {} if field_lines is None else field_lines, unloaded,
                      external_networks)
    check_duplicate_names(report)
    if memo is not None and not manifests.duplicates and unloaded == frozenset():
        memo = memo.next_build()
    else:
        memo = None
    for network in manifests.networks.values():
        if not _known_good(memo, network.key, (network,)):
            _remember(report, memo, network.key, (network,), check_network, network)
    for sandbox in manifests.sandboxes.values():
        if not _known_good(memo, sandbox.key, (sandbox,)):
            _remember(report, memo, sandbox.key, (sandbox,), check_sandbox, sandbox)
    networks, sandboxes = manifests.networks, manifests.sandboxes
    for endpoint in manifests.endpoints.values():
        spec = endpoint.spec
        inputs = (endpoint, networks.get(spec.network),
                  spec.sandbox is None or spec.sandbox in sandboxes, external_networks)
        if not _known_good(memo, endpoint.key, inputs):
            _remember(report, memo, endpoint.key, inputs, check_endpoint, endpoint)
    for check in CROSS_CHECKS:
        check(report)
    return report.problems


def _known_good(memo: BuildMemo[ResourceKey, bool] | None, key: ResourceKey,
                inputs: tuple[object, ...]) -> bool:
    """True when the last validation found `key` without a problem for these inputs."""
    return memo is not None and memo.get(key, inputs) is not None


def _remember(report: Reporter, memo: BuildMemo[ResourceKey, bool] | None, key: ResourceKey,
              inputs: tuple[object, ...], check: Callable[[Reporter, _Object], None],
              obj: _Object) -> None:
    """Run one object's rules; remember the object as good when they found nothing."""
    before = len(report.problems)
    check(report, obj)
    if memo is not None and len(report.problems) == before:
        memo.put(key, inputs, True)
