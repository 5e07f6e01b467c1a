"""What a plan touches, computed once as data, and the verification that compares only
what may differ: both pure."""

from __future__ import annotations

import pytest

from reconciler.desired import build_desired
from reconciler.manifest_set import Manifests
from reconciler.pipeline import VerifyError, remaining, verify
from reconciler.plan import Planned, Touched, make_plan
from reconciler.state import Resource, ResourceKey, State

from builders import endpoint, manifests, network, sandbox


def _applied(m: Manifests) -> State:
    """The observed state after a perfect apply: the desired state itself."""
    return build_desired(m, "default", State("default"))


def _planned(before: Manifests, after: Manifests) -> Planned:
    observed = _applied(before)
    desired = build_desired(after, "default", observed)
    return Planned(make_plan(desired, observed), desired, observed)


def test_a_peer_joining_touches_its_namespace_and_no_other_sandbox() -> None:
    start = (network("net", "10.0.0.0/24"), sandbox("s1"), sandbox("s2"),
             endpoint("e1", "net", "s1"), endpoint("e2", "net", "s2"))
    planned = _planned(manifests(*start),
                       manifests(*start, sandbox("s3"), endpoint("e3", "net", "s3")))
    touched = planned.touched()
    assert touched == Touched(
        host=True, firewall=True, netns=frozenset({"s3"}), listed=frozenset({"s3"}),
        files=frozenset(),  # the resolver learns the new peer; no other sandbox's files
        relabelled=touched.relabelled,
    )
    # nothing of s1 and s2 changes, so neither marker is written again
    assert touched.relabelled == {}


def test_a_removed_sandbox_is_removed_listed_and_read_again() -> None:
    start = (network("net", "10.0.0.0/24"), sandbox("s1"), endpoint("e1", "net", "s1"))
    planned = _planned(manifests(*start, sandbox("s2"), endpoint("e2", "net", "s2")),
                       manifests(*start))
    touched = planned.touched()
    assert touched.removed == frozenset({"s2"}) and touched.listed == frozenset({"s2"})
    assert touched.netns == frozenset({"s2"}) and touched.host and touched.firewall
    assert touched.files == frozenset()  # s1's hosts file never listed s2


def test_a_sandbox_alone_leaves_the_host_and_the_firewall_alone() -> None:
    planned = _planned(manifests(sandbox("s1")), manifests(sandbox("s1"), sandbox("s9")))
    assert planned.touched() == Touched(netns=frozenset({"s9"}), listed=frozenset({"s9"}))


def test_an_endpoint_moving_touches_both_sandboxes() -> None:
    base = (network("net", "10.0.0.0/24"), sandbox("s1"), sandbox("s2"))
    planned = _planned(manifests(*base, endpoint("e1", "net", "s1")),
                       manifests(*base, endpoint("e1", "net", "s2")))
    touched = planned.touched()
    assert {"s1", "s2"} <= touched.netns and touched.removed == frozenset()
    assert touched.listed == frozenset()


def test_verification_compares_what_was_acted_on_and_what_reads_back_different() -> None:
    start = (network("net", "10.0.0.0/24"), sandbox("s1"), sandbox("s2"),
             endpoint("e1", "net", "s1"), endpoint("e2", "net", "s2"))
    planned = _planned(manifests(*start), manifests(*start, sandbox("s3")))
    new = ResourceKey("Sandbox", "s3")
    # a perfect apply: the new sandbox is there, everything else the very same objects
    done = State("default", {**planned.observed.resources, new: planned.desired.resources[new]})
    assert remaining(planned, done).empty
    # the step did nothing: the action is still to do
    assert [a.verb for a in remaining(planned, planned.observed).actions] == ["create"]
    # a neighbour read back different (a fresh object) is compared, and found to differ
    e1 = planned.observed.resources[ResourceKey("Endpoint", "e1")]
    broken = Resource(e1.key, e1.set_name, {**e1.attrs, "up": False})
    changed = State("default", {**done.resources, e1.key: broken})
    assert [(a.verb, str(a.key)) for a in remaining(planned, changed).actions] == [
        ("update", "Endpoint/e1")]
    # a neighbour gone: missing
    gone = State("default", {k: r for k, r in done.resources.items() if k != e1.key})
    assert [(a.verb, str(a.key)) for a in remaining(planned, gone).actions] == [
        ("create", "Endpoint/e1")]
    # the same neighbour read back equal but as a new object: compared, and in sync
    copy = Resource(e1.key, e1.set_name, dict(e1.attrs))
    assert remaining(planned, State("default", {**done.resources, e1.key: copy})).empty
    # the whole remaining plan equals a full plan whenever objects are fresh
    fresh = State("default", {k: Resource(k, r.set_name, dict(r.attrs))
                              for k, r in changed.resources.items()})
    assert remaining(planned, fresh).actions == make_plan(planned.desired, fresh).actions


class _Lagging:
    """An observation whose host notifications lag: the first read after the apply
    misses what it added; a dump of the host (`reload_host`) shows it."""

    identities: dict[str, object] = {}

    def __init__(self, stale: State, current: State) -> None:
        self.reads = [stale]
        self.current = current
        self.touched: Touched | None = None

    def state(self) -> State:
        return self.reads.pop(0) if self.reads else self.current

    def mark_touched(self, touched: Touched) -> None:
        self.touched = touched

    def reload_host(self) -> None:
        self.reads = [self.current]


def test_a_difference_is_checked_against_a_dump_of_the_host_before_it_counts() -> None:
    start = (network("net", "10.0.0.0/24"), sandbox("s1"))
    planned = _planned(manifests(*start),
                       manifests(*start, sandbox("s2"), endpoint("e2", "net", "s2")))
    done = State("default", dict(planned.desired.resources))
    late = State("default", {k: r for k, r in done.resources.items() if k.kind != "Endpoint"})
    assert verify(planned, _Lagging(late, done), planned.touched()) is done
    with pytest.raises(VerifyError) as failure:  # still missing after the dump: it counts
        verify(planned, _Lagging(late, late), planned.touched())
    assert [str(a.key) for a in failure.value.remaining.actions] == ["Endpoint/e2"]
    assert str(failure.value).startswith("the kernel still differs after apply:\nPlan: 1 to ")
