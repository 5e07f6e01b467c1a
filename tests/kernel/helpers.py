"""Independent observers and traffic for kernel tests: `ip -j`, files, real TCP.

These never use cnm's own code, so a test's verdict does not depend on the
thing it tests.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "quickstart"

_SERVER = """
import socket, sys
family = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
srv = socket.create_server((sys.argv[1], int(sys.argv[2])), family=family)
print('ready', flush=True)
conn, peer = srv.accept()
conn.sendall(b'pong ' + peer[0].encode())
conn.close()
"""
_CLIENT = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3) as c:
    sys.stdout.write(c.recv(200).decode())
"""


def cnm(
    *args: str, stdin: str | None = None, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run the real `cnm` command line (as a user would) and capture its output."""
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        input=stdin, capture_output=True, text=True, cwd=REPO, timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"cnm {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


def ip_json(*args: str, netns: str | None = None) -> Any:
    prefix = ["ip", "-n", netns] if netns else ["ip"]
    out = subprocess.run([*prefix, "-j", *args], capture_output=True, text=True, check=True)
    return iproute2_json(out.stdout)


#: Ubuntu 24.04's iproute2 (6.1, patched for Ubuntu's "fan" networking) prints
#: `"id":42fan-map ,` inside a VXLAN's details, which is not JSON
_UBUNTU_FAN_MAP = re.compile(r"(?<=[0-9])fan-map *(?=,)")


def iproute2_json(text: str) -> Any:
    """`ip -j`/`bridge -j` output as data; Ubuntu's stray VXLAN `fan-map` text dropped."""
    try:
        return json.loads(text or "[]")
    except json.JSONDecodeError:
        if "fan-map" not in text:
            raise
        return json.loads(_UBUNTU_FAN_MAP.sub("", text))


def links(netns: str | None = None) -> dict[str, dict[str, Any]]:
    return {link["ifname"]: link for link in ip_json("-d", "link", "show", netns=netns)}


def addresses(ifname: str, netns: str | None = None) -> list[str]:
    data = ip_json("addr", "show", "dev", ifname, netns=netns)
    return sorted(
        f"{a['local']}/{a['prefixlen']}" for a in data[0]["addr_info"] if a.get("scope") == "global"
    )


def netns_names() -> list[str]:
    return sorted(entry["name"] for entry in ip_json("netns", "list"))


#: Values the kernel keeps changing by itself: traffic counters, and the count of MAC
#: addresses a bridge has learned (`fdb_n_learned`, printed by iproute2 6.9 and newer).
KERNEL_COUNTERS = frozenset({"stats", "stats64", "fdb_n_learned"})
#: Flags that follow the carrier, which the kernel settles asynchronously (linkwatch).
CARRIER_FLAGS = frozenset({"LOWER_UP", "NO-CARRIER", "M-DOWN", "linkdown"})


def kernel_made(entry: dict[str, Any]) -> bool:
    """An address or route the kernel makes by itself: IPv6 link-local addresses and
    routes, multicast routes, and every route of table `local` (derived from the
    addresses, which are compared). The local route of an IPv6 address added to a link
    that has just come up appears only once the kernel has processed the carrier
    (linkwatch, then addrconf's DAD work, both deferred and taking the RTNL lock; even
    for a NODAD address), which under load can be after apply and a snapshot returned."""
    return (
        entry.get("scope") == "link" and entry.get("family") == "inet6"
        or str(entry.get("dst", "")).startswith(("fe80", "ff00"))
        or entry.get("table") == "local"
    )


def _settled(value: Any, key: str = "") -> Any:
    """Drop what the kernel changes by itself over time.

    Timers, counters, operstate, carrier flags and a bridge port's forwarding state
    (all follow the carrier, asynchronously), the tentative flag, and kernel-made
    addresses and routes; the admin state cnm sets stays (the UP flag).
    """
    if isinstance(value, dict):
        return {
            k: _settled(v, k) for k, v in value.items()
            if not k.endswith("_timer")
            and k not in KERNEL_COUNTERS and k not in ("tentative", "operstate")
            and not (key == "info_slave_data" and k == "state")
        }
    if isinstance(value, list):
        kept = [v for v in value if not (isinstance(v, dict) and kernel_made(v))
                and not (isinstance(v, str) and v in CARRIER_FLAGS)]
        return [_settled(v) for v in kept]
    return value


def kernel_dump() -> dict[str, Any]:
    """Everything a plan could possibly change, from the host and every named netns."""
    dump: dict[str, Any] = {}
    for ns in [None, *netns_names()]:
        dump[str(ns)] = _settled({
            "links": ip_json("-d", "link", "show", netns=ns),
            "addrs": ip_json("addr", "show", netns=ns),
            "routes": ip_json("route", "show", "table", "all", netns=ns),
            "routes6": ip_json("-6", "route", "show", "table", "all", netns=ns),
        })
    files = {}
    for path in sorted(Path("/etc/netns").rglob("*")):
        files[str(path)] = path.read_text() if path.is_file() else "<dir>"
    dump["files"] = files
    return dump


def _owner(alias: str | None, set_name: str) -> tuple[str, str] | None:
    """(kind, name) of a cnm marker of `set_name` ("cnm/v1 set=S Kind/name[ net=N]")."""
    words = (alias or "").split()
    if len(words) < 3 or words[:2] != ["cnm/v1", f"set={set_name}"] or "/" not in words[2]:
        return None
    kind, name = words[2].split("/", 1)
    return kind, name


def _global_addresses(netns: str | None) -> dict[str, list[str]]:
    return {entry["ifname"]: sorted(f"{a['local']}/{a['prefixlen']}" for a in entry["addr_info"]
                                    if a.get("scope") == "global")
            for entry in ip_json("addr", "show", netns=netns)}


def iproute2_view(set_name: str = "default") -> dict[str, dict[str, Any]]:
    """What iproute2 shows of a set's bridge networks, sandboxes and veth endpoints, keyed
    "Kind/name", in the attributes cnm observes (values as plain lists and numbers)."""
    view: dict[str, dict[str, Any]] = {}
    host = ip_json("-d", "link", "show")
    host_addresses = _global_addresses(None)
    networks: dict[str, str] = {}  # bridge name -> network name
    host_ends: dict[str, dict[str, Any]] = {}  # endpoint name -> host end
    for link in host:
        owner = _owner(link.get("ifalias"), set_name)
        kind = link.get("linkinfo", {}).get("info_kind")
        if owner and owner[0] == "Network" and kind == "bridge":
            networks[link["ifname"]] = owner[1]
            addresses = host_addresses.get(link["ifname"], [])
            view[f"Network/{owner[1]}"] = {
                "bridge": link["ifname"], "mtu": link["mtu"], "addresses": addresses,
                "subnets": sorted({str(ipaddress.ip_interface(a).network) for a in addresses}),
                "up": "UP" in link["flags"]}
        elif owner and owner[0] == "Endpoint" and kind == "veth":
            host_ends[owner[1]] = link
    for ns in netns_names():
        links = ip_json("-d", "link", "show", netns=ns)
        lo = next(link for link in links if link["ifname"] == "lo")
        sandbox = _owner(lo.get("ifalias"), set_name)
        if sandbox is None or sandbox[0] != "Sandbox":
            continue
        view[f"Sandbox/{sandbox[1]}"] = {"netns": ns, "lo_up": "UP" in lo["flags"]}
        addresses = _global_addresses(ns)
        gateways = {version: ip_json(f"-{version}", "route", "show", "table", "main",
                                     "default", netns=ns) for version in (4, 6)}
        for link in links:
            owner = _owner(link.get("ifalias"), set_name)
            if link["ifname"] == "lo" or owner is None or owner[0] != "Endpoint":
                continue
            host_end = host_ends.get(owner[1])
            mine = addresses.get(link["ifname"], [])
            view[f"Endpoint/{owner[1]}"] = {
                "veth": host_end["ifname"] if host_end else None,
                "network": networks.get(host_end.get("master", "")) if host_end else None,
                "sandbox": sandbox[1], "ifname": link["ifname"], "mac": link["address"],
                "mtu": link["mtu"],
                "up": bool(host_end and "UP" in host_end["flags"] and "UP" in link["flags"]),
                "ipv4": [a for a in mine if ":" not in a],
                "ipv6": [a for a in mine if ":" in a],
                **{f"gateway{v}": sorted(r["gateway"] for r in gateways[v]
                                         if r.get("dev") == link["ifname"] and "gateway" in r)
                   for v in (4, 6)},
            }
    resolver = _resolver_view(set_name, host_addresses, networks)
    if resolver is not None:
        view[f"Resolver/{set_name}"] = resolver
    return view


def _resolver_view(set_name: str, host_addresses: dict[str, list[str]],
                   networks: dict[str, str]) -> dict[str, Any] | None:
    """The set's resolver as `ss` shows it: the UDP port 53 sockets of the process its pid
    file names, each as "address network" (the network of the bridge holding it)."""
    pidfile = Path(f"/run/cnm/resolver/{set_name}/pid")
    if not pidfile.exists():
        return None
    pid = pidfile.read_text().strip()
    out = subprocess.run(["ss", "-Hlunp", "sport = :53"], capture_output=True, text=True,
                         check=True).stdout
    holder = {a.split("/")[0]: bridge for bridge, found in host_addresses.items()
              for a in found}
    listen = []
    for line in out.splitlines():
        if f"pid={pid}," not in line:
            continue
        local = line.split()[3].rsplit(":", 1)[0].strip("[]")
        listen.append(f"{local} {networks.get(holder.get(local, ''), '?')}")
    return {"listen": sorted(listen)}


def tcp_roundtrip(server_ns: str, client_ns: str, address: str, port: int = 8080) -> str:
    """Serve once in `server_ns` on address:port, connect from `client_ns`, return the reply."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", server_ns, sys.executable, "-c", _SERVER, address, str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert server.stdout is not None
        ready = server.stdout.readline().strip()
        assert ready == "ready", server.stderr.read() if server.stderr else ""
        client = subprocess.run(
            ["ip", "netns", "exec", client_ns, sys.executable, "-c", _CLIENT, address, str(port)],
            capture_output=True, text=True, timeout=10,
        )
        if client.returncode != 0:
            raise AssertionError(f"TCP {client_ns} -> {address}:{port} failed: {client.stderr}")
        return client.stdout
    finally:
        server.kill()
        server.wait()


def tcp_fails(client_ns: str, address: str, port: int = 8080) -> bool:
    """True when a connection from `client_ns` to address:port does not succeed."""
    client = subprocess.run(
        ["ip", "netns", "exec", client_ns, sys.executable, "-c", _CLIENT, address, str(port)],
        capture_output=True, text=True, timeout=10,
    )
    return client.returncode != 0


def wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def write_manifests(directory: Path, text: str, name: str = "m.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text)
    return directory


def json_diff(old: Any, new: Any, labels: tuple[str, str] = ("before", "after"),
              context: int = 3, limit: int = 6000) -> str:
    """A unified diff of two JSON-able values (sorted keys), cut at `limit` characters."""
    import difflib

    lines = [json.dumps(value, indent=1, sort_keys=True).splitlines() for value in (old, new)]
    diff = difflib.unified_diff(*lines, *labels, lineterm="", n=context)
    return "\n".join(diff)[:limit]


def assert_same_kernel(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Assert two kernel dumps are equal, showing a readable diff when not."""
    if before != after:
        raise AssertionError(f"the kernel changed:\n{json_diff(before, after)}")


def many_endpoints(network: str, subnet: str, count: int) -> str:
    """Manifests of one network and `count` sandboxes, each with one endpoint on it."""
    docs = [f"apiVersion: cnm/v1\nkind: Network\nmetadata: {{name: {network}}}\n"
            f"spec: {{ipam: [{{subnet: {subnet}}}]}}\n"]
    for i in range(count):
        docs.append(f"apiVersion: cnm/v1\nkind: Sandbox\nmetadata: {{name: s{i:03d}}}\n")
        docs.append(f"apiVersion: cnm/v1\nkind: Endpoint\nmetadata: {{name: e{i:03d}}}\n"
                    f"spec: {{network: {network}, sandbox: s{i:03d}}}\n")
    return "---\n".join(docs)
