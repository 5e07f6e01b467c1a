"""Saved plans: `cnm plan -out FILE`, then `cnm apply FILE` runs exactly that plan.

A saved plan holds the desired state the plan was computed for, the plan itself
(its JSON document, for reviewers and as a check), and the observed state it
was computed from together with a digest of it. `cnm apply FILE` observes the
kernel again under the apply lock and refuses, naming what differs, when the
digest is not the same: the kernel changed since the plan was made, so the
reviewed plan is no longer what would run.

The digest covers the owned objects of the apply set and the kernel names the
plan's objects would claim (a foreign link taking a bridge's name matters, a
container runtime's unrelated veth does not). A plan computed offline from a
snapshot (`cnm plan --observed snap.json -out plan.json`) carries the
snapshot's digest, so applying it on the host checks that the snapshot was
current.

Pure: no kernel access; the CLI observes and applies.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from reconciler.drivers import kernel_names
from reconciler.errors import CnmError
from reconciler.plan import Plan, make_plan
from reconciler.render import plan_document, render_json
from reconciler.state import ResourceKey, State

SAVED_PLAN_FORMAT = "cnm-saved-plan"
SAVED_PLAN_VERSION = 1


class SavedPlanError(CnmError):
    """A saved plan file that cannot be used (unreadable, not a plan, tampered with)."""


class StalePlanError(CnmError):
    """The kernel changed since the saved plan was computed."""


class AlreadyAppliedError(CnmError):
    """The kernel changed since the saved plan was computed: into what the plan makes."""


def relevant_state(observed: State, desired: State) -> State:
    """What a plan depends on: the set's owned objects and the names its objects claim."""
    names = {n for state in (observed, desired) for r in state for n in kernel_names(r)}
    joined = {r.get("network") for state in (observed, desired) for r in state
              if r.get("network_set")}  # other sets' networks its endpoints are on
    return State(
        observed.set_name,
        dict(observed.resources),
        {k: v for k, v in observed.occupied.items() if k in names},
        frozenset(o for o in observed.orphans if o in names),
        host_settings=observed.host_settings,  # a plan turns them on: it depends on them
        applied_digests=observed.applied_digests,  # they decide the drift marks
        borrowable={k: r for k, r in observed.borrowable.items() if k in joined},
    )


def state_digest(state: State) -> str:
    """sha256 of the canonical JSON of a state (as `relevant_state` returns it)."""
    canonical = json.dumps(state.to_json(), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class SavedPlan:
    set_name: str
    digest: str
    observed: State  # relevant part only
    desired: State
    document: Mapping[str, object]  # the plan as `-o json` renders it


def saved_plan_text(plan: Plan, desired: State, observed: State) -> str:
    """The saved plan file's content (deterministic JSON)."""
    relevant = relevant_state(observed, desired)
    return json.dumps(
        {
            "format": SAVED_PLAN_FORMAT,
            "format_version": SAVED_PLAN_VERSION,
            "set": plan.set_name,
            "observed_digest": state_digest(relevant),
            "plan": plan_document(plan),
            "desired": desired.to_json(),
            "observed": relevant.to_json(),
        },
        indent=1,
        sort_keys=True,
    ) + "\n"


def write_saved_plan(path: str, plan: Plan, desired: State, observed: State) -> None:
    """Write atomically (a reader never sees half a plan)."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(saved_plan_text(plan, desired, observed))
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_saved_plan(path: str) -> SavedPlan:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SavedPlanError(f"{path}: cannot read a saved plan ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != SAVED_PLAN_FORMAT:
        raise SavedPlanError(
            f"{path}: not a saved plan (write one with `cnm plan -f DIR -out {path}`)"
        )
    if data.get("format_version") != SAVED_PLAN_VERSION:
        raise SavedPlanError(
            f"{path}: saved plan format {data.get('format_version')!r} is not supported "
            f"(this cnm reads {SAVED_PLAN_VERSION}); plan again"
        )
    try:
        saved = SavedPlan(
            set_name=str(data["set"]),
            digest=str(data["observed_digest"]),
            observed=State.from_json(data["observed"]),
            desired=State.from_json(data["desired"]),
            document=data["plan"],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SavedPlanError(f"{path}: malformed saved plan ({exc})") from exc
    if state_digest(saved.observed) != saved.digest:
        raise SavedPlanError(f"{path}: the observed state in the file does not match its digest "
                             "(was the file edited?); plan again")
    return saved


def _differences(before: State, after: State) -> list[str]:
    """What changed between two relevant states, for the refusal message."""
    found: list[str] = []
    keys: set[ResourceKey] = set(before.resources) | set(after.resources)
    for key in sorted(keys):
        old, new = before.get(key), after.get(key)
        if old is None:
            found.append(f"{key} appeared")
        elif new is None:
            found.append(f"{key} disappeared")
        elif old != new:
            attrs = sorted(k for k in set(old.attrs) | set(new.attrs)
                           if old.get(k) != new.get(k))
            found.append(f"{key} {', '.join(attrs)} changed")
    for name in sorted(set(before.occupied) | set(after.occupied)):
        if before.occupied.get(name) != after.occupied.get(name):
            found.append(f"{name.replace(':', ' ', 1)} is now "
                         f"{after.occupied.get(name, 'free')}")
    if before.orphans != after.orphans:
        found.append("interrupted creations changed")
    return found


def replay(saved: SavedPlan, observed: State, path: str = "the saved plan") -> Plan:
    """The saved plan again, against the kernel as observed now; refuses when it changed."""
    if observed.set_name != saved.set_name:
        raise SavedPlanError(f"{path} is for apply set '{saved.set_name}', "
                             f"not '{observed.set_name}'")
    now = relevant_state(observed, saved.desired)
    if state_digest(now) != saved.digest:
        if _nothing_left(saved, observed):
            raise AlreadyAppliedError(
                f"{path} is already applied: the kernel is what the plan makes; nothing to do")
        changes = _differences(saved.observed, now)
        shown = "; ".join(changes[:5]) + (f"; and {len(changes) - 5} more" if len(changes) > 5
                                          else "")
        raise StalePlanError(
            f"{path} is stale: the kernel changed since the plan was made ({shown or 'state'}); "
            "nothing was applied. Run `cnm plan -out` again and review the new plan"
        )
    return _checked(saved, make_plan(saved.desired, observed), path)


def saved_plan(saved: SavedPlan, path: str = "the saved plan") -> Plan:
    """The plan a saved plan file holds, made again from its states (`cnm show`)."""
    return _checked(saved, make_plan(saved.desired, saved.observed), path)


def _checked(saved: SavedPlan, plan: Plan, path: str) -> Plan:
    """`plan` with what only the manifests knew (endpoints without a sandbox), refused
    unless it renders as the document the file holds."""
    unjoined = saved.document.get("unjoined")  # from the manifests, not the desired state
    if isinstance(unjoined, list) and unjoined:
        plan = dataclasses.replace(plan, unjoined=tuple(str(name) for name in unjoined))
    if json.loads(render_json(plan)) != saved.document:
        raise SavedPlanError(f"{path}: replaying it gives a different plan (was it made by "
                             "another cnm version, or edited?); plan again")
    return plan


def _nothing_left(saved: SavedPlan, observed: State) -> bool:
    """True when the kernel already is the plan's desired state (the plan was applied)."""
    try:
        return make_plan(saved.desired, observed).empty
    except CnmError:  # a name conflict now: not applied, but changed
        return False
