"""Simulated hosts for fleet tests: each its own network AND mount namespace.

Inside the test's own isolated namespace (the "switch"), `Fleet` makes an
underlay bridge with 192.0.2.254/24, starts etcd on that address (data on
tmpfs, tests/kernel/etcdlib.py), and per host a long-lived anchor process in
fresh network and mount namespaces (own tmpfs on /run/netns, /etc/netns,
/run/cnm, /var/lib/cnm), wired to the underlay by a veth pair (`eth0`,
192.0.2.N/24 inside the host). Commands run in a host through `nsenter` on
the anchor's namespaces; the anchors are ended by PID.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from etcdlib import Etcd

from helpers import REPO, iproute2_json

SWITCH_ADDRESS = "192.0.2.254"
PRIVATE = ("/run/netns", "/etc/netns", "/run/cnm", "/var/lib/cnm")
_ANCHOR = " && ".join(
    [f"mount -t tmpfs cnm-host {d}" for d in PRIVATE]
    + ["ip link set lo up", "echo ready", "exec sleep infinity"])


class SimHost:
    """One simulated host: an anchor process whose namespaces are the host's."""

    def __init__(self, name: str, number: int) -> None:
        self.name = name
        self.address = f"192.0.2.{number}"
        self.process = subprocess.Popen(
            ["unshare", "--net", "--mount", "--propagation", "private", "sh", "-c", _ANCHOR],
            stdout=subprocess.PIPE, text=True, start_new_session=True)
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "ready"
        switch_end = f"u-{name}"
        _run("ip", "link", "add", switch_end, "type", "veth", "peer", "name", f"h-{name}")
        _run("ip", "link", "set", switch_end, "master", "underlay", "up")
        _run("ip", "link", "set", f"h-{name}", "netns", str(self.process.pid))
        self.run("ip", "link", "set", f"h-{name}", "name", "eth0")
        self.run("ip", "addr", "add", f"{self.address}/24", "dev", "eth0")
        self.run("ip", "link", "set", "eth0", "up")

    def prefix(self) -> list[str]:
        # --root and --wd: the host process's own root, which is not / when the suite runs
        # in a chroot (tools/fresh-machine): entering a mount namespace resets both
        return ["nsenter", "-t", str(self.process.pid), "-n", "-m", "--root", "--wd", "--"]

    def run(self, *args: str, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*self.prefix(), *args], capture_output=True, text=True,
                                timeout=180, env=env)
        if check and result.returncode != 0:
            raise AssertionError(f"{self.name}: {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def cnm_command(self, *args: str) -> list[str]:
        return [*self.prefix(), sys.executable, "-m", "reconciler", *args]

    def cnm_env(self, store: str | None) -> dict[str, str]:
        env = {**os.environ, "PYTHONPATH": str(REPO), "CNM_HOST": self.name}
        if store is not None:
            env["CNM_STORE"] = store
        return env

    def cnm(self, *args: str, store: str | None = None, check: bool = False,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(self.cnm_command(*args), capture_output=True, text=True,
                                timeout=300, env={**self.cnm_env(store), **(env or {})},
                                cwd=REPO)
        if check and result.returncode != 0:
            raise AssertionError(f"{self.name}: cnm {' '.join(args)} exited "
                                 f"{result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def json(self, *args: str) -> Any:
        return iproute2_json(self.run(*args).stdout)

    def fdb(self, device: str) -> list[tuple[str, str]]:
        """(MAC, dst) of the device's permanent forwarding entries, as `bridge -j` shows."""
        entries = self.json("bridge", "-j", "fdb", "show", "dev", device)
        return sorted((e["mac"], e["dst"]) for e in entries if "dst" in e)

    def neighbours(self, device: str) -> list[tuple[str, str]]:
        entries = self.json("ip", "-j", "neigh", "show", "dev", device)
        return sorted((e["dst"], e["lladdr"]) for e in entries
                      if "PERMANENT" in e.get("state", []))

    def address_of(self, netns: str, ifname: str = "eth0") -> str:
        data = self.json("ip", "-n", netns, "-j", "addr", "show", "dev", ifname)
        return next(a["local"] for a in data[0]["addr_info"] if a["family"] == "inet")

    def kernel(self) -> dict[str, Any]:
        """What an apply could change here: links (with details), FDB, neighbours, netns."""
        links = [{key: link.get(key) for key in ("ifname", "link_type", "address", "mtu",
                                                  "master", "ifalias", "group", "linkinfo")}
                 for link in self.json("ip", "-d", "-j", "link", "show")]
        for link in links:  # counters and timers the kernel moves by itself
            info = link.get("linkinfo") or {}
            for volatile in ("info_slave_data",):
                info.pop(volatile, None)
            data = info.get("info_data") or {}
            for volatile in ("hello_timer", "tcn_timer", "topology_change_timer", "gc_timer",
                             "ageing_time"):
                data.pop(volatile, None)
        netns = sorted(os.listdir(f"/proc/{self.process.pid}/root/run/netns"))
        return {"links": links, "fdb": self.json("bridge", "-j", "fdb", "show"),
                "neigh": [n for n in self.json("ip", "-j", "neigh", "show")
                          if "PERMANENT" in n.get("state", [])],
                "netns": netns}

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


class Fleet:
    """The switch (underlay bridge, etcd on it) and `count` hosts h1..hN."""

    def __init__(self, count: int = 3) -> None:
        _run("ip", "link", "add", "underlay", "type", "bridge")
        _run("ip", "addr", "add", f"{SWITCH_ADDRESS}/24", "dev", "underlay")
        _run("ip", "link", "set", "underlay", "up")
        self.etcd = Etcd(SWITCH_ADDRESS, 2379).start()
        self.store = self.etcd.store_url
        self.hosts = [SimHost(f"h{i}", i) for i in range(1, count + 1)]

    def concurrently(self, *args: str) -> list[subprocess.CompletedProcess[str]]:
        """`cnm ARGS` on every host at once."""
        import contextlib
        import tempfile

        # to files, not pipes: a long plan would block a host on a pipe read only later
        with contextlib.ExitStack() as files:
            logs = [(files.enter_context(tempfile.TemporaryFile("w+")),
                     files.enter_context(tempfile.TemporaryFile("w+"))) for _ in self.hosts]
            running = [subprocess.Popen(h.cnm_command(*args), stdout=out, stderr=err, text=True,
                                        env=h.cnm_env(self.store), cwd=REPO)
                       for h, (out, err) in zip(self.hosts, logs, strict=True)]
            results = []
            for process, (out, err) in zip(running, logs, strict=True):
                process.wait(timeout=600)
                out.seek(0)
                err.seek(0)
                results.append(subprocess.CompletedProcess(process.args, process.returncode,
                                                           out.read(), err.read()))
        return results

    def revision(self) -> int:
        out = self.etcd.etcdctl("get", "/cnm/v1/", "--prefix", "--keys-only", "-w", "json")
        return int(json.loads(out.stdout)["header"]["revision"])

    def keys(self, under: str = "") -> list[str]:
        import base64

        out = self.etcd.etcdctl("get", f"/cnm/v1/{under}", "--prefix", "--keys-only", "-w",
                                "json")
        return sorted(base64.b64decode(kv["key"]).decode()
                      for kv in json.loads(out.stdout).get("kvs", []))

    def close(self) -> None:
        for host in self.hosts:
            host.stop()
        self.etcd.destroy()


def manifests_dir(directory: Path, text: str) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "fleet.yaml").write_text(text)
    return str(directory)
