"""cnm's netlink decoder against pyroute2's, on generated messages.

Hypothesis builds link, address, route and bridge-port messages the way the
kernel lays them out (built here with `struct`, not with cnm's encoder): the
attributes cnm reads, each present or not, in random order, among attributes
it does not read (types no decoder knows, some flagged nested), nested where
the kernel nests them (link info, its data, bridge port info), with garbage in
the alignment padding. Both decoders read the same bytes; each must find
exactly the values that were put in.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from reconciler.kernel import brport, netlink, rtnl

U32 = st.integers(0, 2**32 - 1)
NAMES = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=15)
#: macvlan modes by number, as cnm names them; others (16, "source") read as their number
MODES = {1: "private", 2: "vepa", 4: "bridge", 8: "passthru"}
#: pyroute2 names every mode the kernel knows
THEIR_MODES = {"private": 1, "vepa": 2, "bridge": 4, "passthru": 8, "source": 16}


@st.composite
def padding(draw: st.DrawFn, size: int) -> bytes:
    """What fills an attribute up to 4-byte alignment: anything (no reader may look)."""
    return draw(st.binary(min_size=-size % 4, max_size=-size % 4))


@st.composite
def attribute(draw: st.DrawFn, kind: int, payload: bytes) -> bytes:
    size = 4 + len(payload)
    return struct.pack("=HH", size, kind) + payload + draw(padding(size))


@st.composite
def noise(draw: st.DrawFn) -> bytes:
    """An attribute no decoder knows (types 100-999), flat or flagged nested."""
    kind = draw(st.integers(100, 999))
    if draw(st.booleans()):
        inner = draw(st.lists(st.binary(max_size=12), max_size=3))
        payload = b"".join([draw(attribute(draw(st.integers(1, 50)), p)) for p in inner])
        return draw(attribute(kind | netlink.NLA_F_NESTED, payload))
    return draw(attribute(kind, draw(st.binary(max_size=24))))


@st.composite
def attributes(draw: st.DrawFn, known: list[bytes]) -> bytes:
    """`known` attributes shuffled among noise."""
    parts = known + draw(st.lists(noise(), max_size=4))
    return b"".join(draw(st.permutations(parts)))


def message(kind: int, header: bytes, attrs: bytes) -> bytes:
    body = header + attrs
    return struct.pack("=IHHII", 16 + len(body), kind, netlink.NLM_F_MULTI, 7, 99) + body


def both(cls: Any, data: bytes) -> Any:
    """pyroute2's reading of `data`, after checking cnm's message walk agrees on its frame."""
    assert list(netlink.messages(data)) == [(struct.unpack_from("=H", data, 4)[0],
                                            netlink.NLM_F_MULTI, 0, len(data))]
    theirs = cls(data)
    theirs.decode()
    return theirs


def optional(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | value


@st.composite
def links(draw: st.DrawFn) -> tuple[bytes, rtnl.Link]:
    index, flags = draw(st.integers(1, 2**31 - 1)), draw(U32)
    name = draw(NAMES)
    mtu, master, group, peer = (draw(optional(U32)) for _ in range(4))
    alias = draw(optional(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E),
                                  min_size=1, max_size=64)))
    mac = draw(optional(st.binary(min_size=6, max_size=6)))
    kind = draw(optional(st.sampled_from(["veth", "bridge", "macvlan", "vxlan"]) | NAMES))
    mode = draw(optional(st.sampled_from([*MODES, 16]))) if kind == "macvlan" else None
    known = [draw(attribute(rtnl.IFLA_IFNAME, name.encode() + b"\0"))]
    for attr_type, value in ((rtnl.IFLA_MTU, mtu), (rtnl.IFLA_MASTER, master),
                             (rtnl.IFLA_GROUP, group), (rtnl.IFLA_LINK, peer)):
        if value is not None:
            known.append(draw(attribute(attr_type, struct.pack("=I", value))))
    if alias is not None:
        known.append(draw(attribute(rtnl.IFLA_IFALIAS, alias.encode() + b"\0")))
    if mac is not None:
        known.append(draw(attribute(rtnl.IFLA_ADDRESS, mac)))
    if kind is not None:
        info = [draw(attribute(rtnl.IFLA_INFO_KIND, kind.encode() + b"\0"))]
        if mode is not None:
            data = draw(attribute(rtnl.IFLA_MACVLAN_MODE, struct.pack("=I", mode)))
            info.append(draw(attribute(rtnl.IFLA_INFO_DATA, data)))
        # the kind first, as the kernel sends it (pyroute2 reads the data by the kind it
        # has already seen), then the data and unknown attributes in any order
        rest = info[1:] + draw(st.lists(noise(), max_size=2))
        info_payload = info[0] + b"".join(draw(st.permutations(rest)))
        known.append(draw(attribute(rtnl.IFLA_LINKINFO, info_payload)))
    header = struct.pack("=BxHiII", socket.AF_UNSPEC, 1, index, flags, 0)
    expected = rtnl.Link(index=index, name=name, flags=flags, mtu=mtu or 0, master=master,
                         group=group or 0, alias=alias, mac=mac.hex(":") if mac else None,
                         peer_index=peer, kind=kind,
                         macvlan_mode=MODES.get(mode, str(mode)) if mode is not None else None)
    return message(rtnl.RTM_NEWLINK, header, draw(attributes(known))), expected


@given(links())
@settings(max_examples=150, deadline=None)
def test_links_read_alike(case: tuple[bytes, rtnl.Link]) -> None:
    data, expected = case
    assert rtnl.decode_link(data, 16, len(data)) == expected
    m = both(ifinfmsg, data)
    info = m.get_attr("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
    data_attr = info.get_attr("IFLA_INFO_DATA") if info is not None else None
    mode = data_attr.get_attr("IFLA_MACVLAN_MODE") if kind == "macvlan" and data_attr else None
    mode = THEIR_MODES.get(mode, mode)
    theirs = rtnl.Link(
        index=m["index"], name=m.get_attr("IFLA_IFNAME"), flags=m["flags"],
        mtu=m.get_attr("IFLA_MTU") or 0, master=m.get_attr("IFLA_MASTER"),
        group=m.get_attr("IFLA_GROUP") or 0, alias=m.get_attr("IFLA_IFALIAS"),
        mac=m.get_attr("IFLA_ADDRESS"), peer_index=m.get_attr("IFLA_LINK"), kind=kind,
        macvlan_mode=MODES.get(mode, str(mode)) if mode is not None else None,
    )
    assert theirs == expected


@st.composite
def addresses(draw: st.DrawFn) -> tuple[bytes, rtnl.Address]:
    version = draw(st.sampled_from([4, 6]))
    size = 4 if version == 4 else 16
    local = draw(optional(st.binary(min_size=size, max_size=size)))
    peer = draw(st.binary(min_size=size, max_size=size) if local is None
                else optional(st.binary(min_size=size, max_size=size)))
    known = []
    if local is not None:
        known.append(draw(attribute(rtnl.IFA_LOCAL, local)))
    if peer is not None:
        known.append(draw(attribute(rtnl.IFA_ADDRESS, peer)))
    prefixlen = draw(st.integers(0, 8 * size))
    scope, index = draw(st.integers(0, 255)), draw(st.integers(1, 2**32 - 1))
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    header = struct.pack("=BBBBI", family, prefixlen, draw(st.integers(0, 255)), scope, index)
    raw = local if local is not None else peer
    assert raw is not None
    expected = rtnl.Address(index, version, prefixlen, scope, str(ipaddress.ip_address(raw)))
    return message(rtnl.RTM_NEWADDR, header, draw(attributes(known))), expected


@given(addresses())
@settings(max_examples=150, deadline=None)
def test_addresses_read_alike(case: tuple[bytes, rtnl.Address]) -> None:
    data, expected = case
    assert rtnl.decode_address(data, 16, len(data)) == expected
    m = both(ifaddrmsg, data)
    version = {socket.AF_INET: 4, socket.AF_INET6: 6}[m["family"]]
    address = m.get_attr("IFA_LOCAL") or m.get_attr("IFA_ADDRESS")
    assert rtnl.Address(m["index"], version, m["prefixlen"], m["scope"], address) == expected


@st.composite
def routes(draw: st.DrawFn) -> tuple[bytes, rtnl.Route]:
    version = draw(st.sampled_from([4, 6]))
    size = 4 if version == 4 else 16
    ip = st.binary(min_size=size, max_size=size)
    dst, gateway = draw(optional(ip)), draw(optional(ip))
    oif, table_attr = draw(optional(U32)), draw(optional(U32))
    known = []
    for attr_type, value in ((rtnl.RTA_DST, dst), (rtnl.RTA_GATEWAY, gateway)):
        if value is not None:
            known.append(draw(attribute(attr_type, value)))
    for attr_type, number in ((rtnl.RTA_OIF, oif), (rtnl.RTA_TABLE, table_attr)):
        if number is not None:
            known.append(draw(attribute(attr_type, struct.pack("=I", number))))
    dst_len, table = draw(st.integers(0, 8 * size)), draw(st.integers(0, 255))
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    header = struct.pack("=BBBBBBBBI", family, dst_len, 0, 0, table, 4, 0, 1, 0)
    def text(raw: bytes | None) -> str | None:
        return str(ipaddress.ip_address(raw)) if raw is not None else None

    expected = rtnl.Route(version=version, dst_len=dst_len,
                          table=table if table_attr is None else table_attr, oif=oif,
                          gateway=text(gateway), dst=text(dst))
    return message(rtnl.RTM_NEWROUTE, header, draw(attributes(known))), expected


@given(routes())
@settings(max_examples=150, deadline=None)
def test_routes_read_alike(case: tuple[bytes, rtnl.Route]) -> None:
    data, expected = case
    assert rtnl.decode_route(data, 16, len(data)) == expected
    m = both(rtmsg, data)
    version = {socket.AF_INET: 4, socket.AF_INET6: 6}[m["family"]]
    table = m.get_attr("RTA_TABLE")
    theirs = rtnl.Route(version=version, dst_len=m["dst_len"],
                        table=m["table"] if table is None else table,
                        oif=m.get_attr("RTA_OIF"), gateway=m.get_attr("RTA_GATEWAY"),
                        dst=m.get_attr("RTA_DST"))
    assert theirs == expected


@st.composite
def ports(draw: st.DrawFn) -> tuple[bytes, tuple[str, int, bool] | None]:
    index, name = draw(st.integers(1, 2**31 - 1)), draw(NAMES)
    hairpin = draw(optional(st.booleans()))
    is_port = draw(st.booleans())
    known = [draw(attribute(rtnl.IFLA_IFNAME, name.encode() + b"\0"))]
    if is_port:
        inner = [draw(attribute(brport.IFLA_BRPORT_MODE, bytes([hairpin])))] \
            if hairpin is not None else []
        inner.append(draw(attribute(1, b"\3")))  # IFLA_BRPORT_STATE: forwarding
        known.append(draw(attribute(brport.IFLA_PROTINFO | netlink.NLA_F_NESTED,
                                    b"".join(draw(st.permutations(inner))))))
    header = struct.pack("=BxHiII", brport.AF_BRIDGE, 1, index, 0, 0)
    expected = (name, index, bool(hairpin)) if is_port else None
    return message(rtnl.RTM_NEWLINK, header, draw(attributes(known))), expected


@given(ports())
@settings(max_examples=100, deadline=None)
def test_bridge_ports_read_alike(case: tuple[bytes, tuple[str, int, bool] | None]) -> None:
    data, expected = case
    assert brport.decode_port(data, 16, len(data)) == expected
    m = both(ifinfmsg, data)
    protinfo = m.get_attr("IFLA_PROTINFO")
    theirs = None if protinfo is None else (
        m.get_attr("IFLA_IFNAME"), m["index"], protinfo.get_attr("IFLA_BRPORT_MODE") == 1)
    assert theirs == expected


@st.composite
def trees(draw: st.DrawFn, depth: int = 2) -> list[tuple[int, bytes | list[Any]]]:
    """Attribute trees: (type, raw payload or a nested list of the same)."""
    leaf = st.tuples(st.integers(1, 0x3FFF), st.binary(max_size=20))
    if depth == 0:
        return draw(st.lists(leaf, max_size=4))
    node = st.tuples(st.integers(1, 0x3FFF), trees(depth - 1))
    return draw(st.lists(leaf | node, max_size=4))


def encode_tree(draw: st.DrawFn, tree: list[tuple[int, bytes | list[Any]]]) -> bytes:
    out = b""
    for kind, payload in tree:
        if isinstance(payload, list):
            out += draw(attribute(kind | netlink.NLA_F_NESTED, encode_tree(draw, payload)))
        else:
            out += draw(attribute(kind, payload))
    return out


def walk(data: bytes) -> list[tuple[int, bytes]]:
    return [(kind, data[start + 4 : end])
            for kind, start, end in netlink.walk_attributes(data, 0, len(data))]


@given(st.data())
@settings(max_examples=150, deadline=None)
def test_nested_attributes_walk_and_pick_as_built(data: st.DataObject) -> None:
    """Any tree of attributes, nested to any depth, padded with garbage: walking and
    picking find every attribute's type and payload as it was put in."""
    tree = data.draw(trees())
    raw = encode_tree(data.draw, tree)

    def check(raw: bytes, tree: list[tuple[int, bytes | list[Any]]]) -> None:
        walked = walk(raw)
        assert [kind for kind, _ in walked] == [kind for kind, _ in tree]
        for (_, payload), (_, built) in zip(walked, tree, strict=True):
            if isinstance(built, list):
                check(payload, built)
            else:
                assert payload == built
        last = {kind: payload for kind, payload in walked}  # a later one replaces
        wanted = {kind for kind, _ in tree[::2]}
        assert netlink.pick_attributes(raw, 0, len(raw), wanted) \
            == {k: v for k, v in last.items() if k in wanted}

    check(raw, tree)
