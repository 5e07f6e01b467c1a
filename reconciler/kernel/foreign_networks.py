"""Networks other apply sets own, for the error that names them.

An endpoint can only join a network of its own apply set: another set's
network carries that set's isolation, icc and port rules, computed from that
set's endpoints, which an endpoint from elsewhere would slip past. When a
manifest refers to a network it does not define, the unknown-network problem
says which other set owns a network of that name, or that none does (read
from the bridges' ownership markers in the host namespace; read-only).
"""

from __future__ import annotations

import dataclasses

from reconciler.errors import ManifestError
from reconciler.kernel.session import KernelSession
from reconciler.state import Owner


def networks_of_other_sets(set_name: str) -> dict[str, list[str]]:
    """Network name -> the other apply sets that own a network of that name."""
    found: dict[str, list[str]] = {}
    with KernelSession() as session:
        for link in session.rtnl(None).links():
            owner = Owner.parse(link.alias)
            if owner is not None and owner.kind == "Network" and owner.set_name != set_name:
                found.setdefault(owner.name, []).append(owner.set_name)
    return {name: sorted(sets) for name, sets in found.items()}


def naming_other_sets(error: ManifestError, set_name: str) -> ManifestError:
    """`error` with each unknown-network problem saying which other set owns that network."""
    problems = [p for p in error.problems
                if p.field == "spec.network" and p.message.startswith("unknown network")]
    if not problems:
        return error
    try:
        others = networks_of_other_sets(set_name)
    except OSError:  # no privileges or no netlink: the problem as it was
        return error
    changed = []
    for problem in error.problems:
        name = problem.message.split('"')[1] if problem in problems and '"' in problem.message \
            else None
        sets = others.get(name) if name is not None else None
        if sets:
            owners = " and ".join(f"'{s}'" for s in sets)
            problem = dataclasses.replace(problem, message=(
                f"network \"{name}\" is not in these manifests (apply set '{set_name}'); "
                f"apply set {owners} owns a Network of that name, and an endpoint can join "
                f"only a network of its own set (the network's isolation and port rules are "
                f"that set's): define the network here, or apply this endpoint with --set "
                f"{sets[0]}"))
        elif problem in problems:
            problem = dataclasses.replace(problem, message=(
                f"{problem.message}; nor does any apply set own one in the kernel"))
        changed.append(problem)
    return ManifestError(changed)
