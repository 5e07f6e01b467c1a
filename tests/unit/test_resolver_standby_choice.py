"""When the pipeline starts the resolver's interpreter early (kernel/resolver_standby.py):
only for a plan that will start a resolver process, never for one that reloads or stops
it (pure: `kernel.resolver.starts_process` on the plan's actions)."""

from __future__ import annotations

from reconciler.kernel.resolver import NOT_ANSWERING, NOT_RUNNING, STALE, starts_process
from reconciler.resolver.records import KIND, SERVING
from reconciler.state import Resource, ResourceKey


def _resolver(process: str) -> Resource:
    return Resource(ResourceKey(KIND, "default"), "default",
                    {"listen": ("10.0.0.1 front",), "process": process})


def test_a_created_resolver_starts_a_process() -> None:
    assert starts_process([("create", "Sandbox", None), ("create", KIND, None)])


def test_an_update_starts_one_only_when_none_runs() -> None:
    assert starts_process([("update", KIND, _resolver(NOT_RUNNING))])
    for running in (SERVING, NOT_ANSWERING, STALE):  # a process is there: it is reloaded
        assert not starts_process([("update", KIND, _resolver(running))])


def test_no_resolver_action_or_its_deletion_starts_nothing() -> None:
    assert not starts_process([])
    assert not starts_process([("create", "Sandbox", None), ("create", "Endpoint", None)])
    assert not starts_process([("delete", KIND, _resolver(SERVING))])
