"""`playbook stats`: figures from the migration-0003 views on known data, under row-level security."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from starter.operations import ExecutionStats, playbook_stats, render_stats
from store import StepAudit, StepKey, Store

ROOT = Path(__file__).resolve().parent.parent
PLAYBOOK = "stats.known.v1"
SMART_CODE = "HERA.CRM.CUST.PLAYBOOK.CREATE.v1"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

# Per execution: its final status and its steps as (step id, type, status, seconds), run one after another.
# Durations were chosen so that the percentiles are exact: see the expected figures in the tests.
EXECUTIONS = [
    ("completed", [("create", "entity", "completed", 1), ("approve", "approval", "completed", 60),
                   ("notify", "notification", "completed", 0.5)]),
    ("completed", [("create", "entity", "completed", 2), ("approve", "approval", "completed", 120),
                   ("notify", "notification", "skipped", 0)]),
    ("completed", [("create", "entity", "completed", 3), ("approve", "approval", "completed", 600),
                   ("notify", "notification", "completed", 1.5)]),
    ("failed", [("create", "entity", "completed", 4), ("approve", "approval", "failed", 30)]),
    ("cancelled", [("create", "entity", "completed", 10), ("approve", "approval", "cancelled", 5)]),
    ("running", [("create", "entity", "completed", 20)]),
]  # fmt: skip


async def record(store: Store, org: uuid.UUID, status: str, steps: list[tuple[str, str, str, float]],
                 start: datetime) -> str:  # fmt: skip
    """An execution with its audit lines, as the engine writes them, at known times."""
    execution_id = f"org/{PLAYBOOK}/{uuid.uuid4().hex[:12]}"
    await store.upsert_execution(org, execution_id=execution_id, playbook_id=PLAYBOOK, smart_code=SMART_CODE,
                                 status=status)  # fmt: skip
    moment = start
    for step_id, step_type, step_status, seconds in steps:
        finished = moment + timedelta(seconds=seconds)
        audit = StepAudit(step_type=step_type, status=step_status, started_at=moment, finished_at=finished)
        await store.record_step(org, StepKey(execution_id=execution_id, step_id=step_id), audit)
        moment = finished
    return execution_id


@pytest.fixture
async def known(store: Store, org_a: uuid.UUID, org_b: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    """Six executions of PLAYBOOK in org_a, one in org_b."""
    for index, (status, steps) in enumerate(EXECUTIONS):
        await record(store, org_a, status, steps, T0 + timedelta(hours=index))
    await record(store, org_b, "completed", [("create", "entity", "completed", 7)], T0)
    return org_a, org_b


def only(report: list[ExecutionStats]) -> ExecutionStats:
    assert len(report) == 1, report
    return report[0]


async def test_execution_figures(store: Store, known: tuple[uuid.UUID, uuid.UUID]) -> None:
    org_a, _ = known
    stats = only(await playbook_stats(store, {"a": org_a}, PLAYBOOK))
    assert (stats.executions, stats.running, stats.paused) == (6, 1, 0)
    assert (stats.completed, stats.failed, stats.cancelled) == (3, 1, 1)
    assert stats.success_rate == pytest.approx(0.6)
    # Ended executions span 61.5, 122, 604.5, 34 and 15 s (first step's start to last step's end).
    assert stats.median_s == pytest.approx(61.5)
    assert stats.p95_s == pytest.approx(122 + 0.8 * (604.5 - 122))


async def test_step_figures_in_running_order(store: Store, known: tuple[uuid.UUID, uuid.UUID]) -> None:
    org_a, _ = known
    steps = {s.step_id: s for s in only(await playbook_stats(store, {"a": org_a}, PLAYBOOK)).steps}
    assert list(steps) == ["create", "approve", "notify"]

    create = steps["create"]
    assert (create.step_type, create.runs, create.completed, create.failed) == ("entity", 6, 6, 0)
    assert create.success_rate == pytest.approx(1.0)
    assert create.median_s == pytest.approx(3.5)  # of 1, 2, 3, 4, 10, 20
    assert create.p95_s == pytest.approx(10 + 0.75 * (20 - 10))

    approve = steps["approve"]
    assert (approve.runs, approve.completed, approve.failed, approve.cancelled) == (5, 3, 1, 1)
    assert approve.success_rate == pytest.approx(0.75)  # cancelled runs neither succeed nor fail
    assert approve.median_s == pytest.approx(120)  # completed runs only: 60, 120, 600
    assert approve.p95_s == pytest.approx(120 + 0.9 * (600 - 120))

    notify = steps["notify"]
    assert (notify.runs, notify.completed, notify.skipped) == (3, 2, 1)
    assert notify.median_s == pytest.approx(1.0)
    assert notify.p95_s == pytest.approx(0.5 + 0.95 * (1.5 - 0.5))


async def test_each_organization_sees_only_its_own(store: Store, known: tuple[uuid.UUID, uuid.UUID]) -> None:
    org_a, org_b = known
    b = only(await playbook_stats(store, {"b": org_b}, PLAYBOOK))
    assert (b.organization, b.executions, b.completed) == ("b", 1, 1)
    assert [(s.step_id, s.runs, s.median_s) for s in b.steps] == [("create", 1, pytest.approx(7))]
    # Through the views, an organization's session reads no other organization's rows.
    async with store.transaction(org_b) as conn:
        assert await conn.fetchval("SELECT count(*) FROM playbook_step_runs WHERE organization_id = $1", org_a) == 0
        assert await conn.fetchval("SELECT count(*) FROM playbook_execution_runs") == 1


async def test_every_organization_is_reported(store: Store, known: tuple[uuid.UUID, uuid.UUID]) -> None:
    org_a, org_b = known
    everyone = await store.organizations()
    assert {org_a, org_b} <= set(everyone.values())
    report = await playbook_stats(store, everyone, PLAYBOOK)
    assert {item.organization_id: item.executions for item in report if item.organization_id in known} == {
        org_a: 6,
        org_b: 1,
    }


async def test_text_report(store: Store, known: tuple[uuid.UUID, uuid.UUID]) -> None:
    org_a, _ = known
    text = render_stats(await playbook_stats(store, {"org_x": org_a}, PLAYBOOK))
    lines = text.splitlines()
    assert lines[0].startswith(f"{PLAYBOOK}  (org_x)  6 executions: 3 completed, 1 failed, 1 cancelled, 1 running")
    assert "success 60.0%" in lines[1]
    approve = next(line for line in lines if line.lstrip().startswith("approve "))
    assert approve.split() == ["approve", "approval", "5", "3", "1", "0", "75.0%", "2m00s", "9m12s"]
    assert render_stats([]) == "no executions recorded yet"


def playbook(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from starter.cli import main; main()", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env},
    )  # fmt: skip


async def test_stats_command(store: Store, pg_dsn: str, known: tuple[uuid.UUID, uuid.UUID]) -> None:
    org_a, _ = known
    done = playbook("stats", "--org", str(org_a), "--playbook", PLAYBOOK, "--json", env={"DATABASE_URL": pg_dsn})
    assert done.returncode == 0, done.stderr
    [item] = json.loads(done.stdout)
    assert (item["executions"], item["success_rate"]) == (6, 0.6)
    assert [s["step_id"] for s in item["steps"]] == ["create", "approve", "notify"]

    unknown = playbook("stats", "--org", "no_such_org_zz", env={"DATABASE_URL": pg_dsn})
    assert unknown.returncode == 1
    assert unknown.stderr.strip().startswith("playbook: organization_id: unknown organization 'no_such_org_zz'")


def test_stats_without_a_database_says_how_to_get_one(tmp_path: Path) -> None:
    done = playbook("stats", "--state-dir", str(tmp_path), env={})
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"playbook: no database: set DATABASE_URL, or run `playbook dev` first (it keeps one in {tmp_path})"
    )
