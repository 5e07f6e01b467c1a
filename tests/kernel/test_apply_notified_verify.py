"""A small apply on a big host is verified from the host's notifications
(`kernel/applying.py`), not from a second dump of every host link.

The state it verifies must be the one a fresh observation reads; the result is
checked with `ip -j`; a step that silently did nothing must still fail
verification and roll back; and a big plan keeps the dump.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import scenario
from faultlib import applied, apply_all, assert_converged, forked, inproc

from reconciler import engine, pipeline
from reconciler.caching import PlanCaches
from reconciler.kernel.applying import LINKS_PER_TOUCHED_NAMESPACE, ApplyObservation, is_small
from reconciler.naming import default_bridge_name, host_veth_name
from reconciler.plan import Touched
from reconciler.state import State

from helpers import ip_json
from isolation import run_isolated

#: Links cnm does not own (veth pairs, as on a busy container host), so that the
#: A -> B plan is small next to the host.
FILLER = 150
FILLER_NAMES = {f"filler{i}" for i in range(FILLER)}


def _fill_host() -> None:
    batch = "".join(f"link add filler{i} type veth peer name filler{i + 1}\n"
                    for i in range(0, FILLER, 2))
    subprocess.run(["ip", "-batch", "-"], input=batch, text=True, check=True)


def _apply_in_process(directory: str) -> tuple[bool, int, State]:
    """Apply `directory` as `cnm apply` does; (whether the host was followed, how many
    times the host was dumped, the verified state)."""
    manifests = engine.load_manifests([directory])
    caches = PlanCaches()

    def planner(observed: State) -> engine.Planned:
        return engine.compute_plan(manifests, observed, caches=caches)

    with ApplyObservation("default") as observation:
        table = observation.live.host_table
        dumps = []
        load = table.load
        table.load = lambda *parts: (dumps.append(1), load(*parts))[1]  # type: ignore[method-assign]
        result = pipeline.run(observation, planner)
        following = observation.following
    assert isinstance(result, pipeline.ApplyResult)
    return following, len(dumps), result.observed


def _small_plan_is_verified_from_notifications(a: str, b: str) -> None:
    _fill_host()
    apply_all(a)
    following, dumps, verified = _apply_in_process(b)
    assert following, "a small plan on a big host should follow the host's notifications"
    assert dumps == 1, "verification dumped the host again"
    # the verified state is what a fresh dump of everything reads
    assert verified == engine.observe_set("default")
    # and the kernel, as iproute2 shows it, holds B's new bridge and host veth end,
    # the new end on its bridge, and every foreign link as it was
    links = {link["ifname"]: link for link in ip_json("link", "show")}
    assert default_bridge_name("extra") in links
    web3 = links[host_veth_name("default", "web3-front")]
    assert web3["master"] == default_bridge_name("frontend")
    assert links.keys() >= FILLER_NAMES
    assert inproc("plan", "-f", b, "--detailed-exitcode")[0] == 0
    assert inproc("delete", "-f", b, "--yes")[0] == 0
    remaining = {link["ifname"] for link in ip_json("link", "show")}
    assert remaining == {"lo", *FILLER_NAMES}


def test_small_plan_on_a_big_host_is_verified_from_notifications(tmp_path: Path) -> None:
    a, b = scenario.dirs(tmp_path)
    run_isolated(_small_plan_is_verified_from_notifications, a, b)


def _skipped_step_still_fails(a: str, b: str, step: str, expected: dict[str, Any]) -> None:
    _fill_host()
    apply_all(a)
    number = _ordered_steps(b).index(step) + 1
    code, errors = forked("apply", "-f", b, "--yes", fault=f"skip-step@{number}")
    assert code == 1, errors
    last = errors.strip().splitlines()[-1]
    assert "failed at verification: the kernel still differs" in last, last
    assert "rolled back" in last, last
    assert_converged(expected, "after the rollback")


def _ordered_steps(b: str) -> list[str]:
    """B's steps over what the kernel holds now, in execution order (the numbers
    skip-step counts)."""
    planned = engine.compute_plan(engine.load_manifests([b]), engine.observe_set("default"))
    return [f"{step.verb} {step.action.key}" for step in planned.plan.steps()]


def test_a_step_that_did_nothing_fails_verification_on_a_big_host(tmp_path: Path) -> None:
    a, b = scenario.dirs(tmp_path)
    expected = run_isolated(_filled_and_applied, a)
    for step in ("create Endpoint/web3-front", "update Endpoint/web1-front"):
        run_isolated(_skipped_step_still_fails, a, b, step, expected)


def _filled_and_applied(a: str) -> dict[str, Any]:
    _fill_host()
    return applied(a)


def _big_plan_keeps_the_dump(b: str) -> None:
    following, dumps, verified = _apply_in_process(b)  # B on an empty host: all is new
    assert not following
    assert dumps == 2  # observation, then verification
    assert verified == engine.observe_set("default")


def test_a_big_plan_keeps_the_dump(tmp_path: Path) -> None:
    _, b = scenario.dirs(tmp_path)
    run_isolated(_big_plan_keeps_the_dump, b)


def test_follows_only_when_the_host_outnumbers_the_plan() -> None:
    """Unit: the choice between notifications and a dump."""
    three = Touched(host=True, netns=frozenset({"a", "b"}), listed=frozenset({"c"}))
    enough = 4 * LINKS_PER_TOUCHED_NAMESPACE
    assert is_small(three, enough + 1)
    assert not is_small(three, enough)
    assert not is_small(Touched(host=True), 0)
