"""Tools of the reliability tests: fault injection, canonical kernel dumps, invariants.

Like helpers.py, the verdicts come from `ip -j` and the file system, not
from cnm's own observation.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from counts import record_count as record_count  # the kernel tests take it from here

from reconciler import cli, faults

from helpers import CARRIER_FLAGS, KERNEL_COUNTERS, REPO, json_diff, netns_names

CNM_GROUP = "6516333"  # 0x636e6d as `ip -j` prints it

#: Keys whose values differ between two runs that reach the same state:
#: kernel-chosen indexes, random MACs (explicit ones are checked by an empty
#: re-plan), bridge and port identifiers derived from them, namespace ids.
VOLATILE = frozenset({
    "ifindex", "link_index", "address", "broadcast", "perm_address", "bridge_id", "root_id",
    "designated_root", "designated_bridge", "id", "no", "designated_port", "link_netnsid",
    "link", "root_port",
})


def run(*args: str, fault: str | None = None, trace: Path | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real `cnm` in a child process, optionally with an injected fault."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNM_FAULT")}
    if fault is not None:
        env["CNM_FAULT"] = fault
    if trace is not None:
        env["CNM_FAULT_TRACE"] = str(trace)
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args], capture_output=True, text=True,
        cwd=REPO, env=env, timeout=timeout,
    )


def forked(*args: str, fault: str) -> tuple[int, str]:
    """`cnm` in a forked copy of this process with CNM_FAULT set: like `run(..., fault=...)`
    without an interpreter start-up. (exit code or -signal as subprocess gives it, stderr)"""
    import tempfile

    with tempfile.TemporaryFile("w+") as errors:
        pid = os.fork()
        if pid == 0:  # child: never returns into the test
            code = 70
            try:
                os.environ["CNM_FAULT"] = fault
                os.environ.pop("CNM_FAULT_TRACE", None)
                faults.reset()
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, 1)
                os.dup2(errors.fileno(), 2)
                sys.stderr = os.fdopen(2, "w", buffering=1)
                code = cli.main(list(args))
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        errors.seek(0)
        text = errors.read()
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    return code, text


def inproc(*args: str) -> tuple[int, str, str]:
    """`cnm` run in this process (fast: no interpreter start-up); (code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(args))
        except SystemExit as exc:  # argparse
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def ok(*args: str) -> str:
    code, out, err = inproc(*args)
    assert code == 0, f"cnm {' '.join(args)} exited {code}:\n{out}\n{err}"
    return err


def apply_all(*directories: str) -> None:
    """`cnm apply -f DIR --yes` of each directory in turn (the default apply set)."""
    for directory in directories:
        ok("apply", "-f", directory, "--yes")


def applied(*directories: str) -> dict[str, Any]:
    """The canonical kernel after applying each directory in turn (none: the empty one)."""
    apply_all(*directories)
    return canonical()


def observed() -> Any:
    """cnm's own view, which includes what the canonical dump leaves out (random MACs)."""
    code, out, err = inproc("observe", "-o", "json")
    assert code == 0, err
    data = json.loads(out)
    data.pop("reserved_prefixes", None)
    return data


def fault_points(*args: str, scratch: Path, after: tuple[str, ...] = ()) -> list[str]:
    """Names of the fault points a command reaches, in order (the run itself succeeds),
    once the directories `after` are applied."""
    apply_all(*after)
    trace = scratch / "trace.txt"
    trace.unlink(missing_ok=True)
    result = run(*args, trace=trace)
    assert result.returncode == 0, result.stderr
    return [line.split(" ", 1)[1] for line in trace.read_text().splitlines()]


def point_number(points: list[str], name: str) -> int:
    """The fault point number of `name` (a point's name, or a step such as
    "update Sandbox/web1", whose point is "after step N/M: update Sandbox/web1")."""
    for number, point in enumerate(points, 1):
        if point == name or point.endswith(f": {name}"):
            return number
    raise AssertionError(f"no fault point {name!r} in {points}")


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _strip(v) for k, v in value.items()
            if k not in VOLATILE and k not in KERNEL_COUNTERS and not k.endswith("_timer")
        }
    if isinstance(value, list):
        return [_strip(v) for v in value if not (isinstance(v, str) and v in CARRIER_FLAGS)]
    return value



def raw_dump(ns: str | None) -> dict[str, Any]:
    """links, addresses and routes of one namespace: one `ip -batch` process."""
    prefix = ["ip", "-n", ns] if ns else ["ip"]
    out = subprocess.run(
        [*prefix, "-j", "-d", "-batch", "-"], capture_output=True, text=True, check=True,
        input="link show\naddr show\nroute show table all\n",
    ).stdout
    decoder, parts, offset = json.JSONDecoder(), [], 0
    while offset < len(out):
        if out[offset].isspace():
            offset += 1
            continue
        value, offset = decoder.raw_decode(out, offset)
        parts.append(value)
    links, addrs, routes = parts
    return {"links": links, "addrs": addrs, "routes": routes}


def snapshot() -> dict[str, Any]:
    """Raw dumps of the host and every named namespace, plus the files under /etc/netns."""
    dump: dict[str, Any] = {str(ns): raw_dump(ns) for ns in [None, *netns_names()]}
    files = {}
    for path in sorted(Path("/etc/netns").rglob("*")):
        files[str(path)] = path.read_text() if path.is_file() else "<dir>"
    dump["files"] = files
    dump["nft"] = nft_ruleset()
    return dump


def nft_ruleset() -> list[Any]:
    """The whole nftables ruleset without counters' values and rule handles (which
    differ between runs that reach the same rules); [] without nft installed."""
    import shutil

    if shutil.which("nft") is None:
        return []
    out = subprocess.run(["nft", "-s", "-j", "list", "ruleset"], capture_output=True,
                         text=True, check=True).stdout
    items = json.loads(out).get("nftables", [])
    return [_without_handles(item) for item in items if "metainfo" not in item]


def _without_handles(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_handles(v) for k, v in value.items() if k != "handle"}
    if isinstance(value, list):
        return [_without_handles(v) for v in value]
    return value


def _kernel_made(value: dict[str, Any]) -> bool:
    """IPv6 link-local addresses and routes, and the local/broadcast routes the kernel
    derives from addresses (added when the carrier settles)."""
    return (
        value.get("scope") == "link" and value.get("family") == "inet6"
        or str(value.get("dst", "")).startswith(("fe80", "ff00"))
        or value.get("table") == "local"
        or value.get("type") in ("local", "broadcast", "multicast")
    )


def canonical(dump: dict[str, Any] | None = None) -> dict[str, Any]:
    """The kernel and /etc/netns as comparable between runs: no indexes, random MACs,
    carrier flags or kernel-derived routes; links and addresses keyed by name."""
    dump = dict(snapshot() if dump is None else dump)
    # nftables: tables, chains and rules as a set. Every cnm rule is a drop, a
    # masquerade or a DNAT on disjoint traffic, so their order within a chain carries no
    # meaning (a run that adds rules after a crash may append them in another order).
    rules = sorted(json.dumps(item, sort_keys=True) for item in dump.pop("nft"))
    result: dict[str, Any] = {"files": dump.pop("files"), "nft": rules}
    for ns, parts in dump.items():
        links = {}
        for link in parts["links"]:
            link = dict(link)
            info = dict(link.get("linkinfo", {}))
            slave = dict(info.get("info_slave_data", {}))
            slave.pop("state", None)  # forwarding / disabled follows the carrier
            if slave:
                info["info_slave_data"] = slave
            if info:
                link["linkinfo"] = info
            link.pop("operstate", None)
            links[link["ifname"]] = _strip(link)
        result[ns] = {
            "links": links,
            "addrs": {
                a["ifname"]: sorted(
                    (json.dumps(_strip(i), sort_keys=True) for i in a.get("addr_info", [])
                     if not _kernel_made(i)),
                )
                for a in parts["addrs"]
            },
            "routes": sorted(json.dumps(_strip(r), sort_keys=True)
                             for r in parts["routes"] if not _kernel_made(r)),
        }
    return result


def unlabelled_cnm_links(dump: dict[str, Any]) -> list[str]:
    """Links anywhere with cnm's creation group but no owner label (leaks, if any)."""
    return sorted(
        f"{ns}:{link['ifname']}"
        for ns, parts in dump.items() if ns not in ("files", "nft")
        for link in parts["links"]
        if str(link.get("group")) == CNM_GROUP and not link.get("ifalias")
    )


def duplicate_addresses(dump: dict[str, Any]) -> list[str]:
    """Global addresses held by more than one interface in the host and all namespaces."""
    seen: Counter[str] = Counter()
    for ns, parts in dump.items():
        if ns in ("files", "nft"):
            continue
        for entry in parts["addrs"]:
            for info in entry.get("addr_info", []):
                if info.get("scope") == "global":
                    seen[info["local"]] += 1
    return sorted(a for a, n in seen.items() if n > 1)


def assert_canonical_equal(expected: dict[str, Any], actual: dict[str, Any], what: str) -> None:
    if expected != actual:
        diff = json_diff(expected, actual, ("expected", "actual"), context=2, limit=5000)
        raise AssertionError(f"{what}: the kernel differs from the expected state:\n{diff}")


def assert_converged(expected: dict[str, Any], what: str) -> None:
    """The kernel is exactly `expected` (canonically), with nothing half-made or leaked:
    no unlabelled link in cnm's group, no address held twice, no stray file or temp file."""
    dump = snapshot()
    assert_canonical_equal(expected, canonical(dump), what)
    assert unlabelled_cnm_links(dump) == [], f"{what}: links left half-made"
    assert duplicate_addresses(dump) == [], f"{what}: an address is held twice"
    assert stray_files() == [], f"{what}: files under /etc/netns that no sandbox owns"


def stray_files() -> list[str]:
    """Entries under /etc/netns that belong to no named namespace, and leftover temp files."""
    names = set(netns_names())
    root = Path("/etc/netns")
    stray = [str(p) for p in root.iterdir() if p.name not in names] if root.exists() else []
    stray += [str(p) for p in root.rglob(".*cnm-tmp")] if root.exists() else []
    return sorted(stray)


def resolver_diagnosis(set_name: str = "default") -> str:
    """What a failed check says about the set's resolver: its pid file, whether that
    process counts as it, who listens on UDP port 53, the end of its log. (A re-plan
    once found it "running, not answering" under heavy load; this makes the next time
    say why.)"""
    from reconciler.kernel import resolver

    directory = resolver.directory_of(set_name)
    lines = []
    for name in ("pid", "log"):
        try:
            text = Path(f"{directory}/{name}").read_text(errors="replace")
        except OSError as exc:
            text = f"({exc.strerror})"
        lines.append(f"{name}: {text.strip()[-1500:]}")
    pid = resolver.running_pid(directory)
    lines.append(f"running_pid: {pid}")
    if pid is not None:
        with contextlib.suppress(OSError):
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            lines.append(f"state: {state}")
    sockets = subprocess.run(["ss", "-uapn", "sport", "= :53"], capture_output=True, text=True)
    lines.append(f"udp :53: {sockets.stdout.strip()}")
    return "\n".join(lines)

