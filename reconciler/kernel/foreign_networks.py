"""Networks other apply sets own, for loading manifests that join them (read-only).

An endpoint may join a network that its own manifests do not define when
another apply set owns it in the kernel (shared_networks.py). The manifests are
validated before anything is observed, so the commands that plan against the
kernel read the other sets' networks first, from the bridges' ownership
markers in the host namespace (observe.read_host's view of them), and the
loader adds the ones the endpoints name. A reference that is still unknown
then says that no apply set owns a network of that name either.
"""

from __future__ import annotations

import dataclasses

from reconciler.errors import ManifestError
from reconciler.kernel.observe import Fragment, read_host
from reconciler.kernel.session import KernelSession
from reconciler.model import Network
from reconciler.shared_networks import networks_of


def networks_elsewhere(set_name: str) -> dict[str, Network]:
    """Network name -> the model of another apply set's network of that name (the
    lowest set name's when several own one); empty when the kernel cannot be read."""
    seen = Fragment(set_name)
    try:
        with KernelSession() as session:
            read_host(seen, session.rtnl(None))
    except OSError:  # no privileges or no netlink: the command says so itself
        return {}
    return networks_of(seen.borrowable)


def naming_no_set(error: ManifestError) -> ManifestError:
    """`error` with each unknown-network problem saying that no apply set owns one either."""
    problems = [
        dataclasses.replace(p, message=f"{p.message}; nor does any apply set own one in the "
                                       "kernel")
        if p.field == "spec.network" and p.message.startswith("unknown network") else p
        for p in error.problems
    ]
    return ManifestError(problems)
