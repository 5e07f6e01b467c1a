"""The libnetwork-style Python API: `Controller`, `Network`, `Endpoint`, `Sandbox`.

Mirrors libnetwork's usage example::

    controller = Controller()
    controller.configure_network_driver("bridge", {"mtu": 1450})
    network = controller.new_network("bridge", "network1", subnet="10.99.0.0/24")
    ep = network.create_endpoint("endpoint1")
    sandbox_key = ep.join("container1", hostname="test", domainname="docker.io")
    ep.leave("container1"); ep.delete(); network.delete()

Every call edits the desired state of one apply set (default `api`) and
converges the kernel through the same plan/apply engine as the CLI, verified
afterwards. There is no API database: a new `Controller`, in any process,
rebuilds its desired state from the kernel (the objects the set owns).

Two things only live in the controller that made them, because the kernel
has nothing to show for them: an endpoint that has not joined a sandbox, and
`configure_network_driver` options (they apply to networks created later).
A sandbox exists while at least one endpoint is joined to it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from reconciler import engine
from reconciler.caching import PlanCaches
from reconciler.drivers import HOST_SANDBOX_KEY, REGISTRY, driver_for
from reconciler.errors import CnmError, ManifestError, ManifestProblem
from reconciler.export import export_state
from reconciler.kernel.netns import NETNS_RUN_DIR
from reconciler.manifest_set import Manifests, ManifestSource
from reconciler.model import (
    MODELS,
    Manifest,
)
from reconciler.model import (
    Endpoint as EndpointManifest,
)
from reconciler.model import (
    Network as NetworkManifest,
)
from reconciler.model import (
    Sandbox as SandboxManifest,
)
from reconciler.naming import DNS_LABEL_RE
from reconciler.pools import DEFAULT_POOLS, AddressPool
from reconciler.state import State
from reconciler.validation import validate

API_SOURCE = "<api>"
#: Options `configure_network_driver` accepts, per driver (the NetworkSpec fields).
DRIVER_OPTIONS: Mapping[str, frozenset[str]] = {
    name: driver.options for name, driver in REGISTRY.items()
}


class NotFoundError(CnmError):
    """No object of that kind and name in this controller's apply set."""


class AlreadyExistsError(CnmError):
    """An object of that kind and name already exists."""


class InUseError(CnmError):
    """The object is still in use (a network with endpoints, a joined endpoint)."""


class InvalidNameError(CnmError, ValueError):
    """A name cnm cannot keep as written (names are lower-case DNS labels)."""


def object_name(kind: str, name: str) -> str:
    """`name` as written, or InvalidNameError: cnm never changes a name it is given.

    Names end up in the kernel's ownership markers and in manifests, where they are
    lower-case DNS labels; libnetwork's "Endpoint1" would have to become another
    name, and a silently changed name is one the caller cannot look up again.
    """
    if isinstance(name, str) and DNS_LABEL_RE.fullmatch(name):
        return name
    hint = ""
    if isinstance(name, str) and DNS_LABEL_RE.fullmatch(name.lower()):
        hint = f"; write {name.lower()!r}"
    raise InvalidNameError(
        f"{kind} name {name!r} is refused: names are lower-case DNS labels (a-z, 0-9 and "
        f"'-' inside, at most 63 characters), kept exactly as written{hint}"
    )


def _invalid(kind: str, name: str, exc: ValidationError) -> ManifestError:
    problems = []
    for error in exc.errors():
        path = ".".join(str(part) for part in error["loc"])
        problems.append(ManifestProblem(API_SOURCE, None, f"{kind}/{name}", path or None,
                                        error["msg"]))
    return ManifestError(problems)


class Controller:
    """Entry point of the API: one apply set of networks, endpoints and sandboxes."""

    def __init__(
        self,
        *,
        set_name: str = "api",
        default_address_pools: Sequence[str] | None = None,
        lock_timeout: float = 60.0,
    ) -> None:
        self.set_name = set_name
        self._pools = (
            tuple(AddressPool.parse(p) for p in default_address_pools)
            if default_address_pools else DEFAULT_POOLS
        )
        self._lock_timeout = lock_timeout
        self._driver_options: dict[str, dict[str, Any]] = {}
        #: what planning keeps from one call to the next (caching.py)
        self._plan_caches = PlanCaches()
        self._objects: dict[tuple[str, str], Manifest] = self._from_kernel()

    # --- desired state ----------------------------------------------------

    def _from_kernel(self) -> dict[tuple[str, str], Manifest]:
        """The desired state this set's kernel objects express (the kernel is the state)."""
        exported = export_state(engine.observe_set(self.set_name))
        objects: dict[tuple[str, str], Manifest] = {}
        for document in exported.documents:
            obj = MODELS[document["kind"]].model_validate(document)
            objects[(obj.kind, obj.metadata.name)] = obj
        return objects

    def _manifests(self, objects: Mapping[tuple[str, str], Manifest]) -> Manifests:
        return Manifests.build(
            [(obj, ManifestSource(API_SOURCE, i + 1, None)) for i, obj in
             enumerate(sorted(objects.values(), key=lambda o: (o.kind, o.metadata.name)))]
        )

    def _converge(self, objects: dict[tuple[str, str], Manifest]) -> None:
        """Validate the new desired state, apply it, verify; keep it only if that worked."""
        manifests = self._manifests(objects)
        problems = validate(manifests)
        if problems:
            raise ManifestError(problems)

        def planner(observed: State) -> engine.Planned:
            return engine.compute_plan(manifests, observed, self._pools, self._plan_caches)

        engine.apply_planned(planner, self.set_name, lock_timeout=self._lock_timeout)
        self._objects = objects

    def _get(self, kind: str, name: str) -> Manifest:
        name = object_name(kind, name)
        found = self._objects.get((kind, name))
        if found is None:
            raise NotFoundError(f"{kind}/{name} does not exist in apply set '{self.set_name}'")
        return found

    def _with(self, *changes: Manifest, without: Sequence[tuple[str, str]] = ()) -> dict[
        tuple[str, str], Manifest
    ]:
        objects = {k: v for k, v in self._objects.items() if k not in without}
        objects.update({(obj.kind, obj.metadata.name): obj for obj in changes})
        return objects

    # --- the libnetwork calls ---------------------------------------------

    def configure_network_driver(self, driver: str, options: Mapping[str, Any]) -> None:
        """Defaults for networks of `driver` created from now on (e.g. {"mtu": 1450})."""
        allowed = DRIVER_OPTIONS.get(driver)
        if allowed is None:
            raise ManifestError([ManifestProblem(
                API_SOURCE, None, None, "driver",
                f"unknown driver {driver!r} (known: {', '.join(DRIVER_OPTIONS)})")])
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise ManifestError([ManifestProblem(
                API_SOURCE, None, None, f"options.{unknown[0]}",
                f"the {driver} driver takes no option {unknown[0]!r} "
                f"(known: {', '.join(sorted(allowed)) or 'none'})")])
        self._driver_options[driver] = dict(options)

    def new_network(self, driver: str, name: str, **options: Any) -> Network:
        """Create a network. Options are NetworkSpec fields (`mtu`, `ipam`, `parent`, ...);
        `subnet=`, `gateway=` and `ip_range=` are shorthands for a single IPAM pool."""
        name = object_name("Network", name)
        if ("Network", name) in self._objects:
            raise AlreadyExistsError(f"Network/{name} already exists")
        spec: dict[str, Any] = {"driver": driver, **self._driver_options.get(driver, {})}
        pool = {k: options.pop(k) for k in ("subnet", "gateway", "ip_range") if k in options}
        if pool:
            options.setdefault("ipam", []).append(pool)
        spec.update(options)
        try:
            manifest = NetworkManifest.model_validate(
                {"metadata": {"name": name}, "spec": spec}
            )
        except ValidationError as exc:
            raise _invalid("Network", name, exc) from exc
        self._converge(self._with(manifest))
        return Network(self, name)

    def networks(self) -> list[Network]:
        return [Network(self, name) for kind, name in sorted(self._objects) if kind == "Network"]

    def network_by_name(self, name: str) -> Network:
        self._get("Network", name)
        return Network(self, name)

    def endpoints(self) -> list[Endpoint]:
        return [Endpoint(self, name) for kind, name in sorted(self._objects) if kind == "Endpoint"]

    def endpoint_by_name(self, name: str) -> Endpoint:
        self._get("Endpoint", name)
        return Endpoint(self, name)

    def sandboxes(self) -> list[Sandbox]:
        return [Sandbox(self, name) for kind, name in sorted(self._objects) if kind == "Sandbox"]

    def sandbox_by_name(self, name: str) -> Sandbox:
        self._get("Sandbox", name)
        return Sandbox(self, name)

    def sandbox_by_key(self, key: str) -> Sandbox:
        """The sandbox whose key (`Sandbox.key`, e.g. /run/netns/NAME) is `key`."""
        for sandbox in self.sandboxes():
            if sandbox.key == key:
                return sandbox
        raise NotFoundError(f"no sandbox of apply set '{self.set_name}' has key {key!r}")

    def __iter__(self) -> Iterator[Network]:
        return iter(self.networks())


class Network:
    """A network of the controller's apply set (a handle: state lives in the controller)."""

    def __init__(self, controller: Controller, name: str) -> None:
        self.controller = controller
        self.name = object_name("Network", name)

    @property
    def manifest(self) -> NetworkManifest:
        found = self.controller._get("Network", self.name)
        assert isinstance(found, NetworkManifest)
        return found

    @property
    def driver(self) -> str:
        return self.manifest.spec.driver

    def create_endpoint(self, name: str, **options: Any) -> Endpoint:
        """Create an endpoint on this network. Options are EndpointSpec fields
        (`ipv4_address`, `mac_address`, `aliases`, `ifname`, `gateway`, ...).
        It gets an interface (and an address) when it joins a sandbox."""
        name = object_name("Endpoint", name)
        self.manifest  # noqa: B018 - raises NotFoundError if the network is gone
        if ("Endpoint", name) in self.controller._objects:
            raise AlreadyExistsError(f"Endpoint/{name} already exists")
        try:
            manifest = EndpointManifest.model_validate(
                {"metadata": {"name": name}, "spec": {**options, "network": self.name}}
            )
        except ValidationError as exc:
            raise _invalid("Endpoint", name, exc) from exc
        self.controller._converge(self.controller._with(manifest))
        return Endpoint(self.controller, name)

    def endpoints(self) -> list[Endpoint]:
        """The endpoints on this network, by name (libnetwork's `Network.Endpoints`)."""
        return [e for e in self.controller.endpoints() if e.manifest.spec.network == self.name]

    def endpoint_by_name(self, name: str) -> Endpoint:
        """The endpoint `name` on this network (libnetwork's `Network.EndpointByName`);
        NotFoundError when there is none, or when it is on another network."""
        endpoint = self.controller.endpoint_by_name(name)
        if endpoint.manifest.spec.network != self.name:
            raise NotFoundError(f"Endpoint/{endpoint.name} is not on Network/{self.name} "
                                f"(it is on Network/{endpoint.manifest.spec.network})")
        return endpoint

    def delete(self) -> None:
        """Delete the network; refused while endpoints exist (as libnetwork does)."""
        self.manifest  # noqa: B018
        if self.endpoints():
            names = ", ".join(e.name for e in self.endpoints())
            raise InUseError(
                f"Network/{self.name} has active endpoints ({names}); delete them first"
            )
        self.controller._converge(self.controller._with(without=[("Network", self.name)]))

    def __repr__(self) -> str:
        return f"Network({self.name!r}, driver={self.driver!r})"


class Endpoint:
    """An endpoint of the controller's apply set."""

    def __init__(self, controller: Controller, name: str) -> None:
        self.controller = controller
        self.name = object_name("Endpoint", name)

    @property
    def manifest(self) -> EndpointManifest:
        found = self.controller._get("Endpoint", self.name)
        assert isinstance(found, EndpointManifest)
        return found

    @property
    def network(self) -> Network:
        return Network(self.controller, self.manifest.spec.network)

    @property
    def sandbox(self) -> Sandbox | None:
        name = self.manifest.spec.sandbox
        return Sandbox(self.controller, name) if name is not None else None

    def join(self, sandbox: str, **options: Any) -> str:
        """Join sandbox `sandbox` (created if needed, with SandboxSpec options such as
        `hostname`, `domainname`, `dns`, `extra_hosts`); returns its sandbox key."""
        sandbox = object_name("Sandbox", sandbox)
        current = self.manifest
        if current.spec.sandbox is not None:
            raise InUseError(f"Endpoint/{self.name} is already joined to "
                             f"Sandbox/{current.spec.sandbox}; leave it first")
        changes: list[Manifest] = []
        existing = self.controller._objects.get(("Sandbox", sandbox))
        if existing is None or options:
            fields = dict(existing.spec.model_dump(exclude_defaults=True)) if existing else {}
            fields.update(options)
            try:
                changes.append(SandboxManifest.model_validate(
                    {"metadata": {"name": sandbox}, "spec": fields}))
            except ValidationError as exc:
                raise _invalid("Sandbox", sandbox, exc) from exc
        joined = current.spec.model_copy(update={"sandbox": sandbox})
        changes.append(current.model_copy(update={"spec": joined}))
        self.controller._converge(self.controller._with(*changes))
        return Sandbox(self.controller, sandbox).key

    def leave(self, sandbox: str) -> None:
        """Leave `sandbox`; a sandbox no endpoint is joined to any more is removed."""
        sandbox = object_name("Sandbox", sandbox)
        current = self.manifest
        if current.spec.sandbox != sandbox:
            raise NotFoundError(f"Endpoint/{self.name} is not joined to Sandbox/{sandbox}")
        spec = current.spec.model_copy(update={"sandbox": None})
        others = [
            e for e in self.controller.endpoints()
            if e.name != self.name and e.manifest.spec.sandbox == sandbox
        ]
        without = [] if others else [("Sandbox", sandbox)]
        self.controller._converge(
            self.controller._with(current.model_copy(update={"spec": spec}), without=without)
        )

    def delete(self) -> None:
        """Delete the endpoint; refused while it is joined (leave first, as libnetwork)."""
        current = self.manifest
        if current.spec.sandbox is not None:
            raise InUseError(f"Endpoint/{self.name} is joined to Sandbox/{current.spec.sandbox}; "
                             "leave it first")
        self.controller._converge(self.controller._with(without=[("Endpoint", self.name)]))

    def __repr__(self) -> str:
        return f"Endpoint({self.name!r}, network={self.manifest.spec.network!r})"


class Sandbox:
    """A sandbox: a named network namespace (or the host's, on a host network)."""

    def __init__(self, controller: Controller, name: str) -> None:
        self.controller = controller
        self.name = object_name("Sandbox", name)

    @property
    def manifest(self) -> SandboxManifest:
        found = self.controller._get("Sandbox", self.name)
        assert isinstance(found, SandboxManifest)
        return found

    @property
    def key(self) -> str:
        """Where the namespace is: `/run/netns/<netns>` (libnetwork's sandbox key)."""
        manifest = self.manifest
        joined = [e for e in self.controller.endpoints() if e.manifest.spec.sandbox == self.name]
        if any(driver_for(e.network.driver).shares_host_namespace for e in joined):
            return HOST_SANDBOX_KEY
        return str(NETNS_RUN_DIR / manifest.netns_name)

    def endpoints(self) -> list[Endpoint]:
        """The endpoints joined to this sandbox (libnetwork's `Sandbox.Endpoints`)."""
        return [e for e in self.controller.endpoints() if e.manifest.spec.sandbox == self.name]

    def endpoint_by_name(self, name: str) -> Endpoint:
        """The endpoint `name` joined to this sandbox; NotFoundError otherwise."""
        endpoint = self.controller.endpoint_by_name(name)
        if endpoint.manifest.spec.sandbox != self.name:
            raise NotFoundError(f"Endpoint/{endpoint.name} is not joined to Sandbox/{self.name}")
        return endpoint

    def __repr__(self) -> str:
        return f"Sandbox({self.name!r}, key={self.key!r})"
