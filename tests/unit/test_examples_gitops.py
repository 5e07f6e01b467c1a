"""examples/gitops works as documented: its manifests validate, its CI workflow's cnm
commands exist with those flags, and its offline plan runs without the kernel."""

from __future__ import annotations

import io
import shlex
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import yaml

from reconciler.cli import main
from reconciler.cli.parser import build_parser

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gitops"
WORKFLOW = EXAMPLE / ".github" / "workflows" / "cnm-plan.yaml"


def _run(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.chdir(EXAMPLE)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue() + err.getvalue()


def _cnm_commands() -> list[list[str]]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    env = {f"${k}": str(v) for k, v in workflow["env"].items()}
    env.update({f'"${k}"': str(v) for k, v in workflow["env"].items()})
    commands = []
    for step in workflow["jobs"]["plan"]["steps"]:
        script = step.get("run", "").replace("\\\n", " ")
        for line in script.splitlines():
            words = [env.get(w, w) for w in line.split()]
            if words[:1] == ["cnm"]:
                commands.append(shlex.split(" ".join(words).split(">")[0])[1:])
    return commands


def test_workflow_runs_validate_and_a_markdown_plan() -> None:
    commands = _cnm_commands()
    assert [c[0] for c in commands] == ["validate", "plan"]
    for command in commands:
        build_parser().parse_args(command)  # every flag it uses exists
    plan = commands[1]
    assert "--observed" in plan and "markdown" in plan and "-out" in plan


def test_workflow_commands_succeed_offline(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    for command in _cnm_commands():
        command = [str(tmp_path / "plan.json") if a == "plan.json" else a for a in command]
        code, output = _run(command, monkeypatch)
        assert code in (0, 2), output
    _, markdown = _run(["plan", "-f", "manifests/", "--set", "web", "--observed",
                        "snapshots/edge1.json", "-o", "markdown"], monkeypatch)
    assert markdown.startswith("<!-- cnm-plan set=web -->")
    assert "| `+` | Sandbox/web3 |" in markdown


def test_readme_plan_matches_what_cnm_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    _, text = _run(["plan", "-f", "manifests/", "--set", "web", "--observed",
                    "snapshots/edge1.json"], monkeypatch)
    readme = (EXAMPLE / "README.md").read_text()
    for line in text.strip().splitlines():
        assert line.strip() in readme, line


def test_snapshot_is_of_the_set_the_workflow_plans() -> None:
    import json

    workflow = yaml.safe_load(WORKFLOW.read_text())
    snapshot = json.loads((EXAMPLE / workflow["env"]["SNAPSHOT"]).read_text())
    assert snapshot["set"] == workflow["env"]["CNM_SET"]
