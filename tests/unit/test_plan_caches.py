"""A planner's caches (`caching.PlanCaches`) change how fast a plan is made, never the
plan: each case changes ONE thing (a file edited, added or removed, the kernel
drifting, a marker digest, a name taken) and compares with a planner without caches."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest

from reconciler import engine, loader
from reconciler.caching import PlanCaches
from reconciler.errors import ConflictError, ManifestError
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


def _random_file(rng: random.Random, i: int) -> str:
    spec = rng.choice(["", ", aliases: [a{i}]", ", ipv4Address: 10.80.0.{n}", ", gwPriority: 5",
                       ", ifname: eth3", ", gateway: false"]).format(i=i, n=rng.randint(2, 60))
    text = pair(i, spec)
    if rng.random() < 0.3:  # the sandbox changes too
        text = text.replace(f"{{name: s{i}}}", f"{{name: s{i}}}\nspec: {{hostname: h{i}, "
                            f"dns: {{servers: [192.0.2.{rng.randint(1, 9)}]}}}}", 1)
    if rng.random() < 0.2:  # a second endpoint in the same sandbox, on the second network
        text += (f"---\napiVersion: cnm/v1\nkind: Endpoint\nmetadata: {{name: f{i}}}\n"
                 f"spec: {{network: other, sandbox: s{i}}}\n")
    return text


@pytest.mark.parametrize("seed", range(12))
def test_random_changes_plan_as_without_caches(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    world = World(tmp_path)
    (world.tree / "other.yaml").write_text(NETWORK.replace("net}", "other}").replace(
        "10.80.0.0/24", "10.81.0.0/24").replace("fd80::/64", "fd81::/64"))
    world.converge()
    for _ in range(25):
        move = rng.random()
        i = rng.randint(0, 8)
        if move < 0.35:
            (world.tree / f"s{i}.yaml").write_text(_random_file(rng, i))
        elif move < 0.5:
            (world.tree / f"s{i}.yaml").unlink(missing_ok=True)
        elif move < 0.65 and world.observed.resources:
            key = rng.choice(sorted(world.observed.resources))
            if key.kind == "Endpoint" and rng.random() < 0.5:
                world.drift(key, ipv4=(f"10.80.0.{rng.randint(2, 60)}/24",))
            elif key.kind in ("Endpoint", "Sandbox"):
                resources = dict(world.observed.resources)
                del resources[key]  # gone from the kernel
                world.observed = dataclasses.replace(world.observed, resources=resources)
        elif move < 0.7:
            (world.tree / "network.yaml").write_text(
                NETWORK.replace("{name: net}", "{name: net}\n# " + str(rng.random())))
        try:
            planned = world.plan()
        except ManifestError:
            continue  # an address clash the random edit made: load refuses both ways
        if rng.random() < 0.6:
            world.observed = planned.desired  # applied
