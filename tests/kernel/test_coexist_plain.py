"""Issue 15 against the real kernel: a plain nftables host with a forward drop policy
(a hand-written `inet filter`), and legacy iptables. cnm reports them; with
`hostFirewall: accept` it keeps its own marked accepts at the top of the dropping
chain, and traffic works; the host's own rules stay byte-identical; legacy tables are
reported and never written. Runs with br_netfilter off and on."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from bridge_nf import bridge_nf  # noqa: F401  (runs every test with br_netfilter off and on)
from test_coexist_docker import WORLD, _all_paths_work, _plan
from test_firewall import OUTSIDE, build_outside, connect, serving

from helpers import cnm, write_manifests

HOST_RULES = """
table inet filter {
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "eth9" oifname "wg*" accept
  }
}
"""
OPTED = WORLD.replace("spec: {ipam: [{subnet: 10.89.0.0/24}]}",
                      "spec: {hostFirewall: accept, ipam: [{subnet: 10.89.0.0/24}]}")


def _host_table() -> list[Any]:
    """The host's `inet filter` as `nft -j` lists it, cnm's marked rules left out, counters
    zeroed (handles kept: a rule rewritten would get a new one)."""
    out = subprocess.run(["nft", "-j", "list", "table", "inet", "filter"], capture_output=True,
                         text=True, check=True).stdout
    objects = [o for o in json.loads(out)["nftables"] if "metainfo" not in o]
    return [o for o in objects
            if "rule" not in o or not str(o["rule"].get("comment", "")).startswith("cnm/v1 ")]


def test_plain_drop_is_reported_and_allowed_only_when_opted_in(tmp_path: Path) -> None:
    build_outside()
    subprocess.run(["nft", "-f", "-"], input=HOST_RULES, text=True, check=True)
    before = _host_table()
    manifests = write_manifests(tmp_path / "m", WORLD)
    cnm("apply", "-f", str(manifests), "--yes", check=True)
    plan = _plan(manifests)
    assert plan.returncode == 2, plan.stdout  # the problem stays: nothing to do by default
    assert "No changes." in plan.stdout
    assert ("dropped by table inet filter chain forward, policy drop; to allow it see "
            "docs/firewall.md (hostFirewall: accept)") in plan.stdout
    with serving("outside", OUTSIDE, 7000, name="outside"):
        assert connect("web", OUTSIDE, 7000, timeout=1.0) is None  # really dropped

    opted = write_manifests(tmp_path / "o", OPTED)
    plan = _plan(opted)
    assert "~ Network/front  host_firewall: (none) -> [inet filter forward]" in plan.stdout
    cnm("apply", "-f", str(opted), "--yes", check=True)
    _all_paths_work()
    again = _plan(opted)
    assert again.returncode == 0, again.stdout
    assert _host_table() == before
    cnm("delete", "-f", str(opted), "--yes", check=True)
    assert _host_table() == before
    out = subprocess.run(["nft", "list", "table", "inet", "filter"], capture_output=True,
                         text=True, check=True).stdout
    assert "cnm/v1" not in out


def _legacy_save() -> list[str]:
    """iptables-legacy-save without dates and the policies' packet counts."""
    out = subprocess.run(["iptables-legacy-save"], capture_output=True, text=True,
                         check=True).stdout
    return [re.sub(r" \[\d+:\d+\]$", "", line) for line in out.splitlines()
            if not line.startswith("#")]


def test_legacy_iptables_drop_is_reported_never_written(tmp_path: Path) -> None:
    subprocess.run(["iptables-legacy", "-P", "FORWARD", "DROP"], check=True)
    subprocess.run(["iptables-legacy", "-A", "FORWARD", "-m", "conntrack", "--ctstate",
                    "RELATED,ESTABLISHED", "-j", "ACCEPT"], check=True)
    saved = _legacy_save()
    opted = write_manifests(tmp_path / "o", OPTED)
    cnm("apply", "-f", str(opted), "--yes", check=True)
    plan = _plan(opted)
    assert plan.returncode == 2
    assert ("is dropped by iptables-legacy table ip filter chain FORWARD, policy drop; "
            "to allow it see docs/firewall.md") in plan.stdout
    assert _legacy_save() == saved
    cnm("delete", "-f", str(opted), "--yes", check=True)
