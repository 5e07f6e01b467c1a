"""`cnm export`: the owned objects of an apply set, as manifests, rebuilt from the kernel.

Round trip: applying the export on an empty host gives a kernel whose plan
against the export is empty. What the kernel does not record cannot come
back: labels, `ipRange`, `auxAddresses`, unjoined endpoints, and whether an
address was static or allocated. The export therefore writes the smallest
manifests that reproduce the kernel: an address is pinned (`ipv4Address`,
`ipv6Address`) only where allocation on an empty host would not give it back
by itself, and a field equal to its default is left out. MAC addresses are
kept only with `--mac` (the kernel picks random ones otherwise, and the plan
ignores an unset MAC).

Pure: works on an observed `State` (from the kernel or a snapshot file).
Whatever drift manifests cannot express (a bridge set down by hand, a file
edited in /etc/netns) is returned as a warning, not silently dropped.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler import firewall
from reconciler.desired import build_desired
from reconciler.drivers import driver_of, rebuild_networks
from reconciler.drivers.common import text_values
from reconciler.errors import ManifestError
from reconciler.loader import dump_yaml, load_text
from reconciler.model import Network
from reconciler.plan import make_plan
from reconciler.render import format_attr
from reconciler.resolver.records import KIND as RESOLVER
from reconciler.resolver.records import resolver_aliases, upstreams_of
from reconciler.sandbox_files import HOSTS_HEADER
from reconciler.shared_networks import networks_of
from reconciler.state import Resource, ResourceKey, State

API_VERSION = "cnm/v1"
_RESOLV_HEADER = "# Managed by cnm.\n"
_ENDPOINT_FIELDS = ("network", "sandbox", "ifname", "ipv4Address", "ipv6Address", "macAddress",
                    "aliases", "gateway", "ports")


@dataclass
class Export:
    """The exported documents (networks, sandboxes, endpoints, each by name) and warnings."""

    documents: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: other sets' networks the endpoints are on, for loading the export back
    elsewhere: Mapping[str, Network] = field(default_factory=dict)

    def yaml(self, set_name: str) -> str:
        head = (f"# Exported by `cnm export` from apply set '{set_name}'.\n"
                f"# Apply with: cnm apply -f FILE --set {set_name}\n")
        if not self.documents:
            return head + f"# Apply set '{set_name}' owns no objects.\n"
        return head + "---\n".join(dump_yaml(d) for d in self.documents)


def _document(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}}
    if spec or kind == "Endpoint":
        doc["spec"] = spec
    return doc


def _strings(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, tuple) else []


def _ips(endpoint: Resource) -> list[str]:
    """The endpoint's addresses without prefix, IPv4 first (the order hosts files use)."""
    return [str(ipaddress.ip_interface(a).ip) for a in text_values(endpoint, "ipv4", "ipv6")]


def _network_spec(resource: Resource) -> dict[str, Any]:
    """The network's IPAM pools (from its subnets and gateway addresses) inside the spec
    its driver writes."""
    gateways = {str(ipaddress.ip_interface(a).network): str(ipaddress.ip_interface(a).ip)
                for a in _strings(resource.get("addresses"))}
    pools = []
    for subnet in _strings(resource.get("subnets")):
        pool: dict[str, Any] = {"subnet": subnet}
        network = ipaddress.ip_network(subnet)
        gateway = gateways.get(subnet)
        if gateway is not None and gateway != str(network.network_address + 1):
            pool["gateway"] = gateway
        pools.append(pool)
    driver = driver_of(resource)
    return driver.network_spec(resource, pools) if driver is not None else {}


def _resolv_spec(text: object, upstreams: list[str] | None) -> dict[str, Any] | None:
    """`dns` from resolv.conf; `upstreams`: the sandbox's servers as cnm's resolver has
    them, when it serves the sandbox (its resolv.conf then names the resolver)."""
    if not isinstance(text, str) or not text.startswith(_RESOLV_HEADER):
        return None
    dns: dict[str, Any] = {"servers": [], "search": [], "options": []}
    for line in text[len(_RESOLV_HEADER):].splitlines():
        word, _, rest = line.partition(" ")
        if word == "nameserver" and upstreams is None:
            dns["servers"].append(rest.strip())
        elif word in ("search", "options"):
            dns[word] = rest.split()
    if upstreams:
        dns["servers"] = upstreams
    return {k: v for k, v in dns.items() if v} or None


def _upstreams(resolver: Resource | None, sandbox: str) -> list[str] | None:
    """The sandbox's `dns.servers` as the resolver has them; None when it does not serve it."""
    return None if resolver is None else upstreams_of(resolver, sandbox)


@dataclass
class _HostsParts:
    domainname: str | None = None
    extra_hosts: list[str] = field(default_factory=list)
    aliases: dict[str, list[str]] = field(default_factory=dict)  # endpoint -> aliases seen


def _split_hosts(sandbox: Resource, hostname: str, own: list[Resource]) -> _HostsParts:
    """Take a sandbox's hosts file apart: own lines, then extraHosts (see sandbox_files)."""
    parts = _HostsParts()
    text = sandbox.get("files.hosts")
    if not isinstance(text, str) or not text.startswith(HOSTS_HEADER):
        return parts
    lines = [line.split("\t", 1) for line in text[len(HOSTS_HEADER):].splitlines()]
    own_count = sum(len(_ips(e)) for e in own)
    if any(len(line) != 2 for line in lines) or own_count > len(lines):
        return parts
    for _, names in lines[:own_count]:
        first = names.split()[0]
        if first.startswith(hostname + ".") and len(names.split()) == 2:
            parts.domainname = first[len(hostname) + 1:]
    for address, names in lines[own_count:]:
        parts.extra_hosts += [f"{name}:{address}" for name in names.split()]
    return parts


def _endpoint_spec(resource: Resource, network: Resource | None, aliases: list[str],
                   with_mac: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"network": resource.get("network"), "sandbox": resource.get("sandbox")}
    if resource.get("ifname") not in (None, "eth0"):
        spec["ifname"] = resource.get("ifname")
    if with_mac and isinstance(resource.get("mac"), str):
        spec["macAddress"] = resource.get("mac")
    if aliases:
        spec["aliases"] = aliases
    families = {ipaddress.ip_network(s).version for s in _strings(
        network.get("subnets") if network is not None else None)}
    has = {4: bool(resource.get("ipv4")) and 4 in families,
           6: bool(resource.get("ipv6")) and 6 in families}
    routed = {4: bool(resource.get("gateway4")), 6: bool(resource.get("gateway6"))}
    internal = network is not None and network.get("internal") is True  # never routed
    if any(has.values()) and not internal and not any(routed[v] for v in (4, 6) if has[v]):
        spec["gateway"] = False
    ports = firewall.ports_spec(resource)
    if ports:
        spec["ports"] = ports
    return spec


def export_state(observed: State, *, with_mac: bool = False) -> Export:
    """Manifests that reproduce `observed` on an empty host, and what they cannot express."""
    result = Export()
    networks = {r.key.name: r for r in observed.of_kind("Network")}
    networks.update(rebuild_networks(observed))
    sandboxes = {r.key.name: r for r in observed.of_kind("Sandbox")}
    joinable = {**observed.borrowable, **networks}  # other sets' too (shared_networks.py)
    endpoints: list[Resource] = []
    for endpoint in observed.of_kind("Endpoint"):
        if endpoint.get("network") in joinable and endpoint.get("sandbox") in sandboxes:
            endpoints.append(endpoint)
        else:
            result.warnings.append(f"{endpoint.key}: not exported: its veth pair is not attached "
                                   "to an owned network and sandbox (half-made or drifted)")
    by_network: dict[str, list[Resource]] = defaultdict(list)
    by_sandbox: dict[str, list[Resource]] = defaultdict(list)
    for endpoint in endpoints:
        by_network[str(endpoint.get("network"))].append(endpoint)
        by_sandbox[str(endpoint.get("sandbox"))].append(endpoint)

    aliases: dict[str, list[str]] = {}
    resolver = observed.get(ResourceKey(RESOLVER, observed.set_name))
    sandbox_docs = []
    for name, resource in sandboxes.items():
        spec: dict[str, Any] = {}
        if resource.get("netns") != name:
            spec["netns"] = resource.get("netns")
        hostname_text = resource.get("files.hostname")
        hostname = hostname_text.strip() if isinstance(hostname_text, str) else name
        if hostname != name:
            spec["hostname"] = hostname
        own = by_sandbox.get(name, [])
        parts = _split_hosts(resource, hostname, own)
        if parts.domainname:
            spec["domainname"] = parts.domainname
        known = {name, hostname} | ({f"{hostname}.{parts.domainname}"} if parts.domainname
                                    else set())
        for endpoint in own:
            seen = resolver_aliases(resolver, endpoint, known)
            if seen:
                parts.aliases[endpoint.key.name] = seen
        dns = _resolv_spec(resource.get("files.resolv.conf"), _upstreams(resolver, name))
        if dns is not None:
            spec["dns"] = dns
        if parts.extra_hosts:
            spec["extraHosts"] = parts.extra_hosts
        for endpoint_name, seen in parts.aliases.items():
            aliases.setdefault(endpoint_name, seen)
        sandbox_docs.append(_document("Sandbox", name, spec))

    network_docs = [_document("Network", n, _network_spec(r)) for n, r in sorted(networks.items())]
    endpoint_docs = [
        _document("Endpoint", e.key.name, _endpoint_spec(
            e, joinable.get(str(e.get("network"))), aliases.get(e.key.name, []), with_mac))
        for e in endpoints
    ]
    result.documents = [*network_docs, *sandbox_docs, *endpoint_docs]
    result.elsewhere = networks_of(observed.borrowable)
    _pin_addresses(result, endpoints, observed.set_name)
    for doc in endpoint_docs:
        doc["spec"] = {k: doc["spec"][k] for k in _ENDPOINT_FIELDS if k in doc["spec"]}
    result.warnings += _unexpressed(result, observed)
    return result


def _load(result: Export, set_name: str) -> Any:
    return load_text(result.yaml(set_name), name="<export>", elsewhere=result.elsewhere)


def _pin_addresses(result: Export, endpoints: list[Resource], set_name: str) -> None:
    """Pin the addresses allocation on an empty host would not give back by itself."""
    specs = {d["metadata"]["name"]: d["spec"] for d in result.documents if d["kind"] == "Endpoint"}
    wanted = {e.key.name: e for e in endpoints}
    for _ in range(len(endpoints) + 1):
        try:
            desired = build_desired(_load(result, set_name), set_name, State(set_name))
        except ManifestError:
            break  # reported by _unexpressed
        pinned = False
        for name, endpoint in wanted.items():
            got = desired.get(endpoint.key)
            for attr, field_name in (("ipv4", "ipv4Address"), ("ipv6", "ipv6Address")):
                have = endpoint.get(attr)
                if (isinstance(have, tuple) and have and field_name not in specs[name]
                        and (got is None or got.get(attr) != have)):
                    specs[name][field_name] = str(ipaddress.ip_interface(str(have[0])).ip)
                    pinned = True
        if not pinned:
            return


def _unexpressed(result: Export, observed: State) -> list[str]:
    """What applying the export on an empty host would not reproduce (drift, hand edits)."""
    try:
        manifests = _load(result, observed.set_name)
        desired = build_desired(manifests, observed.set_name, State(observed.set_name))
        plan = make_plan(desired, observed)
    except ManifestError as exc:
        return [f"the exported manifests do not validate: {exc.one_line()}"]
    warnings = []
    for action in plan.actions:
        for change in action.changes:
            warnings.append(
                f"{action.key}: {change.path} is {format_attr(change.path, change.old)} in the "
                f"kernel, which no manifest can say; applying the export makes it "
                f"{format_attr(change.path, change.new)}"
            )
        if not action.changes:
            warnings.append(f"{action.key}: cannot be reproduced ({action.verb})")
    return warnings
