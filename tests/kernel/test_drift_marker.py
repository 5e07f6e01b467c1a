"""Drift told apart from manifest edits by the kernel alone (the digest in each marker)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from helpers import cnm, ip_json, links, netns_names, write_manifests

MANIFESTS = """\
apiVersion: cnm/v1
kind: Network
metadata: {name: front}
spec: {driver: bridge, mtu: 1500, ipam: [{subnet: 10.73.0.0/24}]}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: web}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: web-front}
spec: {network: front, sandbox: web}
"""


def _line(plan: str, key: str) -> str:
    return next(line for line in plan.splitlines() if key in line)


def test_drift_is_marked_and_a_manifest_edit_is_not(tmp_path: Path) -> None:
    manifests = write_manifests(tmp_path / "m", MANIFESTS)
    cnm("apply", "-f", str(manifests), "--yes", check=True)
    alias = links()["br-front"]["ifalias"]
    assert alias.startswith("cnm/v1 set=default Network/front d=")  # what ip -j shows
    lo = ip_json("-d", "link", "show", "lo", netns="web")[0]["ifalias"]
    assert lo.startswith("cnm/v1 set=default Sandbox/web d=")
    assert cnm("plan", "-f", str(manifests), check=True).stdout.startswith("No changes.")

    # changed by hand: marked
    subprocess.run(["ip", "link", "set", "br-front", "mtu", "1400"], check=True)
    drifted = cnm("plan", "-f", str(manifests), check=True).stdout
    assert _line(drifted, "Network/front").endswith("mtu: 1400 -> 1500  (changed outside cnm)")
    document = json.loads(cnm("plan", "-f", str(manifests), "-o", "json", check=True).stdout)
    assert [a["changed_outside_cnm"] for a in document["actions"]] == [True]

    # the manifests edited (the kernel as cnm left it): not marked
    cnm("apply", "-f", str(manifests), "--yes", check=True)
    edited = write_manifests(tmp_path / "m", MANIFESTS.replace("mtu: 1500", "mtu: 1450"))
    line = _line(cnm("plan", "-f", str(edited), check=True).stdout, "Network/front")
    assert line.endswith("mtu: 1500 -> 1450") and "outside" not in line
    cnm("apply", "-f", str(edited), "--yes", check=True)
    assert links()["br-front"]["mtu"] == 1450
    assert links()["br-front"]["ifalias"] != alias  # the new digest is written
    assert cnm("plan", "-f", str(edited), check=True).stdout.startswith("No changes.")

    # a marker written before digests existed stays valid: the kernel converges
    subprocess.run(["ip", "link", "set", "br-front", "alias", "cnm/v1 set=default Network/front"],
                   check=True)
    assert cnm("plan", "-f", str(edited), check=True).stdout.startswith("No changes.")
    subprocess.run(["ip", "link", "set", "br-front", "mtu", "1400"], check=True)
    unknown = _line(cnm("plan", "-f", str(edited), check=True).stdout, "Network/front")
    assert unknown.endswith("mtu: 1400 -> 1450")  # no digest: not claimed either way
    cnm("apply", "-f", str(edited), "--yes", check=True)
    assert "d=" in links()["br-front"]["ifalias"]

    # a peer joins: the resolver learns it, web's files and the digest on web's lo stay
    # as they were; a file changed by hand afterwards is drift of the sandbox
    with_peer = write_manifests(tmp_path / "m", MANIFESTS.replace("mtu: 1500", "mtu: 1450") + (
        "---\napiVersion: cnm/v1\nkind: Sandbox\nmetadata: {name: db}\n---\n"
        "apiVersion: cnm/v1\nkind: Endpoint\nmetadata: {name: db-front}\n"
        "spec: {network: front, sandbox: db}\n"))
    lo_before = ip_json("-d", "link", "show", "lo", netns="web")[0]["ifalias"]
    cnm("apply", "-f", str(with_peer), "--yes", check=True)
    assert ip_json("-d", "link", "show", "lo", netns="web")[0]["ifalias"] == lo_before
    Path("/etc/netns/web/hostname").write_text("renamed\n")
    sandbox = _line(cnm("plan", "-f", str(with_peer), check=True).stdout, "Sandbox/web")
    assert sandbox.endswith("(changed outside cnm)"), sandbox
    edited = with_peer
    cnm("delete", "-f", str(edited), "--yes", check=True)
    assert netns_names() == [] and list(links()) == ["lo"]
