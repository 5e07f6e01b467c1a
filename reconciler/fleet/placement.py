"""Placement: the share of a fleet's manifests that one host realizes (pure).

One GitOps directory describes the whole fleet; each host applies it and
realizes its own share: the sandboxes placed on it (`spec.host`) or placed
nowhere (single-host manifests keep working unchanged), their endpoints, the
cluster-scoped (overlay) networks they join, and every host-local network
(bridge, macvlan, ...) as before. Objects placed elsewhere are not this host's
to create, change or delete: they are left out of its desired state, and its
kernel never holds them.
"""

from __future__ import annotations

from reconciler.drivers import is_cluster_scoped
from reconciler.errors import CnmError
from reconciler.manifest_set import Manifests
from reconciler.model import Network


class NoStoreError(CnmError):
    """Manifests with an overlay network this host realizes, and no store for its facts."""


def cluster_networks(manifests: Manifests) -> list[Network]:
    """The networks whose addresses and peers the cluster store keeps, in name order."""
    return [n for n in manifests.networks.values() if is_cluster_scoped(n.spec.driver)]


def needs_fleet(manifests: Manifests) -> bool:
    """True when these manifests mean a fleet: a cluster-scoped network or a placement."""
    return bool(cluster_networks(manifests)) or any(
        s.spec.host is not None for s in manifests.sandboxes.values())


def host_share(manifests: Manifests, host: str) -> Manifests:
    """What `host` realizes of `manifests`."""
    if not needs_fleet(manifests):
        return manifests
    sandboxes = {name: s for name, s in manifests.sandboxes.items()
                 if s.spec.host is None or s.spec.host == host}
    joined = {name: e for name, e in manifests.endpoints.items()
              if e.spec.sandbox is not None and e.spec.sandbox in sandboxes}
    used = {e.spec.network for e in joined.values()}
    networks = {name: n for name, n in manifests.networks.items()
                if name in used or not is_cluster_scoped(n.spec.driver)}
    endpoints = dict(joined)
    endpoints.update({name: e for name, e in manifests.endpoints.items()
                      if e.spec.sandbox is None and e.spec.network in networks})
    return Manifests(networks=networks, sandboxes=sandboxes, endpoints=endpoints,
                     sources=manifests.sources)


def refuse_overlay_without_store(manifests: Manifests, host: str) -> None:
    """An overlay network `host` realizes needs the store: one line naming --store."""
    overlay = cluster_networks(host_share(manifests, host))
    if overlay:
        raise NoStoreError(f"{overlay[0].key} is an overlay network: its addresses and peers "
                           "live in the cluster store; give --store etcd://IP:PORT (or CNM_STORE)")
