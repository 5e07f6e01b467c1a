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

ONLY_A = """\
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: db}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: db-back}
spec: {network: backend, sandbox: db}
"""

ONLY_B = """\
---
apiVersion: cnm/v1
kind: Network
metadata: {name: extra}
spec: {ipam: [{subnet: 10.92.0.0/24}]}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: web3}
spec: {hostname: web3}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: web3-front}
spec: {network: frontend, sandbox: web3, ports: [{containerPort: 80, hostPort: 8080}]}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: web1-extra}
spec: {network: extra, sandbox: web1, ifname: eth1, gateway: false}
"""

STATE_A = COMMON.format(mtu=1500, backend="10.90.0.0/24", hostname="web1",
                        ports="{containerPort: 53, hostPort: 5353, protocol: udp}") + ONLY_A
STATE_B = COMMON.format(mtu=9000, backend="10.91.0.0/24", hostname="alpha",
                        ports="{containerPort: 443, hostPort: 8443}") + ONLY_B


def write(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.yaml"):
        old.unlink()
    (directory / "all.yaml").write_text(text)
    return directory
