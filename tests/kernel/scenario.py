"""A realistic change for the reliability tests: state A, then manifests B.

A: two networks (dual-stack frontend, backend), three sandboxes, four
endpoints (one with static address and MAC, one sandbox on both networks, one
publishing a UDP port).

B, applied over A, has every kind of action: a network MTU update (with its
endpoints), a subnet change that replaces a network and cascades to its
endpoint, a sandbox and its endpoint deleted, a sandbox whose files change,
a new sandbox, a new network and new endpoints (one in an existing sandbox),
published ports changed and added (the firewall's rules change too).
"""

from __future__ import annotations

from pathlib import Path

COMMON = """\
apiVersion: cnm/v1
kind: Network
metadata: {{name: frontend}}
spec:
  mtu: {mtu}
  ipam: [{{subnet: 10.89.0.0/24}}, {{subnet: "fd00:89::/64"}}]
---
apiVersion: cnm/v1
kind: Network
metadata: {{name: backend}}
spec: {{ipam: [{{subnet: {backend}}}]}}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {{name: web1}}
spec: {{hostname: {hostname}, dns: {{servers: [192.0.2.53]}}}}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {{name: web2}}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {{name: web1-front}}
spec: {{network: frontend, sandbox: web1, ipv4Address: 10.89.0.10,
       macAddress: "02:42:0a:59:00:0a", aliases: [www]}}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {{name: web2-front}}
spec: {{network: frontend, sandbox: web2, ports: [{ports}]}}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {{name: web2-back}}
spec: {{network: backend, sandbox: web2, ifname: eth1, gateway: false}}
"""


def document(kind: str, name: str, spec: str = "") -> str:
    """One manifest document of cnm/v1; `spec` in YAML flow style (none: no spec)."""
    text = f"apiVersion: cnm/v1\nkind: {kind}\nmetadata: {{name: {name}}}\n"
    return text + (f"spec: {spec}\n" if spec else "")


def documents(*texts: str) -> str:
    """Documents as one multi-document YAML text."""
    return "---\n".join(texts)


ONLY_A = "---\n" + documents(
    document("Sandbox", "db"),
    document("Endpoint", "db-back", "{network: backend, sandbox: db}"),
)

ONLY_B = "---\n" + documents(
    document("Network", "extra", "{ipam: [{subnet: 10.92.0.0/24}]}"),
    document("Sandbox", "web3", "{hostname: web3}"),
    document("Endpoint", "web3-front",
             "{network: frontend, sandbox: web3, ports: [{containerPort: 80, hostPort: 8080}]}"),
    document("Endpoint", "web1-extra",
             "{network: extra, sandbox: web1, ifname: eth1, gateway: false}"),
)

STATE_A = COMMON.format(mtu=1500, backend="10.90.0.0/24", hostname="web1",
                        ports="{containerPort: 53, hostPort: 5353, protocol: udp}") + ONLY_A
STATE_B = COMMON.format(mtu=9000, backend="10.91.0.0/24", hostname="alpha",
                        ports="{containerPort: 443, hostPort: 8443}") + ONLY_B

#: A second apply set ("other") that shares nothing with A or B.
OTHER_SET = documents(
    document("Network", "other", "{ipam: [{subnet: 10.70.0.0/24}]}"),
    document("Sandbox", "lonely"),
    document("Endpoint", "lonely-other", "{network: other, sandbox: lonely}"),
)


def write(directory: Path, text: str) -> Path:
    """`text` as the only manifest file (all.yaml) of `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.yaml"):
        old.unlink()
    (directory / "all.yaml").write_text(text)
    return directory


def dirs(tmp_path: Path) -> tuple[str, str]:
    """The manifest directories of A and B: tmp_path/a and tmp_path/b."""
    return str(write(tmp_path / "a", STATE_A)), str(write(tmp_path / "b", STATE_B))
