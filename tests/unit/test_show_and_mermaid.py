"""`cnm show PLANFILE` and the Mermaid diagrams, through the real console script."""

from __future__ import annotations

import json
import re
from pathlib import Path

from test_plan_lines_cli import CASES, cnm


def test_show_renders_a_saved_plan_as_plan_printed_it(tmp_path: Path) -> None:
    case = CASES / "prune-and-drift"
    args = ["-f", str(case / "manifests"), "--observed", str(case / "observed.json")]
    out = tmp_path / "plan.json"
    for output in ("text", "json", "markdown"):
        planned = cnm("plan", *args, "-o", output, "-out", str(out))
        assert planned.returncode == 0, planned.stderr
        shown = cnm("show", str(out), "-o", output)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout == planned.stdout
    assert cnm("show", str(out)).stdout == (case / "expected.txt").read_text()


def test_show_refuses_a_file_that_is_not_a_plan_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("{}")
    shown = cnm("show", str(path))
    assert shown.returncode == 1 and shown.stdout == ""
    assert shown.stderr.count("\n") == 1 and str(path) in shown.stderr


def _mermaid(markdown: str) -> str:
    match = re.search(r"```mermaid\n(.*?)```", markdown, re.S)
    assert match is not None, markdown
    return match.group(1)


def test_markdown_plan_draws_what_the_plan_touches_styled_by_verb(tmp_path: Path) -> None:
    case = CASES / "prune-and-drift"
    args = ["plan", "-f", str(case / "manifests"), "--observed", str(case / "observed.json"),
            "-o", "markdown"]
    first, second = cnm(*args).stdout, cnm(*args).stdout
    assert first == second  # deterministic
    diagram = _mermaid(first).splitlines()
    assert diagram[0] == "flowchart LR"
    assert {line.split()[1] for line in diagram if line.strip().startswith("classDef")} == {
        "create", "update", "delete", "replace", "kept"}
    nodes = {m.group(1): m.group(2) for line in diagram
             if (m := re.match(r"\s+(\w+)\W.*:::(\w+)$", line))}
    assert nodes["default__e__old"] == "delete"
    assert nodes["default__e__web2_front"] == "update"
    assert nodes["default__s__web1"] == "update"
    assert nodes["default__n__frontend"] == "kept"  # drawn as the endpoints' network only
    assert "default__s__web2 --- default__e__old" in first
    assert "default__e__old --- default__n__frontend" in first
    document = json.loads(cnm(*args[:-1], "json").stdout)
    touched = {f"{a['kind']}/{a['name']}" for a in document["actions"]}
    drawn = {f"{k}/{n}" for line in diagram
             if (m := re.match(r"\s+default__(\w)__(\w+)\W.*:::(?!kept)", line))
             for k, n in [({"n": "Network", "s": "Sandbox", "e": "Endpoint"}[m.group(1)],
                           m.group(2).replace("_", "-"))]}
    assert drawn == touched


def test_created_objects_are_styled_as_created() -> None:
    case = CASES / "create-from-scratch"
    markdown = cnm("plan", "-f", str(case / "manifests"), "--observed",
                   str(case / "observed.json"), "-o", "markdown").stdout
    diagram = _mermaid(markdown)
    styled = re.findall(r":::(\w+)$", diagram, re.M)
    assert styled and set(styled) == {"create"}
    assert diagram.count(" --- ") == 4  # two endpoints, each to its sandbox and network
