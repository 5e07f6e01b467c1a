"""The real peers (dockerd + containerd, the CNI reference plugins, netavark) next to cnm.

Shared by the peer tests and bench/bench_peers.py. Everything here runs inside
the test's own network + mount namespace (tests/isolation.py): `private_dirs`
puts tmpfs on every directory a peer writes to (so nothing reaches the
machine's files), every daemon is started here and ended here by its PID, and
the test process becomes a child subreaper so that processes the daemons
detach (containerd's shims) are its own children and are ended by PID too.

The views (`side`) are made with iproute2 and nft only, never with cnm's own
code, so a verdict "the other side did not change" does not depend on cnm.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from helpers import _settled, cnm, ip_json, json_diff

HOST, OUTSIDE = "203.0.113.1", "203.0.113.2"
CNI_PATH = "/usr/lib/cni"
NETAVARK = "/usr/lib/podman/netavark"
DOCKER = "/usr/bin/docker"  # Debian's docker.io client, matching its dockerd
#: Directories a peer writes to by default; each gets a private tmpfs in the test's
#: mount namespace, even where the peer is also told to use another path.
PEER_DIRS = ("/etc/docker", "/var/lib/docker", "/run/docker", "/var/lib/containerd",
             "/run/containerd", "/var/lib/cni", "/run/cni", "/etc/cni", "/run/dbus",
             "/run/containers", "/var/lib/containers")
#: nftables tables cnm owns; every other table belongs to the host's other networking.
CNM_TABLES = frozenset({("inet", "cnm"), ("bridge", "cnm")})
CNM_MARK = "cnm/v1"


# -- isolation -----------------------------------------------------------------------

def private_dirs(base: Path) -> Path:
    """tmpfs on every peer directory and on `base` (the test's own scratch tree).

    /run/dbus too: no peer may find the machine's system bus (dockerd and netavark
    would register with a firewalld they found there)."""
    for directory in (str(base), *PEER_DIRS):
        os.makedirs(directory, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "cnm-peer", directory], check=True)
    _libc = ctypes.CDLL(None, use_errno=True)
    _libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans of our daemons come here
    return base


def children() -> list[int]:
    """PIDs of this process's direct children (including reparented orphans)."""
    found = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            found += [int(pid) for pid in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return found


def end_process(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM one process we started, wait for it, SIGKILL it if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if wait_for(lambda: _reaped(pid), timeout):
            return


def _reaped(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == pid
    except ChildProcessError:  # not our child (already reaped): gone when /proc says so
        return not Path(f"/proc/{pid}").exists()


def end_children() -> None:
    """End every remaining child of this process, by PID (shims, proxies, daemons)."""
    for pid in children():
        end_process(pid, timeout=10.0)


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(step)


# -- the world around: an outside host behind an uplink ------------------------------

def build_outside() -> None:
    """Uplink up0 (host 203.0.113.1) to the outside host 203.0.113.2 in netns `outside`,
    which has no route to any container subnet: replies need the host's masquerade."""
    for command in (
        "ip netns add outside",
        "ip link add up0 type veth peer name eth0 netns outside",
        f"ip addr add {HOST}/24 dev up0",
        "ip link set up0 up",
        f"ip -n outside addr add {OUTSIDE}/24 dev eth0",
        "ip -n outside link set eth0 up",
        "ip -n outside link set lo up",
    ):
        subprocess.run(command.split(), check=True)


# -- traffic: a real TCP connection, the server names itself and the peer it saw ------

_SERVER = """
import socket, sys
srv = socket.create_server((sys.argv[1], int(sys.argv[2])))
print('ready', flush=True)
while True:
    conn, peer = srv.accept()
    conn.settimeout(5)
    conn.sendall(sys.argv[3].encode() + b' ' + peer[0].encode())
    conn.shutdown(socket.SHUT_WR)
    try:  # read what the client sent until it closes: closing with unread data sends RST
        while conn.recv(4096):
            pass
    except OSError:
        pass
    conn.close()
"""
_CLIENT = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])) as c:
    c.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')
    data = b''
    while chunk := c.recv(4096):
        data += chunk
    sys.stdout.write(data.decode())
"""


def in_netns(netns: str | None, *argv: str) -> list[str]:
    """argv run in a named netns, a netns path (nsenter), or the test's host (None)."""
    if netns is None:
        return list(argv)
    if netns.startswith("/"):
        return ["nsenter", f"--net={netns}", *argv]
    return ["ip", "netns", "exec", netns, *argv]


@contextmanager
def serving(netns: str | None, address: str, port: int, name: str) -> Iterator[None]:
    """A TCP server in `netns` answering `<name> <client address>`; ended by PID."""
    server = subprocess.Popen(in_netns(netns, sys.executable, "-c", _SERVER, address,
                                       str(port), name),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready", server.stderr
        yield
    finally:
        end_process(server.pid)


def connect(netns: str | None, address: str, port: int, timeout: float = 3.0) -> str | None:
    """What the server at address:port said to a client in `netns`, or None if no reply."""
    client = subprocess.run(in_netns(netns, sys.executable, "-c", _CLIENT, address, str(port),
                                     str(timeout)),
                            capture_output=True, text=True, timeout=timeout + 15)
    return client.stdout if client.returncode == 0 else None


# -- each side's objects, by an independent observer ---------------------------------

def _cnm_owned(link: dict[str, Any]) -> bool:
    return str(link.get("ifalias", "")).startswith(CNM_MARK)


def _ns_view(netns: str | None) -> dict[str, Any]:
    def ipj(*args: str) -> Any:
        if netns is not None and netns.startswith("/"):
            out = subprocess.run(["nsenter", f"--net={netns}", "ip", "-j", *args],
                                 capture_output=True, text=True, check=True).stdout
            return json.loads(out or "[]")
        return ip_json(*args, netns=netns)
    return {"links": ipj("-d", "link", "show"), "addrs": ipj("addr", "show"),
            "routes": ipj("route", "show", "table", "all"),
            "routes6": ipj("-6", "route", "show", "table", "all"),
            "rules": ipj("rule", "show"), "rules6": ipj("-6", "rule", "show")}


def _strip_counters(value: Any) -> Any:
    """nft's packet and byte counters count traffic, not configuration: keep only that a
    counter is there."""
    if isinstance(value, dict):
        return {k: ("counter" if k == "counter" else _strip_counters(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_counters(v) for v in value]
    return value


def _cnm_rule(obj: dict[str, Any]) -> bool:
    return "rule" in obj and CNM_MARK in str(obj["rule"].get("comment", ""))


def nft_ruleset() -> list[dict[str, Any]]:
    out = subprocess.run(["nft", "-j", "list", "ruleset"], capture_output=True, text=True,
                         check=True).stdout
    return [o for o in json.loads(out)["nftables"] if "metainfo" not in o]


def files_under(*roots: str) -> dict[str, str]:
    files: dict[str, str] = {}
    for root in roots:
        for path in sorted(Path(root).rglob("*")):
            if path.is_symlink():
                files[str(path)] = f"-> {os.readlink(path)}"
            elif path.is_file():
                files[str(path)] = path.read_bytes().decode(errors="replace")
            else:
                files[str(path)] = "<dir>"
    return files


CNM_FILES = ("/etc/netns", "/run/cnm", "/var/lib/cnm")


def side(owner: str, peer_netns: dict[str, str] | None = None,
         peer_files: tuple[str, ...] = (), skip_links: tuple[str, ...] = ("lo", "up0")
         ) -> dict[str, Any]:
    """Everything of one side, "cnm" or "peer", as iproute2 and nft show it.

    Host links are cnm's when their alias carries cnm's marker; addresses and routes go
    with their link. Named namespaces are cnm's when their loopback carries the marker
    (a sandbox), the peer's otherwise (`outside` excepted); `peer_netns` adds the peer's
    unnamed ones (name -> /proc/PID/ns/net). nftables tables other than cnm's are the
    peer's, less any rule cnm marked in them. Rules (`ip rule`) are the host's: both
    sides carry them. Kernel-changed values (counters, timers, carrier) are dropped."""
    mine = owner == "cnm"
    host = _ns_view(None)
    names = {link["ifname"] for link in host["links"]
             if link["ifname"] not in skip_links and _cnm_owned(link) == mine}
    view: dict[str, Any] = {
        "links": [link for link in host["links"] if link["ifname"] in names],
        "addrs": [a for a in host["addrs"] if a["ifname"] in names],
        "routes": [r for key in ("routes", "routes6") for r in host[key]
                   if r.get("dev") in names],
        "rules": [host["rules"], host["rules6"]],
    }
    namespaces: dict[str, Any] = {}
    for entry in ip_json("netns", "list"):
        name = entry["name"]
        if name == "outside":
            continue
        ns = _ns_view(name)
        lo = next(link for link in ns["links"] if link["ifname"] == "lo")
        if _cnm_owned(lo) == mine:
            namespaces[name] = ns
    if not mine:
        for name, path in (peer_netns or {}).items():
            namespaces[name] = _ns_view(path)
    view["netns"] = namespaces
    tables: dict[str, list[Any]] = {}
    for obj in nft_ruleset():
        kind = next(iter(obj))
        family = obj[kind]["family"]
        table = obj[kind]["name" if kind == "table" else "table"]
        cnm_table = (family, table) in CNM_TABLES
        # in another system's table, only the rules cnm marked are cnm's
        if (cnm_table or _cnm_rule(obj)) == mine:
            tables.setdefault(f"{family} {table}", []).append(_strip_counters(obj))
    view["nft"] = tables
    view["files"] = files_under(*(CNM_FILES if mine else peer_files))
    return _settled(view)


# -- cnm: two networks, three sandboxes, a published port ----------------------------

CNM_SET = """\
apiVersion: cnm/v1
kind: Network
metadata: {name: front}
spec: {ipam: [{subnet: 10.89.0.0/24}]}
---
apiVersion: cnm/v1
kind: Network
metadata: {name: back}
spec: {ipam: [{subnet: 10.90.0.0/24}]}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: web}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: app}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: db}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: web}
spec:
  network: front
  sandbox: web
  ipv4Address: 10.89.0.10
  ports: [{containerPort: 80, hostPort: 8080}]
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: app}
spec: {network: front, sandbox: app, ipv4Address: 10.89.0.20}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: db}
spec: {network: back, sandbox: db, ipv4Address: 10.90.0.10}
"""


def cnm_traffic() -> dict[str, str | None]:
    """cnm's traffic paths, each the reply a real TCP client got (None: no reply)."""
    seen: dict[str, str | None] = {}
    with serving("app", "10.89.0.20", 5000, "app"):
        seen["same network"] = connect("web", "10.89.0.20", 5000)
    with serving("web", "10.89.0.10", 80, "web"):
        seen["published port"] = connect("outside", HOST, 8080)
    with serving(None, "10.90.0.1", 6000, "gateway"):
        seen["gateway"] = connect("db", "10.90.0.1", 6000)
    with serving("outside", OUTSIDE, 7000, "outside"):
        seen["outbound"] = connect("app", OUTSIDE, 7000)
        seen["outbound other network"] = connect("db", OUTSIDE, 7000)
    return seen


CNM_EXPECTED = {
    "same network": "app 10.89.0.10",
    "published port": f"web {OUTSIDE}",
    "gateway": "gateway 10.90.0.10",
    "outbound": f"outside {HOST}",  # masqueraded: outside has no route back
    "outbound other network": f"outside {HOST}",
}


# -- the CNI reference plugins, driven as containerd (libcni) drives them -------------

def cni_conflist(name: str, bridge: str, subnet: str, *, ports: bool = True,
                 data_dir: str = "/var/lib/cni/networks") -> dict[str, Any]:
    plugins: list[dict[str, Any]] = [{
        "type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": True,
        "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]],
                 "routes": [{"dst": "0.0.0.0/0"}], "dataDir": data_dir},
    }]
    if ports:
        plugins.append({"type": "portmap", "capabilities": {"portMappings": True}})
    return {"cniVersion": "1.0.0", "name": name, "plugins": plugins}


def cni_exec(command: str, conflist: dict[str, Any], container_id: str, netns: str,
             ifname: str = "eth0", ports: list[dict[str, Any]] | None = None,
             results: dict[str, Any] | None = None) -> Any:
    """One attachment's ADD or DEL through every plugin of the list, one exec each, as
    libcni does: the network's name and version and the previous plugin's result on
    stdin, the runtime's capabilities (port mappings) as runtimeConfig; DEL in reverse
    order with the cached ADD result. `results` is the runtime's result cache."""
    cache = results if results is not None else {}
    plugins = conflist["plugins"] if command == "ADD" else list(reversed(conflist["plugins"]))
    previous = cache.get(container_id) if command == "DEL" else None
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": container_id, "CNI_NETNS": netns,
           "CNI_IFNAME": ifname, "CNI_PATH": CNI_PATH, "PATH": os.environ.get("PATH", "")}
    for plugin in plugins:
        config = {**plugin, "name": conflist["name"], "cniVersion": conflist["cniVersion"]}
        if "portMappings" in plugin.get("capabilities", {}):
            config["runtimeConfig"] = {"portMappings": ports or []}
        if previous is not None:
            config["prevResult"] = previous
        run = subprocess.run([f"{CNI_PATH}/{plugin['type']}"], input=json.dumps(config),
                             env=env, capture_output=True, text=True, timeout=60)
        if run.returncode != 0:
            raise AssertionError(f"CNI {plugin['type']} {command} failed: {run.stdout}"
                                 f"{run.stderr}")
        if command == "ADD":
            previous = json.loads(run.stdout)
    if command == "ADD":
        cache[container_id] = previous
    else:
        cache.pop(container_id, None)
    return previous


# -- netavark, driven as podman drives it ---------------------------------------------

def netavark_network(name: str, bridge: str, subnet: str, gateway: str) -> dict[str, Any]:
    return {"name": name, "id": (name.encode().hex() * 64)[:64], "driver": "bridge",
            "network_interface": bridge, "subnets": [{"subnet": subnet, "gateway": gateway}],
            "ipv6_enabled": False, "internal": False, "dns_enabled": False,
            "ipam_options": {"driver": "host-local"}}


def netavark_options(network: dict[str, Any], container: str, address: str,
                     ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"container_id": (container.encode().hex() * 64)[:64], "container_name": container,
            "port_mappings": ports or [],
            "networks": {network["name"]: {"static_ips": [address], "interface_name": "eth0"}},
            "network_info": {network["name"]: network}}


def netavark(command: str, config_dir: str, netns: str, options: dict[str, Any]) -> Any:
    """`netavark --config DIR setup|teardown NETNS` with the options on stdin (podman's
    way); the iptables firewall driver, as on a host without firewalld."""
    env = {**os.environ, "NETAVARK_FW": "iptables"}
    run = subprocess.run([NETAVARK, "--config", config_dir, command, netns],
                         input=json.dumps(options), env=env, capture_output=True, text=True,
                         timeout=60)
    if run.returncode != 0:
        raise AssertionError(f"netavark {command} failed: {run.stdout}{run.stderr}")
    return json.loads(run.stdout) if run.stdout.strip() else None


# -- dockerd and containerd, all state on tmpfs ---------------------------------------

class Dockerd:
    """containerd + dockerd in the test's namespaces, every directory under `base`.

    Started with IP forwarding off in the namespace (a fresh one has it off), as on a
    freshly booted host, so dockerd turns it on itself and sets the FORWARD policy to
    drop. Containers' cgroups go under a parent named for this test's PID."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.cgroup_parent = f"cnm-peers-{os.getpid()}"
        self.containerd: subprocess.Popen[bytes] | None = None
        self.dockerd: subprocess.Popen[bytes] | None = None
        self.socket = base / "docker" / "docker.sock"
        self.ctd_socket = base / "containerd" / "containerd.sock"

    def start_containerd(self) -> None:
        ctd = self.base / "containerd"
        ctd.mkdir(parents=True, exist_ok=True)
        config = ctd / "config.toml"
        config.write_text(
            f'version = 2\nroot = "{ctd}/root"\nstate = "{ctd}/state"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{self.ctd_socket}"\n'
            f'[plugins."io.containerd.internal.v1.opt"]\n  path = "{ctd}/opt"\n')
        log = open(ctd / "containerd.log", "ab")  # noqa: SIM115 (closed with the process)
        self.containerd = subprocess.Popen(["containerd", "-c", str(config)], stdout=log,
                                           stderr=log)
        if not wait_for(self.ctd_socket.exists, 30):
            raise AssertionError(f"containerd did not start:\n{self.log('containerd')}")

    def start(self) -> None:
        if self.containerd is None:
            self.start_containerd()
        d = self.base / "docker"
        d.mkdir(parents=True, exist_ok=True)
        (d / "daemon.json").write_text("{}")
        log = open(d / "dockerd.log", "ab")  # noqa: SIM115
        self.dockerd = subprocess.Popen(
            ["dockerd", "--config-file", str(d / "daemon.json"), "--data-root", str(d / "data"),
             "--exec-root", str(d / "exec"), "--pidfile", str(d / "docker.pid"),
             "-H", f"unix://{self.socket}", "--containerd", str(self.ctd_socket),
             "--exec-opt", "native.cgroupdriver=cgroupfs",
             "--cgroup-parent", f"/{self.cgroup_parent}"],
            stdout=log, stderr=log)
        if not wait_for(lambda: self.run("version", check=False).returncode == 0, 60, 0.2):
            raise AssertionError(f"dockerd did not start:\n{self.log('dockerd')}")

    def log(self, which: str) -> str:
        path = self.base / ("docker/dockerd.log" if which == "dockerd"
                            else "containerd/containerd.log")
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def run(self, *args: str, check: bool = True, timeout: float = 120
            ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([DOCKER, "-H", f"unix://{self.socket}", *args],
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)}: {result.stderr}")
        return result

    def stop_dockerd(self) -> None:
        if self.dockerd is not None:
            end_process(self.dockerd.pid, timeout=30)
            self.dockerd = None

    def import_busybox(self, tag: str = "cnm-peer/busybox") -> str:
        """An image from busybox-static's /bin/busybox and a link per applet (no registry)."""
        root = self.base / "image.tar"
        applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True,
                                 check=True).stdout.split()
        with tarfile.open(root, "w") as tar:
            tar.add("/bin/busybox", arcname="bin/busybox")
            for applet in applets:
                if applet != "busybox":
                    info = tarfile.TarInfo(f"bin/{applet}")
                    info.type, info.linkname = tarfile.SYMTYPE, "busybox"
                    tar.addfile(info)
        self.run("import", str(root), tag)
        return tag

    def pid(self, container: str) -> int:
        return int(self.run("inspect", "-f", "{{.State.Pid}}", container).stdout)

    def address(self, container: str) -> str:
        return self.run("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}"
                        "{{end}}", container).stdout.strip()

    def stop(self) -> None:
        """Remove the containers (their shims end with them), end dockerd, containerd and
        any orphan by PID, and drop the cgroup parent the containers used."""
        if self.dockerd is not None:
            ids = self.run("ps", "-aq", check=False).stdout.split()
            if ids:
                self.run("rm", "-f", *ids, check=False)
        self.stop_dockerd()
        if self.containerd is not None:
            end_process(self.containerd.pid, timeout=30)
            self.containerd = None
        end_children()
        root = Path("/sys/fs/cgroup")  # cgroup v2: root/parent; v1: root/<controller>/parent
        for parent in [root / self.cgroup_parent,
                       *(c / self.cgroup_parent for c in root.iterdir() if c.is_dir())]:
            if parent.is_dir():
                for leftover in sorted(parent.rglob("*"), reverse=True):
                    if leftover.is_dir():
                        leftover.rmdir()
                parent.rmdir()


# -- cnm as a user runs it, and the comparisons ---------------------------------------

def cnm_apply(directory: Path) -> None:
    """`cnm apply`; the plan right after must be empty."""
    result = cnm("apply", "-f", str(directory), "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    replan = cnm("plan", "-f", str(directory), "--detailed-exitcode")
    assert replan.returncode == 0, replan.stdout + replan.stderr


def cnm_delete(directory: Path) -> None:
    result = cnm("delete", "-f", str(directory), "--yes")
    assert result.returncode == 0, result.stdout + result.stderr


def assert_unchanged(before: dict[str, Any], after: dict[str, Any], what: str) -> None:
    if before != after:
        raise AssertionError(f"{what} changed:\n{json_diff(before, after, context=2)}")


def add_netns(*names: str) -> None:
    for name in names:
        subprocess.run(["ip", "netns", "add", name], check=True)
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)


def del_netns(*names: str) -> None:
    for name in names:
        subprocess.run(["ip", "netns", "del", name], check=True)
