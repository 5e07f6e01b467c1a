"""Dumps the kernel marks interrupted (NLM_F_DUMP_INTR) are read again, never returned.

A dump of thousands of links spans many datagrams; the kernel fills each in
turn and, when the table changed since the previous one, flags the next part
NLM_F_DUMP_INTR: the dump may then miss or repeat links. These tests make the
kernel do that, for real, and check that `exchange()` saw the flag and that
every dump it returned is whole.
"""

from __future__ import annotations

import subprocess
import time

from reconciler.kernel.netlink import DumpInterrupted, NetlinkSocket
from reconciler.kernel.rtnl import Rtnl

STATIC_PAIRS = 1500  # 3000 links: a dump of ~40 datagrams


def _static_links(pairs: int = STATIC_PAIRS) -> set[str]:
    batch = "".join(f"link add sa{i} type veth peer name sb{i}\n" for i in range(pairs))
    subprocess.run(["ip", "-batch", "-"], input=batch, text=True, check=True)
    return {f"sa{i}" for i in range(pairs)} | {f"sb{i}" for i in range(pairs)} | {"lo"}


class _ChangeAfterFirstPart:
    """The socket of a `NetlinkSocket`, passed through, except that once armed it runs
    `change` (another process: `ip`) right after the first datagram of the next reply
    arrives: the kernel is then midway through the dump, and the change lands between
    two of its parts."""

    def __init__(self, netlink: NetlinkSocket, change: list[str]) -> None:
        self._real = netlink.sock
        self._change = change
        self.armed = False
        netlink.sock = self  # type: ignore[assignment]

    def send(self, data: bytes) -> int:
        return self._real.send(data)

    def recv_into(self, buffer: bytearray) -> int:
        size = self._real.recv_into(buffer)
        if self.armed:
            self.armed = False
            subprocess.run(self._change, check=True)
        return size

    def close(self) -> None:
        self._real.close()


def _check_whole(names: list[str], static: set[str]) -> None:
    assert len(names) == len(set(names)), "a link appears twice"
    assert static <= set(names), f"links missing: {sorted(static - set(names))[:5]}"


def test_a_link_dump_changed_midway_is_read_again() -> None:
    static = _static_links()
    with Rtnl() as reader:
        hook = _ChangeAfterFirstPart(reader.netlink, ["ip", "link", "add", "late0", "type",
                                                      "bridge"])
        hook.armed = True
        names = [link.name for link in reader.links()]
        assert reader.netlink.interrupted_dumps == 1  # the kernel flagged the first attempt
        _check_whole(names, static)
        assert "late0" in names  # the second attempt read the table after the change


def test_an_address_dump_changed_midway_is_read_again() -> None:
    static = _static_links(600)
    batch = "".join(f"addr add 10.44.{i // 250}.{i % 250 + 1}/32 dev sa{i}\n" for i in range(600))
    subprocess.run(["ip", "-batch", "-"], input=batch, text=True, check=True)
    assert static
    with Rtnl() as reader:
        hook = _ChangeAfterFirstPart(reader.netlink, ["ip", "addr", "add", "10.45.0.1/32",
                                                      "dev", "sb0"])
        hook.armed = True
        addresses = [a.address for a in reader.addresses()]
        assert reader.netlink.interrupted_dumps == 1
        assert len(addresses) == len(set(addresses))
        assert {f"10.44.{i // 250}.{i % 250 + 1}" for i in range(600)} | {"10.45.0.1"} \
            <= set(addresses)


def test_dumps_during_link_churn_are_whole() -> None:
    """Another process keeps creating and deleting a link while a big table is dumped
    over and over: the kernel marks some dumps interrupted; every dump returned is whole."""
    static = _static_links()
    churn = subprocess.Popen(
        ["sh", "-c", "while :; do ip link add churn0 type veth peer name churn1; "
                     "ip link del churn0; sleep 0.02; done"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    returned = gave_up = 0
    try:
        with Rtnl() as reader:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and (
                    reader.netlink.interrupted_dumps == 0 or returned < 5):
                try:
                    names = [link.name for link in reader.links()]
                except DumpInterrupted:  # ten attempts in a row hit a change: allowed, rare
                    gave_up += 1
                    continue
                returned += 1
                _check_whole(names, static)
            interrupted = reader.netlink.interrupted_dumps
    finally:
        churn.kill()
        churn.wait()
    assert interrupted >= 1, "the kernel never marked a dump interrupted"
    assert returned >= 5, f"only {returned} dumps came back whole ({gave_up} gave up)"
