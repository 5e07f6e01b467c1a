#!/usr/bin/env python3
"""libnetwork's usage example, in Python, through cnm's API.

Run it as root inside a throw-away namespace, from the repository's top:

    tools/sandbox python3 examples/api/libnetwork_example.py

(tools/sandbox: a fresh network + mount namespace with private tmpfs on
/run/netns, /etc/netns, /run/cnm and /var/lib/cnm, so nothing stays behind.)

It creates a bridge network, an endpoint, joins it to a sandbox, shows the
sandbox's interface, then leaves and deletes everything.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from reconciler import Controller


def main() -> None:
    # Create a new controller instance (it rebuilds its state from the kernel).
    controller = Controller()

    # Options for the bridge driver, applied to networks created from now on.
    controller.configure_network_driver("bridge", {"mtu": 1450})

    # Create a network for containers to join; IPAM options as keyword arguments.
    network = controller.new_network("bridge", "network1", subnet="10.99.0.0/24")

    # For each new container: allocate an endpoint, join it to the container's sandbox.
    ep = network.create_endpoint("endpoint1")
    sandbox_key = ep.join("container1", hostname="test", domainname="docker.io")
    print("sandbox key:", sandbox_key)
    print(subprocess.run(["ip", "-n", "container1", "-br", "addr"], capture_output=True,
                         text=True).stdout, end="")
    print(Path("/etc/netns/container1/hostname").read_text(), end="")

    # Tear down: leave, delete the endpoint, delete the network.
    ep.leave("container1")
    ep.delete()
    network.delete()
    print("networks left:", controller.networks())


if __name__ == "__main__":
    main()
