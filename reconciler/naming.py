"""Kernel names derived from manifest names.

Derived names must never shift: they depend only on the object's own identity
(its set and name), never on other objects, so adding or removing one object
cannot rename another.
"""

from __future__ import annotations

import re

IFNAMSIZ = 15  # longest interface name the kernel accepts (16 bytes with NUL)
IFNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
NETNS_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$")

#: Link group set on every link cnm creates, in the same netlink message that
#: creates it: the part of the ownership marker that survives a crash between
#: creating a link and labelling it. ("cnm" in ASCII.)
CNM_LINK_GROUP = 0x636E6D


def _digest(*parts: str) -> str:
    # Imported here: loading OpenSSL is ~2 % of `cnm validate`, which hashes no short name.
    import hashlib

    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def default_bridge_name(network: str) -> str:
    """`br-<name>` when that fits in 15 bytes, else `br-` and 12 hex of a hash."""
    candidate = f"br-{network}"
    if len(candidate) <= IFNAMSIZ:
        return candidate
    return "br-" + _digest("bridge", network)[:12]


#: What `host_veth_name` gives, and nothing else cnm names.
HOST_VETH_RE = re.compile(r"^cnm[0-9a-f]{9}$")


def host_veth_name(set_name: str, endpoint: str) -> str:
    """Host end of an endpoint's veth pair: `cnm` and 9 hex of (set, endpoint)."""
    return "cnm" + _digest("veth", set_name, endpoint)[:9]


def is_valid_ifname(name: str) -> bool:
    """True for a name the kernel accepts and that is safe to show and use."""
    return bool(IFNAME_RE.fullmatch(name)) and name not in (".", "..")


def is_valid_netns_name(name: str) -> bool:
    """True for a netns name that is safe as a path component under /run/netns."""
    return bool(NETNS_NAME_RE.fullmatch(name)) and name not in (".", "..")
