"""Which apply sets the kernel holds objects of: read from the ownership markers alone.

A set exists while some kernel object carries its marker (a link's ifalias in
the host namespace, or the `lo` of a named namespace and the links in it):
there is no registry of sets, as there is no database. Read-only.
"""

from __future__ import annotations

from reconciler.kernel import netns
from reconciler.kernel.session import KernelSession
from reconciler.state import Owner


def apply_sets() -> list[str]:
    """Names of the apply sets owning anything in the kernel, sorted."""
    found: set[str] = set()
    with KernelSession() as session:
        for namespace in [None, *netns.list_netns()]:
            try:
                links = session.rtnl(namespace).links()
            except OSError:  # removed meanwhile
                continue
            for link in links:
                owner = Owner.parse(link.alias)
                if owner is not None:
                    found.add(owner.set_name)
    return sorted(found)
