"""The resolver process: `python -m reconciler.resolver.server DIR`.

Serves `DIR/config.json` (written by `records.config_text`) on UDP port 53 of
every `listen` address, in one thread around one selector:

* a query from a known sandbox address is answered from the names of that
  sandbox's networks (`scopes`); from an unknown address, from the networks
  whose gateway it was sent to;
* a name none of them has is relayed, bytes unchanged, to the sandbox's
  `upstreams`, else to the nameservers of the host's /etc/resolv.conf, one
  after the other (`UPSTREAM_TIMEOUT` each), then SERVFAIL: a lookup never hangs.
  With no upstream at all the answer is SERVFAIL at once;
* `STATUS_NAME` TXT answers the digest of the configuration being served
  (observation's proof that the process runs, listens and serves the file).

SIGHUP reloads the configuration (sockets bound and closed to match `listen`);
SIGTERM ends the process. Answers are cached by (scope, question) until the
next reload: the same peer name asked again costs a dictionary lookup.

Started by `kernel/resolver.py`, which waits for this process to exit: it
binds its sockets, forks, and the parent writes the child's pid to `DIR/pid`
and exits 0 (1 with the reason on stderr when the sockets cannot be bound).
With `--standby` (kernel/resolver_standby.py) it first waits for the line
"start" on stdin, its imports done meanwhile, and ends doing nothing at EOF.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import selectors
import signal
import socket
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

PORT = int(os.environ.get("CNM_RESOLVER_PORT", "53"))
UPSTREAM_TIMEOUT = 1.0
STATUS_NAME = "status.cnm-resolver.invalid."
HOST_RESOLV_CONF = "/etc/resolv.conf"
_IP_FREEBIND = 15  # bind gateway addresses still tentative (IPv6 DAD) or not yet there
_IPV6_FREEBIND = 78
_MAX_PACKET = 4096


@dataclass
class Config:
    """The configuration file, in the shapes lookups need."""

    text: str = ""
    digest: str = ""
    listen: list[str] = field(default_factory=list)
    names: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # net -> name -> ips
    client_sandbox: dict[str, str] = field(default_factory=dict)
    scopes: dict[str, list[str]] = field(default_factory=dict)  # sandbox -> networks
    upstreams: dict[str, list[str]] = field(default_factory=dict)  # sandbox -> servers
    networks_at: dict[str, list[str]] = field(default_factory=dict)  # listen address -> nets
    host_upstreams: list[str] = field(default_factory=list)


def load(directory: str) -> Config:
    import hashlib

    with open(os.path.join(directory, "config.json"), encoding="utf-8") as file:
        text = file.read()
    document = json.loads(text)
    config = Config(text, hashlib.sha256(text.encode("utf-8")).hexdigest()[:32])
    for entry in document["listen"]:  # "address network"
        address, _, network = entry.partition(" ")
        config.networks_at.setdefault(address, []).append(network)
    config.listen = sorted(config.networks_at)
    for network, entries in document["names"].items():
        table: dict[str, list[str]] = defaultdict(list)
        for entry in entries:
            name, _, address = entry.partition(" ")
            table[name].append(address)
        config.names[network] = dict(table)
    for entry in document["clients"]:
        address, _, sandbox = entry.partition(" ")
        config.client_sandbox[address] = sandbox
    for entry in document["scopes"]:
        sandbox, _, networks = entry.partition(" ")
        config.scopes[sandbox] = networks.split(",")
    for entry in document["upstreams"]:
        sandbox, _, servers = entry.partition(" ")
        config.upstreams[sandbox] = servers.split(",")
    config.host_upstreams = [s for s in host_nameservers() if s not in config.listen]
    return config


def host_nameservers(path: str = HOST_RESOLV_CONF) -> list[str]:
    """The host's resolvers, as glibc reads them (at most three)."""
    servers: list[str] = []
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            for line in file:
                words = line.split()
                if len(words) >= 2 and words[0] == "nameserver":
                    try:
                        servers.append(str(ipaddress.ip_address(words[1].split("%")[0])))
                    except ValueError:
                        continue
    except OSError:
        return []
    return servers[:3]


@dataclass
class Pending:
    """A query relayed upstream, waiting for its answer."""

    query: bytes
    client: tuple[object, ...]
    listener: socket.socket
    upstreams: list[str]
    deadline: float
    sock: socket.socket


class Resolver:
    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.selector = selectors.DefaultSelector()
        self.listeners: dict[str, socket.socket] = {}
        self.pending: dict[socket.socket, Pending] = {}
        self.cache: dict[tuple[str, bytes], bytes] = {}
        self.config = Config()
        self.wakeup_read, self.wakeup_write = socket.socketpair()
        self.wakeup_read.setblocking(False)
        self.wakeup_write.setblocking(False)
        self.selector.register(self.wakeup_read, selectors.EVENT_READ, "signal")

    # --- configuration ---

    def reload(self) -> None:
        config = load(self.directory)
        wanted = set(config.listen)
        for address in set(self.listeners) - wanted:
            sock = self.listeners.pop(address)
            self.selector.unregister(sock)
            sock.close()
        for address in sorted(wanted - set(self.listeners)):
            sock = _bind(address)
            self.listeners[address] = sock
            self.selector.register(sock, selectors.EVENT_READ, "listener")
        self.config = config
        self.cache = {}

    # --- serving ---

    def catch_signals(self) -> None:
        """Signals only write to the wake-up socket; the loop handles them (a SIGHUP
        that comes before the first `serve_forever` is handled there)."""
        signal.set_wakeup_fd(self.wakeup_write.fileno(), warn_on_full_buffer=False)
        for number in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            signal.signal(number, lambda *_: None)

    def serve_forever(self) -> None:
        while True:
            timeout = None
            if self.pending:
                first = min(p.deadline for p in self.pending.values())
                timeout = max(0.0, first - time.monotonic())
            for key, _ in self.selector.select(timeout):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if key.data == "listener":
                    self._drain(sock)
                elif key.data == "signal":
                    if self._signals():
                        return
                else:
                    self._upstream_answer(sock)
            if self.pending:
                self._expire(time.monotonic())

    def _signals(self) -> bool:
        """Handle the signals that arrived; True to stop."""
        stop = False
        try:
            data = self.wakeup_read.recv(64)
        except BlockingIOError:
            return False
        for number in data:
            if number == signal.SIGHUP:
                try:
                    self.reload()
                except (OSError, ValueError, KeyError) as exc:  # keep serving the old one
                    print(f"cnm resolver: reload failed: {exc}", file=sys.stderr, flush=True)
            elif number in (signal.SIGTERM, signal.SIGINT):
                stop = True
        return stop

    def _drain(self, listener: socket.socket) -> None:
        for _ in range(64):  # a burst, then let the other sockets have their turn
            try:
                data, client = listener.recvfrom(_MAX_PACKET)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if len(data) < 12:
                continue
            try:
                self._query(listener, data, client)
            except Exception as exc:  # a malformed query must not end the resolver
                print(f"cnm resolver: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)

    def _query(self, listener: socket.socket, data: bytes, client: tuple[object, ...]) -> None:
        source = str(client[0])
        sandbox = self.config.client_sandbox.get(source)
        scope = sandbox if sandbox is not None else "@" + listener.getsockname()[0]
        cached = self.cache.get((scope, data[2:]))
        if cached:
            listener.sendto(data[:2] + cached, client)
            return
        upstreams = self._upstreams(sandbox)
        if cached is not None and upstreams:  # b"": a question known to go upstream
            self._relay(data, client, listener, upstreams)
            return
        query = dns.message.from_wire(data)
        answer = self._local_answer(query, scope, sandbox, listener)
        if answer is None:
            if upstreams:
                if len(self.cache) < 100_000:
                    self.cache[(scope, data[2:])] = b""
                self._relay(data, client, listener, upstreams)
                return
            answer = dns.message.make_response(query)
            answer.set_rcode(dns.rcode.SERVFAIL)
            listener.sendto(answer.to_wire(), client)
            return
        wire = answer.to_wire()
        if len(self.cache) < 100_000:
            self.cache[(scope, data[2:])] = wire[2:]
        listener.sendto(wire, client)

    def _local_answer(self, query: dns.message.Message, scope: str, sandbox: str | None,
                      listener: socket.socket) -> dns.message.Message | None:
        """The answer from cnm's records, or None when the name is not one of them."""
        if len(query.question) != 1:
            return None
        question = query.question[0]
        name = question.name.to_text().lower()
        if name == STATUS_NAME and question.rdtype == dns.rdatatype.TXT:
            response = dns.message.make_response(query)
            response.answer.append(dns.rrset.from_text(
                question.name, 0, dns.rdataclass.IN, dns.rdatatype.TXT,
                f'"{self.config.digest}"'))
            return response
        if question.rdclass != dns.rdataclass.IN:
            return None
        networks = (self.config.scopes.get(sandbox, []) if sandbox is not None
                    else self.config.networks_at.get(scope[1:], []))
        label = name.rstrip(".")
        addresses: set[str] = set()
        found = False
        for network in networks:
            table = self.config.names.get(network, {})
            if label in table:
                found = True
                addresses.update(table[label])
        if not found:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        family = {dns.rdatatype.A: 4, dns.rdatatype.AAAA: 6}.get(question.rdtype)
        if family is not None:
            wanted = sorted(a for a in addresses if (":" in a) == (family == 6))
            if wanted:
                response.answer.append(dns.rrset.from_text_list(
                    question.name, 0, dns.rdataclass.IN, question.rdtype, wanted))
        return response

    def _upstreams(self, sandbox: str | None) -> list[str]:
        if sandbox is not None and sandbox in self.config.upstreams:
            return list(self.config.upstreams[sandbox])
        return list(self.config.host_upstreams)

    # --- relaying ---

    def _relay(self, data: bytes, client: tuple[object, ...], listener: socket.socket,
               upstreams: list[str]) -> None:
        while upstreams:
            server = upstreams.pop(0)
            family = socket.AF_INET6 if ":" in server else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK)
            try:
                sock.connect((server, 53))
                sock.send(data)
            except OSError:
                sock.close()
                continue
            self.pending[sock] = Pending(data, client, listener, upstreams,
                                         time.monotonic() + UPSTREAM_TIMEOUT, sock)
            self.selector.register(sock, selectors.EVENT_READ, "upstream")
            return
        self._fail(data, client, listener)

    def _upstream_answer(self, sock: socket.socket) -> None:
        pending = self.pending.pop(sock)
        self.selector.unregister(sock)
        try:
            answer = sock.recv(_MAX_PACKET)
        except OSError:  # refused: the next upstream
            sock.close()
            self._relay(pending.query, pending.client, pending.listener, pending.upstreams)
            return
        sock.close()
        if answer[:2] == pending.query[:2]:
            pending.listener.sendto(answer, pending.client)

    def _expire(self, now: float) -> None:
        for sock, pending in list(self.pending.items()):
            if pending.deadline <= now:
                del self.pending[sock]
                self.selector.unregister(sock)
                sock.close()
                self._relay(pending.query, pending.client, pending.listener, pending.upstreams)

    def _fail(self, data: bytes, client: tuple[object, ...], listener: socket.socket) -> None:
        try:
            answer = dns.message.make_response(dns.message.from_wire(data))
        except Exception:
            return
        answer.set_rcode(dns.rcode.SERVFAIL)
        listener.sendto(answer.to_wire(), client)


def _bind(address: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
    for level, option in ((socket.IPPROTO_IP, _IP_FREEBIND), (socket.IPPROTO_IPV6, _IPV6_FREEBIND)):
        try:
            sock.setsockopt(level, option, 1)
        except OSError as exc:
            if exc.errno not in (errno.ENOPROTOOPT, errno.EINVAL):
                raise
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind((address, PORT))
    return sock


def main(argv: list[str]) -> int:
    standby = argv[:1] == ["--standby"]
    if standby:
        argv = argv[1:]
    if len(argv) != 1:
        print("usage: python -m reconciler.resolver.server [--standby] DIR", file=sys.stderr)
        return 2
    directory = argv[0]
    if standby and sys.stdin.buffer.readline() != b"start\n":
        return 0  # cnm closed the pipe: the apply never came to the resolver's step
    resolver = Resolver(directory)
    resolver.catch_signals()
    try:
        resolver.reload()
    except (OSError, ValueError, KeyError) as exc:
        print(f"cnm resolver: cannot serve {directory}: {exc}", file=sys.stderr)
        return 1
    read_fd, write_fd = os.pipe()
    child = os.fork()
    if child:
        os.close(write_fd)
        os.read(read_fd, 1)  # the child is in its own session, its pid file written
        return 0
    os.close(read_fd)
    os.setsid()
    with open(os.path.join(directory, "pid.tmp"), "w", encoding="ascii") as file:
        file.write(f"{os.getpid()}\n")
    os.replace(os.path.join(directory, "pid.tmp"), os.path.join(directory, "pid"))
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    log = os.open(os.path.join(directory, "log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.write(write_fd, b"1")
    os.close(write_fd)
    resolver.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
