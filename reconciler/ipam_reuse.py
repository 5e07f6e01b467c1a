"""Address allocation for a planner that plans again and again (`cnm watch`): each
network's previous allocation reused whole when nothing it depends on changed, or
brought up to date when only endpoints that claim nothing came or went.

`ipam.allocate` is the definition; this gives the same result (a test compares
the two over random sequences of changes). An endpoint takes part in its
network's allocation only through its name, its static addresses, whether it is
joined, and the addresses it holds (`held_key`: what they are read from, the
text the kernel shows): its *signature*. Between two allocations of the same
network object:

* every signature the same: the previous `Assignment` objects are the result;
* else, when the previous allocation had no contest (no endpoint skipped a held
  address because another claimed it) and gave no unchanged endpoint the lowest
  free address (rule 3), and every new or changed endpoint has no static address
  and holds either nothing or, of each IP version, exactly the address the
  previous allocation gave it (an endpoint just created, read back): each
  unchanged endpoint keeps its address (what it was chosen for is still true,
  and nothing new claims before it: a held address the previous allocation
  gave was free of every claim), the ones that hold their address keep it, and
  the rest get the lowest free addresses, in name order, as rule 3 gives them;
* else the network is allocated from scratch.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Container, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from reconciler.caching import BuildMemo
from reconciler.ipam import (
    Assignment,
    FamilyChoice,
    IPAddress,
    assignments_of,
    choose_family,
    family_pools,
    lowest_free,
    reserved_integers,
)
from reconciler.manifest_set import Manifests
from reconciler.model import Endpoint

#: name -> (static IPv4, static IPv6, joined, what its held addresses are read from)
Signature = dict[str, tuple[object, object, bool, object]]


@dataclass(frozen=True)
class KeptAllocation:
    """One network's allocation as `allocate_reusing` keeps it for the next build."""

    choices: tuple[FamilyChoice, ...]
    assignments: dict[str, Assignment]


def allocate_reusing(
    manifests: Manifests,
    held: Mapping[str, Sequence[IPAddress]],
    joined: Sequence[str],
    memo: BuildMemo[str, KeptAllocation],
    held_key: Callable[[str], object],
) -> dict[str, Assignment]:
    """`ipam.allocate(manifests, held, joined)`, reusing `memo` (its owner:
    `caching.PlanCaches`); `held_key(name)`: what endpoint `name`'s `held` addresses
    are read from (equal keys, equal addresses)."""
    joined_set = set(joined)
    memo = memo.next_build()
    result: dict[str, Assignment] = {}
    for network_name in manifests.networks:
        result.update(allocate_network(manifests, network_name, held, joined_set, memo,
                                       held_key))
    return {name: result.get(name) or Assignment() for name in sorted(joined_set)}


def allocate_network(
    manifests: Manifests,
    network_name: str,
    held: Mapping[str, Sequence[IPAddress]],
    joined: Container[str],
    memo: BuildMemo[str, KeptAllocation],
    held_key: Callable[[str], object],
    dirty: Collection[str] | None = None,
) -> dict[str, Assignment]:
    """The assignments of one network's joined endpoints (`allocate_reusing` for one
    network; `joined` need only say which of its endpoints are joined). The caller
    has started the build (`memo.next_build()`). `dirty`: the only endpoints whose
    signature may differ from the last build's (the others' are taken as they were,
    so the cost is that of the change, not of the network)."""
    network = manifests.networks[network_name]
    last = memo.last(network_name)
    previous: Signature = {}
    if last is not None and last[0][0] is network:
        previous = cast(Signature, last[0][1])
    if dirty is not None and previous:
        signature = dict(previous)
        for name in dirty:
            endpoint = manifests.endpoints.get(name)
            if endpoint is not None and endpoint.spec.network == network_name:
                signature[name] = _sign(endpoint, joined, held_key)
            else:
                signature.pop(name, None)
        candidates: Collection[str] = dirty
    else:
        signature = {m.metadata.name: _sign(m, joined, held_key)
                     for m in manifests.endpoints_of_network(network_name)}
        candidates = signature.keys() | previous.keys()
    inputs = (network, signature)
    kept = memo.get(network_name, inputs)
    if kept is None:
        changed = {n for n in candidates if previous.get(n) != signature.get(n)}
        kept = _updated(manifests, network_name, signature, previous, changed, held, joined,
                        last[1] if last is not None else None)
        memo.put(network_name, inputs, kept)
    return kept.assignments


def _sign(endpoint: Endpoint, joined: Container[str], held_key: Callable[[str], object]
          ) -> tuple[object, object, bool, object]:
    name = endpoint.metadata.name
    return (endpoint.spec.ipv4_address, endpoint.spec.ipv6_address, name in joined,
            held_key(name))


def _updated(
    manifests: Manifests, network_name: str, signature: Signature, previous: Signature,
    changed: set[str], held: Mapping[str, Sequence[IPAddress]], joined: Container[str],
    kept: KeptAllocation | None,
) -> KeptAllocation:
    """The allocation for `signature`, from `kept` (the one for `previous`) where only
    the endpoints named in `changed` differ."""
    new = [manifests.endpoints[n] for n in sorted(changed) if n in signature]  # name order
    if kept is not None and previous and _patchable(kept, changed, new, signature, previous,
                                                    held):
        choices = tuple(_patched(manifests, choice, changed, new, joined, held)
                        for choice in kept.choices)
        assignments = dict(kept.assignments)
        for name in changed:
            assignments.pop(name, None)
        assignments.update(_as_before(assignments_of(choices, new, joined), kept))
        return KeptAllocation(choices, assignments)
    network = manifests.networks[network_name]
    members = manifests.endpoints_of_network(network_name)
    choices = tuple(choose_family(manifests, pools, members, held, version, joined)
                    for version, pools in family_pools(network))
    fresh = assignments_of(choices, members, joined)
    return KeptAllocation(choices, _as_before(fresh, kept) if kept is not None else fresh)


def _as_before(fresh: dict[str, Assignment], kept: KeptAllocation) -> dict[str, Assignment]:
    """`fresh` with each assignment equal to the kept one replaced by that very object: the
    caches after allocation (desired resources, placements, resolver records) compare
    their inputs by identity first, and keep the inputs they were built from."""
    for name, assignment in fresh.items():
        old = kept.assignments.get(name)
        # `ipam._interface` gives the same object for the same address (it is memoized)
        if old is not None and old.ipv4 is assignment.ipv4 and old.ipv6 is assignment.ipv6:
            fresh[name] = old
    return fresh


def _patchable(kept: KeptAllocation, changed: set[str], new: Sequence[Endpoint],
               signature: Signature, previous: Signature,
               held: Mapping[str, Sequence[IPAddress]]) -> bool:
    if any(c.contested or c.fresh - changed for c in kept.choices):
        return False
    for endpoint in new:
        name = endpoint.metadata.name
        if signature[name][:2] != (None, None):
            return False
        addresses = held.get(name)
        if not addresses:
            continue
        # what it holds was given by rule 2 or 3, so is in the dynamic range (a static
        # address need not be)
        if previous.get(name, (None, None))[:2] != (None, None) or any(
                _holding(c, name, addresses) is None for c in kept.choices):
            return False
    return True


def _holding(choice: FamilyChoice, name: str, addresses: Sequence[IPAddress]) -> int | None:
    """The address of `choice`'s family that `name` holds, when it holds exactly the one
    the previous allocation gave it; else None."""
    mine = [int(a) for a in addresses if a.version == choice.version]
    given = choice.chosen.get(name)
    return given if given is not None and mine == [given] else None


def _patched(manifests: Manifests, choice: FamilyChoice, changed: set[str],
             new: Sequence[Endpoint], joined: Container[str],
             held: Mapping[str, Sequence[IPAddress]]) -> FamilyChoice:
    chosen = dict(choice.chosen)
    for name in changed:
        chosen.pop(name, None)
    fresh: list[Endpoint] = []
    for endpoint in new:
        name = endpoint.metadata.name
        addresses = held.get(name)
        if addresses:  # holds what it was given (`_patchable`): kept, as rule 2 keeps it
            if name in joined:
                chosen[name] = cast(int, _holding(choice, name, addresses))
        elif name in joined:
            fresh.append(endpoint)
    taken = reserved_integers(choice.pools) | set(chosen.values())
    chosen.update(lowest_free(manifests, choice.pools, fresh, taken, choice.version))
    return FamilyChoice(choice.version, choice.pools, chosen,
                        frozenset(e.metadata.name for e in fresh), False)
