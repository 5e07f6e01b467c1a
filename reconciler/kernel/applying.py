"""The observation of a one-shot apply: verified from the host's notifications.

A one-shot command (`cnm apply`, `cnm delete`, the Python API) observes
everything once, plans, executes and verifies. Verifying reads again what the
plan touched (`Touched`); when that includes the host, `LiveObservation`
dumps the host again: every bridge and every host end of a veth pair, though
a small plan changed two or three of them. On a big host that dump, not the
change, was most of what an apply cost over a plan.

So once the plan is known and small next to the host, this observation
subscribes to the host's notifications (`KernelEvents`) before the first
step, and verification takes the host from the table it had dumped plus the
notifications the steps caused (`HostTable`, as `cnm watch` does). A big plan
(a first apply: hundreds of new links on an empty host) keeps the dump, which
then costs less than the notifications the steps send.

What makes this safe: notifications bring the table forward to the kernel's
state or, when some were lost (ENOBUFS), invalidate it so that it is dumped.
A change the kernel does not announce (a link's alias while it is down)
leaves the table showing the link as it was, which differs from what the
plan wanted, and `pipeline.verify` then dumps the host before anything
counts as failed. The subscription starts after the first dump, under the
apply lock: what another program changes in those microseconds shows up in
the next plan, as a change right after the apply would.

Read-only.
"""

from __future__ import annotations

import selectors
from collections.abc import Mapping
from typing import Any

from reconciler.kernel.events import KernelEvents
from reconciler.kernel.live import LiveObservation
from reconciler.plan import Touched
from reconciler.state import State

#: Follow notifications when the host has more than this many links per namespace the
#: plan touches: each touched sandbox changes a few host links (a veth end, its
#: bridge port), each announced by several notifications, while a dump costs one
#: message per link there is.
LINKS_PER_TOUCHED_NAMESPACE = 8


class ApplyObservation:
    """`LiveObservation` of `set_name` that verifies a small plan from notifications.

    Use as a context manager: leaving it closes the subscription.
    """

    def __init__(self, set_name: str) -> None:
        self.live = LiveObservation(set_name)
        self._selector: selectors.BaseSelector | None = None
        self._events: KernelEvents | None = None

    def __enter__(self) -> ApplyObservation:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def identities(self) -> Mapping[str, Any]:
        return self.live.identities

    @property
    def following(self) -> bool:
        """True once the host is followed through its notifications."""
        return self._events is not None

    def state(self) -> State:
        if self._events is not None:
            self._events.drain(None)  # into the host table (a loss invalidates it)
            if self._events.drain_nftables():
                self.live.mark_firewall()
        return self.live.state()

    def mark_touched(self, touched: Touched) -> None:
        if touched.host and self._events is None and is_small(touched, self.live.host_links()):
            self._selector = selectors.DefaultSelector()
            self._events = KernelEvents(self._selector, host_table=self.live.host_table)
            self.live.follow_host_events()
        self.live.mark_touched(touched)

    def reload_host(self) -> None:
        self.live.reload_host()

    def close(self) -> None:
        if self._events is not None:
            self._events.close()
            self._events = None
        if self._selector is not None:
            self._selector.close()
            self._selector = None


def is_small(touched: Touched, host_links: int) -> bool:
    """True when following the host costs less than dumping it again: it has more
    links than the plan's touched namespaces (plus the networks') send notifications."""
    namespaces = len(touched.netns | touched.listed | touched.removed) + 1
    return namespaces * LINKS_PER_TOUCHED_NAMESPACE < host_links
