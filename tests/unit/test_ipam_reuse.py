"""`ipam_reuse.allocate_reusing` gives what `ipam.allocate` gives, over random sequences
of changes, and reuses or patches instead of allocating again where it may."""

from __future__ import annotations

import ipaddress
import random

import pytest

from reconciler import ipam_reuse
from reconciler.caching import BuildMemo
from reconciler.ipam import AllocationError, IPAddress, allocate
from reconciler.model import Endpoint, Network

from builders import endpoint, manifests, network, sandbox

A = ipaddress.ip_address
NAMES = [f"e{i}" for i in range(9)]


def _both(world: dict[str, Endpoint], net: Network, held: dict[str, list[IPAddress]],
          memo: BuildMemo[str, ipam_reuse.KeptAllocation],
          hinted: tuple[BuildMemo[str, ipam_reuse.KeptAllocation], set[str] | None] | None = None,
          ) -> tuple[object, object]:
    """`ipam.allocate` and `allocate_reusing`; with `hinted` (a memo of its own and the
    names changed since its last use), `allocate_network` told those is run too and
    must agree."""
    m = manifests(net, sandbox("s"), *world.values())
    joined = [name for name, e in world.items() if e.spec.sandbox is not None]
    key = lambda n: tuple(map(str, held.get(n, ())))  # noqa: E731

    def told() -> dict[str, ipam_reuse.Assignment]:
        assert hinted is not None
        found = ipam_reuse.allocate_network(m, "n", held, set(joined), hinted[0].next_build(),
                                            key, hinted[1])
        return {name: found.get(name) or ipam_reuse.Assignment() for name in sorted(joined)}

    outcomes = []
    for run in (lambda: allocate(m, held, joined),
                lambda: ipam_reuse.allocate_reusing(m, held, joined, memo, key),
                *([told] if hinted is not None else [])):
        try:
            outcomes.append({k: (str(a.ipv4), str(a.ipv6)) for k, a in run().items()})
        except AllocationError as exc:
            outcomes.append(str(exc))
    assert all(o == outcomes[0] for o in outcomes[2:])
    return outcomes[0], outcomes[1]


@pytest.mark.parametrize("crowded", [True, False])
@pytest.mark.parametrize("seed", range(30))
def test_random_changes_give_what_allocate_gives(seed: int, crowded: bool) -> None:
    """`crowded`: a /28 where addresses run out and claims clash; else a /24 with few
    static addresses, where most changes are patched."""
    rng = random.Random(seed)
    dual = seed % 2 == 0
    subnets = ["10.0.0.0/28", "fd00::/124"] if dual else ["10.0.0.0/28"]
    if not crowded:
        subnets = ["10.0.0.0/24", "fd00::/120"] if dual else ["10.0.0.0/24"]
    net = network("n", *subnets)
    world: dict[str, Endpoint] = {}
    held: dict[str, list[IPAddress]] = {}
    memo: BuildMemo[str, ipam_reuse.KeptAllocation] = BuildMemo()
    hinted: BuildMemo[str, ipam_reuse.KeptAllocation] = BuildMemo()
    for _ in range(60):
        name = rng.choice(NAMES)
        move = rng.random()
        dirty: set[str] | None = {name}
        if move < 0.4:  # add or replace an endpoint, now and then with a static address
            spec = {}
            if rng.random() < (0.15 if crowded else 0.03):
                spec["ipv4Address"] = f"10.0.0.{rng.randint(2, 14)}"
            world[name] = endpoint(name, "n", None if rng.random() < 0.1 else "s", **spec)
            world = dict(sorted(world.items()))
        elif move < 0.55:
            world.pop(name, None)
        elif move < 0.7 and world.get(name) is not None:  # created: holds what it was given
            given = _both(world, net, held, memo)[0]
            if isinstance(given, dict) and name in given:
                held[name] = [A(t.split("/")[0]) for t in given[name] if t != "None"]
        elif move < 0.85:  # what the kernel shows for it changes (or starts showing)
            held[name] = [A(f"10.0.0.{rng.randint(1, 15)}")] if rng.random() < 0.8 else []
            if dual and rng.random() < 0.5:
                held[name].append(A(f"fd00::{rng.randint(1, 15):x}"))
        elif move < 0.9:
            net = network("n", *subnets)  # an equal network, another object
            dirty = None
        expected, reused = _both(world, net, held, memo, (hinted, dirty))
        assert reused == expected
        if not crowded and isinstance(expected, dict) and rng.random() < 0.7:
            for done, given in expected.items():  # applied: the kernel shows what was given
                held[done] = [A(t.split("/")[0]) for t in given if t != "None"]  # type: ignore[attr-defined]
            _both(world, net, held, memo, (hinted, None))  # every name may have changed


def test_an_endpoint_that_claims_nothing_is_added_without_allocating_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    net = network("n", "10.0.0.0/24")
    world = {n: endpoint(n, "n", "s") for n in NAMES[:5]}
    held = {n: [A(f"10.0.0.{i + 2}")] for i, n in enumerate(NAMES[:5])}
    memo: BuildMemo[str, ipam_reuse.KeptAllocation] = BuildMemo()
    first = _both(world, net, held, memo)
    assert first[0] == first[1]
    calls: list[int] = []
    original = ipam_reuse.choose_family
    monkeypatch.setattr(ipam_reuse, "choose_family",
                        lambda *a: calls.append(1) or original(*a))  # type: ignore[func-returns-value]
    world["a0"] = endpoint("a0", "n", "s")  # sorts first, holds nothing
    world = dict(sorted(world.items()))
    expected, reused = _both(world, net, held, memo)
    assert reused == expected and expected["a0"][0] == "10.0.0.7/24"  # type: ignore[index]
    held["a0"] = [A("10.0.0.7")]  # created: the kernel shows what it was given
    expected, reused = _both(world, net, held, memo)
    assert reused == expected
    del world["e1"]
    expected, reused = _both(world, net, held, memo)
    assert reused == expected
    assert calls == []
    world["e1"] = endpoint("e1", "n", "s", ipv4Address="10.0.0.4")  # claims e2's address
    world = dict(sorted(world.items()))
    expected, reused = _both(world, net, held, memo)
    assert reused == expected and calls  # allocated again
