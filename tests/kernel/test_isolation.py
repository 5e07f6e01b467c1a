"""The isolation harness itself: a kernel test sees an empty namespace of its own."""

from __future__ import annotations

import json
import os
import subprocess
import time

from reconciler.kernel import netns


def test_fresh_namespace_has_only_loopback() -> None:
    links = json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True,
                                      text=True, check=True).stdout)
    assert [link["ifname"] for link in links] == ["lo"]
    assert os.listdir("/run/netns") == []


def test_named_netns_create_enter_remove() -> None:
    netns.create_netns("t1")
    assert netns.list_netns() == ["t1"]
    with netns.entered("t1"):
        inside = os.readlink("/proc/thread-self/ns/net")
    assert inside != os.readlink("/proc/thread-self/ns/net")
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    assert "t1" in out.stdout
    netns.remove_netns("t1")
    assert netns.list_netns() == []


def _link_names() -> list[str]:
    out = subprocess.run(["ip", "-j", "link"], capture_output=True, text=True, check=True)
    return sorted(link["ifname"] for link in json.loads(out.stdout))


def test_detached_netns_lives_until_its_descriptor_closes() -> None:
    """netns.detach_netns: the name goes at once, the namespace (and its veth pair) only
    when the descriptor is closed; the kernel then tears it down on its own."""
    netns.create_netns("t2")
    subprocess.run(["ip", "link", "add", "vt2", "type", "veth", "peer", "name", "eth0",
                    "netns", "t2"], check=True)
    held = netns.detach_netns("t2")
    try:
        assert netns.list_netns() == []
        assert "vt2" in _link_names()  # its peer's namespace still exists
    finally:
        os.close(held)
    deadline = time.monotonic() + 10
    while "vt2" in _link_names() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _link_names() == ["lo"]
