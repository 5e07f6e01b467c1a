"""Mermaid diagrams of networks, sandboxes and endpoints, for code review and for a host.

`plan_diagram` draws what a plan touches (`cnm plan -o markdown` puts it under
the table, where code-review sites render it): every object of an action,
styled by its verb, and the network and sandbox each touched endpoint links,
unstyled when the plan leaves them alone. `host_diagram` draws the states of
every apply set (`cnm get -o mermaid`), one subgraph per set.

A sandbox is a box, a network a stadium, an endpoint a small node between its
sandbox and its network. Output is deterministic: nodes in kind and name
order, edges in endpoint order, node ids made from (set, kind, name) alone.
Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from reconciler.plan import Plan
from reconciler.state import Resource, State

#: Styles by plan verb; "kept" is an object drawn only because a touched one links it.
CLASS_DEFS = (
    "classDef create fill:#dafbe1,stroke:#1a7f37,color:#000",
    "classDef update fill:#fff8c5,stroke:#9a6700,color:#000",
    "classDef delete fill:#ffebe9,stroke:#cf222e,color:#000,stroke-dasharray:5 3",
    "classDef replace fill:#fbefff,stroke:#8250df,color:#000",
    "classDef kept fill:#f6f8fa,stroke:#8c959f,color:#57606a",
)
#: A diagram of more objects than this is cut (a note says how many were left out).
MAX_NODES = 100
_ORDER = {"Network": 0, "Sandbox": 1, "Endpoint": 2}
_SHAPES = {"Network": ('(["', '"])'), "Sandbox": ('["', '"]'), "Endpoint": ('(("', '"))')}


@dataclass(frozen=True)
class _Node:
    set_name: str
    kind: str
    name: str
    style: str  # a CLASS_DEFS name, or "" for none
    label: str

    @property
    def ident(self) -> str:
        # names and sets are DNS labels ([a-z0-9-]): "-" -> "_" and "__" between
        # the parts cannot collide
        parts = (self.set_name, self.kind[0].lower(), self.name)
        return "__".join(part.replace("-", "_") for part in parts)

    def line(self) -> str:
        start, end = _SHAPES[self.kind]
        style = f":::{self.style}" if self.style else ""
        return f"{self.ident}{start}{self.label}{end}{style}"


def _label(resource: Resource | None, kind: str, name: str) -> str:
    if kind == "Endpoint" and resource is not None and resource.get("ifname"):
        return f"{name}<br>{resource.get('ifname')}"
    return f"{kind} {name}"


def _links(resource: Resource | None) -> tuple[str | None, str | None]:
    if resource is None:
        return None, None
    network, sandbox = resource.get("network"), resource.get("sandbox")
    return (str(network) if network is not None else None,
            str(sandbox) if sandbox is not None else None)


def _render(groups: Sequence[tuple[str | None, list[_Node], list[tuple[str, str]]]],
            left_out: int) -> str:
    out = ["flowchart LR", *(f"  {line}" for line in CLASS_DEFS)]
    for title, nodes, edges in groups:
        indent = "  "
        if title is not None:
            out.append(f'  subgraph set_{title.replace("-", "_")}["apply set {title}"]')
            indent = "    "
        out += [indent + node.line() for node in nodes]
        out += [f"{indent}{a} --- {b}" for a, b in edges]
        if title is not None:
            out.append("  end")
    if left_out:
        out.append(f'  more["… {left_out} more objects not drawn"]:::kept')
    return "\n".join(out) + "\n"


def _graph(set_name: str, nodes: dict[tuple[str, str], _Node],
           endpoints: Iterable[tuple[str, str | None, str | None]]
           ) -> tuple[list[_Node], list[tuple[str, str]]]:
    ordered = sorted(nodes.values(), key=lambda n: (_ORDER[n.kind], n.name))
    edges = []
    for name, network, sandbox in sorted(endpoints, key=lambda e: e[0]):
        me = nodes[("Endpoint", name)].ident
        if sandbox is not None and ("Sandbox", sandbox) in nodes:
            edges.append((nodes[("Sandbox", sandbox)].ident, me))
        if network is not None and ("Network", network) in nodes:
            edges.append((me, nodes[("Network", network)].ident))
    return ordered, edges


def plan_diagram(plan: Plan) -> str:
    """What `plan` touches: its objects styled by verb, and the objects they link."""
    nodes: dict[tuple[str, str], _Node] = {}
    endpoints: list[tuple[str, str | None, str | None]] = []
    for action in plan.actions[:MAX_NODES]:
        key = action.key
        if key.kind not in _ORDER:  # the diagram draws the CNM objects (no resolver)
            continue
        resource = action.desired if action.desired is not None else action.observed
        nodes[(key.kind, key.name)] = _Node(plan.set_name, key.kind, key.name, action.verb,
                                            _label(resource, key.kind, key.name))
    for action in plan.actions[:MAX_NODES]:
        if action.key.kind != "Endpoint":
            continue
        resource = action.desired if action.desired is not None else action.observed
        network, sandbox = _links(resource)
        owner = resource.get("network_set") if resource is not None else None
        for kind, name in (("Network", network), ("Sandbox", sandbox)):
            if name is not None and (kind, name) not in nodes:
                home = str(owner) if kind == "Network" and owner else plan.set_name
                label = _label(None, kind, name) + (  # another set's (shared_networks.py)
                    f" (set {home})" if home != plan.set_name else "")
                nodes[(kind, name)] = _Node(home, kind, name, "kept", label)
        endpoints.append((action.key.name, network, sandbox))
    ordered, edges = _graph(plan.set_name, nodes, endpoints)
    return _render([(None, ordered, edges)], max(0, len(plan.actions) - MAX_NODES))


def host_diagram(states: Sequence[State]) -> str:
    """Every object of every apply set in `states`, one subgraph per set."""
    groups: list[tuple[str | None, list[_Node], list[tuple[str, str]]]] = []
    drawn = left_out = 0
    for state in sorted(states, key=lambda s: s.set_name):
        nodes: dict[tuple[str, str], _Node] = {}
        endpoints: list[tuple[str, str | None, str | None]] = []
        for resource in sorted(state, key=lambda r: (_ORDER.get(r.key.kind, 9), r.key.name)):
            if resource.key.kind not in _ORDER:
                continue
            if drawn >= MAX_NODES:
                left_out += 1
                continue
            drawn += 1
            key = resource.key
            nodes[(key.kind, key.name)] = _Node(state.set_name, key.kind, key.name, "",
                                                _label(resource, key.kind, key.name))
            if key.kind == "Endpoint":
                endpoints.append((key.name, *_links(resource)))
        ordered, edges = _graph(state.set_name, nodes, endpoints)
        for resource in state.of_kind("Endpoint"):  # on another set's network
            owner, network = resource.get("network_set"), resource.get("network")
            if owner and ("Endpoint", resource.key.name) in nodes:
                edges.append((nodes[("Endpoint", resource.key.name)].ident,
                              _Node(str(owner), "Network", str(network), "", "").ident))
        groups.append((state.set_name, ordered, edges))
    return _render(groups, left_out)
