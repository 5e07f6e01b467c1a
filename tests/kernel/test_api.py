"""The libnetwork example through the Python API, end to end in a fresh namespace."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reconciler import AlreadyExistsError, Controller, InUseError, NotFoundError
from reconciler.errors import ManifestError

from helpers import REPO, addresses, ip_json, links, netns_names

SECOND_CONTROLLER = """
from reconciler import Controller
controller = Controller()
ep = controller.endpoint_by_name("endpoint1")
assert ep.sandbox is not None and ep.sandbox.name == "container1", ep.sandbox
ep.leave("container1")
ep.delete()
controller.network_by_name("network1").delete()
print("clean", controller.networks(), controller.sandboxes(), controller.endpoints())
"""


def test_libnetwork_example_end_to_end() -> None:
    controller = Controller()
    controller.configure_network_driver("bridge", {"mtu": 1450})
    network = controller.new_network("bridge", "network1", subnet="10.99.0.0/24")
    ep = network.create_endpoint("endpoint1")
    assert netns_names() == []  # not joined yet: no kernel object but the bridge
    sandbox_key = ep.join("container1", hostname="test", domainname="docker.io")

    assert sandbox_key == "/run/netns/container1"
    assert netns_names() == ["container1"]
    assert links()["br-network1"]["mtu"] == 1450
    assert addresses("eth0", "container1") == ["10.99.0.2/24"]
    assert links("container1")["eth0"]["mtu"] == 1450
    routes = ip_json("route", "show", "default", netns="container1")
    assert [(r["gateway"], r["dev"]) for r in routes] == [("10.99.0.1", "eth0")]
    assert Path("/etc/netns/container1/hostname").read_text() == "test\n"
    assert "10.99.0.2\ttest.docker.io test\n" in Path("/etc/netns/container1/hosts").read_text()

    # The kernel is the state: a controller in another process sees the objects,
    # and leaves and deletes them.
    second = subprocess.run([sys.executable, "-c", SECOND_CONTROLLER], capture_output=True,
                            text=True, cwd=REPO, timeout=60)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "clean [] [] []"
    assert netns_names() == [] and list(links()) == ["lo"]
    assert not Path("/etc/netns/container1").exists()


def test_api_errors_are_the_packages_own() -> None:
    controller = Controller()
    network = controller.new_network("bridge", "n1", subnet="10.98.0.0/24")
    with pytest.raises(AlreadyExistsError):
        controller.new_network("bridge", "n1")
    with pytest.raises(NotFoundError):
        controller.network_by_name("nope")
    with pytest.raises(ManifestError, match="Network/bad"):
        controller.new_network("bridge", "bad", subnet="10.98.0.0/24")  # overlaps n1
    ep = network.create_endpoint("e1")
    ep.join("s1")
    with pytest.raises(InUseError):
        network.delete()
    with pytest.raises(InUseError):
        ep.delete()
    assert [n.name for n in controller.networks()] == ["n1"]
    assert controller.sandbox_by_name("s1").key == "/run/netns/s1"
    ep.leave("s1")
    ep.delete()
    network.delete()
    assert list(links()) == ["lo"] and netns_names() == []


def test_example_script_runs() -> None:
    script = REPO / "examples" / "api" / "libnetwork_example.py"
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "sandbox key: /run/netns/container1" in result.stdout
    assert "networks left: []" in result.stdout


def test_macvlan_network_is_seen_by_a_second_controller() -> None:
    subprocess.run(["ip", "link", "add", "up0", "type", "veth", "peer", "name", "up1"],
                   check=True)
    subprocess.run(["ip", "link", "set", "up0", "up"], check=True)
    controller = Controller()
    network = controller.new_network("macvlan", "lan", parent="up0", mode="bridge",
                                     subnet="10.61.0.0/24", gateway="10.61.0.254")
    key = network.create_endpoint("a-lan").join("a")
    assert key == "/run/netns/a" and addresses("eth0", "a") == ["10.61.0.1/24"]

    again = Controller()
    assert [(n.name, n.driver) for n in again.networks()] == [("lan", "macvlan")]
    assert again.network_by_name("lan").manifest.spec.parent == "up0"
    ep = again.endpoint_by_name("a-lan")
    ep.leave("a")
    ep.delete()
    again.network_by_name("lan").delete()
    assert netns_names() == [] and sorted(links()) == ["lo", "up0", "up1"]


def test_api_lookups_and_names_kept_as_written() -> None:
    from reconciler import InvalidNameError

    controller = Controller()
    front = controller.new_network("bridge", "front", subnet="10.97.0.0/24")
    back = controller.new_network("bridge", "back", subnet="10.96.0.0/24")
    before = (sorted(links()), netns_names())
    with pytest.raises(InvalidNameError, match="'endpoint1'"):
        front.create_endpoint("Endpoint1")
    with pytest.raises(InvalidNameError):
        controller.new_network("bridge", "Net_1")
    with pytest.raises(InvalidNameError):
        controller.endpoint_by_name("Endpoint1")
    assert (sorted(links()), netns_names()) == before  # refused: nothing changed
    assert controller.endpoints() == []

    web = front.create_endpoint("web")
    db = back.create_endpoint("db", ifname="eth1", gateway=False)
    web.join("c1")
    db.join("c1")
    assert front.endpoint_by_name("web").name == "web"
    assert [e.name for e in front.endpoints()] == ["web"]
    with pytest.raises(NotFoundError, match="Network/back"):
        front.endpoint_by_name("db")
    sandbox = controller.sandbox_by_key("/run/netns/c1")
    assert sandbox.name == "c1"
    assert [e.name for e in sandbox.endpoints()] == ["db", "web"]
    assert sandbox.endpoint_by_name("db").network.name == "back"
    with pytest.raises(NotFoundError):
        controller.sandbox_by_key("/run/netns/nope")
    # what the kernel shows (an independent observer) carries the names as written
    assert addresses("eth0", "c1") == ["10.97.0.2/24"]
    assert addresses("eth1", "c1") == ["10.96.0.2/24"]
    for ep in (web, db):
        ep.leave("c1")
        ep.delete()
    front.delete()
    back.delete()
    assert list(links()) == ["lo"] and netns_names() == []
