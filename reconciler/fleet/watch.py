"""`cnm watch` with a store: the watch loop, plus the store's changes and a liveness lease.

A thread follows etcd's watch API on the prefix (its own connection: a
`ClusterStore` is not shared between threads) and wakes the loop on every
change, so a peer's new endpoint is programmed here within the debounce of
its publication. The same thread keeps this host's lease-backed liveness key.
Each reconcile is `cnm apply`'s with a store (session.py): plan from the
store's view, claim, apply, settle.

Losing the store changes nothing in the data plane: a reconcile that cannot
read the view fails before its first change and is retried with the loop's
backoff; the thread reconnects with its own backoff and, once the store is
back, wakes a reconcile.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

from reconciler import engine, pipeline
from reconciler.fleet.planner import HostFacts
from reconciler.fleet.records import ClusterView, StoreConfig
from reconciler.fleet.session import FleetPlanner, settle
from reconciler.fleet.store import ClusterStore, StoreUnavailable
from reconciler.manifest_set import Manifests
from reconciler.pipeline import ApplyOptions, ApplyResult, Hooks
from reconciler.state import State
from reconciler.watch import Log, Watcher, WatchOptions

#: Seconds the liveness lease lasts without a refresh (`cluster status` shows the host
#: as gone after that); refreshed every third of it
LEASE_TTL = 10
#: Reconnection backoff of the store thread: first and longest wait, in seconds
RECONNECT_FIRST, RECONNECT_MAX = 0.5, 8.0


def _peers_of(view: ClusterView) -> tuple[object, ...]:
    """What of a view this host's kernel holds: VNIs, memberships, endpoint records."""
    return (view.vnis, view.members, view.endpoints)


class FleetWatcher(Watcher):
    def __init__(self, options: WatchOptions, log: Log, facts: HostFacts,
                 config: StoreConfig | None) -> None:
        super().__init__(options, log)
        self.facts = facts
        self.config = config
        self.store: ClusterStore | None = None  # the loop's own connection
        self.store_news = threading.Event()

    def run(self) -> int:
        follower = None
        if self.config is not None:
            follower = threading.Thread(target=self._follow_store, name="cnm-watch-store",
                                        daemon=True)
            follower.start()
        try:
            return super().run()
        finally:
            self.stop_event.set()
            if follower is not None:
                follower.join(timeout=3.0)
            if self.store is not None:
                self.store.close()

    # --- the store thread ---

    def _follow_store(self) -> None:
        assert self.config is not None
        backoff = RECONNECT_FIRST
        lost: str | None = None
        while not self.stop_event.is_set():
            try:
                with ClusterStore.open(self.config) as store:
                    lease = store.keep_alive(self.facts.host, self.facts.advertise, LEASE_TTL)
                    first = store.read()
                    revision, seen = first.revision, _peers_of(first)
                    if lost is not None:
                        self._log(f"store {self.config.url} is back; reconciling")
                        lost = None
                    self._store_changed()
                    backoff = RECONNECT_FIRST
                    refreshed = time.monotonic()
                    for view in store.watch(revision, tick=1.0):
                        if self.stop_event.is_set():
                            with contextlib.suppress(StoreUnavailable):
                                lease.revoke()
                            return
                        if time.monotonic() - refreshed > LEASE_TTL / 3:
                            lease.refresh()
                            refreshed = time.monotonic()
                        # Only what peers program into this kernel wakes a reconcile:
                        # an address another host claims (before it creates the
                        # endpoint) changes nothing here, and its reconcile would delay
                        # the one its publication needs.
                        if view is not None and _peers_of(view) != seen:
                            seen = _peers_of(view)
                            self._store_changed()
            except Exception as exc:  # noqa: BLE001 - the thread must outlive any store error
                error = exc.one_line() if isinstance(exc, StoreUnavailable) \
                    else f"store {self.config.url}: {exc!r}"
                if lost != error:
                    self._log(f"{error}; the data plane stays as it is; retrying "
                              f"(every {RECONNECT_MAX:g} s at most)")
                    lost = error
                self.stop_event.wait(backoff)
                backoff = min(RECONNECT_MAX, backoff * 2)

    def _store_changed(self) -> None:
        self.store_news.set()
        with contextlib.suppress(OSError):
            os.write(self.wake_write, b"c")

    # --- the loop ---

    def _wait(self, timeout: float) -> None:
        super()._wait(timeout)
        if self.store_news.is_set():
            self.store_news.clear()
            self.pending.kernel.add("store")

    def _converge(self, manifests: Manifests) -> ApplyResult:
        if self.store is None and self.config is not None:
            self.store = ClusterStore.open(self.config)
        store = self.store  # None: placement only (--host without --store)

        def check(fleet: Manifests, observed: State) -> None:
            engine.check_not_empty(fleet, observed, self.options.allow_empty)

        planner = FleetPlanner(manifests, self.facts, store, caches=self.plan_caches, check=check)
        try:
            result = pipeline.run(
                self.observation, planner, ApplyOptions(self.options.lock_timeout),
                Hooks(confirm=planner.confirm_then_claim(None), progress=self._step,
                      phase=self._lap))
            assert isinstance(result, ApplyResult)  # the hook only claims
            if planner.last is not None and store is not None:
                planner.claim()
                settle(store, planner.last.view, result.planned.desired, self.facts)
        except StoreUnavailable:
            self.store = None  # connect again on the next try
            if store is not None:
                store.close()
            raise
        return result
