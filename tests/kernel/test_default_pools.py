"""Default pools against the real kernel: an occupied 172.17.0.0/16 is skipped, and a
network keeps its subnet when another network is added."""

from __future__ import annotations

import subprocess
from pathlib import Path

from helpers import addresses, cnm, links

NETWORK = "apiVersion: cnm/v1\nkind: Network\nmetadata: {{name: {name}}}\n"


def test_default_pools_skip_host_prefixes_and_stay_stable(tmp_path: Path) -> None:
    subprocess.run(["ip", "link", "add", "occ0", "type", "veth", "peer", "name", "occ1"],
                   check=True)
    subprocess.run(["ip", "addr", "add", "172.17.5.1/16", "dev", "occ0"], check=True)
    subprocess.run(["ip", "link", "set", "occ0", "up"], check=True)

    (tmp_path / "beta.yaml").write_text(NETWORK.format(name="beta"))
    assert cnm("apply", "-f", str(tmp_path), "--yes").returncode == 0
    assert addresses("br-beta") == ["172.18.0.1/16"]

    (tmp_path / "alpha.yaml").write_text(NETWORK.format(name="alpha"))
    plan = cnm("plan", "-f", str(tmp_path))
    assert "  + Network/alpha" in plan.stdout and "Network/beta" not in plan.stdout
    assert cnm("apply", "-f", str(tmp_path), "--yes").returncode == 0
    assert addresses("br-alpha") == ["172.19.0.1/16"]
    assert addresses("br-beta") == ["172.18.0.1/16"]
    assert cnm("plan", "-f", str(tmp_path), "--detailed-exitcode").returncode == 0
    assert addresses("occ0") == ["172.17.5.1/16"] and "occ1" in links()
