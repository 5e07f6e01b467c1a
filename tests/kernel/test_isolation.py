"""The isolation harness itself: a kernel test sees an empty namespace of its own."""

from __future__ import annotations

import json
import os
import subprocess

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
