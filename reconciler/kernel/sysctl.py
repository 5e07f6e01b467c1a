"""The host's IP forwarding switches, read and (only ever) turned on; and the
`route_localnet` switch of cnm's bridges, read and set both ways.

libnetwork enables forwarding when a bridge network needs it and never turns
it off again: other software on the host may rely on it, and cnm cannot know.
`route_localnet` belongs to a bridge cnm owns, so it is set as desired.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

PROC = Path("/proc/sys/net")
FORWARDING = {
    4: Path("ipv4/ip_forward"),
    6: Path("ipv6/conf/all/forwarding"),
}


def forwarding(root: Path = PROC) -> dict[int, bool]:
    """IP version -> forwarding on; a version whose switch is absent (IPv6 disabled) is left out."""
    found: dict[int, bool] = {}
    for version, relative in FORWARDING.items():
        try:
            found[version] = (root / relative).read_text().strip() == "1"
        except FileNotFoundError:
            continue
    return found


def enable_forwarding(version: int, root: Path = PROC) -> None:
    """Turn forwarding of one IP version on (for the namespace this process runs in)."""
    (root / FORWARDING[version]).write_text("1\n")


def _route_localnet_path(bridge: str, root: Path) -> Path:
    if not bridge or "/" in bridge or bridge in (".", ".."):  # a kernel name never is
        raise ValueError(f"not an interface name: {bridge!r}")
    return root / "ipv4" / "conf" / bridge / "route_localnet"


def route_localnet(bridges: Iterable[str], root: Path = PROC) -> dict[str, bool]:
    """Bridge name -> its IPv4 `route_localnet` on; bridges that are gone are left out."""
    found: dict[str, bool] = {}
    for bridge in bridges:
        try:
            found[bridge] = _route_localnet_path(bridge, root).read_text().strip() == "1"
        except (FileNotFoundError, ValueError):
            continue
    return found


def set_route_localnet(bridge: str, on: bool, root: Path = PROC) -> None:
    """Let (or stop letting) packets with a loopback source or destination use `bridge`."""
    _route_localnet_path(bridge, root).write_text("1\n" if on else "0\n")
