"""cnm's side of every peer test: the set, its traffic paths, apply and delete as a
user runs them."""

from __future__ import annotations

from pathlib import Path

from peers.host import HOST, OUTSIDE
from peers.traffic import connect, serving

from helpers import cnm

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



def cnm_apply(directory: Path) -> None:
    """`cnm apply`; the plan right after must be empty."""
    result = cnm("apply", "-f", str(directory), "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    replan = cnm("plan", "-f", str(directory), "--detailed-exitcode")
    assert replan.returncode == 0, replan.stdout + replan.stderr


def cnm_delete(directory: Path) -> None:
    result = cnm("delete", "-f", str(directory), "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
