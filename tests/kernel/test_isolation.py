"""The isolation harness itself: a kernel test sees an empty namespace of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

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


def test_a_killed_run_leaves_no_test_behind(tmp_path: Path) -> None:
    """A test run that is killed (a timeout, Ctrl-C, a CI job cancelled) must take its
    isolated test with it: an orphaned child once carried on, in its namespaces, and
    ran the rest of the session on its own."""
    tests_dir = Path(__file__).resolve().parents[1]
    child_file, after_file = tmp_path / "child", tmp_path / "after"
    script = tmp_path / "runner.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {str(tests_dir)!r})
        from isolation import run_isolated

        def body():
            with open({str(child_file)!r}, "w") as file:
                file.write(str(os.getpid()))
            time.sleep(60)

        run_isolated(body)
        with open({str(after_file)!r}, "a") as file:
            file.write(str(os.getpid()))
    """))
    runner = subprocess.Popen([sys.executable, str(script)])
    try:
        deadline = time.monotonic() + 20
        while not child_file.exists() or not child_file.read_text():
            assert runner.poll() is None, "the runner ended before its test started"
            assert time.monotonic() < deadline, "the isolated test never started"
            time.sleep(0.05)
        child = int(child_file.read_text())
    finally:
        runner.kill()
        runner.wait()
    deadline = time.monotonic() + 10
    while _alive(child):
        assert time.monotonic() < deadline, f"test child {child} outlived its killed run"
        time.sleep(0.05)
    assert not after_file.exists()


def _alive(pid: int) -> bool:
    """True while pid runs (a zombie waiting for init to reap it has ended)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
