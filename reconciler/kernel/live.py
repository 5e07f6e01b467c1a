"""The observed state of one apply set: read once, then again only where it changed.

Every observation goes through `LiveObservation`: a one-shot command is a
fresh one (`state()` reads everything), a long-running `cnm watch` keeps one
for its whole life. It holds one observation fragment per namespace (the
host's links and addresses, each named namespace's links, addresses, routes
and files) and re-reads only the namespaces marked dirty: by kernel
notifications (`kernel/events.py`), file events under /etc/netns, or what an
apply touched (`mark_touched`, for its verification). Fragments are read and
assembled by `kernel/observe.py`.

Read-only.
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

from reconciler import caching, firewall
from reconciler.caching import BuildMemo
from reconciler.firewall.foreign import HostFirewall
from reconciler.firewall.host_accept import with_host_firewall
from reconciler.host_settings import forwarding_settings
from reconciler.kernel import brport, host_firewall, netns, nft, resolver, sysctl
from reconciler.kernel.events import HostTable
from reconciler.kernel.observe import Fragment, assemble_endpoints, read_host, sharers
from reconciler.kernel.parallel import read_namespaces, with_files_read
from reconciler.kernel.rtnl import Rtnl
from reconciler.kernel.session import KernelSession
from reconciler.plan import Touched
from reconciler.state import Resource, ResourceKey, State


class LiveObservation:
    """Per-namespace observation fragments of `set_name`; `state()` refreshes what is dirty.

    The host namespace (where the links of a big host are: a bridge per network,
    a veth end per endpoint) is not dumped again on each change: with
    `host_events`, `host_table` is kept current from the host's notifications
    (`KernelEvents(..., host_table=live.host_table)`), and observation reads it.
    Without, marking the host dirty dumps it again.
    """

    def __init__(self, set_name: str, *, host_events: bool = False) -> None:
        self.set_name = set_name
        self.host_table = HostTable()
        self._host_events = host_events
        self._host: Fragment | None = None
        self._fragments: dict[str, Fragment] = {}
        self._names: list[str] | None = None  # named namespaces; None: list them again
        self._check: set[str] = set()  # names under /run/netns to look at again
        self._dirty: set[str] = set()
        self._files_dirty: set[str] = set()  # namespaces whose sandbox files alone changed
        self._state: State | None = None
        self._last: State | None = None  # last assembled state
        self._last_host: Fragment | None = None
        #: netns -> (sandbox, digest) an apply writes on `lo` where only files are read again
        self._relabelled: dict[str, tuple[ResourceKey, str]] = {}
        #: How many namespace reads the last `state()` did (for logs and benchmarks).
        self.last_reads = 0
        #: endpoint name -> (host end, sandbox end, network, parent, resource) it came from
        self._endpoints: dict[str, tuple[object, object, object, object, Resource]] = {}
        #: netns name -> (identity, `lo` marker) as last read (see KernelSession.netns_seen)
        self.identities: dict[str, Any] = {}
        self._ruleset: firewall.Ruleset | None = None  # cnm's nftables tables; None: read again
        self._host_firewall = HostFirewall()  # the other tables, read with `_ruleset`
        #: (base state, firewall inputs, observed state) of the last `_with_firewall`
        self._final: tuple[State, tuple[object, ...], State] | None = None
        #: (state, ruleset, the state with other sets' icc) of `_with_shared_icc`
        self._icc_view: tuple[State, object, State] | None = None
        #: endpoint views of the last `firewall.attach` (see there)
        self._views: BuildMemo[ResourceKey, Resource] = BuildMemo()
        #: the set's resolver as last read, and (base, resolver, state) of the last merge
        self._resolver: Resource | None = None
        self._with_resolver: tuple[State, Resource | None, State] | None = None

    # --- invalidation ---

    def mark_host(self) -> None:
        """The host changed: observe it again (from `host_table` when events keep it)."""
        if not self._host_events:
            self.host_table.valid = False
        self._host = None
        self._state = None

    def follow_host_events(self) -> None:
        """From now on `host_table` is kept current from the host's notifications by the
        caller (`kernel/applying.py`): marking the host reads it from the table."""
        self._host_events = True

    def host_links(self) -> int:
        """How many links the host had when last dumped (0 before the first dump)."""
        return len(self.host_table.links()) if self.host_table.valid else 0

    def reload_host(self) -> None:
        """Dump the host namespace again, whatever the notifications said (they lag
        behind the kernel: see `pipeline.verify`)."""
        self.host_table.valid = False
        self.mark_host()

    def mark(self, name: str) -> None:
        self._dirty.add(name)
        self._state = None

    def mark_files(self, name: str) -> None:
        """Only the sandbox files of netns `name` may have changed: read just those."""
        self._files_dirty.add(name)
        self._state = None

    def mark_touched(self, touched: Touched) -> None:
        """Mark what an apply may change (`plan.touched`), and nothing else."""
        if touched.host:
            self.mark_host()  # bridges and host ends of veth pairs
        if touched.firewall:
            self.mark_firewall()  # the plan's firewall step rewrote cnm's tables
        for name in touched.listed:
            self.mark_netns(name)
        for name in touched.netns:
            self.mark(name)
        for name in touched.files:
            self.mark_files(name)
        self._relabelled.update(touched.relabelled)

    def mark_netns_list(self) -> None:
        """/run/netns changed in unknown ways: list it again."""
        self._names = None
        self._state = None

    def mark_netns(self, name: str) -> None:
        """/run/netns/`name` may have appeared or gone: look at that one name again."""
        self._check.add(name)
        self._dirty.add(name)
        self._state = None

    def mark_firewall(self) -> None:
        """cnm's nftables tables may have changed: list them again."""
        self._ruleset = None
        self._state = None

    def mark_all(self) -> None:
        """Read everything again (what turns out unchanged keeps its objects)."""
        self._ruleset = None
        self.host_table.valid = False
        self._host = None
        self._names = None
        self._dirty |= set(self._fragments)
        self._state = None

    # --- reading ---

    def state(self) -> State:
        """The current observed state; reads only the namespaces marked since the last call.

        When what was read again turns out to be what was there before, the very
        same `State` object is returned, so callers can tell "nothing changed" by
        identity. With caches off (`caching.ENABLED`), everything is read and
        assembled again on every call.
        """
        if not caching.ENABLED:
            self.mark_all()
        self._read_resolver()  # always: a process dies without a notification
        if self._state is not None:
            self.last_reads = 0
            return self._state
        reads = 0
        changed = self._last is None
        with KernelSession() as session:
            if self._host is None:
                if not self.host_table.valid:
                    rtnl = session.rtnl(None)
                    self.host_table.load(rtnl.links(), rtnl.addresses(), rtnl.routes(),
                                         brport.hairpin_ports())
                    reads += 1
                host = Fragment(self.set_name)
                read_host(host, cast(Rtnl, self.host_table))
                if host != self._last_host:
                    self._last_host, changed = host, True
                self._host = self._last_host
            names = self._names
            if self._names is None:
                self._names = netns.list_netns()
                self._check.clear()
            elif self._check:
                self._names = self._recheck(self._names)
            changed = changed or names != self._names
            for gone in set(self._fragments) - set(self._names):
                del self._fragments[gone]
            todo = [n for n in self._names if n not in self._fragments or n in self._dirty]
            for name in todo:  # read whole: their markers come from the kernel
                self._relabelled.pop(name, None)
            for name, read in read_namespaces(self.set_name, todo).items():
                if isinstance(read, OSError):  # removed meanwhile: list again next time
                    self._fragments.pop(name, None)
                    self._names = None
                    changed = True
                    continue
                fragment, self.identities[name] = read
                reads += 1
                changed = self._keep(name, fragment) or changed
            for name in sorted(self._files_dirty - set(todo)):
                refreshed = self._with_files_read(name)
                if refreshed is not None:
                    reads += 1
                    changed = self._keep(name, refreshed) or changed
        self._dirty.clear()
        self._files_dirty.clear()
        self.last_reads = reads
        if changed or self._last is None or not caching.ENABLED:
            self._last = self._assemble()
        self._state = self._with_shared_icc(self._merged(self._with_firewall(self._last)))
        return self._state

    def _with_shared_icc(self, state: State) -> State:
        """`state` with `icc: False` on the other sets' networks whose icc rules say so: an
        endpoint of this set on one needs a drop of its own (shared_networks.py).
        The same object when there is none, or for the same `state` as last time."""
        if not state.borrowable or self._ruleset is None:
            return state
        previous = self._icc_view
        if previous is not None and previous[0] is state and previous[1] is self._ruleset:
            return previous[2]
        off = set()
        for rule in self._ruleset.rules:
            parsed = firewall.parse_comment(rule.comment)
            if parsed is not None and parsed[1] == "icc" and parsed[0].kind == "Network":
                off.add((parsed[0].set_name, parsed[0].name))
        marked = {name: network.extended({"icc": False})
                  for name, network in state.borrowable.items()
                  if (network.set_name, name) in off}
        shared = dataclasses.replace(state, borrowable={**state.borrowable, **marked}) \
            if marked else state
        self._icc_view = (state, self._ruleset, shared)
        return shared

    def _read_resolver(self) -> None:
        """Read the set's resolver (its files, its process, one status query); keep the
        previous object when equal, so an unchanged state stays the same object."""
        current = resolver.observe(self.set_name)
        if current != self._resolver or not caching.ENABLED:
            self._resolver = current
            self._state = None

    def _merged(self, base: State) -> State:
        """`base` with the resolver in it (the same object for the same two inputs)."""
        previous = self._with_resolver
        if previous is not None and previous[0] is base and previous[1] is self._resolver \
                and caching.ENABLED:
            return previous[2]
        state = base
        if self._resolver is not None:
            resources = dict(base.resources)
            resources[self._resolver.key] = self._resolver
            # everything else of `base` (host settings, marker digests, the host's
            # firewall) stays as observed
            state = dataclasses.replace(base, resources=resources)
        self._with_resolver = (base, self._resolver, state)
        return state

    def _keep(self, name: str, fragment: Fragment) -> bool:
        """Store a fragment read again; True when it differs from the one it replaces."""
        old = self._fragments.get(name)
        if old == fragment and caching.ENABLED:
            return False
        if old is not None and caching.ENABLED:
            # Keep the parts that did not change, as they were: the endpoint cache of
            # `_assemble_endpoints` recognises an unchanged end by identity.
            for end, peer in fragment.peer_ends.items():
                if old.peer_ends.get(end) == peer:
                    fragment.peer_ends[end] = old.peer_ends[end]
        self._fragments[name] = fragment
        return True

    def _with_files_read(self, name: str) -> Fragment | None:
        """The fragment of `name` with its sandbox files read again (links and addresses
        kept), or None when there is no fragment to refresh."""
        old = self._fragments.get(name)
        if old is None:
            return None
        fresh = with_files_read(old, name)
        label = self._relabelled.pop(name, None)
        if label is not None:  # what the apply wrote on `lo` (a new dict: `_keep` compares)
            fresh = dataclasses.replace(fresh, applied_digests={**fresh.applied_digests,
                                                               label[0]: label[1]})
        return fresh

    def _with_firewall(self, base: State) -> State:
        """`base` with its firewall attributes: cnm's nftables tables, the forwarding
        switches, the hairpin flags of bridge ports and the bridges' `route_localnet`."""
        if self._ruleset is None:
            self._ruleset = nft.read_ruleset()
            self._host_firewall = host_firewall.read()  # read with cnm's tables, kept as long
        ports = {name: on for name, (_, on) in self.host_table.ports().items()}
        forwarding = sysctl.forwarding()
        localnet = sysctl.route_localnet(firewall.bridge_names(base))
        inputs = (self._ruleset, tuple(sorted(forwarding.items())), tuple(sorted(ports.items())),
                  tuple(sorted(localnet.items())))
        # The ruleset object is replaced whenever cnm's tables are read again, and a
        # base state object is assembled anew whenever a fragment changed: the same
        # objects and equal switches are the same inputs of `firewall.attach`.
        previous = self._final if caching.ENABLED else None
        if previous is not None and previous[1][0] is self._ruleset \
                and previous[1][1:] == inputs[1:]:
            if previous[0] is base:
                return previous[2]
            state = _sandboxes_swapped(previous[0], previous[2], base, self._ruleset)
            if state is not None:  # only sandboxes changed: the firewall does not see them
                self._final = (base, inputs, state)
                return state
        state = firewall.attach(base, self._ruleset, forwarding, ports, self._views, localnet)
        state = dataclasses.replace(state, host_settings=forwarding_settings(forwarding),
                                    applied_digests=base.applied_digests)
        state = with_host_firewall(state, self._host_firewall)
        self._final = (base, inputs, state)
        return state

    def _recheck(self, names: list[str]) -> list[str]:
        """`names` with the checked ones added or removed as /run/netns shows them now.

        A name whose file exists but is not (yet) a namespace, as between the
        creation of the file and its bind mount, stays to be checked again.
        """
        current = set(names)
        waiting: set[str] = set()
        for name in self._check:
            path = netns.netns_path(name)
            if netns.is_netns(path):
                current.add(name)
            else:
                current.discard(name)
                if path.exists():
                    waiting.add(name)
        self._check = waiting
        return sorted(current)

    def _assemble(self) -> State:
        assert self._host is not None
        merged = Fragment(self.set_name)
        parts = [self._host, *(self._fragments[n] for n in sorted(self._fragments))]
        for part in parts:
            merged.resources.update(part.resources)
            merged.occupied.update(part.occupied)
            merged.orphans |= part.orphans
            merged.reserved_prefixes |= part.reserved_prefixes
            merged.bridge_networks.update(part.bridge_networks)
            merged.host_ends.update(part.host_ends)
            merged.host_link_names.update(part.host_link_names)
            merged.peer_ends.update(part.peer_ends)
            for key, digest in part.applied_digests.items():
                merged.applied_digests.setdefault(key, digest)
            merged.foreign_bridges.update(part.foreign_bridges)
            merged.borrowable.update(part.borrowable)
            merged.foreign_ports.update(part.foreign_ports)
            merged.foreign_ends.update(part.foreign_ends)
        self._assemble_endpoints(merged)
        return State(self.set_name, merged.resources, merged.occupied, frozenset(merged.orphans),
                     frozenset(merged.reserved_prefixes),
                     applied_digests={k: d for k, d in merged.applied_digests.items()
                                      if k in merged.resources},
                     borrowable=merged.borrowable, sharers=sharers(merged))

    def _assemble_endpoints(self, merged: Fragment) -> None:
        """Endpoints from their two ends; one whose ends were not read again is reused."""
        todo = Fragment(self.set_name)
        todo.bridge_networks = merged.bridge_networks
        todo.foreign_bridges = merged.foreign_bridges
        todo.host_link_names = merged.host_link_names
        inputs: dict[str, tuple[object, object, object, object]] = {}
        for name in set(merged.host_ends) | set(merged.peer_ends):
            host, peer = merged.host_ends.get(name), merged.peer_ends.get(name)
            master = (host.master or -1) if host is not None else -1
            network = merged.bridge_networks.get(master) or merged.foreign_bridges.get(master)
            parent = merged.host_link_names.get(peer.link.peer_index or -1) if peer else None
            inputs[name] = (host, peer, network, parent)
            # Identity of both ends (see `_keep`) and equality of the two lookups the
            # drivers make (`Driver.observe_endpoint`) mean the same inputs, hence the
            # same resource.
            cached = self._endpoints.get(name) if caching.ENABLED else None
            if cached is not None and cached[0] is host and cached[1] is peer \
                    and cached[2:4] == (network, parent):
                merged.resources[cached[4].key] = cached[4]
                continue
            if host is not None:
                todo.host_ends[name] = host
            if peer is not None:
                todo.peer_ends[name] = peer
        assemble_endpoints(todo)
        for key, resource in todo.resources.items():  # endpoints only
            merged.resources[key] = resource
            self._endpoints[key.name] = (*inputs[key.name], resource)
        for gone in set(self._endpoints) - set(inputs):
            del self._endpoints[gone]

    def owned_netns(self) -> set[str]:
        """Named namespaces of this set's sandboxes, as last read."""
        state = self._state if self._state is not None else self.state()
        return {str(r.get("netns")) for r in state.of_kind("Sandbox")}


def _sandboxes_swapped(
    old_base: State, old_final: State, base: State, ruleset: firewall.Ruleset
) -> State | None:
    """`firewall.attach(base, ...)` from its result for `old_base`, when the two bases
    differ only in Sandbox resources (no firewall rule has a sandbox for its owner, so
    attach passes them through); None otherwise."""
    if old_base.orphans != base.orphans or old_base.reserved_prefixes != base.reserved_prefixes:
        return None
    others_old = {k: r for k, r in old_base.resources.items() if k.kind != "Sandbox"}
    others_new = {k: r for k, r in base.resources.items() if k.kind != "Sandbox"}
    if others_old.keys() != others_new.keys() or any(
        others_new[k] is not r for k, r in others_old.items()
    ):
        return None
    resources = {k: r for k, r in old_final.resources.items() if k.kind != "Sandbox"}
    resources.update((k, r) for k, r in base.resources.items() if k.kind == "Sandbox")
    # everything else the final state carries (host settings, the host's firewall) is
    # the firewall stage's and unchanged; the marker digests are the new base's
    return dataclasses.replace(
        old_final, resources=resources, occupied={**base.occupied, **firewall.occupied(ruleset)},
        applied_digests=base.applied_digests, borrowable=base.borrowable, sharers=base.sharers)
