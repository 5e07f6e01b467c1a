"""Published ports: their canonical text (`[hostIP:]hostPort->containerPort/proto`),
its reading order, and the DNAT rules of one port."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reconciler.firewall.expr import ip_family, match, meta, payload
from reconciler.firewall.table import Rule
from reconciler.state import Drift

if TYPE_CHECKING:
    from reconciler.model import PortMapping

_PORT_RE = re.compile(
    r"^(?:(?P<ip>\[[0-9a-f:]+\]|[0-9.]+):)?(?P<host>[0-9]{1,5})->(?P<container>[0-9]{1,5})"
    r"/(?P<proto>tcp|udp)$"
)


@dataclass(frozen=True, order=True)
class PortMap:
    """One published port in canonical form (hostIP None: every address of every family)."""

    protocol: str
    host_port: int
    container_port: int
    host_ip: str | None = None

    @classmethod
    def of(cls, port: PortMapping) -> PortMap:
        host_ip = str(port.host_ip) if port.host_ip is not None else None
        return cls(port.protocol, port.host_port, port.container_port, host_ip)

    @property
    def versions(self) -> tuple[int, ...]:
        """IP versions this port is published on."""
        if self.host_ip is None:
            return (4, 6)
        return (ipaddress.ip_address(self.host_ip).version,)

    def text(self) -> str:
        where = ""
        if self.host_ip is not None:
            where = f"[{self.host_ip}]:" if ":" in self.host_ip else f"{self.host_ip}:"
        return f"{where}{self.host_port}->{self.container_port}/{self.protocol}"

    @classmethod
    def parse(cls, text: str) -> PortMap | None:
        """The port a text names, or None if cnm would never have written it."""
        found = _PORT_RE.match(text)
        if found is None:
            return None
        host_ip = found["ip"].strip("[]") if found["ip"] else None
        try:
            if host_ip is not None:
                host_ip = str(ipaddress.ip_address(host_ip))
        except ValueError:
            return None
        port = cls(found["proto"], int(found["host"]), int(found["container"]), host_ip)
        if not (0 < port.host_port < 65536 and 0 < port.container_port < 65536):
            return None
        return port if port.text() == text else None


def sorted_ports(values: Iterable[str | Drift]) -> tuple[str | Drift, ...]:
    """Port texts, and ports whose rules drifted, in reading order: by host port, then
    protocol and host address (the text last, so that the order is total)."""

    def key(value: str | Drift) -> tuple[int, str, str, str]:
        port = PortMap.parse(value.subject or "" if isinstance(value, Drift) else value)
        if port is None:
            return (1 << 16, "", "", str(value))
        return (port.host_port, port.protocol, port.host_ip or "", str(value))

    return tuple(sorted(set(values), key=key))


def port_rules(comment: str, port: PortMap, addresses: Mapping[int, str]) -> list[Rule]:
    """DNAT rules of one published port, one per IP version the endpoint has an address in."""
    rules = []
    for version in port.versions:
        target = addresses.get(version)
        if target is None:
            continue
        if port.host_ip is None or ipaddress.ip_address(port.host_ip).is_unspecified:
            where = match(meta("nfproto"), f"ipv{version}")
        else:
            where = match(payload(ip_family(version), "daddr"), port.host_ip)
        rules.append(Rule.of(
            "inet", "ports", comment,
            where,
            match(payload(port.protocol, "dport"), port.host_port),
            {"dnat": {"family": ip_family(version), "addr": target,
                      "port": port.container_port}},
        ))
    return rules
