"""firewalld through its documented D-Bus interface (`org.fedoraproject.FirewallD1`), with
`dbus-send` (installed with firewalld, which needs D-Bus): which zone each interface is
bound to, and binding or unbinding an interface in the runtime configuration. Only
reached when the namespace has firewalld's table (`inet firewalld`)."""

from __future__ import annotations

import re
import shutil
import subprocess

from reconciler.errors import KernelError

_DEST = "org.fedoraproject.FirewallD1"
_PATH = "/org/fedoraproject/FirewallD1"
_ZONE = "org.fedoraproject.FirewallD1.zone"
_STRING = re.compile(r'^(\s*)string "(.*)"$')


def _call(method: str, *args: str) -> str | None:
    """The reply of one method call, or None when firewalld does not answer."""
    command = shutil.which("dbus-send")
    if command is None:
        return None
    try:
        done = subprocess.run(
            [command, "--system", "--print-reply", f"--dest={_DEST}", _PATH, f"{_ZONE}.{method}",
             *(f"string:{arg}" for arg in args)],
            capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def active_zones() -> dict[str, str] | None:
    """Interface -> zone of every bound interface; None when firewalld does not answer."""
    reply = _call("getActiveZones")
    return None if reply is None else parse_active_zones(reply)


def parse_active_zones(reply: str) -> dict[str, str]:
    """`dbus-send --print-reply` of getActiveZones (a{sa{sas}}): zone names are its
    least indented strings, the keys (`interfaces`, `sources`) the next, values deeper."""
    tokens = [(len(m.group(1)), m.group(2)) for line in reply.splitlines()
              if (m := _STRING.match(line)) is not None]
    if not tokens:
        return {}
    zone_indent = min(indent for indent, _ in tokens)
    deeper = [indent for indent, _ in tokens if indent > zone_indent]
    key_indent = min(deeper) if deeper else zone_indent
    zones: dict[str, str] = {}
    zone = key = ""
    for indent, value in tokens:
        if indent == zone_indent:
            zone, key = value, ""
        elif indent == key_indent:
            key = value
        elif key == "interfaces":
            zones[value] = zone
    return zones


def bind(zone: str, interface: str) -> None:
    if _call("addInterface", zone, interface) is None:
        raise KernelError(f"firewalld: binding {interface} to zone {zone} failed")


def unbind(zone: str, interface: str) -> None:
    if _call("removeInterface", zone, interface) is None:
        raise KernelError(f"firewalld: removing {interface} from zone {zone} failed")
