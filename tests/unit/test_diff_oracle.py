"""The plan's attribute changes against DeepDiff, on random desired/observed states.

cnm's diff is attribute by attribute (`diff.py`): resources are flat maps of
normalised values. DeepDiff is the design's named diff library; it is a test
oracle here, never a runtime dependency (README, "Libraries, and why": ~270 ms
per diff of a big state against cnm's few milliseconds). For every resource
in both states, the changes `make_plan` puts in its action (none for one in
sync) must be exactly what DeepDiff finds between the observed and the desired
attributes, under cnm's one rule of comparison: only the attributes the
desired resource sets are compared, and an attribute the kernel does not show
counts as None.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deepdiff import DeepDiff
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.diff import Change, diff_resources
from reconciler.plan import make_plan
from reconciler.state import KINDS, AttrValue, Resource, ResourceKey, State

NAMES = st.sampled_from(["a", "b", "web", "db-1"])
WORDS = st.text("abcdefghij0123456789./:-, ", max_size=12)
#: One value type per attribute, as in real states (values are normalised by type);
#: every attribute may also be None. Mixing bool and int in one attribute is left out:
#: True == 1 in Python, so cnm would call them equal where DeepDiff sees a type change,
#: and no attribute of cnm holds both.
ATTRIBUTES: dict[str, st.SearchStrategy[Any]] = {
    "mtu": st.integers(0, 70000),
    "up": st.booleans(),
    "lo_up": st.booleans(),
    "driver": st.sampled_from(["bridge", "macvlan", "null"]),
    "bridge": WORDS,
    "network": NAMES,
    "sandbox": NAMES,
    "mode": st.sampled_from(["bridge", "private", "vepa"]),
    "ipv4": WORDS,
    "subnets": st.lists(WORDS, max_size=3).map(tuple),
    "addresses": st.lists(WORDS, max_size=3).map(tuple),
    "ports": st.lists(st.tuples(st.integers(0, 65535), st.sampled_from(["tcp", "udp"]),
                                WORDS), max_size=3).map(tuple),
    "files": st.lists(st.tuples(WORDS, st.lists(WORDS, max_size=2).map(tuple)),
                      max_size=2).map(tuple),
}


def values(name: str) -> st.SearchStrategy[AttrValue]:
    return st.none() | ATTRIBUTES[name]


@st.composite
def attribute_maps(draw: st.DrawFn) -> tuple[dict[str, AttrValue], dict[str, AttrValue]]:
    """(desired, observed) attributes of one resource: observed starts as a copy of a
    common base and both drift from it, so that equal values are common."""
    names = sorted(ATTRIBUTES)
    base = {n: draw(values(n)) for n in draw(st.lists(st.sampled_from(names), unique=True))}
    desired = {n: v for n, v in base.items() if draw(st.booleans()) or not base}
    observed = dict(base)
    for target in (desired, observed):
        for name in draw(st.lists(st.sampled_from(names), unique=True, max_size=3)):
            target[name] = draw(values(name))
        for name in draw(st.lists(st.sampled_from(sorted(target) or names), max_size=1)):
            target.pop(name, None)
    return desired, observed


def oracle(desired: Mapping[str, AttrValue], observed: Mapping[str, AttrValue]) -> list[Change]:
    """DeepDiff's changes between the two attribute maps, under cnm's rule of comparison."""
    before = {name: observed.get(name) for name in desired}
    after = dict(desired)
    found = DeepDiff(before, after, view="tree")
    changed = {level.path(output_format="list")[0]
               for report in found.values() for level in report}
    return [Change(name, before[name], after[name]) for name in sorted(changed)]


@given(attribute_maps())
@settings(max_examples=200, deadline=None)
def test_resource_changes_are_deepdiffs(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    desired, observed = pair
    key = ResourceKey("Network", "n")
    want, have = Resource(key, "s", desired), Resource(key, "s", observed)
    assert diff_resources(want, have) == oracle(want.attrs, have.attrs)


@st.composite
def state_pairs(draw: st.DrawFn) -> tuple[State, State]:
    keys = draw(st.lists(st.tuples(st.sampled_from(KINDS), NAMES), unique=True, max_size=8))
    desired: dict[ResourceKey, Resource] = {}
    observed: dict[ResourceKey, Resource] = {}
    for kind, name in keys:
        key = ResourceKey(kind, name)
        want, have = draw(attribute_maps())
        where = draw(st.sampled_from(["both", "both", "desired", "observed"]))
        if where != "observed":
            desired[key] = Resource(key, "s", want)
        if where != "desired":
            observed[key] = Resource(key, "s", have)
    return State("s", desired), State("s", observed)


@given(state_pairs())
@settings(max_examples=150, deadline=None)
def test_the_plans_attribute_changes_are_deepdiffs(states: tuple[State, State]) -> None:
    desired, observed = states
    plan = make_plan(desired, observed)
    actions = {action.key: action for action in plan.actions}
    for key in set(desired.resources) & set(observed.resources):
        want, have = desired.resources[key], observed.resources[key]
        expected = oracle(want.attrs, have.attrs)
        action = actions.get(key)
        if action is None:
            assert expected == [] and key in plan.in_sync
        else:
            assert action.verb in ("update", "replace")
            assert list(action.changes) == expected, action
    for key, action in actions.items():  # creates and deletes carry no attribute changes
        if action.verb in ("create", "delete"):
            assert action.changes == () and (key in desired.resources) != (
                key in observed.resources)
