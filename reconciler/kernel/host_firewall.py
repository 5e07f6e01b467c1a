"""Reading the host's other firewall configuration (read-only): every nftables table
(`list ruleset`, iptables-nft's tables included), legacy iptables when its tools are
installed (`iptables-legacy-save`, `ip6tables-legacy-save`), and br_netfilter's
switches in this namespace. `firewall/foreign.py` turns them into data."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from reconciler.firewall.foreign import (
    ForeignChain,
    HostFirewall,
    chains_from_nft,
    chains_from_save,
)
from reconciler.kernel import firewalld, nft

_BRIDGE_NF = {4: "bridge-nf-call-iptables", 6: "bridge-nf-call-ip6tables"}
#: family -> (the save command, the file listing the namespace's legacy tables)
_LEGACY = {"ip": ("iptables-legacy-save", "/proc/net/ip_tables_names"),
           "ip6": ("ip6tables-legacy-save", "/proc/net/ip6_tables_names")}


def read() -> HostFirewall:
    chains = _nft_chains()
    zones = None
    if any((c.family, c.table) == ("inet", "firewalld") for c in chains):
        zones = firewalld.active_zones()  # firewalld's table: ask it for its bindings
    return HostFirewall(chains + _legacy_chains(), bridge_nf(), zones)


def bridge_nf() -> dict[int, bool]:
    """Whether bridged IPv4/IPv6 frames pass the IP hooks here (False without the
    br_netfilter module, whose switches then do not exist)."""
    found = {}
    for version, name in _BRIDGE_NF.items():
        try:
            found[version] = Path(f"/proc/sys/net/bridge/{name}").read_text().strip() == "1"
        except OSError:
            found[version] = False
    return found


def _nft_chains() -> tuple[ForeignChain, ...]:
    out = nft.list_ruleset()
    if not out:
        return ()
    return chains_from_nft(json.loads(out).get("nftables", []))


def _legacy_chains() -> tuple[ForeignChain, ...]:
    """Legacy iptables' tables; none when it holds no table in this namespace (the
    kernel lists them in /proc/net/ip*_tables_names) or its tools are not installed."""
    chains: tuple[ForeignChain, ...] = ()
    for family, (command, names) in _LEGACY.items():
        try:  # no legacy table in this namespace: no process to run (the usual case)
            if not Path(names).read_text().strip():
                continue
        except OSError:
            continue
        path = shutil.which(command)
        if path is None:
            continue
        try:
            done = subprocess.run([path], capture_output=True, text=True, timeout=30,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            chains += chains_from_save(done.stdout, family)
    return chains
