"""A planner's caches (`caching.PlanCaches`) change how fast a plan is made, never the
plan: each case changes ONE thing (a file edited, added or removed, the kernel
drifting, a marker digest, a name taken) and compares with a planner without caches."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from reconciler import engine, loader
from reconciler.caching import PlanCaches
from reconciler.errors import ConflictError
from reconciler.state import Resource, ResourceKey, State

NETWORK = ("apiVersion: cnm/v1\nkind: Network\nmetadata: {name: net}\n"
           "spec: {ipam: [{subnet: 10.80.0.0/24}, {subnet: 'fd80::/64'}]}\n")


def pair(i: int, extra: str = "") -> str:
    return (f"apiVersion: cnm/v1\nkind: Sandbox\nmetadata: {{name: s{i}}}\n---\n"
            f"apiVersion: cnm/v1\nkind: Endpoint\nmetadata: {{name: e{i}}}\n"
            f"spec: {{network: net, sandbox: s{i}{extra}}}\n")


class World:
    """A manifest directory, a watch-like planner (LoadCache + PlanCaches), and a
    stand-in for the kernel: the desired state of the last plan, as applied."""

    def __init__(self, tmp_path: Path, count: int = 6) -> None:
        self.tree = tmp_path / "m"
        self.tree.mkdir()
        (self.tree / "network.yaml").write_text(NETWORK)
        for i in range(count):
            (self.tree / f"s{i}.yaml").write_text(pair(i))
        self.cache = loader.LoadCache()
        self.caches = PlanCaches()
        self.observed = State("default")
        self.converge()

    def plan(self) -> engine.Planned:
        """The cached planner's plan, checked against a planner without caches."""
        manifests = self.cache.load([str(self.tree)])
        cached = engine.compute_plan(manifests, self.observed, caches=self.caches)
        fresh = engine.compute_plan(loader.load([str(self.tree)]), self.observed)
        assert cached.plan == fresh.plan
        assert cached.desired == fresh.desired
        return cached

    def converge(self) -> None:
        self.observed = self.plan().desired
        assert self.plan().plan.empty

    def drift(self, key: ResourceKey, **attrs: object) -> None:
        resources = dict(self.observed.resources)
        old = resources[key]
        resources[key] = Resource(key, old.set_name, {**old.attrs, **attrs})
        self.observed = dataclasses.replace(self.observed, resources=resources)


def _verbs(planned: engine.Planned) -> list[str]:
    return [f"{a.verb} {a.key}" for a in planned.plan.actions]


def test_an_edit(tmp_path: Path) -> None:
    world = World(tmp_path)
    (world.tree / "s2.yaml").write_text(pair(2, ", aliases: [two]"))
    assert _verbs(world.plan()) == ["update Resolver/default"]
    world.converge()
    (world.tree / "s2.yaml").write_text(
        pair(2).replace("{name: s2}", "{name: s2}\nspec: {hostname: other}"))
    assert _verbs(world.plan()) == ["update Sandbox/s2", "update Resolver/default"]


def test_an_added_and_a_removed_file(tmp_path: Path) -> None:
    world = World(tmp_path)
    (world.tree / "s9.yaml").write_text(pair(9))
    assert _verbs(world.plan()) == ["create Sandbox/s9", "create Endpoint/e9",
                                    "update Resolver/default"]
    world.converge()
    (world.tree / "s1.yaml").unlink()
    assert _verbs(world.plan()) == ["update Resolver/default", "delete Endpoint/e1",
                                    "delete Sandbox/s1"]
    world.converge()
    (world.tree / "s0.yaml").write_text(pair(0, ", ipv4Address: 10.80.0.200"))
    changed = _verbs(world.plan())  # a static address: the allocation starts again
    assert "update Endpoint/e0" in changed and "update Sandbox/s0" in changed


def test_a_kernel_drift(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.drift(ResourceKey("Endpoint", "e3"), mtu=1400)
    assert _verbs(world.plan()) == ["update Endpoint/e3"]
    world.drift(ResourceKey("Sandbox", "s4"), **{"files.hosts": "changed by hand\n"})
    assert _verbs(world.plan()) == ["update Sandbox/s4", "update Endpoint/e3"]


def test_a_marker_digest_that_changes(tmp_path: Path) -> None:
    world = World(tmp_path)
    key = ResourceKey("Endpoint", "e1")
    world.drift(key, mtu=1400)
    digests = {key: "not-the-digest"}
    world.observed = dataclasses.replace(world.observed, applied_digests=digests)
    first = world.plan()
    assert _verbs(first) == ["update Endpoint/e1"] and not first.plan.actions[0].outside
    world.observed = dataclasses.replace(world.observed, applied_digests={})
    world.plan()  # compared with the planner without caches inside


def test_a_name_taken_by_something_else(tmp_path: Path) -> None:
    world = World(tmp_path)
    (world.tree / "s9.yaml").write_text(pair(9))
    world.plan()
    world.observed = dataclasses.replace(world.observed, occupied={"netns:s9": "someone"})
    manifests = world.cache.load([str(world.tree)])
    with pytest.raises(ConflictError, match="netns s9 is taken by someone"):
        engine.compute_plan(manifests, world.observed, caches=world.caches)
