"""What each manifest field means, in one table: the JSON Schema's descriptions and
examples (`cnm schema`, manifests/schema.json, so an editor shows them on hover) and
the manifest reference docs/manifests.md (tools/manifest-docs) both come from here.

Keyed by model (the JSON Schema's `$defs` name: the pydantic class) and by the
field's name as the user writes it. A table apart from `reconciler.model` keeps
the model short and loads nothing at start-up: only `cnm schema` and the doc
generator read it. tests/unit/test_manifest_docs.py wants an entry for every
field the models have and for none they do not, so a new field needs its line here.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class FieldDoc(NamedTuple):
    description: str
    #: values that validate, shown by editors and in docs/manifests.md
    examples: tuple[Any, ...] = ()


_ENVELOPE = {
    "apiVersion": FieldDoc("The manifest format's version: cnm/v1."),
    "kind": FieldDoc("The kind of object: Network, Sandbox or Endpoint."),
    "metadata": FieldDoc("The object's name and labels."),
}

FIELDS: dict[str, dict[str, FieldDoc]] = {
    "Network": {
        **_ENVELOPE,
        "spec": FieldDoc("What the network asks of its driver."),
    },
    "Sandbox": {
        **_ENVELOPE,
        "spec": FieldDoc("The namespace and the files inside it."),
    },
    "Endpoint": {
        **_ENVELOPE,
        "spec": FieldDoc("Where the endpoint attaches, where it lives, how it looks."),
    },
    "Metadata": {
        "name": FieldDoc(
            "The object's name, unique per kind: a DNS label (lowercase letters, digits and "
            "'-', at most 63). It becomes part of kernel names and paths.",
            ("frontend",),
        ),
        "labels": FieldDoc(
            "Free-form key: value strings for people and tools; cnm does not act on them.",
            ({"tier": "web"},),
        ),
    },
    "NetworkSpec": {
        "driver": FieldDoc(
            "The network driver: bridge (a Linux bridge), macvlan (children of a host link), "
            "null (no interface), host (the host's own namespace).",
        ),
        "bridge": FieldDoc(
            "bridge driver: the bridge's kernel name (at most 15 characters). Default: "
            "br-<name>, or br-<hash of the name> when that is too long; never shifts.",
            ("br-frontend",),
        ),
        "mtu": FieldDoc(
            "MTU of the bridge and of the endpoints' interfaces. Default: 1500 on a bridge "
            "network (explicit, so it never floats with the ports); a macvlan child keeps "
            "its parent's.",
            (1500, 9000),
        ),
        "internal": FieldDoc(
            "true: no traffic leaves the host through this network (no NAT, no forwarding "
            "out), and no endpoint takes its default route through it.",
        ),
        "icc": FieldDoc(
            "false: endpoints of this network cannot reach each other through it "
            "(inter-container communication).",
        ),
        "masquerade": FieldDoc(
            "Source-NAT traffic that leaves the host from this network to the host's address "
            "(ignored when internal).",
        ),
        "ipam": FieldDoc(
            "The network's address pools, IPv4 and/or IPv6. A bridge network without any "
            "takes a subnet from the default address pools (--default-address-pool) and keeps "
            "it.",
        ),
        "parent": FieldDoc(
            "macvlan only, and required there: the host link whose macvlan children the "
            "endpoints are.",
            ("eth1",),
        ),
        "mode": FieldDoc(
            "macvlan only: bridge (default: children of one parent reach each other), "
            "private, vepa or passthru.",
        ),
    },
    "IpamPool": {
        "subnet": FieldDoc(
            "The pool's subnet in CIDR form, host bits zero.",
            ("10.89.0.0/24", "fd00:89::/64"),
        ),
        "gateway": FieldDoc(
            "The network's gateway in this subnet (a bridge network's bridge holds it). "
            "Default: the subnet's first usable address.",
            ("10.89.0.1",),
        ),
        "ipRange": FieldDoc(
            "Addresses allocated to endpoints without a static one come only from this part "
            "of the subnet. Default: the whole subnet.",
            ("10.89.0.128/25",),
        ),
        "auxAddresses": FieldDoc(
            "Addresses that other hosts use (name: address): never allocated.",
            ({"router": "10.89.0.2"},),
        ),
    },
    "SandboxSpec": {
        "netns": FieldDoc(
            "The network namespace's name, /run/netns/<netns>; its files are under "
            "/etc/netns/<netns>/. Default: metadata.name.",
            ("web1",),
        ),
        "hostname": FieldDoc(
            "Written to the sandbox's hostname file and, with its addresses, to its hosts "
            "file. Default: metadata.name.",
            ("web1",),
        ),
        "domainname": FieldDoc(
            "The sandbox's domain: its hosts file also names it <hostname>.<domainname>.",
            ("example.org",),
        ),
        "dns": FieldDoc(
            "The sandbox's resolv.conf. Without it none is written, and `ip netns exec` shows "
            "the host's.",
        ),
        "extraHosts": FieldDoc(
            "Extra lines of the hosts file, each NAME:ADDRESS.",
            (["db.local:10.89.0.20", "db6.local:fd00:89::20"],),
        ),
    },
    "DnsConfig": {
        "servers": FieldDoc(
            "Name servers: the `nameserver` lines of the sandbox's resolv.conf.",
            (["192.0.2.53", "2001:db8::53"],),
        ),
        "search": FieldDoc(
            "Search domains: resolv.conf's `search` line.",
            (["example.org"],),
        ),
        "options": FieldDoc(
            "Resolver options: resolv.conf's `options` line.",
            (["ndots:1", "edns0"],),
        ),
    },
    "EndpointSpec": {
        "network": FieldDoc(
            "The Network (its metadata.name) the endpoint attaches to.",
            ("frontend",),
        ),
        "sandbox": FieldDoc(
            "The Sandbox (its metadata.name) the endpoint joins (libnetwork's Join).",
            ("web1",),
        ),
        "ifname": FieldDoc(
            "The interface's name inside the sandbox. Default: eth0, eth1, ...: an endpoint "
            "keeps the ethN the kernel shows for it, a new one takes the lowest free ethN "
            "(endpoints in name order), so no interface is ever renamed by another's change.",
            ("eth0", "eth1"),
        ),
        "ipv4Address": FieldDoc(
            "A static IPv4 address in the network's IPv4 pool. Default: the lowest free "
            "address of the pool's ipRange, kept once held.",
            ("10.89.0.10",),
        ),
        "ipv6Address": FieldDoc(
            "A static IPv6 address in the network's IPv6 pool. Default: the lowest free "
            "address, kept once held.",
            ("fd00:89::10",),
        ),
        "macAddress": FieldDoc(
            "The interface's MAC address: unicast, six hex octets (quote it in YAML). "
            "Default: the kernel's random one, kept.",
            ("02:42:0a:59:00:0a",),
        ),
        "aliases": FieldDoc(
            "More names of this endpoint, which its peers on this network resolve.",
            (["www", "www.example.org"],),
        ),
        "gateway": FieldDoc(
            "true: this endpoint carries the sandbox's default route through the network's "
            "gateway (at most one per sandbox and address family); false: never. Default: "
            "chosen by gwPriority. Endpoints on internal networks never carry it.",
        ),
        "gwPriority": FieldDoc(
            "Of a sandbox's endpoints on non-internal networks that leave gateway unset, the "
            "one with the highest gwPriority (then the first by name) carries the default "
            "route of each address family (Docker's --gw-priority).",
            (0, 10),
        ),
        "ports": FieldDoc(
            "Published ports: DNAT from the host's hostPort to this endpoint's containerPort.",
        ),
    },
    "PortMapping": {
        "containerPort": FieldDoc(
            "The port inside the sandbox.",
            (80,),
        ),
        "hostPort": FieldDoc(
            "The port on the host (unique per protocol and host address).",
            (8080,),
        ),
        "protocol": FieldDoc("tcp or udp."),
        "hostIP": FieldDoc(
            "The host address the port is published on (not a loopback one). Default: every "
            "address of the host, in each family the endpoint has an address in.",
            ("0.0.0.0", "192.0.2.10"),
        ),
    },
}
