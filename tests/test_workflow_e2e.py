"""PlaybookWorkflow end to end: a real Temporal dev server, a real Postgres, the real worker."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import CancelledError

from model.execution import StatusView
from starter.client import PlaybookClient, StepRejected

ORG = "org_e2e"
CUSTOMER = {"customer_name": "Acme Corp", "email": "Ops@Acme.example", "tax_id": "TAX-998877"}


async def until(client: PlaybookClient, execution_id: str, check: Callable[[StatusView], bool]) -> StatusView:
    """Poll the status query until check holds (the workflow moves on its own schedule)."""
    for _ in range(200):
        status = await client.status(execution_id)
        if check(status):
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition never held; last status: {status.model_dump_json(indent=1)}")


def waiting_on(step_id: str) -> Callable[[StatusView], bool]:
    return lambda s: any(w.step_id == step_id for w in s.waiting_for)


def org_code() -> str:
    return f"{ORG}_{uuid.uuid4().hex[:8]}"


async def test_customer_onboarding_by_signal_and_update(playbooks: PlaybookClient, catalog: Any) -> None:
    org = org_code()
    handle = await playbooks.start(
        "customer.create.v1", organization=org, data=CUSTOMER, requested_by="svc-crm"
    )
    status = await until(playbooks, handle.id, waiting_on("set_credit_terms"))
    waiting = status.waiting_for[0]
    assert waiting.assignee_role == "credit_controller"
    assert waiting.instructions == "Set credit terms for Acme Corp."
    assert set(waiting.form["properties"]) == {"credit_limit", "payment_terms"}
    assert waiting.deadline is not None

    await playbooks.signal_complete(
        handle.id, "set_credit_terms", data={"credit_limit": 60000, "payment_terms": "NET30"},
        completed_by="carol", role="credit_controller",
    )  # fmt: skip
    await until(playbooks, handle.id, waiting_on("manager_approval"))
    await playbooks.complete(
        handle.id, "manager_approval", data={"approved": True}, completed_by="maria", role="finance_manager"
    )
    result = await handle.result()

    assert result["status"] == "completed"
    steps = {s["id"]: s for s in result["steps"]}
    assert [steps[s]["status"] for s in ("create_customer", "set_credit_terms", "manager_approval")] == [
        "completed"
    ] * 3
    assert steps["set_credit_terms"]["completed_by"] == "carol"
    assert steps["set_credit_terms"]["data"] == {"credit_limit": 60000.0, "payment_terms": "NET30"}
    customer_id = result["outputs"]["customer_id"]
    uuid.UUID(customer_id)

    org_id = await catalog.resolve_organization(org)
    lines = await catalog.step_lines(org_id, handle.id)
    assert sorted(line["step_id"] for line in lines) == [
        "create_customer",
        "manager_approval",
        "set_credit_terms",
    ]
    by_step = {line["step_id"]: line for line in lines}
    assert by_step["set_credit_terms"]["completed_by"] == "carol"
    assert await catalog.entity_exists(org_id, customer_id)


async def test_small_limit_skips_approval(playbooks: PlaybookClient) -> None:
    handle = await playbooks.start("customer.create.v1", organization=org_code(), data=CUSTOMER)
    await until(playbooks, handle.id, waiting_on("set_credit_terms"))
    await playbooks.complete(
        handle.id,
        "set_credit_terms",
        data={"credit_limit": "1000", "payment_terms": "NET15"},
        role="credit_controller",
    )
    result = await handle.result()
    steps = {s["id"]: s["status"] for s in result["steps"]}
    assert steps == {
        "create_customer": "completed",
        "set_credit_terms": "completed",
        "manager_approval": "skipped",
    }


async def test_invalid_inputs_name_every_field(playbooks: PlaybookClient) -> None:
    handle = await playbooks.start(
        "customer.create.v1", organization=org_code(), data={"email": "not-an-email"}
    )
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    message = str(failure.value.cause)
    assert "customer_name: is required" in message
    assert "email: does not match the pattern" in message
    assert (await playbooks.status(handle.id)).status == "failed"


async def test_rejected_completions(playbooks: PlaybookClient) -> None:
    handle = await playbooks.start("customer.create.v1", organization=org_code(), data=CUSTOMER)
    await until(playbooks, handle.id, waiting_on("set_credit_terms"))
    good = {"credit_limit": 60000, "payment_terms": "NET30"}

    with pytest.raises(StepRejected, match="needs role 'credit_controller' \\(role 'intern' given\\)"):
        await playbooks.complete(handle.id, "set_credit_terms", data=good, role="intern")
    with pytest.raises(StepRejected, match=r"credit_limit: must be >= 0.*payment_terms: must be one of"):
        await playbooks.complete(
            handle.id,
            "set_credit_terms",
            data={"credit_limit": -5, "payment_terms": "NET90"},
            role="credit_controller",
        )
    with pytest.raises(StepRejected, match="step manager_approval is pending, not waiting"):
        await playbooks.complete(
            handle.id, "manager_approval", data={"approved": True}, role="finance_manager"
        )

    await playbooks.signal_complete(handle.id, "set_credit_terms", data=good)  # no role
    await playbooks.signal_complete(handle.id, "nope", data={})
    await playbooks.handle(handle.id).signal("complete_step", "not an object")
    status = await until(playbooks, handle.id, lambda s: len(s.rejected) == 3)
    reasons = [r.reason for r in status.rejected]
    assert "needs role 'credit_controller' (no role given)" in reasons[0]
    assert reasons[1] == "unknown step 'nope'"
    assert reasons[2].startswith("invalid argument")
    assert status.steps[1].status == "waiting"
    await playbooks.handle(handle.id).terminate("test over")


async def test_rejected_approval_fails_and_stops(playbooks: PlaybookClient) -> None:
    handle = await playbooks.start("customer.create.v1", organization=org_code(), data=CUSTOMER)
    await until(playbooks, handle.id, waiting_on("set_credit_terms"))
    await playbooks.complete(
        handle.id,
        "set_credit_terms",
        data={"credit_limit": 90000, "payment_terms": "NET60"},
        role="credit_controller",
    )
    await until(playbooks, handle.id, waiting_on("manager_approval"))
    await playbooks.complete(
        handle.id, "manager_approval", data={"approved": False, "comment": "too risky"},
        completed_by="maria", role="finance_manager",
    )  # fmt: skip
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert "step manager_approval: rejected by maria" in str(failure.value.cause)


APPROVAL_THEN_WRITE = {
    "id": "inline.approval.v1",
    "name": "Approval gate",
    "version": 1,
    "module": "ops",
    "smart_code": "HERA.OPS.TEST.GATE.v1",
    "steps": [
        {"id": "gate", "type": "approval", "with": {"approvals_required": 2}},
        {
            "id": "after",
            "type": "entity",
            "smart_code": "HERA.OPS.TEST.ENT.v1",
            "with": {"entity_type": "thing", "entity_name": "after gate", "entity_code": "AFTER"},
        },
    ],
}


async def test_two_distinct_approvers_and_rejection_stops_later_steps(playbooks: PlaybookClient) -> None:
    handle = await playbooks.start(
        "inline.approval.v1", organization=org_code(), playbook=APPROVAL_THEN_WRITE
    )
    await until(playbooks, handle.id, waiting_on("gate"))
    with pytest.raises(StepRejected, match="completed_by is required"):
        await playbooks.complete(handle.id, "gate", data={"approved": True})
    await playbooks.complete(handle.id, "gate", data={"approved": True}, completed_by="ann")
    with pytest.raises(StepRejected, match="ann has already approved"):
        await playbooks.complete(handle.id, "gate", data={"approved": True}, completed_by="ann")
    await playbooks.complete(handle.id, "gate", data={"approved": False}, completed_by="bob")
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    status = await playbooks.status(handle.id)
    assert {s.id: s.status for s in status.steps} == {"gate": "failed", "after": "cancelled"}  # never ran


PARALLEL = {
    "id": "inline.parallel.v1",
    "name": "Parallel branches",
    "version": 1,
    "module": "ops",
    "smart_code": "HERA.OPS.TEST.PAR.v1",
    "steps": [
        {
            "id": f"branch_{i}",
            "type": "entity",
            "depends_on": [],
            "smart_code": "HERA.OPS.TEST.ENT.v1",
            "with": {"entity_type": "thing", "entity_name": f"b{i}", "entity_code": f"B{i}"},
        }
        for i in range(3)
    ]
    + [
        {"id": "review_a", "type": "human", "depends_on": [], "with": {"instructions": "a"}},
        {"id": "review_b", "type": "human", "depends_on": [], "with": {"instructions": "b"}},
        {"id": "join", "type": "set", "depends_on": ["branch_0", "branch_1", "branch_2", "review_a", "review_b"],
         "with": {"vars": {"n": "{{ steps.branch_0.output.created }}"}}},
    ],
}  # fmt: skip


async def test_parallel_branches_overlap(playbooks: PlaybookClient) -> None:
    handle = await playbooks.start("inline.parallel.v1", organization=org_code(), playbook=PARALLEL)
    status = await until(playbooks, handle.id, lambda s: len(s.waiting_for) == 2)
    assert {w.step_id for w in status.waiting_for} == {"review_a", "review_b"}
    await playbooks.complete(handle.id, "review_a")
    await playbooks.complete(handle.id, "review_b")
    result = await handle.result()
    assert result["status"] == "completed"
    # all three activities were scheduled before the first of them completed
    events = [e async for e in handle.fetch_history_events()]
    kinds = [e.event_type for e in events]
    first_done = kinds.index(EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)
    scheduled_before = kinds[:first_done].count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    assert scheduled_before >= 3  # the three branches (prepare_execution is a local activity)


async def test_pause_holds_new_steps(playbooks: PlaybookClient) -> None:
    handle = await playbooks.start("customer.create.v1", organization=org_code(), data=CUSTOMER)
    await until(playbooks, handle.id, waiting_on("set_credit_terms"))
    await playbooks.pause(handle.id, "audit")
    await until(playbooks, handle.id, lambda s: s.status == "paused")
    await playbooks.complete(
        handle.id,
        "set_credit_terms",
        data={"credit_limit": 60000, "payment_terms": "NET30"},
        role="credit_controller",
    )
    await asyncio.sleep(0.5)
    status = await playbooks.status(handle.id)
    assert status.status == "paused"
    assert {s.id: s.status for s in status.steps}["manager_approval"] == "pending"
    await playbooks.resume(handle.id)
    await until(playbooks, handle.id, waiting_on("manager_approval"))
    await playbooks.handle(handle.id).terminate("test over")


@pytest.mark.parametrize("how", ["signal", "temporal"])
async def test_cancel_ends_cancelled(playbooks: PlaybookClient, catalog: Any, how: str) -> None:
    org = org_code()
    handle = await playbooks.start("customer.create.v1", organization=org, data=CUSTOMER)
    await until(playbooks, handle.id, waiting_on("set_credit_terms"))
    if how == "signal":
        await playbooks.cancel(handle.id, "customer withdrew")
    else:
        await handle.cancel()
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert isinstance(failure.value.cause, CancelledError)
    status = await playbooks.status(handle.id)
    assert status.status == "cancelled"
    assert {s.id: s.status for s in status.steps}["set_credit_terms"] == "cancelled"
    if how == "signal":
        assert status.error == "cancelled: customer withdrew"
    org_id = await catalog.resolve_organization(org)
    lines = {line["step_id"]: line for line in await catalog.step_lines(org_id, handle.id)}
    assert lines["set_credit_terms"]["status"] == "cancelled"


async def test_sensitive_values_never_leak(playbooks: PlaybookClient, catalog: Any) -> None:
    org = org_code()
    secret = CUSTOMER["tax_id"]
    handle = await playbooks.start("customer.create.v1", organization=org, data=CUSTOMER)
    await until(playbooks, handle.id, waiting_on("set_credit_terms"))
    status = await playbooks.status(handle.id)
    await playbooks.complete(
        handle.id,
        "set_credit_terms",
        data={"credit_limit": 10, "payment_terms": "NET30"},
        role="credit_controller",
    )
    result = await handle.result()
    org_id = await catalog.resolve_organization(org)
    lines = await catalog.step_lines(org_id, handle.id)
    events = [e async for e in handle.fetch_history_events()]
    activity_results = [
        e.activity_task_completed_event_attributes.result for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
    ]  # fmt: skip
    for where, value in {
        "status": status.model_dump_json(),
        "result": json.dumps(result),
        "audit": json.dumps(lines, default=str),
        "activity results": str(activity_results),
    }.items():
        assert secret not in value and secret.lower() not in value, where
    # the business field itself keeps the real value: it is the customer's data
    entity = await catalog.get_entity(org_id, uuid.UUID(result["outputs"]["customer_id"]))
    assert entity is not None and entity.fields["tax_id"] == secret


CHECKS = {
    "id": "inline.checks.v1",
    "name": "Validation rules",
    "version": 1,
    "module": "crm",
    "smart_code": "HERA.CRM.TEST.CHECKS.v1",
    "inputs": {"code": {"type": "string", "required": True}, "amount": {"type": "integer", "required": True}},
    "steps": [
        {
            "id": "first",
            "type": "entity",
            "smart_code": "HERA.CRM.TEST.ENT.v1",
            "with": {"entity_type": "account", "entity_name": "First", "entity_code": "{{ inputs.code }}",
                     "fields": {"external_ref": "{{ inputs.code }}"}},
        },
        {
            "id": "soft_check",
            "type": "validation",
            "on_error": "continue",
            "with": {
                "rules": [{"assert": "inputs.amount < 100", "message": "amount {{ inputs.amount }} is 100 or more"}],
                "unique": [{"entity_type": "account", "field": "external_ref", "value": "{{ inputs.code }}",
                            "message": "external_ref {{ inputs.code }} is taken"}],
                "exists": [{"entity_id": "{{ steps.first.output.entity_id }}", "message": "first is missing"}],
            },
        },
        {"id": "note", "type": "set", "with": {"vars": {"check": "{{ steps.soft_check.status }}"}}},
        {
            "id": "hard_check",
            "type": "validation",
            "with": {"rules": [{"assert": "inputs.amount < 1000", "message": "amount over the hard limit"}]},
        },
    ],
    "outputs": {"check": "{{ vars.check }}"},
}  # fmt: skip


async def test_validation_failures_continue_or_fail(playbooks: PlaybookClient, catalog: Any) -> None:
    org = org_code()
    handle = await playbooks.start(
        "inline.checks.v1", organization=org, playbook=CHECKS, data={"code": "A-1", "amount": "500"}
    )
    result = await handle.result()
    assert result["outputs"] == {"check": "failed"}
    steps = {s["id"]: s for s in result["steps"]}
    # the unique rule counts the entity written by the first step itself: "taken"
    assert steps["soft_check"]["error"] == "validation failed: amount 500 is 100 or more; external_ref A-1 is taken"
    assert steps["hard_check"]["status"] == "completed"

    handle = await playbooks.start(
        "inline.checks.v1", organization=org, playbook=CHECKS, data={"code": "B-2", "amount": 5000}
    )
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert failure.value.cause.message == "step hard_check: validation failed: amount over the hard limit"  # type: ignore[attr-defined]
    org_id = await catalog.resolve_organization(org)
    lines = {line["step_id"]: line for line in await catalog.step_lines(org_id, handle.id)}
    assert lines["hard_check"]["status"] == "failed"
    assert lines["hard_check"]["attempts"] == 1  # validation failures are never retried


async def test_bad_step_input_fails_with_the_field(playbooks: PlaybookClient) -> None:
    bad_line = {"transaction_type": "sale", "lines": [{"quantity": -2, "unit_price": 5}]}
    definition = {**WRITE_LINES, "steps": [{**WRITE_LINES["steps"][0], "with": bad_line}]}
    handle = await playbooks.start("inline.lines.v1", organization=org_code(), playbook=definition)
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert "step sale: " in str(failure.value.cause) and "quantity" in str(failure.value.cause)


WRITE_LINES = {
    "id": "inline.lines.v1",
    "name": "A sale",
    "version": 1,
    "module": "sales",
    "smart_code": "HERA.SALES.TEST.SALE.v1",
    "steps": [
        {
            "id": "sale",
            "type": "transaction",
            "smart_code": "HERA.SALES.TXN.SALE.v1",
            "with": {
                "transaction_type": "sale",
                "currency": "EUR",
                "lines": [{"quantity": 2, "unit_price": "19.99"}, {"quantity": 1, "unit_price": 0.02}],
            },
        }
    ],
    "outputs": {"total": "{{ steps.sale.output.total_amount }}"},
}


async def test_transaction_totals_are_exact(playbooks: PlaybookClient) -> None:
    handle = await playbooks.start("inline.lines.v1", organization=org_code(), playbook=WRITE_LINES)
    result = await handle.result()
    assert result["outputs"]["total"] == "40.00"  # exact Decimal sum, money with two decimals


async def test_current_details_show_progress_and_the_signal_that_completes_the_step(
    playbooks: PlaybookClient,
) -> None:
    from temporalio.api.sdk.v1 import WorkflowMetadata

    handle = await playbooks.start("customer.create.v1", organization=org_code(), data=CUSTOMER)
    await until(playbooks, handle.id, waiting_on("set_credit_terms"))
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    details = metadata.current_details  # what the Web UI shows as the execution's current details
    assert "**RUNNING** · 1/3 steps" in details
    assert "- ✅ Create customer `create_customer` · entity · **completed**" in details
    assert "### ✋ Waiting: Set credit terms (`set_credit_terms`), role `credit_controller`, deadline" in details
    assert "> Set credit terms for Acme Corp." in details
    assert CUSTOMER["tax_id"] not in details
    signal = json.loads(details.split("```json\n")[1].split("\n```")[0])
    assert signal["step_id"] == "set_credit_terms" and signal["role"] == "credit_controller"
    # pasted as-is into "Send a Signal", the example completes the step
    await playbooks.handle(handle.id).signal("complete_step", signal)
    status = await until(playbooks, handle.id, lambda s: s.steps[1].status == "completed")
    assert status.steps[1].completed_by == "your-name"
    assert (await handle.result())["status"] == "completed"  # a zero limit needs no approval
