"""Networks shared between apply sets: pure planning rules.

An endpoint of set B may join a Network that B's manifests do not define but
that another set, A, owns in the kernel (its bridge carries A's marker). The
network stays A's: A's manifests keep its settings and its per-network
firewall rules (isolation, icc, masquerade, localhost), which match the bridge
and so serve B's endpoint too; B owns only its endpoint (the veth pair, its
addresses, its published ports and their rules, all marked with B's set).

Here:

* `BorrowedNetwork`: the Network B's endpoints join, rebuilt from the kernel's
  view of A's bridge (driver, bridge, MTU, subnets and gateways), so that
  validation, IPAM and the drivers see an ordinary network. It yields no
  resource of B's (`desired.build_desired` skips it), and B's resolver does
  not serve it (names do not cross sets: docs/contract.md).
* `reserve_shared`: addresses other sets' endpoints hold on a network (the
  kernel is the state: `State.sharers`, read by observation) are reserved,
  so neither set hands out an address the other uses.
* `refuse_shared_deletes`: deleting or replacing a network another set's
  endpoints still use is refused before any change, naming them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from reconciler import caching
from reconciler.errors import ConflictError, ManifestError, ManifestProblem
from reconciler.manifest_set import Manifests
from reconciler.model import IpamPool, Network
from reconciler.state import Resource, ResourceKey, State


class BorrowedNetwork(Network):
    """A Network of another apply set (`owner_set`), as the kernel shows it."""

    owner_set: str = ""


def is_borrowed(network: Network) -> bool:
    return isinstance(network, BorrowedNetwork)


def owner_set(network: Network, set_name: str) -> str:
    """The apply set that owns `network` (`set_name` for the set's own networks)."""
    return network.owner_set if isinstance(network, BorrowedNetwork) else set_name


def sharing_key(set_name: str, network: str) -> str:
    """How `State.sharers` names a network: its owner set and its name."""
    return f"{set_name}/{network}"


def network_of(resource: Resource) -> BorrowedNetwork:
    """The model of another set's Network resource (as observation reads a bridge): its
    driver's manifest fields for it, as `cnm export` writes them."""
    from reconciler.drivers import driver_of

    gateways = {str(ipaddress.ip_interface(str(a)).network): str(ipaddress.ip_interface(str(a)).ip)
                for a in _texts(resource.get("addresses"))}
    pools: list[dict[str, Any]] = []
    for subnet in _texts(resource.get("subnets")):
        pool: dict[str, Any] = {"subnet": subnet}
        if subnet in gateways:
            pool["gateway"] = gateways[subnet]
        pools.append(pool)
    driver = driver_of(resource)
    spec: dict[str, Any] = driver.network_spec(resource, pools) if driver is not None else {}
    spec = {**spec, "driver": resource.get("driver"), "ipam": pools}
    return BorrowedNetwork.model_validate({
        "metadata": {"name": resource.key.name}, "spec": spec,
        "owner_set": resource.set_name,
    })


_last_models: list[tuple[Mapping[str, Resource], dict[str, Network]]] = []


def networks_of(borrowable: Mapping[str, Resource]) -> dict[str, Network]:
    """`network_of` each of `borrowable` (`cnm watch` asks with the same mapping again and
    again while nothing changed: the last answer is kept)."""
    if caching.ENABLED and _last_models and _last_models[0][0] is borrowable:
        return _last_models[0][1]
    models: dict[str, Network] = {}
    for name, resource in borrowable.items():
        try:
            models[name] = network_of(resource)
        except ValueError:  # a bridge no manifest could describe: nothing to join
            continue
    _last_models[:] = [(borrowable, models)]
    return models


def _texts(value: object) -> list[str]:
    if isinstance(value, tuple):
        return [str(v) for v in value]
    return [] if value is None else [str(value)]


def referenced_elsewhere(manifests: Manifests) -> set[str]:
    """Networks the manifests' endpoints name but do not define."""
    return {e.spec.network for e in manifests.endpoints.values()} - set(manifests.networks)


def borrowed_now(manifests: Manifests, observed: State) -> Manifests:
    """`manifests` with each borrowed network as the kernel shows it now, under the lock
    (the manifests were loaded before it was taken), its `icc` included (observation
    reads it from the owner's rules); a network no longer the other set's is a problem."""
    problems = []
    changed: dict[str, Network] = {}
    for name, network in manifests.networks.items():
        if not isinstance(network, BorrowedNetwork):
            continue
        now = observed.borrowable.get(name)
        model: Network | None = None
        if now is not None and now.set_name == network.owner_set:
            try:
                model = network_of(now)
            except ValueError:
                model = None
        if model is None:
            for endpoint in manifests.endpoints_of_network(name):
                source = manifests.source_of(endpoint.key)
                problems.append(ManifestProblem(
                    source.file, source.line, str(endpoint.key), "spec.network",
                    f"network \"{name}\" of apply set '{network.owner_set}' is no longer in "
                    "the kernel"))
        elif model != network:
            changed[name] = model
    if problems:
        raise ManifestError(problems)
    return _with_networks(manifests, changed)


def _with_networks(manifests: Manifests, changed: Mapping[str, Network]) -> Manifests:
    if not changed:
        return manifests
    return Manifests(networks={**manifests.networks, **changed},
                     sandboxes=manifests.sandboxes, endpoints=manifests.endpoints,
                     sources=manifests.sources, duplicates=manifests.duplicates)


def reserve_shared(manifests: Manifests, observed: State) -> Manifests:
    """`manifests` with every address other sets' endpoints hold on each network (own or
    borrowed) reserved in its pool, so IPAM never hands it out here."""
    if not observed.sharers:
        return manifests
    changed: dict[str, Network] = {}
    for name, network in manifests.networks.items():
        users = observed.sharers.get(sharing_key(owner_set(network, observed.set_name), name))
        if not users:
            continue
        held: dict[str, ipaddress.IPv4Address | ipaddress.IPv6Address] = {}
        for user_set, endpoint, addresses in users:
            if user_set == observed.set_name:
                continue  # this set's own endpoints are its IPAM's business
            for index, text in enumerate(addresses):
                held[f"held-by-{user_set}-{endpoint}-{index}"] = \
                    ipaddress.ip_interface(text).ip
        if held:
            changed[name] = network.model_copy(update={"spec": network.spec.model_copy(
                update={"ipam": [_reserved(pool, held) for pool in network.spec.ipam]})})
    return _with_networks(manifests, changed)


def _reserved(pool: IpamPool, held: Mapping[str, Any]) -> IpamPool:
    inside = {k: a for k, a in held.items() if a in pool.subnet}
    if not inside:
        return pool
    return pool.model_copy(update={"aux_addresses": {**pool.aux_addresses, **inside}})


def users_text(users: tuple[tuple[str, str, tuple[str, ...]], ...], set_name: str) -> str:
    return ", ".join(f"Endpoint/{endpoint} of set '{user_set}'"
                     for user_set, endpoint, _ in sorted(users) if user_set != set_name)


def refuse_shared_deletes(actions: list[tuple[str, ResourceKey]], observed: State) -> None:
    """Refuse (ConflictError, before any change) to delete or replace a network of this
    set that another set's endpoints still use, naming them."""
    refused = []
    for verb, key in actions:
        if key.kind != "Network" or verb not in ("delete", "replace"):
            continue
        users = observed.sharers.get(sharing_key(observed.set_name, key.name), ())
        named = users_text(users, observed.set_name)
        if named:
            refused.append(f"cannot {verb} {key}: another apply set still uses it ({named}); "
                           "delete those endpoints first")
    if refused:
        raise ConflictError("; ".join(refused))
