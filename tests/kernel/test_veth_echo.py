"""A veth pair's two indexes from the kernel's echo of its creation, and the read-back
when no echo comes (Linux before 6.2), give the same kernel.

The bridge driver asks for NLM_F_ECHO when it creates an endpoint's pair and takes the
host end's index and its peer's (IFLA_LINK) from the echo; without one it reads both
ends back by name. Checked with `ip -j` (faultlib's canonical dump), an empty re-plan,
and spies that show which of the two paths ran.
"""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import scenario
from faultlib import applied, canonical, inproc, ok

from reconciler.drivers import bridge
from reconciler.kernel import netns, rtnl
from reconciler.kernel.rtnl import Rtnl

from helpers import links, netns_names, wait_for


def _echoing_kernel() -> bool:
    """Linux honours NLM_F_ECHO for a created link since 6.2 (rtnl_newlink_create)."""
    major, minor = (int(part) for part in os.uname().release.split(".")[:2])
    return (major, minor) >= (6, 2)


def _pair(host: Rtnl, name: str, peer_netns: str) -> rtnl.Link | None:
    bridge_link = host.link("br-echo")
    assert bridge_link is not None
    return host.add_veth(name, mtu=1400, group=7, master=bridge_link.index, up=False,
                         peer_name="eth0", peer_netns=peer_netns, peer_mac=None)


def test_the_echo_of_a_created_pair_names_both_indexes_as_ip_shows_them() -> None:
    netns.create_netns("sb-echo")
    netns.create_netns("sb-quiet")
    with Rtnl() as host:
        host.add_bridge("br-echo", group=7)
        echoed = _pair(host, "ve-echo", "sb-echo")
        with mock.patch.object(rtnl, "NLM_F_ECHO", 0):  # the request of a kernel < 6.2
            quiet = _pair(host, "ve-quiet", "sb-quiet")
    assert quiet is None, "no echo asked for, none taken"
    host_view, peer_view = links()["ve-echo"], links("sb-echo")["eth0"]
    if not _echoing_kernel():
        assert echoed is None
        return
    assert echoed is not None
    assert (echoed.name, echoed.kind, echoed.group, echoed.mtu) == ("ve-echo", "veth", 7, 1400)
    assert echoed.index == host_view["ifindex"]
    assert echoed.peer_index == peer_view["ifindex"]
    assert links()["ve-quiet"]["master"] == "br-echo"  # both made alike
    assert links("sb-quiet")["eth0"]["mtu"] == 1400


def _apply_counting(directory: str) -> list[bool]:
    """`cnm apply` in this process; for each endpoint created, whether the echo served."""
    served: list[bool] = []
    created_indexes = bridge._created_indexes

    def spy(resource, echoed, host, inside):  # type: ignore[no-untyped-def]
        served.append(echoed is not None and bool(echoed.peer_index))
        return created_indexes(resource, echoed, host, inside)

    with mock.patch.object(bridge, "_created_indexes", spy):
        ok("apply", "-f", directory, "--yes")
    return served


def _delete_all(directory: str) -> None:
    ok("delete", "-f", directory, "--yes")
    assert wait_for(lambda: not netns_names() and not any(
        link.get("linkinfo", {}).get("info_kind") == "veth" for link in links().values()))


def test_echo_and_read_back_apply_the_same_kernel(tmp_path: Path) -> None:
    a, _ = scenario.dirs(tmp_path)
    served_echo = _apply_counting(a)
    with_echo = canonical()
    assert inproc("plan", "-f", a, "--detailed-exitcode")[0] == 0
    _delete_all(a)

    with mock.patch.object(rtnl, "NLM_F_ECHO", 0):  # as Linux 6.1 answers: no echo
        served_quiet = _apply_counting(a)
    without_echo = canonical()
    assert inproc("plan", "-f", a, "--detailed-exitcode")[0] == 0

    assert len(served_echo) == len(served_quiet) == 4  # the scenario's endpoints
    assert served_quiet == [False] * 4, "the read-back path ran"
    assert served_echo == [_echoing_kernel()] * 4, "the echo path ran"
    assert with_echo == without_echo
    assert with_echo == applied(a)  # a third apply: nothing changes
