"""Long runs stay healthy: continue-as-new hands the state over, invisibly to callers, and loses no signal."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.fixtures_temporal import running_worker
from tests.test_workflow_e2e import until, waiting_on


def checks(count: int, concurrency: int, *, with_review: bool = False) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [
        {"id": "each", "type": "foreach", "depends_on": [], "with": {
            "items": f"{{{{ range({count}) | list }}}}", "concurrency": concurrency,
            "steps": [{"id": "check", "type": "validation",
                       "with": {"rules": [{"assert": "item >= 0", "message": "negative item {{ item }}"}]}}]}},
    ]  # fmt: skip
    if with_review:
        steps.append({"id": "review", "type": "approval", "depends_on": [], "with": {"assignee_role": "lead"}})
    return {
        "id": "inline.long.v1", "name": "Long run", "version": 1, "module": "ops",
        "smart_code": "HERA.OPS.TEST.LONG.v1",
        "steps": steps,
        "outputs": {"checked": "{{ steps.each.output | length }}",
                    "all_passed": "{{ steps.each.output | map(attribute='check.passed') | select | list | length }}"},
    }  # fmt: skip


async def runs_of(client: Client, execution_id: str) -> list[Any]:
    """Every run of an execution (visibility is eventually consistent: wait until the count settles)."""
    previous: list[Any] = []
    for _ in range(50):
        runs = [w async for w in client.list_workflows(f"WorkflowId = '{execution_id}'")]
        if runs and len(runs) == len(previous):
            return runs
        previous = runs
        await asyncio.sleep(0.2)
    return previous


async def history_lengths(client: Client, execution_id: str) -> list[int]:
    lengths = []
    for run in await runs_of(client, execution_id):
        handle = client.get_workflow_handle(execution_id, run_id=run.run_id)
        lengths.append(len([e async for e in handle.fetch_history_events()]))
    return lengths


async def audit_count(pg_dsn: str, execution_id: str, step_id: str) -> int:
    conn = await asyncpg.connect(pg_dsn)
    try:
        count: int = await conn.fetchval(
            "select count(*) from universal_transaction_lines l join universal_transactions t"
            " on t.id = l.transaction_id where t.transaction_code = $1 and l.metadata->>'step_id' = $2",
            execution_id, step_id,
        )  # fmt: skip
        return count
    finally:
        await conn.close()


async def test_hand_over_is_invisible_and_loses_no_signal(
    temporal_short_history: WorkflowEnvironment, store: Any, pg_dsn: str
) -> None:
    env = temporal_short_history
    async with running_worker(env.client, store) as client:
        handle = await client.start(
            "inline.long.v1",
            organization=f"org_long_{uuid.uuid4().hex[:6]}",
            playbook=checks(300, 10, with_review=True),
        )
        first_run = (await handle.describe()).run_id
        await until(client, handle.id, waiting_on("review"))
        for _ in range(400):  # the moment a new run takes over, signal the step that was waiting in the old one
            if (await handle.describe()).run_id != first_run:
                break
            await asyncio.sleep(0.02)
        await client.signal_complete(handle.id, "review", data={"approved": True}, role="lead", completed_by="lea")
        result = await handle.result()  # same workflow id, same handle: the caller sees one execution
        final = await client.status(handle.id)
        rejected = final.rejected

    assert result["outputs"] == {"checked": 300, "all_passed": 300}
    steps = {s["id"]: s for s in result["steps"]}
    assert steps["review"]["status"] == "completed" and steps["review"]["completed_by"] == "lea"
    assert rejected == []
    lengths = await history_lengths(env.client, handle.id)
    assert len(lengths) >= 3, lengths
    assert final.runs == len(lengths)  # the status query tells operators how many hand-overs happened
    assert max(lengths) < 1_000, lengths
    assert await audit_count(pg_dsn, handle.id, "check") == 300  # every item written once across hand-overs


async def test_ten_thousand_items_never_approach_the_history_limit(
    temporal: WorkflowEnvironment, store: Any, pg_dsn: str
) -> None:
    async with running_worker(temporal.client, store, max_concurrent_activities=200) as client:
        handle = await client.start(
            "inline.long.v1", organization=f"org_10k_{uuid.uuid4().hex[:6]}", playbook=checks(10_000, 200)
        )
        result = await asyncio.wait_for(handle.result(), timeout=900)
    assert result["outputs"] == {"checked": 10_000, "all_passed": 10_000}
    lengths = await history_lengths(temporal.client, handle.id)
    assert len(lengths) > 1
    assert max(lengths) <= 10_000, lengths
    assert await audit_count(pg_dsn, handle.id, "check") == 10_000
