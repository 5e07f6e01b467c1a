"""Every speed cache of cnm: who owns it, and the one switch that turns them all off.

cnm's results never depend on a cache: `CNM_NO_CACHE=1` (read once, when this
module is first imported) turns every one off, and tests run the golden plans
and a kernel lifecycle both ways and compare the outputs byte for byte
(tests/unit/test_no_cache_plans.py, tests/kernel/test_no_cache_lifecycle.py). The caches:

* `memoize`: pure functions of immutable arguments (address texts parsed or
  printed again and again). Owner: the function; nothing to invalidate.
* `BuildMemo`: the previous build's results reused when their inputs are the
  very same, for `cnm watch`, which rebuilds a thousand unchanged objects after
  every change. Each one has one owner that passes it in explicitly:
  `PlanCaches.desired` (the planner of a command, a watch or an API
  `Controller`: `desired.build_desired`) and `LiveObservation`'s firewall views
  (`firewall.attach`).
* `loader.LoadCache` (files whose stat stamp did not change are not parsed
  again) and `kernel/live.LiveObservation` (namespaces nobody marked are not
  read again; unchanged parts are reused by identity): with the switch off they
  parse and read everything every time.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from reconciler.state import Resource, ResourceKey

ENV = "CNM_NO_CACHE"
#: False when `CNM_NO_CACHE` is set to anything but "" or "0".
ENABLED = os.environ.get(ENV, "") in ("", "0")

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
F = TypeVar("F", bound=Callable[..., object])


def memoize(maxsize: int | None) -> Callable[[F], F]:
    """`functools.lru_cache(maxsize)` for a pure function, or the function itself when
    caches are off."""

    def wrap(function: F) -> F:
        if not ENABLED:
            return function
        return functools.lru_cache(maxsize=maxsize)(function)  # type: ignore[return-value]

    return wrap


class BuildMemo(Generic[K, V]):
    """Results of the previous build by key, with the inputs each was built from.

    A result is reused when its inputs equal those it was built from (compared
    as one tuple: identity first, element by element, in C); entries a build
    did not use are dropped by the next one, so the memo never outgrows one
    build. With caches off, nothing is ever reused.
    """

    def __init__(self) -> None:
        self._previous: dict[K, tuple[tuple[object, ...], V]] = {}
        self._current: dict[K, tuple[tuple[object, ...], V]] = {}

    def next_build(self) -> BuildMemo[K, V]:
        """Start a build: what the last one used becomes what this one may reuse."""
        self._previous, self._current = self._current or self._previous, {}
        return self

    def keep_unused(self) -> None:
        """End a build that looked only at what changed: the entries it did not ask for
        are kept for the next one (their inputs did not change)."""
        if ENABLED:
            self._current = {**self._previous, **self._current}

    def get(self, key: K, inputs: tuple[object, ...]) -> V | None:
        if not ENABLED:
            return None
        entry = self._previous.get(key)
        if entry is None or entry[0] != inputs:
            return None
        # kept with today's inputs: equal now, they are the same objects next time,
        # compared by identity alone
        self._current[key] = (inputs, entry[1])
        return entry[1]

    def last(self, key: K) -> tuple[tuple[object, ...], V] | None:
        """The previous build's inputs and result for `key`, whatever the inputs now: for
        an owner that can bring an old result up to date more cheaply than build it."""
        return self._previous.get(key) if ENABLED else None

    def put(self, key: K, inputs: tuple[object, ...], value: V) -> V:
        if ENABLED:
            self._current[key] = (inputs, value)
        return value


@dataclass
class PlanCaches:
    """What a planner may keep from one plan to the next (a command plans again to
    verify; a watch and an API `Controller` plan on every change)."""

    #: desired Sandbox and Endpoint resources (`desired.build_desired`)
    desired: BuildMemo[ResourceKey, Resource] = field(default_factory=BuildMemo)
    # The values' types are their owners' (this module imports none of them: they
    # import it):
    #: each network's address allocation (`ipam_reuse.KeptAllocation`, by
    #: `ipam_reuse.allocate_reusing`)
    allocation: BuildMemo[str, Any] = field(default_factory=BuildMemo)
    #: each sandbox's interface names and default routes (endpoint name ->
    #: `interface_defaults.Placement`, by `interface_defaults.placements`)
    placement: BuildMemo[str, Any] = field(default_factory=BuildMemo)
    #: each endpoint's share of the resolver's records (`resolver.records.resolver_attrs`)
    records: BuildMemo[str, tuple[object, ...]] = field(default_factory=BuildMemo)
    #: the pairs of desired and observed resources `plan.make_plan` found in sync
    in_sync: BuildMemo[ResourceKey, bool] = field(default_factory=BuildMemo)
    #: the kernel names each desired resource needs, and its driver (`plan.check_conflicts`)
    names: BuildMemo[ResourceKey, Any] = field(default_factory=BuildMemo)
    #: the last full or partial build (`desired.LastBuild`), where `desired_delta.rebuild`
    #: starts from; the last plan (`plan_delta.LastPlan`), where `plan_delta.replan` does
    last_build: Any = None
    last_plan: Any = None
