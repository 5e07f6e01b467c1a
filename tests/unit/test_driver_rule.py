"""A driver owns its whole slice: nothing outside `reconciler/drivers/` names one, and a
new driver is one new file plus one line in `drivers/names.py`.

What "names a driver" means here, precisely: outside `reconciler/drivers/` and the
netlink codec (which names link kinds), a module

* has no string or bytes constant equal, after stripping whitespace, to a
  registered driver's name (`"macvlan"`, `b"bridge"`, the `"macvlan "` of
  f"macvlan {parent}"), docstrings excepted: a driver is picked, compared and
  registered by that name, so code that branches on a driver needs it;
* imports no driver's own module (`reconciler.drivers.<name>`): the registry
  (`reconciler.drivers`), `drivers.base` and `drivers.names` are the interface.

Comments and docstrings are prose. Identifiers are words, not references: `host`
is the host namespace, `AF_BRIDGE` a netlink family, `spec.bridge` a manifest
field of the schema. A constant that spells a driver's name while meaning
something else is listed in `ALLOWED` with its reason.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from reconciler.drivers import REGISTRY
from reconciler.drivers.names import NAMES

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "reconciler"

#: The drivers themselves, and the netlink codec (rtnetlink, and AF_BRIDGE's bridge ports).
EXEMPT = ("reconciler/drivers/", "reconciler/kernel/rtnl.py", "reconciler/kernel/brport.py")

#: (path or path prefix, constant) -> why it is not a driver's name there.
ALLOWED = {
    ("reconciler/firewall", "bridge"): "nftables' bridge family, and the `bridge` attribute "
    "(the link name) of the networks whose traffic the firewall's rules match",
    ("reconciler/firewall", "host"): "the host side of a published port (a regex group)",
    ("reconciler/yaml_documents.py", "null"): "YAML's null tag",
    ("reconciler/naming.py", "bridge"): "the salt of derived bridge names' digests: "
    "changing it would rename every bridge",
    ("reconciler/kernel/watched.py", "host"): "the host namespace, in watch's list of "
    "pending changes",
    ("reconciler/fleet", "host"): "a host of the fleet (a store key's part, a record's field)",
    ("reconciler/field_docs.py", "bridge"): "the manifest field `spec.bridge` (a network's "
    "bridge name), which its description is keyed by",
    ("reconciler/field_docs.py", "host"): "the manifest field `spec.host` (the fleet host "
    "that realizes a sandbox), which its description is keyed by",
    ("reconciler/plain_model.py", "bridge"): "the manifest field `spec.bridge`, a slot of the "
    "plain NetworkSpec and the key its parser reads",
    ("reconciler/plain_model.py", "host"): "the manifest field `spec.host`, a slot of the "
    "plain SandboxSpec and the key its parser reads",
    ("reconciler/manifest_reference.py", "null"): "JSON Schema's null type and YAML's null, "
    "as the manifest reference writes them",
}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def driver_names_in(source: str) -> list[tuple[int, str]]:
    """(line, what) for each place `source` names a registered driver (see the module)."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes) \
                and id(node) not in docstrings:
            value = node.value.decode(errors="replace") if isinstance(node.value, bytes) \
                else node.value
            if value.strip() in REGISTRY:
                found.append((node.lineno, value.strip()))
        modules = []
        if isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        found += [(node.lineno, f"import {m}") for m in modules
                  if m.removeprefix("reconciler.drivers.") in REGISTRY
                  and m.startswith("reconciler.drivers.")]
    return found


def _allowed(relative: str, what: str) -> bool:
    return any(relative.startswith(prefix) and what == name for prefix, name in ALLOWED)


def test_no_module_outside_the_drivers_names_a_driver() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = str(path.relative_to(ROOT))
        if relative.startswith(EXEMPT):
            continue
        for line, what in driver_names_in(path.read_text()):
            if not _allowed(relative, what):
                offenders.append(f"{relative}:{line}: {what}")
    assert offenders == [], "\n".join(offenders)


def test_the_rule_sees_what_it_should() -> None:
    source = textwrap.dedent('''
        """A docstring may say macvlan."""
        from reconciler.drivers.macvlan import DEFAULT_MODE
        from reconciler.drivers import bridge, names
        import reconciler.drivers.null
        # a comment may say host
        if spec.driver == "macvlan" or kind == b"bridge":
            text = f"macvlan {parent}"
        host = bridge_name = "the host namespace"
    ''')
    assert driver_names_in(source) == [
        (3, "import reconciler.drivers.macvlan"),
        (4, "import reconciler.drivers.bridge"),
        (5, "import reconciler.drivers.null"),
        (7, "macvlan"), (7, "bridge"), (8, "macvlan"),
    ]


def test_the_registry_is_the_names_file() -> None:
    assert tuple(REGISTRY) == NAMES
    assert all(driver.name == name for name, driver in REGISTRY.items())


@pytest.mark.parametrize("module", ["model", "loader", "drivers", "drivers.bridge", "firewall"])
def test_any_module_can_be_imported_first(module: str) -> None:
    """The model takes its driver names from the drivers, which describe model objects:
    no import order may make that a cycle (drivers import the model for types only)."""
    result = subprocess.run([sys.executable, "-c", f"import reconciler.{module}"],
                            capture_output=True, text=True, check=False,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr


# --- a new driver: one file and one line ------------------------------------------------

TOY_DRIVER = '''
"""A toy driver: a network is a link of kind `toy` in the host namespace; an endpoint
is an interface of kind `toylink` in its sandbox."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from reconciler.drivers.base import Driver, EndpointContext, NoKernelObjects
from reconciler.drivers.common import addresses, interface_attrs, interface_summary
from reconciler.drivers.kernel_view import LinkInfo, PeerEnd
from reconciler.state import AttrValue, Resource


class ToyDriver(NoKernelObjects):
    name = "toy"
    has_interfaces = True
    shares_host_namespace = False
    serves_names = False
    options = frozenset({"mtu"})
    replacement_fields: Mapping[str, frozenset[str]] = {"Network": frozenset({"link"})}
    network_link_kind = "toy"
    interface_kind = "toylink"

    def network_attrs(self, network):
        return {"driver": self.name, "link": f"toy-{network.metadata.name}"[:15],
                "mtu": network.spec.mtu or 1500, "up": True}

    def endpoint_attrs(self, ctx: EndpointContext) -> dict[str, AttrValue]:
        return {"network": ctx.network.metadata.name, "sandbox": ctx.sandbox.metadata.name,
                "ifname": ctx.ifname, "toylink": True, **addresses(ctx),
                "up": True}

    def owns(self, resource: Resource) -> bool:
        if resource.key.kind == "Network":
            return resource.get("driver") == self.name
        return "toylink" in resource.attrs

    def host_link(self, resource: Resource) -> str | None:
        link = resource.get("link")
        return link if isinstance(link, str) else None

    def describe(self, resource: Resource) -> str:
        if resource.key.kind == "Network":
            return f"toy link {resource.get('link')}"
        return interface_summary(resource, "toy")

    def restorable(self, resource: Resource) -> bool:
        return True

    def observe_network(self, link: LinkInfo, addresses: Sequence[str]) -> dict[str, AttrValue]:
        return {"driver": self.name, "link": link.name, "mtu": link.mtu, "up": link.up}

    def observe_endpoint(self, host, peer: PeerEnd | None, networks_by_link, host_link_names):
        assert peer is not None
        return {"network": None, "sandbox": peer.sandbox, "toylink": True, "up": peer.link.up,
                **interface_attrs(peer)}


DRIVER: Driver = ToyDriver()
'''

TOY_MANIFESTS = """\
apiVersion: cnm/v1
kind: Network
metadata: {name: play}
spec: {driver: toy, mtu: 9000, ipam: [{subnet: 10.77.0.0/24}]}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: box}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: kid}
spec: {network: play, sandbox: box}
"""

TOY_SCRIPT = '''
import json, sys
from reconciler import api
from reconciler.desired import build_desired
from reconciler.errors import ManifestError
from reconciler.loader import load_text
from reconciler.plan import make_plan
from reconciler.render import render_json, render_text
from reconciler.state import State

manifests = load_text(sys.argv[1], name="toy.yaml")
desired = build_desired(manifests, "default", State("default"))
print(render_text(make_plan(desired, State("default"))), end="")
again = State.from_json(json.loads(json.dumps(desired.to_json())))
print(render_text(make_plan(desired, again)), end="")
print(json.loads(render_json(make_plan(desired, State("default"))))["summary"])
print(sorted(api.DRIVER_OPTIONS["toy"]))
try:
    load_text(sys.argv[1].replace("mtu: 9000", "mtu: 9000, parent: eth0"), name="toy.yaml")
except ManifestError as exc:
    print(exc)
'''


def test_a_new_driver_is_one_file_and_one_registry_line(tmp_path: Path) -> None:
    tree = tmp_path / "reconciler"
    shutil.copytree(PACKAGE, tree, ignore=shutil.ignore_patterns("__pycache__"))
    (tree / "drivers" / "toy.py").write_text(TOY_DRIVER)
    names = tree / "drivers" / "names.py"
    text = names.read_text()
    assert text.count('    "host": (),\n') == 1
    names.write_text(text.replace('    "host": (),\n', '    "host": (),\n    "toy": (),\n'))
    result = subprocess.run(
        [sys.executable, "-c", TOY_SCRIPT, TOY_MANIFESTS], cwd=tmp_path, capture_output=True,
        text=True, env={"PYTHONPATH": str(tmp_path)}, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Plan: 3 to create, 0 to update, 0 to delete.",
        "",
        "  + Sandbox/box   netns box",
        "  + Network/play  toy link toy-play",
        "  + Endpoint/kid  toy -> box:eth0  10.77.0.2/24",
        "  ~ Firewall/default     nftables tables of this set in one transaction (the rules of "
        "the objects above)",
        "  ~ BridgePorts/default  hairpin flags of the endpoints' bridge ports",
        "No changes. The kernel matches the manifests.",
        "{'create': 3, 'update': 0, 'delete': 0, 'replace': 0}",
        "['mtu']",
        "toy.yaml:4: Network/play: spec.parent: parent is for macvlan networks only; remove it",
    ]
    schema = subprocess.run(
        [sys.executable, "-m", "reconciler", "schema"], cwd=tmp_path, capture_output=True,
        text=True, env={"PYTHONPATH": str(tmp_path)}, check=True,
    )
    assert '"toy"' in schema.stdout
