"""The desired `Resolver` resource of an apply set, and its configuration file. Pure.

One resolver per apply set serves every network whose driver puts the
network's gateway addresses on the host (`Driver.serves_names`): it listens
on those addresses (port 53) and answers, to a sandbox, the names of the
endpoints on the networks that sandbox is on (endpoint name, aliases, the
endpoint's sandbox name, hostname and hostname.domainname), A and AAAA.
Every other name goes to the asking sandbox's `dns.servers`, else to the
host's resolvers.

The resource's attributes are plain sorted tuples, so a plan shows what one
more endpoint adds (`names.front: +(web 10.89.0.7)`) and the configuration
file is a function of them alone: observation reads the file back into the
same attributes (`attrs_of_config`), and the kernel layer needs nothing else.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import cast

from reconciler.caching import BuildMemo, memoize
from reconciler.drivers import driver_for
from reconciler.ipam import Assignment
from reconciler.manifest_set import Manifests
from reconciler.model import Endpoint, Sandbox
from reconciler.shared_networks import is_borrowed
from reconciler.state import AttrValue, Resource, ResourceKey

KIND = "Resolver"
#: The desired value of `process`: running, listening, answering with the
#: configuration file's digest. Observation says otherwise when it is not.
SERVING = "serving"
#: Where each set's resolver keeps its configuration, pid and log (tmpfs in tests).
RUN_DIR = "/run/cnm/resolver"
#: The name the resolver answers with the digest of the configuration it serves.
STATUS_NAME = "status.cnm-resolver.invalid."
#: Attributes that come from the configuration file (the rest is the process).
_LISTS = ("listen", "clients", "scopes", "upstreams")


def owner_marker(set_name: str) -> str:
    return f"cnm/v1 set={set_name} {KIND}/{set_name}"


def serving_networks(manifests: Manifests) -> dict[str, tuple[str, ...]]:
    """Networks the resolver serves -> their gateway addresses (where it listens)."""
    return {
        name: tuple(sorted(str(p.effective_gateway()) for p in network.spec.ipam))
        for name, network in manifests.networks.items()
        if driver_for(network.spec.driver).serves_names and network.spec.ipam
        and not is_borrowed(network)  # another set's: names do not cross sets
    }


def sandbox_names(sandbox: Sandbox) -> list[str]:
    """The names a sandbox is known by to its peers: its name, hostname, FQDN."""
    names = [sandbox.metadata.name, sandbox.effective_hostname]
    if sandbox.spec.domainname:
        names.append(f"{sandbox.effective_hostname}.{sandbox.spec.domainname}")
    return names


def resolver_attrs(
    manifests: Manifests,
    endpoints: Sequence[Endpoint],
    assignments: Mapping[str, Assignment],
    networks: Mapping[str, tuple[str, ...]],
    memo: BuildMemo[str, tuple[object, ...]] | None = None,
) -> dict[str, AttrValue] | None:
    """The resolver's attributes for the joined `endpoints`, or None when no sandbox
    is on a network it serves (then there is no resolver).

    `memo` (its owner: `caching.PlanCaches`): each endpoint's entries of the last
    build, reused when the endpoint, its sandbox and its `Assignment` are the very
    same objects (the entries are a function of those alone).
    """
    if memo is not None:
        memo = memo.next_build()
    names: dict[str, set[str]] = defaultdict(set)
    clients: set[str] = set()
    scopes: dict[str, set[str]] = defaultdict(set)
    sandboxes = manifests.sandboxes
    for endpoint in endpoints:
        network = endpoint.spec.network
        if network not in networks or endpoint.spec.sandbox is None:
            continue
        sandbox = sandboxes[endpoint.spec.sandbox]
        assignment = assignments[endpoint.metadata.name]
        inputs = (endpoint, sandbox, assignment)
        part = memo.get(endpoint.metadata.name, inputs) if memo is not None else None
        if part is None:
            part = endpoint_entries(endpoint.metadata.name, tuple(endpoint.spec.aliases),
                            tuple(sandbox_names(sandbox)), assignment.texts)
            if memo is not None:
                memo.put(endpoint.metadata.name, inputs, part)
        entries, asking = cast(tuple[tuple[str, ...], tuple[str, ...]], part)
        names[network].update(entries)
        clients.update(asking)
        scopes[sandbox.metadata.name].add(network)
    if not scopes:
        return None
    upstreams = []
    for sandbox_name in sorted(scopes):
        dns = manifests.sandboxes[sandbox_name].spec.dns
        if dns is not None and dns.servers:
            upstreams.append(f"{sandbox_name} {','.join(str(s) for s in dns.servers)}")
    used = sorted({n for s in scopes.values() for n in s})
    attrs: dict[str, AttrValue] = {
        "listen": tuple(sorted(f"{a} {n}" for n in used for a in networks[n])),
        "clients": tuple(sorted(clients)),
        "scopes": tuple(f"{s} {','.join(sorted(n))}" for s, n in sorted(scopes.items())),
        "upstreams": tuple(upstreams),
    }
    for network in used:
        attrs[f"names.{network}"] = tuple(sorted(names[network]))
    attrs["process"] = SERVING
    return attrs


@memoize(maxsize=1 << 16)
def endpoint_entries(endpoint: str, aliases: tuple[str, ...], sandbox: tuple[str, ...],
             addresses: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """An endpoint's `names.<network>` entries and its `clients` entries (cached: `cnm
    watch` builds the same thousand again on every reconcile)."""
    known = {endpoint, *aliases, *sandbox}
    return (tuple(f"{n.lower()} {a}" for n in known for a in addresses),
            tuple(f"{a} {sandbox[0]}" for a in addresses))


def resolver_resource(set_name: str, attrs: dict[str, AttrValue] | None) -> Resource | None:
    return None if attrs is None else Resource(ResourceKey(KIND, set_name), set_name, attrs)


def resolver_without(
    resource: Resource, networks: set[str], sandboxes: set[str], addresses: set[str]
) -> Resource | None:
    """The resolver once these networks, sandboxes and endpoint addresses are gone (what
    `cnm delete` keeps of it); None when no sandbox is left for it to serve."""
    def entries(name: str) -> tuple[str, ...]:
        value = resource.get(name)
        return tuple(str(v) for v in value) if isinstance(value, tuple) else ()

    scopes = []
    for entry in entries("scopes"):
        sandbox, _, nets = entry.partition(" ")
        left = [n for n in nets.split(",") if n not in networks]
        if sandbox not in sandboxes and left:
            scopes.append(f"{sandbox} {','.join(left)}")
    if not scopes:
        return None
    attrs: dict[str, AttrValue] = dict(resource.attrs)
    attrs["scopes"] = tuple(scopes)
    attrs["listen"] = tuple(e for e in entries("listen") if e.split(" ")[1] not in networks)
    attrs["clients"] = tuple(e for e in entries("clients")
                             if e.split(" ")[0] not in addresses
                             and e.split(" ")[1] not in sandboxes)
    attrs["upstreams"] = tuple(e for e in entries("upstreams") if e.split(" ")[0] not in sandboxes)
    for key in [k for k in attrs if k.startswith("names.")]:
        if key.removeprefix("names.") in networks:
            del attrs[key]
        else:
            attrs[key] = tuple(e for e in entries(key) if e.split(" ")[1] not in addresses)
    attrs["process"] = SERVING
    return Resource(resource.key, resource.set_name, attrs)


def resolver_aliases(resolver: Resource | None, endpoint: Resource, known: set[str]
                     ) -> list[str]:
    """The names the resolver has for `endpoint`'s addresses on its network, but for the
    endpoint's own name and the `known` names of its sandbox: its aliases (for export)."""
    if resolver is None:
        return []
    addresses = {str(v).split("/")[0] for name in ("ipv4", "ipv6")
                 for v in _strings(endpoint.get(name) or ())}
    names = set()
    for entry in _strings(resolver.get(f"names.{endpoint.get('network')}")):
        name, _, address = entry.partition(" ")
        if address in addresses:
            names.add(name)
    return sorted(names - {endpoint.key.name.lower()} - {k.lower() for k in known})


def upstreams_of(resolver: Resource, sandbox: str) -> list[str] | None:
    """The `dns.servers` the resolver forwards to for `sandbox` ([] for the host's); None
    when the resolver does not serve that sandbox."""
    if not any(e.split(" ")[0] == sandbox for e in _strings(resolver.get("scopes"))):
        return None
    for entry in _strings(resolver.get("upstreams")):
        name, _, servers = entry.partition(" ")
        if name == sandbox:
            return servers.split(",")
    return []


def describe_resolver(resource: Resource) -> str:
    """`listens on 10.89.0.1:53, 12 names for 3 sandboxes` (create and delete lines)."""
    listen = resource.get("listen")
    addresses = sorted({str(e).split(" ")[0] for e in listen}) if isinstance(listen, tuple) else []
    shown = ", ".join(f"[{a}]:53" if ":" in a else f"{a}:53" for a in addresses)
    names = sum(len(v) for k, v in resource.attrs.items()
                if k.startswith("names.") and isinstance(v, tuple))
    scopes = resource.get("scopes")
    sandboxes = len(scopes) if isinstance(scopes, tuple) else 0
    return f"listens on {shown or 'nothing'}, {names} names for {sandboxes} sandboxes"


def config_text(set_name: str, attrs: Mapping[str, AttrValue]) -> str:
    """The configuration file for `attrs` (everything but `process`): canonical JSON."""
    document: dict[str, object] = {"owner": owner_marker(set_name)}
    for name in _LISTS:
        document[name] = list(_strings(attrs.get(name, ())))
    document["names"] = {
        key.removeprefix("names."): list(_strings(value))
        for key, value in sorted(attrs.items()) if key.startswith("names.")
    }
    # one entry a line, by the C encoder (`indent` makes json use its Python one: some
    # 20 ms for the 5000 entries of 1000 endpoints, on every change of the records)
    return json.dumps(document, sort_keys=True, separators=(",\n", ": ")) + "\n"


@memoize(maxsize=4)
def attrs_of_config(set_name: str, text: str) -> dict[str, AttrValue] | None:
    """The attributes a configuration file says (`process` aside); None when the file
    is not one of this set's resolver (unreadable, or another owner's).

    Cached (callers copy the result): observation reads the same file on every
    reconcile of `cnm watch`, some 200 kB of JSON at 1000 endpoints."""
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if not isinstance(document, dict) or document.get("owner") != owner_marker(set_name):
        return None
    attrs: dict[str, AttrValue] = {n: tuple(_strings(document.get(n, ()))) for n in _LISTS}
    for network, values in sorted(dict(document.get("names", {})).items()):
        attrs[f"names.{network}"] = tuple(_strings(values))
    return attrs


@memoize(maxsize=4)
def digest(text: str) -> str:
    """What the resolver answers to `STATUS_NAME` once it serves `text`."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _strings(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list | tuple) else []
