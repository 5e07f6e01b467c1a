"""Observation on every core, and verification that reads again only what a plan touched.

Both are speed-ups (issue 7) that must not change a single observed attribute:
the state read by forked workers equals the state `observe()` reads in one
process, and the live observation an apply verifies with equals a full
observation after the apply, including the hosts files that changed in every
sandbox when a peer joined. And both equal what an independent observer,
iproute2 (`ip -j`), shows of every attribute cnm reads from the kernel.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from reconciler.kernel import parallel

from helpers import cnm, ip_json, iproute2_view, many_endpoints, write_manifests

SANDBOXES = parallel.PARALLEL_MIN + 6  # enough to be read by more than one process


def _manifests(count: int) -> str:
    return many_endpoints("big", "10.77.0.0/16", count)


def _full_observation() -> dict[str, object]:
    """A fresh observation, every namespace read by this one process."""
    from reconciler.kernel.live import LiveObservation

    minimum, parallel.PARALLEL_MIN = parallel.PARALLEL_MIN, 1 << 30
    try:
        return LiveObservation("default").state().to_json()
    finally:
        parallel.PARALLEL_MIN = minimum


def _as_list(value: object) -> object:
    """An observed list attribute as a plain list, whether cnm holds it as a tuple or as
    ", "-joined text (None: empty)."""
    if value is None:
        return []
    if isinstance(value, str):
        return value.split(", ")
    return list(value) if isinstance(value, (list, tuple)) else value


def _assert_agrees_with_iproute2(observed: dict[str, Any]) -> None:
    """Every attribute iproute2 can show of every resource is the one cnm observed, and
    both see the same resources."""
    independent = iproute2_view()
    mine = {f"{r['kind']}/{r['name']}": r["attrs"] for r in observed["resources"]}
    assert sorted(mine) == sorted(independent)
    for key, facts in independent.items():
        for name, value in facts.items():
            seen = mine[key].get(name)
            seen = _as_list(seen) if isinstance(value, list) else seen
            assert seen == value, f"{key} {name}: cnm observed {seen!r}, ip -j shows {value!r}"


def test_parallel_reading_equals_one_process_and_verify_reads_again_what_changed(
    tmp_path: Path,
) -> None:
    from reconciler import engine
    from reconciler.kernel.live import LiveObservation

    directory = tmp_path / "m"
    write_manifests(directory, _manifests(SANDBOXES))
    applied = cnm("apply", "-f", str(directory), "--yes")
    assert applied.returncode == 0, applied.stderr
    assert len(ip_json("netns", "list")) == SANDBOXES

    names = sorted(str(n["name"]) for n in ip_json("netns", "list"))
    assert parallel.readers(len(names)) > 1, "needs two cores (this project's machine kind)"
    reads = parallel.read_namespaces("default", names)
    assert sorted(reads) == names and not any(isinstance(r, OSError) for r in reads.values())
    single = parallel._read_all("default", names)
    assert {n: r[0] for n, r in reads.items() if isinstance(r, tuple)} \
        == {n: r[0] for n, r in single.items() if isinstance(r, tuple)}
    assert engine.observe_set("default").to_json() == _full_observation()
    _assert_agrees_with_iproute2(_full_observation())

    # one more peer: a new namespace and veth pair, and the resolver learns its names (no
    # other sandbox's files change); the apply's verification re-reads just that
    live = LiveObservation("default")
    before = live.state()
    extra = _manifests(SANDBOXES + 1).split("---\n")[-2:]
    write_manifests(directory, "---\n".join(extra), name="extra.yaml")
    manifests = engine.load_manifests([str(directory)])
    planned = engine.compute_plan(manifests, before)
    updates = [a for a in planned.plan.actions if a.verb == "update"]
    assert [str(a.key) for a in updates] == ["Resolver/default"]
    hosts_before = Path("/etc/netns/s000/hosts").read_text()
    applied = cnm("apply", "-f", str(directory), "--yes")
    assert applied.returncode == 0, applied.stderr
    live.mark_touched(planned.touched())
    after = live.state()
    assert after.to_json() == _full_observation()
    _assert_agrees_with_iproute2(after.to_json())
    assert Path("/etc/netns/s000/hosts").read_text() == hosts_before
    found = subprocess.run(["ip", "netns", "exec", "s000", "getent", "hosts",
                            f"e{SANDBOXES:03d}"], capture_output=True, text=True).stdout
    assert found.strip(), "the new peer resolves by its endpoint name"
    assert after.get(updates[0].key) is not None
    assert engine.compute_plan(manifests, after).plan.empty


def test_a_failed_worker_costs_time_not_correctness(tmp_path: Path) -> None:
    """A worker that dies (here: killed before writing anything) has its share read by
    the process itself; the result is the same as one process reading everything."""
    import signal

    directory = tmp_path / "m"
    write_manifests(directory, _manifests(SANDBOXES))
    assert cnm("apply", "-f", str(directory), "--yes").returncode == 0
    names = sorted(str(n["name"]) for n in ip_json("netns", "list"))
    original = parallel._fork

    def dying(work: object) -> tuple[int, int]:
        def killed() -> dict[str, object]:
            os.kill(os.getpid(), signal.SIGKILL)
            return {}
        return original(killed)  # type: ignore[arg-type]

    assert parallel.readers(len(names)) > 1, "needs two cores (this project's machine kind)"
    parallel._fork = dying  # type: ignore[assignment]
    try:
        reads = parallel.read_namespaces("default", names)
    finally:
        parallel._fork = original  # type: ignore[assignment]
    single = parallel._read_all("default", names)
    assert sorted(reads) == names
    assert {n: r[0] for n, r in reads.items() if isinstance(r, tuple)} \
        == {n: r[0] for n, r in single.items() if isinstance(r, tuple)}
