"""Plans rendered for people (text, markdown) and for programs (versioned JSON).

Rendering is pure and byte-stable: the same plan always gives the same text,
so a plan pasted into review can be compared with the one that was applied.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from reconciler.diff import Change
from reconciler.plan import Action, Plan
from reconciler.state import AttrValue, Resource

#: Version of the JSON plan document; bump on any incompatible change.
PLAN_FORMAT_VERSION = "1.0"

SYMBOLS = {"create": "+", "update": "~", "delete": "-", "replace": "-/+"}
NO_CHANGES = "No changes. The kernel matches the manifests."


def format_value(value: AttrValue) -> str:
    """One-line text of an attribute value."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, str) and "\n" in value.rstrip("\n"):
        return f"({len(value.splitlines())} lines)"
    if isinstance(value, str):
        return value.rstrip("\n")
    return str(value)


def format_change(change: Change) -> str:
    if _is_text_block(change.old) or _is_text_block(change.new):
        return f"{change.path}: {_text_change(change.old, change.new)}"
    return f"{change.path}: {format_value(change.old)} -> {format_value(change.new)}"


def _is_text_block(value: AttrValue) -> bool:
    return isinstance(value, str) and "\n" in value.rstrip("\n")


def _text_change(old: AttrValue, new: AttrValue) -> str:
    old_lines = old.splitlines() if isinstance(old, str) else []
    new_lines = new.splitlines() if isinstance(new, str) else []
    if old is None:
        return f"write ({len(new_lines)} lines)"
    if new is None:
        return "remove"
    old_set, new_set = set(old_lines), set(new_lines)
    added = sum(1 for line in new_lines if line not in old_set)
    removed = sum(1 for line in old_lines if line not in new_set)
    return f"rewrite (+{added} -{removed} lines)"


def describe(resource: Resource) -> str:
    """Short description of a resource for create and delete lines."""
    kind = resource.key.kind
    if kind == "Network":
        addresses = ", ".join(str(a) for a in _as_tuple(resource.get("addresses")))
        text = f"bridge {resource.get('bridge')}"
        return f"{text}  {addresses}" if addresses else text
    if kind == "Sandbox":
        return f"netns {resource.get('netns')}"
    if kind == "Endpoint":
        parent = resource.get("parent")
        text = f"macvlan {parent}" if parent else f"veth {resource.get('veth')}"
        if resource.get("sandbox") is not None:
            text += f" -> {resource.get('sandbox')}:{resource.get('ifname')}"
        held = [str(resource.get(a)) for a in ("ipv4", "ipv6") if resource.get(a)]
        return f"{text}  {', '.join(held)}" if held else text
    return ""


def _as_tuple(value: AttrValue) -> tuple[AttrValue, ...]:
    if isinstance(value, tuple):
        return value
    return () if value is None else (value,)


def action_lines(action: Action) -> list[str]:
    """Detail lines of an action: the first goes on the action's own line."""
    if action.verb == "create" and action.desired is not None:
        return [describe(action.desired)]
    if action.verb == "delete" and action.observed is not None:
        return [describe(action.observed)]
    lines = [format_change(c) for c in action.changes]
    if action.verb == "replace":
        forced_fields = [f for f in action.forced_by if not f.endswith(" is replaced")]
        if forced_fields:
            by_path = {c.path: c for c in action.changes}
            first = by_path[forced_fields[0]]
            lines.remove(format_change(first))
            head = (
                f"{', '.join(forced_fields)} forces replacement: "
                f"{format_value(first.old)} -> {format_value(first.new)}"
            )
        else:
            head = f"replaced because {', '.join(action.forced_by)}"
        lines.insert(0, head)
    return lines or [""]


def render_text(plan: Plan) -> str:
    if plan.empty:
        return NO_CHANGES + "\n"
    counts = ", ".join(
        f"{plan.count(verb)} to {verb}" for verb in ("create", "update", "delete")
    )
    replace = plan.count("replace")
    header = f"Plan: {counts}" + (f", {replace} to replace." if replace else ".")
    heads = [_symbol_field(a.verb) + str(a.key) for a in plan.actions]
    column = max(len(head) for head in heads) + 2
    out = [header, ""]
    for head, action in zip(heads, plan.actions, strict=True):
        details = action_lines(action)
        out.append((head.ljust(column) + details[0]).rstrip())
        out += [" " * column + line for line in details[1:]]
    return "\n".join(out) + "\n"


def _symbol_field(verb: str) -> str:
    """`  + ` for one-character symbols, ` -/+ ` for replacements, as SPEC.md shows."""
    symbol = SYMBOLS[verb]
    return f"  {symbol} " if len(symbol) == 1 else f" {symbol} "


def _json_value(value: AttrValue) -> object:
    if isinstance(value, tuple):
        return [_json_value(v) for v in value]
    return value


def plan_document(plan: Plan) -> dict[str, object]:
    """The JSON plan document (see docs/plan-format.md)."""
    return {
        "format_version": PLAN_FORMAT_VERSION,
        "set": plan.set_name,
        "summary": {verb: plan.count(verb) for verb in ("create", "update", "delete", "replace")},
        "actions": [_action_document(a) for a in plan.actions],
    }


def _action_document(action: Action) -> dict[str, object]:
    resource = action.desired if action.desired is not None else action.observed
    changes: Sequence[Change] = action.changes
    if action.verb == "create" and action.desired is not None:
        changes = [Change(k, None, v) for k, v in action.desired.attrs.items()]
    elif action.verb == "delete" and action.observed is not None:
        changes = [Change(k, v, None) for k, v in action.observed.attrs.items()]
    return {
        "action": action.verb,
        "kind": action.key.kind,
        "name": action.key.name,
        "description": describe(resource) if resource is not None else "",
        "forced_by": list(action.forced_by),
        "changes": [
            {"path": c.path, "old": _json_value(c.old), "new": _json_value(c.new)} for c in changes
        ],
    }


def render_json(plan: Plan) -> str:
    return json.dumps(plan_document(plan), indent=2, sort_keys=False) + "\n"
