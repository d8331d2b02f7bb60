"""The lifecycle commands as a user types them: publish, versions, rollback, deprecate, archive, share, list, new."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from store import Store

ROOT = Path(__file__).resolve().parent.parent


def playbook(*args: str, env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from starter.cli import main; main()", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "USER": "tester", **env},
    )  # fmt: skip


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_catalog_commands(catalog: Store, pg_dsn: str, tmp_path: Path) -> None:
    store = catalog  # the platform library published, for --by and the listing
    org, other = f"org_cli_{uuid.uuid4().hex[:8]}", f"org_cli_{uuid.uuid4().hex[:8]}"
    await store.register_organization(org)
    await store.register_organization(other)
    env = {"DATABASE_URL": pg_dsn}
    library = tmp_path / "playbooks"
    shutil.copytree(ROOT / "playbooks" / "templates", library / "templates")
    made = ok(playbook("new", "expense.approve.v1", "--from", "template.approval_chain.v1", "--module", "finance",
                       env={"PLAYBOOKS_DIR": str(library)}))  # fmt: skip
    path = library / "finance" / "expense.approve.v1.yaml"
    assert made.startswith(f"wrote {path} (draft, from template.approval_chain.v1)")
    templates = json.loads(ok(playbook("list", "--templates", "--json", env={"PLAYBOOKS_DIR": str(library)})))
    assert {t["id"]: t["made_from_it"] for t in templates}["template.approval_chain.v1"] == 1
    drafts = ok(playbook("list", "--status", "draft", env={"PLAYBOOKS_DIR": str(library)}))
    assert drafts.split()[:3] == ["expense.approve.v1", "finance", "draft"]

    first = ok(playbook("publish", str(path), "--org", org, env=env)).split()
    assert first[0] == "expense.approve.v1" and first[2:] == ["published", "in", "the", "catalog", "of", org]
    path.write_text(path.read_text().replace("name: Approval chain", "name: Expense approval"))
    second = ok(playbook("publish", str(path), "--org", org, env=env)).split()[1]
    versions = json.loads(ok(playbook("versions", "expense.approve.v1", "--org", org, "--json", env=env)))
    assert [(v["sha256"][:12], v["published_by"], v["current"]) for v in versions["versions"]] == [
        (first[1], "tester", False), (second, "tester", True)]  # fmt: skip
    ok(playbook("rollback", "expense.approve.v1", first[1], "--org", org, env=env))
    ok(playbook("deprecate", "expense.approve.v1", "--by", "customer.create.v1", "--org", org, env=env))

    listed = {row["id"]: row for row in json.loads(ok(playbook("list", "--org", org, "--json", env=env)))}
    mine = listed["expense.approve.v1"]
    assert (mine["status"], mine["source"], mine["sha256"][:12]) == ("deprecated", "own", first[1])
    assert (mine["deprecated"], mine["superseded_by"]) == (True, "customer.create.v1")
    assert listed["customer.create.v1"]["source"] == "platform"
    assert "expense.approve.v1" not in {row["id"] for row in json.loads(ok(playbook("list", "--org", other, "--json",
                                                                                    env=env)))}  # fmt: skip
    ok(playbook("share", "expense.approve.v1", "--org", org, "--with", other, env=env))
    text = ok(playbook("list", "--org", other, env=env))
    assert f"shared by {org}" in next(line for line in text.splitlines() if line.startswith("expense.approve.v1"))

    ok(playbook("archive", "expense.approve.v1", "--org", org, env=env))
    history = ok(playbook("versions", "expense.approve.v1", "--org", org, env=env))
    actions = [line.split()[3] for line in history.splitlines() if line.startswith("  20")]
    assert actions == ["publish", "publish", "rollback", "deprecate", "share", "archive"]

    wrong = playbook("rollback", "expense.approve.v1", "0000", "--org", org, env=env)
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == (
        "playbook: sha: no published version of expense.approve.v1 starts with '0000' (see: playbook versions)"
    )
    template = playbook("publish", str(library / "templates"), env=env)
    assert template.returncode == 1 and "is a template" in template.stderr


def test_show_reports_performance_or_says_why_not(tmp_path: Path) -> None:
    out = ok(playbook("show", "customer.create.v1", "--state-dir", str(tmp_path), env={}))
    assert out.splitlines()[-1] == "performance: no database (set DATABASE_URL, or run playbook dev)"


async def test_show_reports_performance(store: Store, pg_dsn: str) -> None:
    org = await store.resolve_organization(f"org_show_{uuid.uuid4().hex[:8]}")
    execution = f"x/customer.create.v1/{uuid.uuid4().hex[:8]}"
    await store.upsert_execution(org, execution_id=execution, playbook_id="customer.create.v1",
                                 smart_code="HERA.CRM.CUST.PLAYBOOK.CREATE.v1", status="completed")  # fmt: skip
    out = ok(playbook("show", "customer.create.v1", env={"DATABASE_URL": pg_dsn}))
    assert "performance:" in out and "customer.create.v1  (org_show_" in out
