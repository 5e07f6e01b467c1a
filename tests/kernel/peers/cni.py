"""The CNI reference plugins, driven as containerd (libcni) drives them."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

CNI_PATH = "/usr/lib/cni"



def cni_conflist(name: str, bridge: str, subnet: str, *, ports: bool = True,
                 data_dir: str = "/var/lib/cni/networks") -> dict[str, Any]:
    plugins: list[dict[str, Any]] = [{
        "type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": True,
        "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]],
                 "routes": [{"dst": "0.0.0.0/0"}], "dataDir": data_dir},
    }]
    if ports:
        plugins.append({"type": "portmap", "capabilities": {"portMappings": True}})
    return {"cniVersion": "1.0.0", "name": name, "plugins": plugins}


def cni_exec(command: str, conflist: dict[str, Any], container_id: str, netns: str,
             ifname: str = "eth0", ports: list[dict[str, Any]] | None = None,
             results: dict[str, Any] | None = None) -> Any:
    """One attachment's ADD or DEL through every plugin of the list, one exec each, as
    libcni does: the network's name and version and the previous plugin's result on
    stdin, the runtime's capabilities (port mappings) as runtimeConfig; DEL in reverse
    order with the cached ADD result. `results` is the runtime's result cache."""
    cache = results if results is not None else {}
    plugins = conflist["plugins"] if command == "ADD" else list(reversed(conflist["plugins"]))
    previous = cache.get(container_id) if command == "DEL" else None
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": container_id, "CNI_NETNS": netns,
           "CNI_IFNAME": ifname, "CNI_PATH": CNI_PATH, "PATH": os.environ.get("PATH", "")}
    for plugin in plugins:
        config = {**plugin, "name": conflist["name"], "cniVersion": conflist["cniVersion"]}
        if "portMappings" in plugin.get("capabilities", {}):
            config["runtimeConfig"] = {"portMappings": ports or []}
        if previous is not None:
            config["prevResult"] = previous
        run = subprocess.run([f"{CNI_PATH}/{plugin['type']}"], input=json.dumps(config),
                             env=env, capture_output=True, text=True, timeout=60)
        if run.returncode != 0:
            raise AssertionError(f"CNI {plugin['type']} {command} failed: {run.stdout}"
                                 f"{run.stderr}")
        if command == "ADD":
            previous = json.loads(run.stdout)
    if command == "ADD":
        cache[container_id] = previous
    else:
        cache.pop(container_id, None)
    return previous
