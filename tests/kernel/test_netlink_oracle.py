"""cnm's netlink decoder against pyroute2's, on real kernel dumps.

pyroute2 is a test oracle here, never a runtime dependency (README, "Libraries,
and why"): it parses every attribute of every message, which makes it ~10-40x
slower than cnm's codec, and an independent reading of the same bytes. The
namespace holds thousands of links (bridges, veth pairs with peers in other
namespaces, macvlan children in every mode), IPv4 and IPv6 addresses, routes
in the main table and in tables above 255, and bridge ports with and without
hairpin mode. Every dump cnm reads (links, addresses, routes, AF_BRIDGE ports)
is captured once through cnm's `exchange()`, decoded by both, and compared
field by field for every field cnm reads.
"""

from __future__ import annotations

import dataclasses
import socket
import subprocess
from typing import Any

from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from reconciler.kernel import brport, netns, rtnl
from reconciler.kernel.netlink import (
    NETLINK_ROUTE,
    NLM_F_DUMP,
    NLM_F_REQUEST,
    NetlinkSocket,
    Reply,
)

PAIRS = 1000  # veth pairs whose two ends stay here: 2000 links
SANDBOXES = 8  # veth pairs whose peer is in a namespace of its own
MACVLAN_MODES = ("private", "vepa", "bridge")


def _batch(lines: list[str], netns_name: str | None = None) -> None:
    prefix = ["ip", "-n", netns_name] if netns_name else ["ip"]
    subprocess.run([*prefix, "-batch", "-"], input="\n".join(lines) + "\n", text=True,
                   check=True)


def _build() -> None:
    lines = ["link add br0 type bridge", "link add br1 mtu 9000 type bridge",
             "link set br1 alias 'cnm/v1 set=default Network/one' group 7",
             "addr add 10.10.0.1/16 dev br0", "addr add fd10::1/64 dev br0",
             "addr add 10.11.0.1/24 dev br1", "addr add 10.11.1.1/24 dev br1",
             "link set br0 up", "link set br1 up"]
    for i in range(PAIRS):
        lines += [f"link add h{i} type veth peer name p{i}",
                  f"link set h{i} master br{i % 2}" + (" up" if i % 3 else "")]
        if i % 5 == 0:
            lines.append(f"link set p{i} alias 'peer {i}' group {i % 11} mtu {1280 + i}")
        if i % 4 == 0:
            lines += [f"addr add 10.20.{i // 250}.{i % 250 + 1}/32 dev p{i}",
                      f"addr add fd20::{i + 1:x}/128 dev p{i} nodad"]
    for i in range(100):
        lines.append(f"route add 10.30.{i}.0/24 via 10.10.0.2")
        lines.append(f"route add fd30:{i:x}::/64 via fd10::2")
    lines += ["route add 10.31.0.0/16 via 10.10.0.3 table 100",
              "route add 10.32.0.0/16 via 10.10.0.4 table 1000",
              "route add fd32::/48 via fd10::4 table 100000"]
    lines += ["link add mvp type veth peer name mvq", "link set mvp up"]
    lines += [f"link add mv{m} link mvp type macvlan mode {m}" for m in MACVLAN_MODES]
    lines += ["link add mvr link mvq type macvlan mode passthru"]
    for s in range(SANDBOXES):
        netns.create_netns(f"sb{s}")
        lines += [f"link add v{s} mtu 1400 group 7 type veth peer name eth0 netns sb{s} "
                  f"address 02:00:00:00:00:{s:02x} mtu 1400",
                  f"link set v{s} master br0 up"]
    lines.append("link add mvs link mvp netns sb0 type macvlan mode bridge")
    _batch(lines)
    subprocess.run(["bridge", "-batch", "-"], text=True, check=True, input="".join(
        f"link set dev h{i} hairpin on\n" for i in range(0, PAIRS, 3)))
    for s in range(SANDBOXES):
        _batch(["link set lo up", "link set eth0 up alias 'cnm/v1 set=default Endpoint/e'",
                f"addr add 10.10.1.{s + 1}/16 dev eth0", f"addr add fd10::1:{s + 1}/64 dev eth0",
                "route add default via 10.10.0.1", "route add default via fd10::1"], f"sb{s}")


def _capture(netns_name: str | None, msg_type: int, body: bytes) -> list[Reply]:
    with NetlinkSocket(NETLINK_ROUTE, netns_name, strict=True) as sock:
        return sock.exchange(msg_type, NLM_F_REQUEST | NLM_F_DUMP, body)


def _theirs(cls: Any, reply: Reply) -> Any:
    """pyroute2's reading of one reply: the whole message, header included."""
    _, data, offset, end = reply
    message = cls(data[offset - 16 : end])
    message.decode()
    return message


def _their_link(m: Any) -> rtnl.Link:
    info = m.get_attr("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
    mode = None
    if kind == "macvlan":
        mode = info.get_attr("IFLA_INFO_DATA").get_attr("IFLA_MACVLAN_MODE")  # its name
        number = rtnl.MACVLAN_MODES.get(mode, mode)
        mode = mode if number in rtnl.MACVLAN_MODES.values() else str(number)
    return rtnl.Link(
        index=m["index"], name=m.get_attr("IFLA_IFNAME"), flags=m["flags"],
        mtu=m.get_attr("IFLA_MTU") or 0, master=m.get_attr("IFLA_MASTER"),
        group=m.get_attr("IFLA_GROUP") or 0, alias=m.get_attr("IFLA_IFALIAS"),
        mac=m.get_attr("IFLA_ADDRESS"), peer_index=m.get_attr("IFLA_LINK"), kind=kind,
        macvlan_mode=mode,
    )


def _their_address(m: Any) -> rtnl.Address:
    address = m.get_attr("IFA_LOCAL") or m.get_attr("IFA_ADDRESS")
    version = {socket.AF_INET: 4, socket.AF_INET6: 6}[m["family"]]
    return rtnl.Address(m["index"], version, m["prefixlen"], m["scope"], address)


def _their_route(m: Any) -> rtnl.Route:
    version = {socket.AF_INET: 4, socket.AF_INET6: 6}[m["family"]]
    table = m.get_attr("RTA_TABLE")
    return rtnl.Route(version=version, dst_len=m["dst_len"],
                      table=m["table"] if table is None else table,
                      oif=m.get_attr("RTA_OIF"), gateway=m.get_attr("RTA_GATEWAY"),
                      dst=m.get_attr("RTA_DST"))


def _their_port(m: Any) -> tuple[str, int, bool] | None:
    protinfo = m.get_attr("IFLA_PROTINFO")
    if protinfo is None:
        return None
    return m.get_attr("IFLA_IFNAME"), m["index"], protinfo.get_attr("IFLA_BRPORT_MODE") == 1


#: link flags that follow the carrier, which the kernel sets asynchronously (a bridge gets
#: IFF_RUNNING when its first port comes up): they may differ between two dumps
_CARRIER_FLAGS = 0x40 | 0x10000 | 0x20000  # IFF_RUNNING, IFF_LOWER_UP, IFF_DORMANT


def _settled(link: rtnl.Link) -> rtnl.Link:
    return dataclasses.replace(link, flags=link.flags & ~_CARRIER_FLAGS)


def _compare(replies: list[Reply], kind: int, cls: Any, ours: Any, theirs: Any) -> int:
    count = 0
    for reply in replies:
        assert reply[0] == kind
        mine = ours(reply[1], reply[2], reply[3])
        other = theirs(_theirs(cls, reply))
        assert mine == other, f"cnm read {mine}, pyroute2 {other}"
        count += 1
    return count


def test_cnm_and_pyroute2_read_real_dumps_alike() -> None:
    _build()
    for where in (None, "sb0"):
        links = _capture(where, rtnl.RTM_GETLINK, rtnl._LINKS_REQUEST)
        addresses = _capture(where, rtnl.RTM_GETADDR, rtnl._ADDRESSES_REQUEST)
        routes = _capture(where, rtnl.RTM_GETROUTE, rtnl.RTMSG.pack(0, 0, 0, 0, 0, 0, 0, 0, 0))
        ports = _capture(where, rtnl.RTM_GETLINK, rtnl.IFINFOMSG.pack(brport.AF_BRIDGE, 0, 0,
                                                                       0, 0))
        counts = (
            _compare(links, rtnl.RTM_NEWLINK, ifinfmsg, rtnl.decode_link, _their_link),
            _compare(addresses, rtnl.RTM_NEWADDR, ifaddrmsg, rtnl.decode_address,
                     _their_address),
            _compare(routes, rtnl.RTM_NEWROUTE, rtmsg, rtnl.decode_route, _their_route),
            _compare(ports, rtnl.RTM_NEWLINK, ifinfmsg, brport.decode_port, _their_port),
        )
        with rtnl.Rtnl(where) as reader:  # the public readers decode these very dumps
            assert list(map(_settled, reader.links())) \
                == [_settled(rtnl.decode_link(*r[1:])) for r in links]
            assert sorted(map(repr, reader.addresses())) \
                == sorted(repr(rtnl.decode_address(*r[1:])) for r in addresses)
        if where is None:
            # what the host holds, so that nothing above compared empty lists
            assert counts[0] >= 2 * PAIRS + SANDBOXES + 7 and counts[1] >= PAIRS // 2
            assert counts[2] >= 200 and counts[3] >= PAIRS + SANDBOXES
            decoded = [rtnl.decode_link(*r[1:]) for r in links]
            assert {link.macvlan_mode for link in decoded} >= {*MACVLAN_MODES, "passthru"}
            assert {r.table for r in map(lambda r: rtnl.decode_route(*r[1:]), routes)} \
                >= {100, 1000, 100000, 254, 255}
            assert sum(p is not None and p[2] for p in
                       (brport.decode_port(*r[1:]) for r in ports)) == len(range(0, PAIRS, 3))
        else:
            peer = {link.name: link for link in map(lambda r: rtnl.decode_link(*r[1:]), links)}
            assert peer["eth0"].peer_index is not None and peer["mvs"].kind == "macvlan"
            assert counts[2] >= 4
