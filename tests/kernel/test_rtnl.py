"""The rtnetlink codec against the real kernel, checked with `ip -j`."""

from __future__ import annotations

import errno

import pytest

from reconciler.kernel import netns
from reconciler.kernel.rtnl import Rtnl

from helpers import addresses, ip_json, links


def test_requests_and_dumps_round_trip() -> None:
    netns.create_netns("peerns")
    with Rtnl() as host, Rtnl("peerns") as inside:
        assert host.link("nothere") is None
        host.add_bridge("br-t", mtu=1400, group=7)
        bridge = host.link("br-t")
        assert bridge is not None and bridge.kind == "bridge" and bridge.group == 7
        host.set_link(bridge.index, alias="cnm test", up=True)
        host.add_address(bridge.index, "10.9.0.1/24")
        host.add_address(bridge.index, "fd00:9::1/64")
        with pytest.raises(OSError) as exists:
            host.add_address(bridge.index, "10.9.0.1/24")
        assert exists.value.errno == errno.EEXIST

        host.add_veth("vt0", mtu=1400, group=7, master=bridge.index, up=True,
                      peer_name="eth9", peer_netns="peerns", peer_mac="02:00:00:00:00:09")
        peer = inside.link("eth9")
        assert peer is not None and peer.mac == "02:00:00:00:00:09" and peer.group == 7
        inside.set_link(peer.index, up=True, alias="peer")
        inside.add_address(peer.index, "10.9.0.2/24")
        inside.replace_default_route(peer.index, "10.9.0.1")

        assert links()["br-t"]["mtu"] == 1400 and links()["br-t"]["ifalias"] == "cnm test"
        assert links()["vt0"]["master"] == "br-t"
        assert addresses("br-t") == ["10.9.0.1/24", "fd00:9::1/64"]
        assert addresses("eth9", "peerns") == ["10.9.0.2/24"]
        routes = ip_json("route", "show", "default", netns="peerns")
        assert [(r["gateway"], r["dev"]) for r in routes] == [("10.9.0.1", "eth9")]

        dumped = {link.name: link for link in inside.links()}
        assert dumped["eth9"].alias == "peer" and dumped["eth9"].up
        assert dumped["eth9"].peer_index == links()["vt0"]["ifindex"]
        gateways = [r.gateway for r in inside.routes() if r.dst_len == 0 and r.table == 254]
        assert gateways == ["10.9.0.1"]

        inside.delete_default_route(peer.index, "10.9.0.1")
        inside.set_link(peer.index, up=False)
        inside.set_link(peer.index, name="lan9")
        inside.delete_address(peer.index, "10.9.0.2/24")
        assert "lan9" in links("peerns")
        assert ip_json("route", "show", "default", netns="peerns") == []
        host.delete_link(bridge.index)
        assert "br-t" not in links()
        with pytest.raises(OSError) as gone:
            host.delete_link(bridge.index)
        assert gone.value.errno == errno.ENODEV
