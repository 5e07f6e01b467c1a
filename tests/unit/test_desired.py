"""Sandbox files from the desired state: hosts lists each peer once, never oneself."""

from __future__ import annotations

from reconciler.caching import BuildMemo
from reconciler.desired import build_desired
from reconciler.state import Resource, ResourceKey, State

from builders import endpoint, manifests, network, sandbox


def _hosts(m: object, name: str) -> list[str]:
    state = build_desired(m, "default", State("default"))  # type: ignore[arg-type]
    sandbox_resource = state.get(ResourceKey("Sandbox", name))
    assert sandbox_resource is not None
    text = str(sandbox_resource.get("files.hosts"))
    return [line for line in text.splitlines()[3:]]


def test_hosts_lists_only_the_sandboxs_own_names_and_extra_hosts() -> None:
    """Docker's semantics: peers are the resolver's (tests/unit/test_resolver_records.py)."""
    m = manifests(
        network("a", "10.1.0.0/24"), network("b", "10.2.0.0/24"),
        sandbox("s1", hostname="one", domainname="example.org", extraHosts=["db:10.9.9.9"]),
        sandbox("s2"), sandbox("s3"),
        endpoint("s1-a", "a", "s1"), endpoint("s1-b", "b", "s1", ifname="eth1", gateway=False),
        endpoint("s2-a", "a", "s2", aliases=["www"]),
        endpoint("s2-b", "b", "s2", ifname="eth1", gateway=False),
        endpoint("s3-b", "b", "s3"),
    )
    assert _hosts(m, "s1") == [
        "10.1.0.2\tone.example.org one", "10.2.0.2\tone.example.org one", "10.9.9.9\tdb",
    ]
    assert _hosts(m, "s3") == ["10.2.0.4\ts3"]


def test_sandbox_without_endpoints_lists_only_itself() -> None:
    assert _hosts(manifests(network("a", "10.1.0.0/24"), sandbox("s")), "s") == []


def test_unchanged_objects_get_their_previous_resources_and_changes_still_show() -> None:
    """The build memo (for `cnm watch`): same inputs give the very same resource objects,
    and a change anywhere that feeds an object (a peer joining) gives a new, right one."""
    objects = [network("a", "10.1.0.0/24"), sandbox("s1"), sandbox("s2"),
               endpoint("e1", "a", "s1"), endpoint("e2", "a", "s2")]
    m = manifests(*objects)
    memo: BuildMemo[ResourceKey, Resource] = BuildMemo()  # what a planner passes in
    first = build_desired(m, "default", State("default"), memo=memo)
    again = build_desired(m, "default", State("default"), memo=memo)
    for resource in first:
        if resource.key.kind != "Network":
            assert again.get(resource.key) is resource
    more = manifests(*objects, sandbox("s3"), endpoint("e3", "a", "s3"))
    grown = build_desired(more, "default", State("default"), memo=memo)
    fresh = build_desired(more, "other", State("other"))  # no memo: built anew
    for key in (ResourceKey("Sandbox", "s1"), ResourceKey("Sandbox", "s2")):
        assert grown.get(key) is first.get(key)  # a peer joining changes no other sandbox
    resolver = ResourceKey("Resolver", "default")
    assert "e3 10.1.0.4" in grown.get(resolver).get("names.a")  # type: ignore[union-attr, operator]
    assert grown.get(resolver).attrs == fresh.get(ResourceKey("Resolver", "other")).attrs  # type: ignore[union-attr]
    assert grown.get(ResourceKey("Endpoint", "e1")) is first.get(ResourceKey("Endpoint", "e1"))


def test_without_a_memo_nothing_is_reused() -> None:
    m = manifests(network("a", "10.1.0.0/24"), sandbox("s1"), endpoint("e1", "a", "s1"))
    first = build_desired(m, "default", State("default"))
    again = build_desired(m, "default", State("default"))
    assert first == again
    assert all(again.get(r.key) is not r for r in first if r.key.kind != "Network")


def test_build_memo_reuses_only_for_equal_inputs_and_forgets_what_a_build_did_not_use() -> None:
    memo: BuildMemo[str, str] = BuildMemo()
    first = memo.next_build()
    assert first.get("a", (1,)) is None
    first.put("a", (1,), "A1")
    first.put("b", (2,), "B2")
    second = memo.next_build()
    assert second.get("a", (1,)) == "A1"
    assert second.get("b", (3,)) is None  # other inputs: build again
    third = memo.next_build()
    assert third.get("b", (2,)) is None  # the previous build did not use it: forgotten
    assert third.get("a", (1,)) == "A1"
