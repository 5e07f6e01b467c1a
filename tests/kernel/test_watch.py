"""`cnm watch` against the real kernel, each test in its own fresh namespaces.

The watcher runs as a real subprocess (`python -m reconciler watch`), started
by the test and ended by its PID. Verdicts come from `ip -j` and the files,
never from cnm's own code.
"""

from __future__ import annotations

import fcntl
import json
import signal
import subprocess
import time
from pathlib import Path

from scenario import document, documents
from watchlib import Watch
from watchlib import quickstart as _quickstart

from helpers import (
    addresses,
    assert_same_kernel,
    cnm,
    kernel_dump,
    links,
    netns_names,
    wait_for,
)

SANDBOX_WEB3 = documents(
    document("Sandbox", "web3"),
    document("Endpoint", "web3-front", "{network: frontend, sandbox: web3}"),
)


def _veth_of(sandbox: str) -> str:
    """The host end whose peer lives in `sandbox`'s namespace."""
    index = links(sandbox)["eth0"]["link_index"]
    return next(name for name, link in links().items() if link["ifindex"] == index)


def _host_ends() -> list[str]:
    return sorted(n for n, link in links().items() if link.get("master") == "br-frontend")


def test_new_file_is_applied_within_two_seconds(tmp_path: Path) -> None:
    manifests = _quickstart(tmp_path)
    watch = Watch("-f", str(manifests), "--resync", "600")
    try:
        assert "applied 6 created" in watch.started()  # the resolver too
        assert netns_names() == ["web1", "web2"]
        start = time.monotonic()
        (manifests / "web3.yaml").write_text(SANDBOX_WEB3)
        assert wait_for(lambda: "web3" in netns_names() and len(_host_ends()) == 3, 2.0), \
            watch.log()
        elapsed = time.monotonic() - start
        line = watch.wait_line(lambda line: "+Sandbox/web3" in line)
        assert "files: web3.yaml" in line and "+Endpoint/web3-front" in line and " in 0." in line
        assert addresses("eth0", "web3")  # addressed, complete
        assert elapsed < 2.0
        assert cnm("plan", "-f", str(manifests), "--detailed-exitcode").returncode == 0
    finally:
        watch.kill()


def test_half_written_file_prunes_nothing_and_is_named(tmp_path: Path) -> None:
    manifests = _quickstart(tmp_path)
    watch = Watch("-f", str(manifests), "--resync", "600")
    try:
        watch.started()
        before = kernel_dump()
        endpoints = manifests / "endpoints.yaml"
        full = endpoints.read_text()
        count = len(watch.lines)
        # an editor's save caught half-way: the second endpoint lost its spec
        endpoints.write_text(full[: full.index("name: web2-front") + len("name: web2-fr")])
        line = watch.wait_line(lambda line: "manifests invalid" in line, after=count)
        assert "endpoints.yaml" in line and "keeping the last good state" in line
        time.sleep(0.5)
        assert_same_kernel(before, kernel_dump())  # nothing pruned
        # truncated to nothing (editors truncate, then write): still nothing pruned
        endpoints.write_text("")
        watch.wait_line(lambda line: "now empty" in line and "endpoints.yaml" in line,
                        after=count)
        time.sleep(0.5)
        assert_same_kernel(before, kernel_dump())
        # drift is still repaired against the last good state meanwhile
        subprocess.run(["ip", "link", "del", _veth_of("web1")], check=True)
        assert wait_for(lambda: len(_host_ends()) == 2 and "eth0" in links("web1"), 5.0), \
            watch.log()
        # a new file, half-written
        (manifests / "web3.yaml").write_text(SANDBOX_WEB3[:60])
        watch.wait_line(lambda line: "web3.yaml" in line and "invalid" in line, after=count)
        time.sleep(0.5)
        assert netns_names() == ["web1", "web2"] and len(_host_ends()) == 2
        # fixed: converges, the new file's objects included
        endpoints.write_text(full)
        (manifests / "web3.yaml").write_text(SANDBOX_WEB3)
        assert wait_for(lambda: len(_host_ends()) == 3, 5.0), watch.log()
        assert cnm("plan", "-f", str(manifests), "--detailed-exitcode").returncode == 0
    finally:
        watch.kill()


def test_veth_deleted_by_hand_is_back_without_waiting_for_the_resync(tmp_path: Path) -> None:
    manifests = _quickstart(tmp_path)
    watch = Watch("-f", str(manifests), "--resync", "600")
    try:
        watch.started()
        veth = _veth_of("web1")
        start = time.monotonic()
        subprocess.run(["ip", "link", "del", veth], check=True)
        assert wait_for(lambda: veth in links() and "eth0" in links("web1")
                        and addresses("eth0", "web1") == ["10.89.0.10/24", "fd00:89::2/64"],
                        5.0), watch.log()
        assert time.monotonic() - start < 5.0
        line = watch.wait_line(lambda line: "+Endpoint/web1-front" in line and "kernel" in line)
        assert "resync" not in line
        # drift inside a sandbox namespace: an address removed there
        subprocess.run(["ip", "-n", "web2", "addr", "del", "10.89.0.128/24", "dev", "eth0"],
                       check=True)
        assert wait_for(lambda: "10.89.0.128/24" in addresses("eth0", "web2"), 5.0), watch.log()
        # a sandbox namespace deleted by hand comes back with its endpoint
        subprocess.run(["ip", "netns", "del", "web2"], check=True)
        assert wait_for(lambda: "web2" in netns_names() and "eth0" in links("web2")
                        and "10.89.0.128/24" in addresses("eth0", "web2"), 5.0), watch.log()
        # a hand-edited sandbox file is rewritten
        Path("/etc/netns/web1/hostname").write_text("tampered\n")
        assert wait_for(lambda: Path("/etc/netns/web1/hostname").read_text() == "web1\n", 5.0)
        # cnm's nftables table deleted by hand comes back (nftables notifications)
        def nat_rules() -> str:
            return subprocess.run(["nft", "list", "table", "inet", "cnm"], capture_output=True,
                                  text=True).stdout
        assert "masquerade" in nat_rules()
        subprocess.run(["nft", "delete", "table", "inet", "cnm"], check=True)
        assert wait_for(lambda: "masquerade" in nat_rules(), 5.0), watch.log()
        assert cnm("plan", "-f", str(manifests), "--detailed-exitcode").returncode == 0
    finally:
        watch.kill()


def test_removing_a_file_removes_its_objects(tmp_path: Path) -> None:
    manifests = _quickstart(tmp_path)
    (manifests / "web3.yaml").write_text(SANDBOX_WEB3)
    watch = Watch("-f", "manifests/", "--resync", "600", cwd=tmp_path)  # a relative path
    try:
        watch.started()
        assert netns_names() == ["web1", "web2", "web3"] and len(_host_ends()) == 3
        (manifests / "web3.yaml").unlink()
        assert wait_for(lambda: netns_names() == ["web1", "web2"] and len(_host_ends()) == 2,
                        5.0), watch.log()
        line = watch.wait_line(lambda line: "-Sandbox/web3" in line)
        assert "files: web3.yaml" in line and "-Endpoint/web3-front" in line
        assert not Path("/etc/netns/web3").exists()
        (manifests / "endpoints.yaml").unlink()
        assert wait_for(lambda: _host_ends() == [], 5.0), watch.log()
        assert netns_names() == ["web1", "web2"]  # their Sandbox file is still there
    finally:
        watch.kill()


def test_sigterm_and_sigint_exit_zero(tmp_path: Path) -> None:
    manifests = _quickstart(tmp_path)
    for sig in (signal.SIGTERM, signal.SIGINT):
        watch = Watch("-f", str(manifests))
        try:
            watch.started()
            assert watch.stop(sig) == 0, watch.log()
            assert watch.lines[-1].endswith(f"stopped ({signal.Signals(sig).name})")
        finally:
            watch.kill()
    assert cnm("plan", "-f", str(manifests), "--detailed-exitcode").returncode == 0


def test_sigterm_during_a_long_apply_leaves_no_half_applied_step(tmp_path: Path) -> None:
    manifests = tmp_path / "many"
    manifests.mkdir()
    docs = ["apiVersion: cnm/v1\nkind: Network\nmetadata: {name: many}\n"
            "spec: {ipam: [{subnet: 10.123.0.0/16}]}\n"]
    for i in range(150):
        docs.append(f"apiVersion: cnm/v1\nkind: Sandbox\nmetadata: {{name: s{i:03d}}}\n")
        docs.append(f"apiVersion: cnm/v1\nkind: Endpoint\nmetadata: {{name: e{i:03d}}}\n"
                    f"spec: {{network: many, sandbox: s{i:03d}}}\n")
    (manifests / "all.yaml").write_text("---\n".join(docs))
    watch = Watch("-f", str(manifests))
    try:
        assert wait_for(lambda: len(netns_names()) >= 20, 20.0), watch.log()
        assert watch.stop() == 0, watch.log()
    finally:
        watch.kill()
    assert "halted before step" in watch.log() and "stopped (SIGTERM)" in watch.lines[-1]
    plan = json.loads(cnm("plan", "-f", str(manifests), "-o", "json", check=True).stdout)
    # every sandbox and endpoint that exists is complete: the rest only needs creating.
    # (The firewall step runs first, so the network may exist only as its rules: the
    # plan then replaces it, which is the firewall's own way to converge.)
    links_steps = {a["action"] for a in plan["actions"] if a["kind"] in ("Sandbox", "Endpoint")}
    assert links_steps == {"create"}, plan["summary"]
    assert cnm("apply", "-f", str(manifests), "--yes").returncode == 0
    assert cnm("plan", "-f", str(manifests), "--detailed-exitcode").returncode == 0


def test_watch_shares_the_apply_lock(tmp_path: Path) -> None:
    manifests = _quickstart(tmp_path)
    watch = Watch("-f", str(manifests), "--resync", "600")
    try:
        watch.started()
        count = len(watch.lines)
        Path("/run/cnm").mkdir(exist_ok=True)
        with open("/run/cnm/apply.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # as a running `cnm apply` would
            (manifests / "web3.yaml").write_text(SANDBOX_WEB3)
            line = watch.wait_line(lambda line: "failed" in line, after=count)
            assert "holds /run/cnm/apply.lock" in line and "retrying in" in line
            assert "web3" not in netns_names()
        assert wait_for(lambda: "web3" in netns_names(), 5.0), watch.log()
        watch.wait_line(lambda line: "+Sandbox/web3" in line, after=count)
    finally:
        watch.kill()


def test_in_memory_observation_matches_a_full_observation(tmp_path: Path) -> None:
    from reconciler.kernel.live import LiveObservation
    from reconciler.state import ResourceKey

    def full() -> object:
        return LiveObservation("default").state()  # a fresh one reads everything

    manifests = _quickstart(tmp_path)
    cnm("apply", "-f", str(manifests), "--yes", check=True)
    live = LiveObservation("default")
    assert live.state() == full()
    assert live.state() is live.state() and live.last_reads == 0  # nothing read again
    subprocess.run(["ip", "link", "set", "br-frontend", "mtu", "1400"], check=True)
    subprocess.run(["ip", "-n", "web1", "addr", "del", "10.89.0.10/24", "dev", "eth0"],
                   check=True)
    Path("/etc/netns/web2/hosts").write_text("x\n")
    subprocess.run(["ip", "netns", "add", "foreign"], check=True)
    live.mark_host()
    live.mark("web1")
    live.mark("web2")
    live.mark_netns_list()
    assert live.state() == full()
    assert live.last_reads == 4  # host, web1, web2, the new foreign namespace
    # only a sandbox changed: its firewall view is reused, the rest stays the same objects
    before = live.state()
    Path("/etc/netns/web1/hostname").write_text("changed\n")
    live.mark("web1")
    after = live.state()
    assert after == full() and after.get(ResourceKey("Sandbox", "web1")) != before.get(
        ResourceKey("Sandbox", "web1"))
    network = ResourceKey("Network", "frontend")
    assert after.get(network) is before.get(network)


def test_host_links_kept_from_notifications_match_a_full_observation(tmp_path: Path) -> None:
    import selectors

    from reconciler.kernel.events import KernelEvents
    from reconciler.kernel.live import LiveObservation

    def full() -> object:
        return LiveObservation("default").state()  # a fresh one dumps the host itself

    manifests = _quickstart(tmp_path)
    live = LiveObservation("default", host_events=True)
    events = KernelEvents(selectors.DefaultSelector(), host_table=live.host_table)
    try:
        assert live.state() == full()  # empty host, dumped once
        cnm("apply", "-f", str(manifests), "--yes", check=True)
        subprocess.run(["ip", "link", "set", "br-frontend", "mtu", "1400"], check=True)
        subprocess.run(["ip", "addr", "add", "10.77.0.1/24", "dev", "br-frontend"], check=True)
        subprocess.run(["ip", "link", "del", _veth_of("web2")], check=True)
        # bridge ports send partial notices of their links too (family AF_BRIDGE)
        subprocess.run(["ip", "link", "set", _veth_of("web1"), "down"], check=True)
        subprocess.run(["ip", "link", "set", _veth_of("web1"), "up"], check=True)
        subprocess.run(["ip", "link", "set", _veth_of("web1"), "nomaster"], check=True)
        subprocess.run(["ip", "link", "set", _veth_of("web1"), "master", "br-frontend"],
                       check=True)
        subprocess.run(["ip", "link", "add", "squat", "type", "bridge"], check=True)
        # (the kernel announces an alias change only on a link that is up; a down link's
        # new alias is seen at the next resync)
        subprocess.run(["ip", "link", "set", "squat", "up"], check=True)
        subprocess.run(["ip", "link", "set", "squat", "alias", "cnm/v1 set=other Network/x"],
                       check=True)
        assert None in events.drain_all()
        assert events.drain_nftables()  # the apply rewrote cnm's nftables tables
        live.mark_firewall()
        live.mark_host()
        for name in ("web1", "web2"):
            live.mark_netns(name)
        state = live.state()
        assert state == full()
        assert live.last_reads == 2  # the two namespaces; the host came from notifications
        assert state.occupied["link:squat"] == "Network/x of apply set 'other'"
    finally:
        events.close()
