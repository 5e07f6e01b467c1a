"""Links left half-made by an apply that was killed between creating and labelling them.

cnm sets its link group in the very message that creates a link and writes
the owner label (ifalias) just after, so a crash in between leaves a link
with cnm's group and no label. When the next apply wants that name it adopts
the link; when no manifest wants it any more (the user changed the manifests
after the crash), nothing would ever claim it. This module finds such debris
so that apply and delete can remove it.

Only links that can be nothing but an interrupted creation qualify, as the
driver that creates links of their kind says (`Driver.is_leftover`). The
bridge driver's, for instance:

* a veth with cnm's group, no label, and a name of the form cnm derives for
  host ends (`cnm` + 9 hex digits): removing it removes its peer, which was
  created in the same message inside the sandbox;
* a bridge with cnm's group, no label, down, no ports and no addresses:
  exactly what `create_network` leaves before its next request.

Anything else with the group but no label (a bridge that has ports or
addresses, for instance) is left alone and stays visible as a name taken by
something cnm does not own. The apply lock guarantees no other cnm process is
between those two requests while this runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.drivers import is_leftover
from reconciler.kernel.observe import global_addresses
from reconciler.kernel.rtnl import Rtnl
from reconciler.naming import CNM_LINK_GROUP


@dataclass(frozen=True)
class Debris:
    index: int
    name: str
    kind: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


def find_debris(host: Rtnl) -> list[Debris]:
    """Interrupted creations in the host namespace, sorted by name. Read-only."""
    links = host.links()
    candidates = [link for link in links if link.group == CNM_LINK_GROUP and not link.alias]
    if not candidates:
        return []
    masters = {link.master for link in links if link.master}
    addressed = set(global_addresses(host))
    found = [Debris(link.index, link.name, str(link.kind)) for link in candidates
             if is_leftover(link, masters, addressed)]
    return sorted(found, key=lambda d: d.name)


def remove_debris(host: Rtnl, debris: list[Debris]) -> None:
    """Delete what `find_debris` returned, checking each link again just before."""
    for item in debris:
        link = host.link(item.name)
        if link is None or link.index != item.index:
            continue
        if link.group != CNM_LINK_GROUP or link.alias:
            continue
        host.delete_link(link.index)
