"""The lines of a plan that are not one object's action, for every renderer.

Apply does more than the object actions a plan lists: the Firewall step
rewrites cnm's nftables tables of the set (and turns forwarding on), the
BridgePorts step sets the bridge ports' hairpin flags, and a host-wide sysctl
may change. Each of these is a plan line of its own, so that the plan shows
every step apply runs. Two more lines explain what is not an action: the
prune line up front (an apply deletes the set's objects that the manifests
no longer name: how many, of how many) and an endpoint that has no sandbox
(no kernel object until it joins one, as in libnetwork before `Join`).

Pure; `render.py` (text, JSON, markdown) places the lines.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.host_settings import CONSEQUENCES
from reconciler.plan import BRIDGE_PORTS, FIREWALL, Plan

#: What each pseudo-step of `Plan.steps()` does, as its plan line says.
STEP_TEXT = {
    FIREWALL: "nftables tables of this set in one transaction (the rules of the objects above)",
    BRIDGE_PORTS: "hairpin flags of the endpoints' bridge ports",
}
UNJOINED_TEXT = ("not joined to a sandbox: nothing in the kernel until it joins one "
                 "(no interface, address or published port)")


@dataclass(frozen=True)
class PlanLine:
    """A plan line beside the actions: `symbol` `subject` `text`."""

    symbol: str  # "~" a change apply makes, "=" nothing to do (yet)
    subject: str
    text: str
    #: "setting" (a host-wide sysctl), "step" (a pseudo-step), or "unjoined" (an endpoint)
    section: str


def prune_line(plan: Plan) -> str | None:
    """The one line saying that an apply deletes objects missing from the manifests."""
    deleted = plan.count("delete")
    if not plan.prunes or not deleted:
        return None
    return (f"{deleted} of the {plan.owned} objects apply set '{plan.set_name}' owns "
            f"{'is' if deleted == 1 else 'are'} not in these manifests: this apply deletes "
            f"{'it' if deleted == 1 else 'them'}.")


def extra_lines(plan: Plan) -> list[PlanLine]:
    """Host settings, then the pseudo-steps in execution order, then unjoined endpoints."""
    lines = [PlanLine("~", f"Host/{c.path}", f"{c.old} -> {c.new} ({CONSEQUENCES[c.path]})",
                      "setting") for c in plan.settings]
    lines += [PlanLine("~", str(step.action.key), STEP_TEXT[step.action.key.kind], "step")
              for step in plan.steps() if step.action.key.kind in STEP_TEXT]
    lines += [PlanLine("=", f"Endpoint/{name}", UNJOINED_TEXT, "unjoined")
              for name in plan.unjoined]
    return lines


def step_names(plan: Plan) -> list[str]:
    """Every step apply runs, in execution order (`verb Kind/name`)."""
    return [f"{step.verb} {step.action.key}" for step in plan.steps()]
