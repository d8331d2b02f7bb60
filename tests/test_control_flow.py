"""Control flow on a real Temporal and a real Postgres: foreach, switch, child playbooks, compensation (saga)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from model.execution import StepRequest
from starter.client import PlaybookClient
from tests.fixtures_temporal import running_worker
from tests.test_workflow_e2e import until, waiting_on


def playbook(pid: str, steps: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"id": pid, "name": pid, "version": 1, "module": "ops", "smart_code": "HERA.OPS.TEST.FLOW.v1",
            "steps": steps, **extra}  # fmt: skip


def entity(step_id: str, code: str, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "type": "entity", "smart_code": "HERA.OPS.TEST.ENT.v1",
            "with": {"entity_type": "thing", "entity_name": code, "entity_code": code}, **extra}  # fmt: skip


def org() -> str:
    return f"org_flow_{uuid.uuid4().hex[:8]}"


FOREACH = playbook(
    "inline.foreach.v1",
    [
        {"id": "lines", "type": "foreach", "with": {
            "items": "{{ inputs.skus }}", "as": "sku", "concurrency": 3,
            "steps": [
                {"id": "reserve", "type": "entity", "smart_code": "HERA.OPS.TEST.ENT.v1",
                 "with": {"entity_type": "reservation", "entity_name": "{{ sku }}", "entity_code": "R-{{ sku }}"}},
                {"id": "label", "type": "set", "with": {"vars": {"last": "{{ loop.index }}:{{ sku }}"}}},
                {"id": "echo", "type": "set",
                 "with": {"vars": {"echo": "{{ steps.label.output.last }}/{{ steps.reserve.output.entity_code }}"}}},
            ]}},
    ],
    inputs={"skus": {"type": "json", "required": True}},
    outputs={"labels": "{{ steps.lines.output | map(attribute='echo') | list }}"},
)  # fmt: skip


async def test_foreach_runs_each_item_and_keeps_item_order(playbooks: PlaybookClient, catalog: Any) -> None:
    code = org()
    skus = ["A", "B", "C", "D", "E"]
    handle = await playbooks.start("inline.foreach.v1", organization=code, playbook=FOREACH, data={"skus": skus})
    result = await handle.result()
    assert result["outputs"]["labels"] == [{"echo": f"{i}:{s}/R-{s}"} for i, s in enumerate(skus, 1)]
    ids = [s["id"] for s in result["steps"]]
    assert "lines[3].reserve" in ids and "lines[0].echo" in ids and "reserve" not in ids
    org_id = await catalog.resolve_organization(code)
    lines = await catalog.step_lines(org_id, handle.id)
    reserve = sorted(line["iteration"] for line in lines if line["step_id"] == "reserve")
    assert reserve == [f"lines[{i}]" for i in range(5)]


def lane_step(lane: str) -> dict[str, Any]:
    return {"id": lane, "type": "set", "with": {"vars": {"lane": lane}}}


SWITCH = playbook(
    "inline.switch.v1",
    [
        {"id": "route", "type": "switch", "with": {
            "cases": [
                {"when": "inputs.amount > 1000", "steps": [lane_step("big")]},
                {"when": "inputs.amount > 100", "steps": [lane_step("mid")]},
            ],
            "default": [lane_step("small")]}},
    ],
    inputs={"amount": {"type": "integer", "required": True}},
    outputs={"lane": "{{ vars.lane }}", "route": "{{ steps.route.output }}"},
)  # fmt: skip


@pytest.mark.parametrize(("amount", "lane"), [(5000, "big"), (500, "mid"), (5, "small")])
async def test_switch_takes_the_first_true_case(playbooks: PlaybookClient, amount: int, lane: str) -> None:
    handle = await playbooks.start("inline.switch.v1", organization=org(), playbook=SWITCH, data={"amount": amount})
    result = await handle.result()
    assert result["outputs"]["lane"] == lane
    assert result["outputs"]["route"] == {lane: {"lane": lane}}
    statuses = {s["id"]: s["status"] for s in result["steps"]}
    assert statuses[lane] == "completed"
    assert sorted(k for k, v in statuses.items() if v == "skipped") == sorted({"big", "mid", "small"} - {lane})


async def test_child_playbook_outputs_and_cancellation(playbooks: PlaybookClient, catalog: Any) -> None:
    parent = playbook(
        "inline.parent.v1",
        [
            {"id": "onboard", "type": "playbook", "with": {
                "playbook_id": "customer.create.v1",
                "inputs": {"customer_name": "{{ inputs.name }}", "email": "kid@example.com"}}},
        ],
        inputs={"name": {"type": "string", "required": True}},
        outputs={"customer": "{{ steps.onboard.output.customer_id }}"},
    )  # fmt: skip
    handle = await playbooks.start("inline.parent.v1", organization=org(), playbook=parent, data={"name": "Kid Co"})
    status = await until(playbooks, handle.id, lambda s: bool(s.steps) and s.steps[0].child_workflow_id is not None)
    child_id = status.steps[0].child_workflow_id
    assert child_id == f"{handle.id}/onboard"
    await until(playbooks, child_id, waiting_on("set_credit_terms"))
    await playbooks.complete(
        child_id, "set_credit_terms", data={"credit_limit": 10, "payment_terms": "NET15"}, role="credit_controller"
    )
    result = await handle.result()
    uuid.UUID(result["outputs"]["customer"])

    handle = await playbooks.start("inline.parent.v1", organization=org(), playbook=parent, data={"name": "Gone"})
    status = await until(playbooks, handle.id, lambda s: bool(s.steps) and s.steps[0].child_workflow_id is not None)
    child_id = status.steps[0].child_workflow_id
    await until(playbooks, child_id, waiting_on("set_credit_terms"))
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    with pytest.raises(WorkflowFailureError):
        await playbooks.handle(child_id).result()
    assert (await playbooks.status(child_id)).status == "cancelled"


def saga(pid: str) -> dict[str, Any]:
    steps = []
    for i in range(1, 7):
        step = entity(f"s{i}", f"S{i}", compensate=[entity(f"undo{i}", f"UNDO{i}")])
        if i == 5:
            step = {"id": "s5", "type": "validation", "with": {"rules": [{"assert": "false", "message": "no stock"}]},
                    "compensate": [entity("undo5", "UNDO5")]}  # fmt: skip
        steps.append(step)
    return playbook(pid, steps)


async def test_saga_compensates_in_reverse_order_exactly_once_across_a_worker_restart(
    temporal: WorkflowEnvironment, store: Any, pg_dsn: str
) -> None:
    """Step 5 of 6 fails: undo4, undo3, undo2, undo1 run in that order, once each, though a worker dies mid-way."""
    reached_undo3 = asyncio.Event()
    release = asyncio.Event()

    async def crash_in_undo3(req: StepRequest) -> None:
        if req.step_id == "undo3" and not reached_undo3.is_set():
            reached_undo3.set()
            await release.wait()  # held while the worker shuts down
            raise RuntimeError("worker died after undo3 committed")

    code, queue = org(), f"tq-saga-{uuid.uuid4().hex[:8]}"
    first = running_worker(temporal.client, store, task_queue=queue, after_write=crash_in_undo3)
    client = await first.__aenter__()
    handle = await client.start("inline.saga.v1", organization=code, playbook=saga("inline.saga.v1"))
    await asyncio.wait_for(reached_undo3.wait(), timeout=60)
    stopping = asyncio.create_task(first.__aexit__(None, None, None))  # graceful: waits for the held activity
    await asyncio.sleep(0.2)
    release.set()
    await stopping
    async with running_worker(temporal.client, store, task_queue=queue) as second:
        with pytest.raises(WorkflowFailureError) as failure:
            await asyncio.wait_for(second.handle(handle.id).result(), timeout=120)
    assert "step s5: validation failed: no stock" in str(failure.value.cause)

    org_id = await store.resolve_organization(code)
    conn = await asyncpg.connect(pg_dsn)
    try:
        rows = await conn.fetch(
            "select l.metadata->>'step_id' as step, count(*) as n, min(l.line_number) as first"
            " from universal_transaction_lines l join universal_transactions t on t.id = l.transaction_id"
            " where t.transaction_code = $1 and t.organization_id = $2 and l.metadata->>'step_id' like 'undo%'"
            " group by 1 order by 3",
            handle.id, org_id,
        )  # fmt: skip
        undo_entities = await conn.fetchval(
            "select count(*) from core_entities where organization_id = $1 and entity_code like 'UNDO%'", org_id
        )
    finally:
        await conn.close()
    assert [(r["step"], r["n"]) for r in rows] == [("undo4", 1), ("undo3", 1), ("undo2", 1), ("undo1", 1)]
    assert undo_entities == 4


async def test_a_rejection_under_on_reject_continue_lets_dependents_decide(playbooks: PlaybookClient) -> None:
    definition = playbook(
        "inline.reject.v1",
        [
            {"id": "discount", "type": "approval", "with": {"assignee_role": "manager", "on_reject": "continue"}},
            {"id": "price", "type": "set",
             "with": {"vars": {"price": "{{ 90 if steps.discount.output.approved else 100 }}"}}},
        ],
        outputs={"price": "{{ vars.price }}", "approved": "{{ steps.discount.output.approved }}"},
    )  # fmt: skip
    handle = await playbooks.start("inline.reject.v1", organization=org(), playbook=definition)
    await until(playbooks, handle.id, waiting_on("discount"))
    await playbooks.complete(handle.id, "discount", data={"approved": False, "comment": "no"}, role="manager")
    result = await handle.result()
    assert result["outputs"] == {"price": 100, "approved": False}


async def test_a_failing_compensation_is_reported_not_dropped(playbooks: PlaybookClient) -> None:
    broken_undo = {"id": "undo_a", "type": "validation", "retry": {"max_attempts": 2},
                   "with": {"rules": [{"assert": "false", "message": "cannot undo a"}]}}  # fmt: skip
    definition = playbook(
        "inline.badundo.v1",
        [
            entity("a", "A", compensate=[broken_undo]),
            entity("b", "B", compensate=[entity("undo_b", "UNDO-B")]),
            {"id": "boom", "type": "validation", "with": {"rules": [{"assert": "false", "message": "boom"}]}},
        ],
    )
    handle = await playbooks.start("inline.badundo.v1", organization=org(), playbook=definition)
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert "compensation of a failed" in str(failure.value.cause)
    status = await playbooks.status(handle.id)
    assert status.error is not None
    assert status.error.startswith("step boom: validation failed: boom")
    assert "compensation of a failed: step undo_a: validation failed: cannot undo a" in status.error
    assert {s.id: s.status for s in status.steps}["undo_b"] == "completed"  # the others still ran
