"""Small readers over pyroute2 messages: the attributes the diff needs, normalised.

Kernel-made details are dropped here so they never show as drift: IPv6
link-local addresses, host-scope addresses, and every route but the default
routes in the main table.
"""

from __future__ import annotations

import ipaddress
import socket
from collections import defaultdict
from typing import Any

from pyroute2 import IPRoute

IFF_UP = 0x1
RT_TABLE_MAIN = 254
IFA_F_NODAD = 0x02

Message = Any  # pyroute2's nlmsg; untyped upstream


def link_kind(link: Message) -> str | None:
    kind = link.get(("linkinfo", "kind"))
    return str(kind) if kind is not None else None


def is_up(link: Message) -> bool:
    return bool(link["flags"] & IFF_UP)


def global_addresses(ipr: IPRoute) -> dict[int, list[str]]:
    """ifindex -> sorted "address/prefixlen" of its global-scope addresses."""
    result: dict[int, list[str]] = defaultdict(list)
    for msg in ipr.addr("dump"):
        if msg["scope"] != 0:
            continue
        address = msg.get("address")
        if address is None or ipaddress.ip_address(address).is_link_local:
            continue
        text = f"{ipaddress.ip_address(address)}/{msg['prefixlen']}"
        result[msg["index"]].append(text)
    return {index: sorted(values) for index, values in result.items()}


def default_gateways(ipr: IPRoute) -> dict[tuple[int, int], list[str]]:
    """(ifindex, IP version) -> gateways of default routes in the main table."""
    result: dict[tuple[int, int], list[str]] = defaultdict(list)
    for family, version in ((socket.AF_INET, 4), (socket.AF_INET6, 6)):
        for msg in ipr.route("dump", family=family, table=RT_TABLE_MAIN):
            if msg["dst_len"] != 0 or msg.get("table") != RT_TABLE_MAIN:
                continue
            gateway, oif = msg.get("gateway"), msg.get("oif")
            if gateway is not None and oif is not None:
                result[(oif, version)].append(str(ipaddress.ip_address(gateway)))
    return {key: sorted(values) for key, values in result.items()}


def family_of(address: str) -> int:
    return ipaddress.ip_interface(address).version
