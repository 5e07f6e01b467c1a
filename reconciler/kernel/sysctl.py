"""The host's IP forwarding switches, read and (only ever) turned on.

libnetwork enables forwarding when a bridge network needs it and never turns
it off again: other software on the host may rely on it, and cnm cannot know.
"""

from __future__ import annotations

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
