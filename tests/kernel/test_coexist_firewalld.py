"""Issue 15 against a real firewalld (1.3, nftables backend) in the test's namespace:
its public zone rejects forwarded traffic; the plan names it; apply binds cnm's bridge
to the trusted zone through firewalld's D-Bus interface; real traffic works (between
sandboxes, a published port from another namespace, outbound masquerade); a firewalld
reload (which drops runtime bindings) is drift that apply repairs; delete unbinds only
cnm's bridge. Runs with br_netfilter off and on."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bridge_nf import bridge_nf  # noqa: F401  (runs every test with br_netfilter off and on)
from firewalld_daemon import running_firewalld
from test_coexist_docker import WORLD, _all_paths_work, _plan
from test_firewall import build_outside

from reconciler.kernel import firewalld

from helpers import cnm, write_manifests


def test_firewalld_zone_binding(tmp_path: Path) -> None:
    build_outside()
    with running_firewalld():
        subprocess.run(["ip", "link", "add", "br-user", "type", "bridge"], check=True)
        firewalld.bind("trusted", "br-user")  # someone else's binding
        manifests = write_manifests(tmp_path / "m", WORLD)
        plan = _plan(manifests)
        assert plan.returncode == 2
        assert ("PROBLEM Network/front: forwarded traffic" in plan.stdout
                and "dropped by table inet firewalld chain filter_FORWARD" in plan.stdout
                and "(firewalld); apply adds accepts in firewalld zone trusted" in plan.stdout)

        cnm("apply", "-f", str(manifests), "--yes", check=True)
        assert firewalld.active_zones() == {"br-front": "trusted", "br-user": "trusted"}
        _all_paths_work()
        again = _plan(manifests)
        assert again.returncode == 0, again.stdout

        subprocess.run(["firewall-cmd", "--reload"], check=True, capture_output=True)
        assert firewalld.active_zones() == {}  # runtime bindings are gone
        drift = _plan(manifests)
        assert "host_firewall: (none) -> [firewalld zone trusted]" in drift.stdout
        cnm("apply", "-f", str(manifests), "--yes", check=True)
        assert firewalld.active_zones() == {"br-front": "trusted"}

        firewalld.bind("trusted", "br-user")
        cnm("delete", "-f", str(manifests), "--yes", check=True)
        assert firewalld.active_zones() == {"br-user": "trusted"}
