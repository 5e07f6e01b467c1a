"""Traffic: a real TCP connection; the server names itself and the client it saw."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from peers.host import end_process

_SERVER = """
import socket, sys
srv = socket.create_server((sys.argv[1], int(sys.argv[2])))
print('ready', flush=True)
while True:
    conn, peer = srv.accept()
    conn.settimeout(5)
    conn.sendall(sys.argv[3].encode() + b' ' + peer[0].encode())
    conn.shutdown(socket.SHUT_WR)
    try:  # read what the client sent until it closes: closing with unread data sends RST
        while conn.recv(4096):
            pass
    except OSError:
        pass
    conn.close()
"""
_CLIENT = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])) as c:
    c.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')
    data = b''
    while chunk := c.recv(4096):
        data += chunk
    sys.stdout.write(data.decode())
"""


def in_netns(netns: str | None, *argv: str) -> list[str]:
    """argv run in a named netns, a netns path (nsenter), or the test's host (None)."""
    if netns is None:
        return list(argv)
    if netns.startswith("/"):
        return ["nsenter", f"--net={netns}", *argv]
    return ["ip", "netns", "exec", netns, *argv]


@contextmanager
def serving(netns: str | None, address: str, port: int, name: str) -> Iterator[None]:
    """A TCP server in `netns` answering `<name> <client address>`; ended by PID."""
    server = subprocess.Popen(in_netns(netns, sys.executable, "-c", _SERVER, address,
                                       str(port), name),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready", server.stderr
        yield
    finally:
        end_process(server.pid)


def connect(netns: str | None, address: str, port: int, timeout: float = 3.0) -> str | None:
    """What the server at address:port said to a client in `netns`, or None if no reply."""
    client = subprocess.run(in_netns(netns, sys.executable, "-c", _CLIENT, address, str(port),
                                     str(timeout)),
                            capture_output=True, text=True, timeout=timeout + 15)
    return client.stdout if client.returncode == 0 else None
