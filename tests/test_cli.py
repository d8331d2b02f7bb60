"""The `playbook` command as users run it: exit codes, one line per problem, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def playbook(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from starter.cli import main; main()", *args],
        cwd=cwd, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


def test_validate_library_exits_0() -> None:
    done = playbook("validate", "playbooks")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""
    assert "0 problem(s)" in done.stderr


def test_validate_reports_one_line_per_problem_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "broken.v1.yaml"
    bad.write_text(
        "id: broken.v1\nname: Broken\nversion: 1\nmodule: crm\nsmart_code: HERA.CRM.X.Y.v1\n"
        "steps:\n  - id: a\n    type: set\n    with: {vars: {x: '{{ inpts.y }}'}}\n"
        "  - id: b\n    type: set\n    depends_on: [zz]\n    with: {vars: {y: 1}}\n"
    )
    done = playbook("validate", str(bad), "no/such/file.yaml")
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"{bad}:12: step b: depends_on[0]: unknown step 'zz'",
        f"{bad}:9: step a: with.vars.x: unknown name 'inpts' (in scope: execution, inputs, steps, vars)",
        "no/such/file.yaml:0: no such file or folder",
    ]
    assert "Traceback" not in done.stderr


def test_list_show_graph() -> None:
    listed = json.loads(playbook("list", "--json").stdout)
    assert {"customer.create.v1", "appointment.book.v1", "workorder.create.v1"} <= {r["id"] for r in listed}
    crm = json.loads(playbook("list", "--module", "crm", "--json").stdout)
    assert {r["module"] for r in crm} == {"crm"}
    shown = playbook("show", "customer.create.v1")
    assert "set_credit_terms [human]" in shown.stdout
    graph = playbook("graph", "customer.create.v1").stdout
    assert graph.startswith("flowchart TD")
    assert "set_credit_terms -->|if steps.set_credit_terms.data.credit_limit > 50000| manager_approval" in graph


def test_unknown_playbook_and_bad_json_are_one_line_errors() -> None:
    done = playbook("show", "no.such.v1")
    assert done.returncode == 1
    assert done.stderr.strip() == "playbook: no playbook 'no.such.v1' in playbooks (see: playbook list)"
    done = playbook("run", "customer.create.v1", "--org", "org_1", "--data", "{not json")
    assert done.returncode == 1
    assert done.stderr.startswith("playbook: --data: not valid JSON")
    assert "Traceback" not in done.stderr
