"""Small builders for manifest objects in unit tests."""

from __future__ import annotations

from typing import Any

from reconciler.manifest_set import Manifests, ManifestSource
from reconciler.model import Endpoint, Manifest, Network, Sandbox


def network(name: str, *subnets: str, **spec: Any) -> Network:
    ipam = spec.pop("ipam", [{"subnet": s} for s in subnets])
    return Network.model_validate(
        {"apiVersion": "cnm/v1", "kind": "Network", "metadata": {"name": name},
         "spec": {"ipam": ipam, **spec}}
    )


def sandbox(name: str, **spec: Any) -> Sandbox:
    return Sandbox.model_validate(
        {"apiVersion": "cnm/v1", "kind": "Sandbox", "metadata": {"name": name}, "spec": spec}
    )


def endpoint(name: str, net: str, sbx: str | None = None, **spec: Any) -> Endpoint:
    body: dict[str, Any] = {"network": net, **spec}
    if sbx is not None:
        body["sandbox"] = sbx
    return Endpoint.model_validate(
        {"apiVersion": "cnm/v1", "kind": "Endpoint", "metadata": {"name": name}, "spec": body}
    )


def manifests(*objects: Manifest) -> Manifests:
    return Manifests.build([(o, ManifestSource("test.yaml", i + 1, i * 10 + 1))
                            for i, o in enumerate(objects)])
