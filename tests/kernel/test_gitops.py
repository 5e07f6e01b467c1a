"""GitOps workflow against the real kernel: saved plans, offline plans, export, progress.

Each test runs in its own fresh network + mount namespace (tests/isolation.py).
"""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

from helpers import EXAMPLE, REPO, assert_same_kernel, cnm, kernel_dump, links, many_endpoints


def _quickstart(tmp_path: Path) -> Path:
    target = tmp_path / "manifests"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("*.sh"))
    return target


def _set_mtu(manifests: Path, mtu: int) -> None:
    network = manifests / "network.yaml"
    network.write_text(network.read_text().replace("mtu: 1500", f"mtu: {mtu}"))


def test_saved_plan_applies_exactly_that_plan(tmp_path: Path) -> None:
    manifests = _quickstart(tmp_path)
    cnm("apply", "-f", str(manifests), "--yes", check=True)
    _set_mtu(manifests, 9000)
    plan_file = tmp_path / "plan.json"
    planned = cnm("plan", "-f", str(manifests), "-out", str(plan_file), check=True)
    assert "Plan: 0 to create, 3 to update, 0 to delete." in planned.stdout
    _set_mtu(manifests, 1400)  # the manifests move on; the saved plan does not

    applied = cnm("apply", str(plan_file))
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout == planned.stdout  # shows exactly the reviewed plan, asks nothing
    assert links()["br-frontend"]["mtu"] == 9000
    before = kernel_dump()
    again = cnm("apply", str(plan_file))  # the kernel changed, into what the plan makes
    assert again.returncode == 0 and "already applied" in again.stderr, again.stderr
    assert "stale" not in again.stderr
    assert_same_kernel(before, kernel_dump())


def test_stale_saved_plan_is_refused_after_a_manual_change(tmp_path: Path) -> None:
    manifests = _quickstart(tmp_path)
    cnm("apply", "-f", str(manifests), "--yes", check=True)
    _set_mtu(manifests, 9000)
    plan_file = tmp_path / "plan.json"
    cnm("plan", "-f", str(manifests), "-out", str(plan_file), check=True)

    subprocess.run(["ip", "link", "set", "br-frontend", "mtu", "1400"], check=True)
    before = kernel_dump()
    refused = cnm("apply", str(plan_file))
    assert refused.returncode == 1
    assert "stale" in refused.stderr and "Network/frontend mtu changed" in refused.stderr
    assert "nothing was applied" in refused.stderr
    assert_same_kernel(before, kernel_dump())

    fresh = cnm("plan", "-f", str(manifests), "-out", str(plan_file), check=True)
    assert "~ Network/frontend     mtu: 1400 -> 9000" in fresh.stdout
    cnm("apply", str(plan_file), check=True)
    assert cnm("plan", "-f", str(manifests), "--detailed-exitcode").returncode == 0


def test_offline_plan_equals_online_plan_byte_for_byte(tmp_path: Path) -> None:
    manifests = _quickstart(tmp_path)
    cnm("apply", "-f", str(manifests), "--yes", check=True)
    # drift of every kind, and a manifest change
    _set_mtu(manifests, 9000)
    (manifests / "sandboxes.yaml").write_text(
        (manifests / "sandboxes.yaml").read_text().replace("hostname: web2", "hostname: two"))
    veth = next(n for n, link in links().items() if link.get("master") == "br-frontend")
    subprocess.run(["ip", "link", "del", veth], check=True)
    Path("/etc/netns/web1/hosts").write_text("tampered\n")
    subprocess.run(["ip", "link", "add", "br-squat", "type", "bridge"], check=True)

    snapshot = tmp_path / "snapshot.json"
    observed = cnm("observe", "-o", "json", check=True)
    snapshot.write_text(observed.stdout)
    offline_dir = tmp_path / "review"  # "anywhere": a copy, readable without root
    shutil.copytree(manifests, offline_dir / "manifests")
    shutil.copy(snapshot, offline_dir / "snapshot.json")
    for output in ("text", "json", "markdown"):
        online = cnm("plan", "-f", str(manifests), "-o", output, check=True)
        offline = subprocess.run(  # without any capability: what CI has
            ["setpriv", "--bounding-set=-all", "--inh-caps=-all", sys.executable, "-m",
             "reconciler", "plan", "-f", "manifests", "--observed", "snapshot.json",
             "-o", output],
            cwd=offline_dir, capture_output=True, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert offline.returncode == 0, offline.stderr
        assert offline.stdout == online.stdout.replace(str(manifests), "manifests"), output
    no_caps = subprocess.run(
        ["setpriv", "--bounding-set=-all", "--inh-caps=-all", sys.executable, "-m", "reconciler",
         "plan", "-f", str(manifests)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert no_caps.returncode == 1 and "plan --observed FILE" in no_caps.stderr


def test_offline_saved_plan_applies_on_the_host_while_the_snapshot_is_current(
    tmp_path: Path,
) -> None:
    manifests = _quickstart(tmp_path)
    cnm("apply", "-f", str(manifests), "--yes", check=True)
    _set_mtu(manifests, 9000)
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(cnm("observe", "-o", "json", check=True).stdout)
    plan_file = tmp_path / "plan.json"
    cnm("plan", "-f", str(manifests), "--observed", str(snapshot), "-out", str(plan_file),
        check=True)
    cnm("apply", str(plan_file), check=True)
    assert links()["br-frontend"]["mtu"] == 9000
    # a second offline plan from the now outdated snapshot is refused
    network = manifests / "network.yaml"
    network.write_text(network.read_text().replace("mtu: 9000", "mtu: 1400"))
    cnm("plan", "-f", str(manifests), "--observed", str(snapshot), "-out", str(plan_file),
        check=True)
    refused = cnm("apply", str(plan_file))
    assert refused.returncode == 1 and "stale" in refused.stderr


def _settled_links(namespace: str | None = None) -> dict[str, tuple[object, ...]]:
    """Links as cnm sets them; host-side MACs are the kernel's random pick, so only in netns."""
    return {name: (link["mtu"], link.get("address") if namespace else None, link.get("master"),
                   link["flags"])
            for name, link in links(namespace).items()}


def test_export_apply_on_an_empty_host_then_plan_is_empty(tmp_path: Path) -> None:
    manifests = _quickstart(tmp_path)
    cnm("apply", "-f", str(manifests), "--yes", check=True)
    before = kernel_dump()
    host_links, web1_links = _settled_links(), _settled_links("web1")
    exported = cnm("export", "--mac", check=True)
    assert exported.stderr == ""  # nothing the manifests could not say
    export_file = tmp_path / "export" / "all.yaml"
    export_file.parent.mkdir()
    export_file.write_text(exported.stdout)
    assert cnm("validate", "-f", str(export_file)).returncode == 0

    cnm("delete", "-f", str(manifests), "--yes", check=True)
    assert not [n for n in links() if n.startswith(("cnm", "br-"))]  # an empty host
    cnm("apply", "-f", str(export_file), "--yes", check=True)
    replan = cnm("plan", "-f", str(export_file), "--detailed-exitcode")
    assert replan.returncode == 0, replan.stdout
    assert _settled_links() == host_links and _settled_links("web1") == web1_links
    assert kernel_dump()["files"] == before["files"]
    # the original manifests agree too: nothing they say was lost
    assert cnm("plan", "-f", str(manifests), "--detailed-exitcode").returncode == 0


def test_export_without_mac_round_trips_too(tmp_path: Path) -> None:
    manifests = _quickstart(tmp_path)
    cnm("apply", "-f", str(manifests), "--yes", check=True)
    export_dir = tmp_path / "export"
    export_dir.mkdir()
    (export_dir / "all.yaml").write_text(cnm("export", check=True).stdout)
    cnm("delete", "-f", str(manifests), "--yes", check=True)
    cnm("apply", "-f", str(export_dir), "--yes", check=True)
    assert cnm("plan", "-f", str(export_dir), "--detailed-exitcode").returncode == 0
    assert json.loads(cnm("observe", check=True).stdout)["resources"]


def _many(directory: Path, count: int) -> Path:
    directory.mkdir()
    (directory / "all.yaml").write_text(many_endpoints("many", "10.123.0.0/16", count))
    return directory


def test_long_apply_shows_a_bar_on_a_terminal_and_lines_otherwise(tmp_path: Path) -> None:
    manifests = _many(tmp_path / "m", 25)  # 51 objects, the resolver, Firewall, BridgePorts
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply", "-f", str(manifests), "--yes"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=follower, stdin=subprocess.DEVNULL,
    )
    os.close(follower)
    screen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    assert process.wait(timeout=60) == 0
    os.close(leader)
    text = screen.decode()
    assert "\r[" in text and "54/54" in text and "Apply complete" in text
    assert "[2/54] create Sandbox" not in text.replace("\r", "\n").splitlines()

    removed = cnm("delete", "-f", str(manifests), "--yes", check=True)  # stderr: a pipe
    lines = removed.stderr.splitlines()
    assert "\r" not in removed.stderr
    assert sum(1 for line in lines if line.startswith("[")) == 53  # 51, resolver, Firewall
