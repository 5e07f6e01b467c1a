"""The manifest's single values, parsed: addresses, subnets, MAC addresses, names.

One function per kind of value, each returning the parsed value or raising
ValueError with the message the user sees. They import no pydantic: the
pydantic model (`reconciler.model`) runs them as its validators, and the
plain model of `cnm validate`'s start-up (`reconciler.plain_model`) calls
them directly, so both accept exactly the same values.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from types import MappingProxyType
from typing import Literal, TypeAlias

from reconciler import naming
from reconciler.errors import show

API_VERSION: Literal["cnm/v1"] = "cnm/v1"

IPAddress: TypeAlias = IPv4Address | IPv6Address
IPNetwork: TypeAlias = IPv4Network | IPv6Network

# Python attribute name -> the name users write. Explicit rather than a generic
# camelCase generator because the spec spells some of them its own way (hostIP).
ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "api_version": "apiVersion",
        "ip_range": "ipRange",
        "aux_addresses": "auxAddresses",
        "extra_hosts": "extraHosts",
        "container_port": "containerPort",
        "host_port": "hostPort",
        "host_ip": "hostIP",
        "host_firewall": "hostFirewall",
        "ipv4_address": "ipv4Address",
        "ipv6_address": "ipv6Address",
        "mac_address": "macAddress",
        "gw_priority": "gwPriority",
    }
)

MAC_RE = re.compile(r"^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$")


def parse_address(value: object) -> IPAddress:
    if isinstance(value, IPv4Address | IPv6Address):
        return value
    if isinstance(value, str):
        try:
            return ipaddress.ip_address(value)
        except ValueError:
            pass
    raise ValueError(f"{show(value)} is not an IP address (e.g. 10.89.0.1 or fd00:89::1)")


def parse_v4(value: object) -> IPv4Address:
    address = parse_address(value)
    if not isinstance(address, IPv4Address):
        raise ValueError(f"{address} is not an IPv4 address; IPv6 addresses go in ipv6Address")
    return address


def parse_v6(value: object) -> IPv6Address:
    address = parse_address(value)
    if not isinstance(address, IPv6Address):
        raise ValueError(f"{address} is not an IPv6 address; IPv4 addresses go in ipv4Address")
    return address


def parse_network(value: object) -> IPNetwork:
    """A CIDR subnet with host bits zero: `10.89.0.1/24` is refused, not silently truncated."""
    if isinstance(value, IPv4Network | IPv6Network):
        return value
    bad = ValueError(
        f"{show(value)} is not a subnet in CIDR form (e.g. 10.89.0.0/24 or fd00:89::/64)"
    )
    if not isinstance(value, str) or "/" not in value:
        raise bad
    try:
        interface = ipaddress.ip_interface(value)
    except ValueError:
        raise bad from None
    if interface.ip != interface.network.network_address:
        raise ValueError(
            f"{show(value)} has host bits set; write the canonical form {interface.network}"
        )
    return interface.network


def normalise_mac(value: object) -> str | None:
    """Lowercase colon form, so that comparing with the kernel's view is plain equality."""
    if value is None:
        return None
    if not isinstance(value, str) or not MAC_RE.fullmatch(value):
        raise ValueError(
            f"{show(value)} is not a MAC address (six hex octets, e.g. 02:42:0a:59:00:0a;"
            " quote it in YAML)"
        )
    mac = value.lower().replace("-", ":")
    if int(mac[:2], 16) & 1:
        raise ValueError(
            f"{mac} is a multicast MAC address; use a unicast one (even first octet,"
            " e.g. 02:42:0a:59:00:0a)"
        )
    if mac == "00:00:00:00:00:00":
        raise ValueError("00:00:00:00:00:00 is not a usable MAC address; omit macAddress")
    return mac


def dns_label(value: object) -> str:
    """Names become parts of kernel names and paths, so only DNS labels are allowed."""
    if not isinstance(value, str) or not naming.DNS_LABEL_RE.fullmatch(value):
        raise ValueError(
            f"{show(value)} is not a DNS label (lowercase letters, digits and '-', at most 63)"
        )
    return value
