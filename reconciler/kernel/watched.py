"""The observation of `cnm watch`: a `LiveObservation` kept current by notifications.

The host's links, addresses, routes and bridge ports come from the host's
notifications (`events.HostTable`); a notification from a sandbox namespace
marks that namespace to be read again. The namespaces of owned sandboxes are
followed (subscribed to) as they appear and let go of before an apply removes
them: a subscription socket keeps its namespace alive. The pipeline reads it
like any other observation (`pipeline.Observation`).

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


class WatchedObservation:
    """`LiveObservation` of `set_name` plus the subscriptions that keep it current.

    `phases` is where the namespace reads are counted (as "reads"), for the
    timings `cnm watch --verbose` logs.
    """

    def __init__(self, set_name: str, selector: selectors.BaseSelector,
                 phases: dict[str, float]) -> None:
        self.live = LiveObservation(set_name, host_events=True)
        self.events = KernelEvents(selector, host_table=self.live.host_table)
        self._phases = phases

    @property
    def identities(self) -> Mapping[str, Any]:
        return self.live.identities

    def notified(self, namespace: str | None) -> str | None:
        """Take the notifications of `namespace` (None: the host); what changed (for the
        log), or None when nothing observation reads did."""
        return self._changed(namespace) if self.events.drain(namespace) else None

    def nftables_notified(self) -> bool:
        """Take nftables' notifications; True when cnm's tables are to be read again."""
        if not self.events.drain_nftables():
            return False
        self.live.mark_firewall()
        return True

    def _changed(self, namespace: str | None) -> str:
        if namespace is None:
            self.live.mark_host()
            return "host"
        self.live.mark(namespace)
        return f"netns {namespace}"

    def state(self) -> State:
        """The observed state now: the notifications so far taken first, the namespaces
        of owned sandboxes followed."""
        for namespace in self.events.drain_all():
            self._changed(namespace)
        self.nftables_notified()
        state = self.live.state()
        reads = self.live.last_reads
        added = self.events.follow(self.live.owned_netns())
        if added:  # notifications before the subscription were missed: read those again
            for name in added:
                self.live.mark(name)
            state = self.live.state()
            reads += self.live.last_reads
        self._phases["reads"] = self._phases.get("reads", 0) + reads
        return state

    def mark_touched(self, touched: Touched) -> None:
        for name in touched.removed:
            self.events.release(name)  # our socket would keep the namespace alive
        self.live.mark_touched(touched)

    def reload_host(self) -> None:
        self.live.reload_host()

    def close(self) -> None:
        self.events.close()
