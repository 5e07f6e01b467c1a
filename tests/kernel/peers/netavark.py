"""netavark, driven as podman drives it."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

NETAVARK = "/usr/lib/podman/netavark"



def netavark_network(name: str, bridge: str, subnet: str, gateway: str) -> dict[str, Any]:
    return {"name": name, "id": (name.encode().hex() * 64)[:64], "driver": "bridge",
            "network_interface": bridge, "subnets": [{"subnet": subnet, "gateway": gateway}],
            "ipv6_enabled": False, "internal": False, "dns_enabled": False,
            "ipam_options": {"driver": "host-local"}}


def netavark_options(network: dict[str, Any], container: str, address: str,
                     ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"container_id": (container.encode().hex() * 64)[:64], "container_name": container,
            "port_mappings": ports or [],
            "networks": {network["name"]: {"static_ips": [address], "interface_name": "eth0"}},
            "network_info": {network["name"]: network}}


def netavark(command: str, config_dir: str, netns: str, options: dict[str, Any]) -> Any:
    """`netavark --config DIR setup|teardown NETNS` with the options on stdin (podman's
    way); the iptables firewall driver, as on a host without firewalld."""
    env = {**os.environ, "NETAVARK_FW": "iptables"}
    run = subprocess.run([NETAVARK, "--config", config_dir, command, netns],
                         input=json.dumps(options), env=env, capture_output=True, text=True,
                         timeout=60)
    if run.returncode != 0:
        raise AssertionError(f"netavark {command} failed: {run.stdout}{run.stderr}")
    return json.loads(run.stdout) if run.stdout.strip() else None
