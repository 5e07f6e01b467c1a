"""The CLI, the Python API and `cnm watch` change the kernel through one pipeline
(`pipeline.run`): a step that fails rolls back to exactly the state from before in
all three, and watch, like apply, removes the debris of interrupted runs.

test_rollback.py proves the rollback for every fault point of the CLI; here one
fault per caller shows that each of them goes the same way. Verdicts come from
`ip -j`, the files and the nftables ruleset (faultlib), never from cnm's code.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import scenario
from faultlib import apply_all, assert_converged, canonical, forked
from watchlib import Watch, quickstart

from reconciler import Controller, faults
from reconciler.rollback import ApplyFailedError

from helpers import links, netns_names, wait_for

#: How every caller words a failed step that was rolled back.
ROLLED_BACK = re.compile(
    r"apply failed at step \[\d+/\d+\] \w+ \w+/[\w-]+: injected fault at point \d+ \(.+\); "
    r"rolled back: \d+ changes? undone, the kernel is as before this apply \(verified\)"
)
GROUP = str(0x636E6D)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True)


def test_cli_a_failed_step_rolls_back(tmp_path: Path) -> None:
    a, b = scenario.dirs(tmp_path)
    apply_all(a)
    before = canonical()
    code, errors = forked("apply", "-f", b, "--yes", fault="fail@6")
    assert code == 1, errors
    assert ROLLED_BACK.search(errors.strip().splitlines()[-1]), errors
    assert_converged(before, "after the CLI's rollback")


def test_api_a_failed_step_rolls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    controller = Controller()
    network = controller.new_network("bridge", "net1", subnet="10.97.0.0/24")
    endpoint = network.create_endpoint("ep1")
    before = canonical()
    monkeypatch.setenv(faults.FAULT_ENV, "fail@4")  # inside the join, after its sandbox
    faults.reset()
    with pytest.raises(ApplyFailedError) as failure:
        endpoint.join("c1")
    assert ROLLED_BACK.search(str(failure.value)), failure.value
    assert_converged(before, "after the API's rollback")
    monkeypatch.delenv(faults.FAULT_ENV)
    assert endpoint.join("c1") == "/run/netns/c1"  # the controller kept its state
    assert netns_names() == ["c1"]


def test_watch_a_failed_step_rolls_back_and_the_log_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifests = quickstart(tmp_path)
    before = canonical()
    monkeypatch.setenv(faults.FAULT_ENV, "fail@4")  # the watcher inherits it
    watch = Watch("-f", str(manifests), "--resync", "600")
    try:
        line = watch.started()
        assert "#1 start: failed: " in line and ROLLED_BACK.search(line), watch.log()
        assert "retrying" not in line  # an injected fault is not temporary
        assert_converged(before, "after watch's rollback")
        (manifests / "web3.yaml").write_text(scenario.document("Sandbox", "web3"))
        assert wait_for(lambda: netns_names() == ["web1", "web2", "web3"], 10.0), watch.log()
        watch.wait_line(lambda line: "applied" in line and "+Endpoint/web1-front" in line)
    finally:
        watch.kill()


def test_watch_a_failed_verification_rolls_back_then_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifests = quickstart(tmp_path)
    monkeypatch.setenv(faults.FAULT_ENV, "skip-step@6")  # create Endpoint/web2-front: a no-op
    watch = Watch("-f", str(manifests), "--resync", "600")
    try:
        line = watch.started()
        assert "#1 start: failed: apply failed at verification: the kernel still differs: " \
            in line, watch.log()
        assert "; rolled back: " in line and "(temporary; retrying in 0.5 s)" in line
        retried = watch.wait_line(lambda line: "#2 " in line and "applied 6 created" in line)
        assert retried
        assert netns_names() == ["web1", "web2"] and "br-frontend" in links()
    finally:
        watch.kill()


def test_watch_removes_debris_at_start_and_when_it_appears(tmp_path: Path) -> None:
    manifests = quickstart(tmp_path)
    _ip("link", "add", "br-extra", "group", GROUP, "type", "bridge")  # as a crash leaves it
    watch = Watch("-f", str(manifests), "--resync", "600")
    try:
        line = watch.started()
        assert "#1 start: removed bridge br-extra left behind by an interrupted cnm run; " \
            "applied 6 created" in line, watch.log()
        assert "br-extra" not in links()
        count = len(watch.lines)
        _ip("link", "add", "cnm0123456ab", "group", GROUP, "type", "veth", "peer", "name", "p0")
        line = watch.wait_line(lambda line: "removed veth" in line, after=count)
        assert " kernel: " in line and ": removed veth cnm0123456ab left behind by an " \
            "interrupted cnm run; in sync (6 objects) in " in line, watch.log()
        assert not {"cnm0123456ab", "p0"} & set(links())
    finally:
        watch.kill()
