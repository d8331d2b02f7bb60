"""Exactly-once writes under activity retry, and deadlines on the time-skipping server."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from temporalio.testing import WorkflowEnvironment

from model.execution import StepRequest
from tests.fixtures_temporal import running_worker

WRITE_ONCE = {
    "id": "inline.once.v1",
    "name": "One write",
    "version": 1,
    "module": "ops",
    "smart_code": "HERA.OPS.TEST.ONCE.v1",
    "steps": [
        {
            "id": "write",
            "type": "entity",
            "smart_code": "HERA.OPS.TEST.ENT.v1",
            "with": {"entity_type": "once", "entity_name": "written once"},
        }
    ],
}


async def test_activity_failing_after_its_write_is_retried_without_a_second_row(
    temporal: WorkflowEnvironment, store: Any, pg_dsn: str
) -> None:
    crashes: list[str] = []

    def crash_once(req: StepRequest) -> None:
        if not crashes:
            crashes.append(req.step_id)
            raise RuntimeError("worker died after the commit")

    org = f"org_once_{uuid.uuid4().hex[:8]}"
    async with running_worker(temporal.client, store, after_write=crash_once) as client:
        handle = await client.start("inline.once.v1", organization=org, playbook=WRITE_ONCE)
        result = await handle.result()

    assert crashes == ["write"]
    step = next(s for s in result["steps"] if s["id"] == "write")
    entity_id = step["output"]["entity_id"]
    org_id = await store.resolve_organization(org)
    conn = await asyncpg.connect(pg_dsn)
    try:
        entities = await conn.fetch(
            "select id from core_entities where organization_id = $1 and entity_type = 'once'", org_id
        )
        lines = await conn.fetchval(
            "select count(*) from universal_transaction_lines l"
            " join universal_transactions t on t.id = l.transaction_id"
            " where t.transaction_code = $1 and l.metadata->>'step_id' = 'write'",
            handle.id,
        )
    finally:
        await conn.close()
    assert [str(r["id"]) for r in entities] == [entity_id]
    assert lines == 1


DEADLINE = {
    "id": "inline.deadline.v1",
    "name": "Two-day deadline",
    "version": 1,
    "module": "ops",
    "smart_code": "HERA.OPS.TEST.DEADLINE.v1",
    "steps": [
        {
            "id": "triage",
            "type": "human",
            "timeout": "48h",
            "with": {
                "instructions": "Triage within two days",
                "form": {"severity": {"type": "select", "options": ["low", "high"], "required": True}},
                "on_timeout": "skip",
                "default": {"severity": "low"},
            },
        },
        {"id": "route", "type": "set", "with": {"vars": {"severity": "{{ steps.triage.data.severity }}"}}},
    ],
    "outputs": {"severity": "{{ vars.severity }}", "triage": "{{ steps.triage.status }}"},
}


async def test_48h_deadline_skips_with_default_without_waiting(
    time_skipping: WorkflowEnvironment, store: Any
) -> None:
    async with running_worker(time_skipping.client, store) as client:
        handle = await client.start("inline.deadline.v1", organization="org_deadline", playbook=DEADLINE)
        result = await handle.result()
    assert result["outputs"] == {"severity": "low", "triage": "skipped"}


async def test_48h_deadline_fails_by_default(time_skipping: WorkflowEnvironment, store: Any) -> None:
    failing = {**DEADLINE, "steps": [{**DEADLINE["steps"][0], "with": {"instructions": "Decide"}}]}  # type: ignore[index, dict-item]
    failing["outputs"] = {}
    async with running_worker(time_skipping.client, store) as client:
        handle = await client.start("inline.deadline.v1", organization="org_deadline", playbook=failing)
        try:
            await handle.result()
        except Exception as exc:  # WorkflowFailureError
            assert "step triage: deadline passed (2d without completion)" in str(exc.__cause__)
        else:
            raise AssertionError("the execution should have failed at the deadline")
