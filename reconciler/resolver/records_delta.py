"""The resolver's attributes brought up to date for a few changed endpoints and
sandboxes (`cnm watch`: one more endpoint on a network of a thousand), instead of
built again from every endpoint. Pure.

`records.resolver_attrs` is the definition; this gives the same attributes (the
planner's random test compares full and partial builds) or says it cannot:
each changed endpoint's old entries are taken out of the sorted lists and its
new ones put in, and each changed sandbox's `scopes` and `upstreams` line is
made again. Entries are unique (one endpoint's address is no other's), so an
entry to take out that is not there, or one to put in that already is, or a
network that gains its first or loses its last sandbox (the `listen` lines
change), means a full build (None).
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Mapping

from reconciler.ipam import Assignment
from reconciler.manifest_set import Manifests
from reconciler.resolver.records import SERVING, endpoint_entries, sandbox_names
from reconciler.state import AttrValue

#: (network, its `names.<network>` entries, `clients` entries, sandbox)
_Part = tuple[str, tuple[str, ...], tuple[str, ...], str]


def updated_attrs(
    previous: Mapping[str, AttrValue],
    before: tuple[Manifests, Mapping[str, Assignment]],
    after: tuple[Manifests, Mapping[str, Assignment]],
    networks: Mapping[str, tuple[str, ...]],
    endpoints: Collection[str],
    sandboxes: Collection[str],
) -> dict[str, AttrValue] | None:
    """`previous` (the attributes for `before`: manifests and assignments) made those
    for `after`, where only `endpoints` and `sandboxes` (names) changed; None when a
    full build is needed. `networks`: the served ones, the same for both."""
    touched = set(endpoints)
    for manifests, _ in (before, after):
        for name in sandboxes:
            touched.update(e.metadata.name for e in manifests.endpoints_of_sandbox(name))
    old = [p for n in sorted(touched) if (p := _part(n, *before, networks)) is not None]
    new = [p for n in sorted(touched) if (p := _part(n, *after, networks)) is not None]
    lists: dict[str, list[str]] = {}

    def entries(attr: str) -> list[str] | None:
        if attr not in lists:
            value = previous.get(attr)
            if not isinstance(value, tuple):
                return None
            lists[attr] = [str(v) for v in value]
        return lists[attr]

    for parts, adding in ((old, False), (new, True)):
        for network, names, clients, _ in parts:
            for attr, values in ((f"names.{network}", names), ("clients", clients)):
                found = entries(attr)
                if found is None or not all(_edit(found, v, adding) for v in values):
                    return None
    affected = set(sandboxes) | {p[3] for p in old} | {p[3] for p in new}
    scopes, upstreams = entries("scopes"), entries("upstreams")
    if scopes is None or upstreams is None:
        return None
    manifests, assignments = after
    for sandbox in sorted(affected):
        nets = sorted({e.spec.network for e in manifests.endpoints_of_sandbox(sandbox)
                       if e.metadata.name in assignments and e.spec.network in networks})
        _set_line(scopes, sandbox, f"{sandbox} {','.join(nets)}" if nets else None)
        dns = manifests.sandboxes[sandbox].spec.dns if sandbox in manifests.sandboxes else None
        servers = ",".join(str(s) for s in dns.servers) if dns is not None else ""
        _set_line(upstreams, sandbox, f"{sandbox} {servers}" if nets and servers else None)
    if not scopes:
        return None
    used = {n for line in scopes for n in line.partition(" ")[2].split(",")}
    if used != {k.removeprefix("names.") for k in previous if k.startswith("names.")}:
        return None
    attrs: dict[str, AttrValue] = dict(previous)
    attrs.update((attr, tuple(values)) for attr, values in lists.items())
    attrs["process"] = SERVING
    return attrs


def _part(name: str, manifests: Manifests, assignments: Mapping[str, Assignment],
          networks: Mapping[str, tuple[str, ...]]) -> _Part | None:
    """What endpoint `name` gives the resolver, as `records.resolver_attrs` counts it."""
    endpoint = manifests.endpoints.get(name)
    assignment = assignments.get(name)  # a joined endpoint has one
    if endpoint is None or assignment is None or endpoint.spec.network not in networks \
            or endpoint.spec.sandbox is None:
        return None
    sandbox = manifests.sandboxes[endpoint.spec.sandbox]
    names, clients = endpoint_entries(name, tuple(endpoint.spec.aliases),
                                      tuple(sandbox_names(sandbox)), assignment.texts)
    return endpoint.spec.network, names, clients, sandbox.metadata.name


def _edit(values: list[str], value: str, adding: bool) -> bool:
    """Put `value` into the sorted list or take it out; False when it already is there
    (adding) or is not (taking out)."""
    at = bisect.bisect_left(values, value)
    present = at < len(values) and values[at] == value
    if present == adding:
        return False
    if adding:
        values.insert(at, value)
    else:
        del values[at]
    return True


def _set_line(lines: list[str], sandbox: str, line: str | None) -> None:
    """Replace (or remove, or add) the line of `sandbox` in lines sorted by sandbox name."""
    at = bisect.bisect_left(lines, sandbox, key=lambda text: text.partition(" ")[0])
    if at < len(lines) and lines[at].partition(" ")[0] == sandbox:
        del lines[at]
    if line is not None:
        lines.insert(at, line)
