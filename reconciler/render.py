"""Plans rendered for people (text, markdown) and for programs (versioned JSON).

Rendering is pure and byte-stable: the same plan always gives the same text,
so a plan pasted into review can be compared with the one that was applied.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from reconciler import drivers, firewall
from reconciler.diff import Change
from reconciler.host_settings import CONSEQUENCES
from reconciler.mermaid import plan_diagram
from reconciler.plan import Action, Plan
from reconciler.plan_lines import extra_lines, prune_line, step_names
from reconciler.resolver.records import describe_resolver
from reconciler.state import AttrValue, Resource, external, thaw

#: Version of the JSON plan document; bump on any incompatible change.
PLAN_FORMAT_VERSION = "1.1"

SYMBOLS = {"create": "+", "update": "~", "delete": "-", "replace": "-/+"}
NO_CHANGES = "No changes. The kernel matches the manifests."


def format_attr(path: str, value: AttrValue) -> str:
    """One-line text of attribute `path`'s value (in its external form: state.external)."""
    return format_value(external(path, value))


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
    return str(value)  # an integer, a Drift (`(no rules)`), an MtuPair (`1500/9000`)


#: A list change longer than this shows only what is added and removed.
LONG_CHANGE = 100


def format_change(change: Change) -> str:
    old, new = external(change.path, change.old), external(change.path, change.new)
    if _is_text_block(old) or _is_text_block(new):
        return f"{change.path}: {_text_change(old, new)}"
    plain = f"{change.path}: {format_value(old)} -> {format_value(new)}"
    if len(plain) > LONG_CHANGE and isinstance(old, tuple) and isinstance(new, tuple):
        return f"{change.path}: {_list_change(old, new)}"
    return plain


def _list_change(old: tuple[AttrValue, ...], new: tuple[AttrValue, ...]) -> str:
    """`+[added] -[removed] (N unchanged)` for long lists such as published ports."""
    before, after = set(old), set(new)
    added = tuple(v for v in new if v not in before)
    removed = tuple(v for v in old if v not in after)
    parts = [f"+{format_value(added)}" if added else "", f"-{format_value(removed)}"
             if removed else "", f"({len(old) - len(removed)} unchanged)"]
    return " ".join(part for part in parts if part)


def _is_text_block(value: AttrValue) -> bool:
    return isinstance(value, str) and "\n" in value.rstrip("\n")


def _text_change(old: AttrValue, new: AttrValue) -> str:
    """`rewrite (+A -R lines)`: A lines of the new text appear nowhere in the old, R the
    reverse (so a line that only moved counts in neither)."""
    if not isinstance(old, str):
        return f"write ({len(new.splitlines()) if isinstance(new, str) else 0} lines)"
    if not isinstance(new, str):
        return "remove"
    added, removed = _changed_line_counts(old, new)
    return f"rewrite (+{added} -{removed} lines)"


#: Line breaks other than "\n" that str.splitlines() also splits on (ASCII, then not).
_OTHER_ASCII_BREAKS = "\r\x0b\x0c\x1c\x1d\x1e"
_OTHER_BREAKS = "\x85\u2028\u2029"
#: Up to this many lines between the common head and tail, each is looked up in the
#: other text directly; more, and both texts are turned into sets of lines.
_FEW_LINES = 64


def _changed_line_counts(old: str, new: str) -> tuple[int, int]:
    """(lines of `new` not in `old`, lines of `old` not in `new`), as line sets would say.

    A hosts file of a big network has a line per peer, and one peer more changes
    it in every sandbox: the lines the two texts share at the start and at the
    end are skipped with string comparisons, and only the few lines in between
    are looked up, instead of splitting both texts into lines per sandbox.
    """
    if old and new and _only_newlines(old) and _only_newlines(new):
        head = _common_head(old, new)
        tail = _common_tail(old[head:], new[head:])
        old_middle = old[head:len(old) - tail].splitlines()
        new_middle = new[head:len(new) - tail].splitlines()
        if len(old_middle) + len(new_middle) <= _FEW_LINES:
            return (sum(1 for line in new_middle if not _has_line(old, line)),
                    sum(1 for line in old_middle if not _has_line(new, line)))
    old_lines, new_lines = old.splitlines(), new.splitlines()
    old_set, new_set = set(old_lines), set(new_lines)
    if len(old_set) == len(old_lines) and len(new_set) == len(new_lines):
        return len(new_set - old_set), len(old_set - new_set)  # no repeated line
    return (sum(1 for line in new_lines if line not in old_set),
            sum(1 for line in old_lines if line not in new_set))


def _only_newlines(text: str) -> bool:
    """No line break but "\n" (one substring search per character: a character class
    regex scans several times slower)."""
    return not any(c in text for c in _OTHER_ASCII_BREAKS) and (
        text.isascii() or not any(c in text for c in _OTHER_BREAKS))


def _common_head(a: str, b: str) -> int:
    """Length of the longest run of whole lines ("\n"-ended) both texts start with."""
    low, high = 0, min(len(a), len(b))
    while low < high:  # longest common prefix, by halving: slices compare in C
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return a.rfind("\n", 0, low) + 1


def _common_tail(a: str, b: str) -> int:
    """Length of a run of whole lines both texts end with (maybe one line short)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[len(a) - middle:] == b[len(b) - middle:]:
            low = middle
        else:
            high = middle - 1
    # The common end may begin inside a line: it is cut to start after the first line
    # end in it, which both texts share, so it begins at a line start in both.
    start = len(a) - low
    line_end = a.find("\n", start)
    return 0 if line_end < 0 else len(a) - (line_end + 1)


def _has_line(text: str, line: str) -> bool:
    """`line in text.splitlines()` for a text without other line breaks than "\n"."""
    return f"\n{line}\n" in f"\n{text}" + ("" if text.endswith("\n") else "\n")


def describe(resource: Resource) -> str:
    """Short description of a resource for create and delete lines (firewall summary last)."""
    if firewall.rules_only(resource):
        return firewall.summary(resource)
    return "  ".join(t for t in (_describe_links(resource), firewall.summary(resource)) if t)


def _describe_links(resource: Resource) -> str:
    if resource.key.kind == "Sandbox":
        return f"netns {resource.get('netns')}"
    if resource.key.kind == "Resolver":
        return describe_resolver(resource)
    return drivers.describe(resource)  # networks and endpoints: as their driver says


#: Appended to the line of an action whose difference the manifests did not make.
OUTSIDE = "(changed outside cnm)"


def action_lines(action: Action) -> list[str]:
    """Detail lines of an action: the first goes on the action's own line."""
    lines = _action_lines(action)
    if action.outside:
        lines[0] = f"{lines[0]}  {OUTSIDE}" if lines[0] else OUTSIDE
    return lines


def _action_lines(action: Action) -> list[str]:
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
                f"{format_attr(first.path, first.old)} -> {format_attr(first.path, first.new)}"
            )
        else:
            head = f"replaced because {', '.join(action.forced_by)}"
        lines.insert(0, head)
    return lines or [""]


def render_text(plan: Plan) -> str:
    extras = extra_lines(plan)
    if plan.empty:
        notes = [f"  {line.symbol} {line.subject}  {line.text}" for line in extras]
        return "\n".join([NO_CHANGES, *notes]) + "\n"
    counts = ", ".join(
        f"{plan.count(verb)} to {verb}" for verb in ("create", "update", "delete")
    )
    replace = plan.count("replace")
    header = f"Plan: {counts}" + (f", {replace} to replace." if replace else ".")
    heads = [_symbol_field(a.verb) + str(a.key) for a in plan.actions]
    extra_heads = [f"  {line.symbol} {line.subject}" for line in extras]
    column = max(len(head) for head in heads) + 2
    prune = prune_line(plan)
    out = [header, *([prune] if prune else []), ""]
    for head, action in zip(heads, plan.actions, strict=True):
        details = action_lines(action)
        out.append((head.ljust(column) + details[0]).rstrip())
        out += [" " * column + line for line in details[1:]]
    if extras:  # a column of their own: the actions' lines stay as they were
        width = max([column] + [len(head) + 2 for head in extra_heads])
        out += [head.ljust(width) + line.text for head, line in zip(extra_heads, extras,
                                                                      strict=True)]
    return "\n".join(out) + "\n"


def _symbol_field(verb: str) -> str:
    """`  + ` for one-character symbols, ` -/+ ` for replacements, as SPEC.md shows."""
    symbol = SYMBOLS[verb]
    return f"  {symbol} " if len(symbol) == 1 else f" {symbol} "


def plan_document(plan: Plan) -> dict[str, object]:
    """The JSON plan document (see docs/plan-format.md)."""
    deleted = plan.count("delete")
    return {
        "format_version": PLAN_FORMAT_VERSION,
        "set": plan.set_name,
        "summary": {verb: plan.count(verb) for verb in ("create", "update", "delete", "replace")},
        "prune": {"delete": deleted, "owned": plan.owned, "line": prune_line(plan)}
        if prune_line(plan) else None,
        "actions": [_action_document(a) for a in plan.actions],
        "host_settings": [{"setting": c.path, "old": c.old, "new": c.new,
                           "note": CONSEQUENCES[c.path]} for c in plan.settings],
        "steps": step_names(plan),
        "unjoined": list(plan.unjoined),
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
        "changed_outside_cnm": action.outside,
        "changes": [
            {"path": c.path, "old": thaw(external(c.path, c.old)),
             "new": thaw(external(c.path, c.new))}
            for c in changes
        ],
    }


def render_json(plan: Plan) -> str:
    return json.dumps(plan_document(plan), indent=2, sort_keys=False) + "\n"


# --- markdown (pull-request comments) ---

#: Hidden first line, so a CI job can find and update its earlier comment.
MARKDOWN_MARKER = "<!-- cnm-plan set={set} -->"
#: Limits that keep a huge plan inside a pull-request comment (GitHub allows 65 536 chars).
MARKDOWN_MAX_ROWS = 200
MARKDOWN_MAX_DETAILS = 40_000


def _md_cell(text: str) -> str:
    """Text for a table cell: pipes escaped, HTML kept inert, empty cells visible."""
    text = text.replace("&", "&amp;").replace("<", "&lt;")
    return text.replace("|", "\\|") if text else " "


def _backtick_run(text: str) -> int:
    """Length of the longest run of backticks in `text`."""
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return longest


def _md_code(text: str) -> str:
    """An inline code span (table-safe) for a value."""
    if not text:
        return " "
    ticks = "`" * (_backtick_run(text) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}".replace("|", "\\|")


def _md_fence(body: str, info: str = "") -> str:
    fence = "`" * max(3, _backtick_run(body) + 1)
    if not body.endswith("\n"):
        body += "\n"
    return f"{fence}{info}\n{body}{fence}\n"


def _md_summary(plan: Plan) -> str:
    counts = ", ".join(f"{plan.count(verb)} to {verb}" for verb in ("create", "update", "delete"))
    replace = plan.count("replace")
    return f"Plan: {counts}" + (f", {replace} to replace." if replace else ".")


def _md_value(value: AttrValue) -> str:
    return _md_code(format_value(value)) if value is not None else "—"


def _md_text_diff(path: str, old: AttrValue, new: AttrValue) -> str:
    import difflib

    old_lines = old.splitlines(keepends=True) if isinstance(old, str) else []
    new_lines = new.splitlines(keepends=True) if isinstance(new, str) else []
    lines = list(difflib.unified_diff(old_lines, new_lines, f"{path} (kernel)",
                                      f"{path} (manifests)", n=2))
    body = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    return _md_fence(body, "diff")


def _md_details(action: Action) -> str:
    """One action in full: its changes as a table, file contents as diffs."""
    out = [f"#### `{SYMBOLS[action.verb]}` {action.key} ({action.verb})", ""]
    if action.forced_by:
        out += [f"Replaced because: {', '.join(_md_code(f) for f in action.forced_by)}.", ""]
    changes: Sequence[Change] = action.changes
    if action.verb == "create" and action.desired is not None:
        changes = [Change(k, None, v) for k, v in action.desired.attrs.items()]
    elif action.verb == "delete" and action.observed is not None:
        changes = [Change(k, v, None) for k, v in action.observed.attrs.items()]
    changes = [c for c in changes if c.old is not None or c.new is not None]
    rows = [c for c in changes if not (_is_text_block(c.old) or _is_text_block(c.new))]
    blocks = [c for c in changes if _is_text_block(c.old) or _is_text_block(c.new)]
    if rows:
        out += ["| attribute | kernel now | after apply |", "| --- | --- | --- |"]
        out += [f"| {_md_code(c.path)} | {_md_value(external(c.path, c.old))} | "
                f"{_md_value(external(c.path, c.new))} |" for c in rows]
        out.append("")
    for change in blocks:
        out += [_md_text_diff(change.path, change.old, change.new)]
    return "\n".join(out).rstrip("\n") + "\n"


def render_markdown(plan: Plan) -> str:
    """The plan as a pull-request comment: summary line, a table of actions, details collapsed.

    Byte-stable like the other renderings; very large plans are cut (the table after
    MARKDOWN_MAX_ROWS rows, the details after MARKDOWN_MAX_DETAILS characters) with a
    note saying how much was left out.
    """
    head = [MARKDOWN_MARKER.format(set=plan.set_name), f"### cnm plan: apply set `{plan.set_name}`",
            ""]
    extras = [f"| `{line.symbol}` | {_md_cell(line.subject)} | {_md_cell(line.text)} |"
              for line in extra_lines(plan)]
    if plan.empty:
        table = ["", "| | object | change |", "| :-: | --- | --- |", *extras] if extras else []
        return "\n".join([*head, f"**{NO_CHANGES}**", *table, ""])
    prune = prune_line(plan)
    out = [*head, f"**{_md_summary(plan)}**", *(["", f"⚠ {_md_cell(prune)}"] if prune else []),
           "", "| | object | change |", "| :-: | --- | --- |"]
    for action in plan.actions[:MARKDOWN_MAX_ROWS]:
        change = "<br>".join(_md_cell(line) for line in action_lines(action) if line) or " "
        out.append(f"| `{SYMBOLS[action.verb]}` | {_md_cell(str(action.key))} | {change} |")
    hidden = len(plan.actions) - MARKDOWN_MAX_ROWS
    if hidden > 0:
        out.append(f"| | … | {hidden} more actions (`cnm plan -o json` lists them all) |")
    out += extras
    out += ["", _md_fence(plan_diagram(plan), "mermaid").rstrip("\n")]
    out += ["", f"<details><summary>Details of {len(plan.actions)} "
                f"action{'s' if len(plan.actions) != 1 else ''}</summary>", ""]
    size = 0
    for number, action in enumerate(plan.actions):
        section = _md_details(action)
        if size + len(section) > MARKDOWN_MAX_DETAILS:
            left = len(plan.actions) - number
            out += [f"*{left} more action{'s' if left != 1 else ''} not shown in detail; "
                    "`cnm plan -o json` has everything.*", ""]
            break
        out += [section]
        size += len(section)
    out += ["</details>", ""]
    return "\n".join(out)
