"""A malformed message never breaks an execution (issue 11): any JSON, any type in any field, any size.

Against a real dev server: after whatever is sent, the history holds no failed workflow task, the `status`
query answers (under 256 KB), nothing invalid was applied, and a valid completion still completes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from model.limits import MAX_REJECTED
from model.variables import Variable, validate_values
from starter.client import PlaybookClient
from tests.fixtures_temporal import running_worker
from tests.malformed import BIG, raw_json, send_all
from tests.test_workflow_e2e import until, waiting_on

CUSTOMER = {"customer_name": "Acme Corp", "email": "ops@acme.example"}
STATUS_LIMIT = 256 * 1024
FORM = {"credit_limit": Variable(type="float", required=True, minimum=0),
        "payment_terms": Variable(type="select", options=["NET15", "NET30", "NET60"], required=True)}  # fmt: skip
VALID = {"step_id": "set_credit_terms", "role": "credit_controller", "completed_by": "carol",
         "data": {"credit_limit": 1000, "payment_terms": "NET30"}, "override_claim": True}  # fmt: skip


async def waiting_execution(client: PlaybookClient) -> WorkflowHandle[Any, Any]:
    handle = await client.start("customer.create.v1", organization=f"org_msg_{uuid.uuid4().hex[:8]}", data=CUSTOMER)
    await until(client, handle.id, waiting_on("set_credit_terms"))
    return handle


async def no_failed_task(handle: WorkflowHandle[Any, Any]) -> None:
    failed = [e async for e in handle.fetch_history_events()
              if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]  # fmt: skip
    assert not failed, failed[0].workflow_task_failed_event_attributes.failure.message


async def status_size(handle: WorkflowHandle[Any, Any]) -> int:
    return len(json.dumps(await handle.query("status")).encode())


async def completes(client: PlaybookClient, handle: WorkflowHandle[Any, Any]) -> None:
    """A valid completion (after a resume, in case a pause came through) ends the execution completed."""
    await handle.signal("resume", {})
    await handle.signal("complete_step", VALID)
    assert (await handle.result())["status"] == "completed"


async def test_a_step_id_that_is_not_a_string_is_rejected_and_a_valid_completion_then_completes(
    playbooks: PlaybookClient,
) -> None:
    handle = await waiting_execution(playbooks)
    await handle.signal("complete_step", {"step_id": 123, "data": {}})
    await handle.signal("complete_step", {"step_id": "set_credit_terms", "completed_by": 7, "data": {}})
    status = await until(playbooks, handle.id, lambda s: s.rejected_count == 2)
    assert [r.step_id for r in status.rejected] == ["123", "set_credit_terms"]
    assert "step_id: Input should be a valid string" in status.rejected[0].reason
    assert "completed_by: Input should be a valid string" in status.rejected[1].reason
    await completes(playbooks, handle)
    await no_failed_task(handle)


async def test_100_kb_fields_and_unreadable_payloads_are_rejected_with_clipped_values(
    playbooks: PlaybookClient,
) -> None:
    handle = await waiting_execution(playbooks)
    for _ in range(25):  # 21 of these once made the status answer too large for good
        await handle.signal("complete_step", {**VALID, "completed_by": BIG})
    sent = 25 + await send_all(handle)
    status = await until(playbooks, handle.id, lambda s: s.rejected_count == sent)
    assert len(status.rejected) == min(sent, MAX_REJECTED)
    reasons = " | ".join(r.reason for r in status.rejected)
    assert "the argument cannot be read" in reasons  # invalid JSON, a lone surrogate, 300-deep nesting
    assert "takes one argument, 2 given" in reasons
    assert "unknown signal 'complete-step'" in reasons
    assert all(len(json.dumps(r.model_dump(mode="json"))) < 2048 for r in status.rejected)
    assert await status_size(handle) < STATUS_LIMIT
    assert status.steps[1].status == "waiting"  # the 100 KB completed_by was never applied
    await completes(playbooks, handle)
    await no_failed_task(handle)


async def test_2000_malformed_signals_then_the_execution_hands_over_and_completes(
    temporal_short_history: WorkflowEnvironment, catalog: Any
) -> None:
    async with running_worker(temporal_short_history.client, catalog) as client:
        handle = await waiting_execution(client)
        for batch in range(40):
            await asyncio.gather(*(
                handle.signal("complete_step", {"step_id": batch * 50 + i, "completed_by": BIG[:2000]})
                for i in range(50)
            ))  # fmt: skip
        status = await until(client, handle.id, lambda s: s.rejected_count == 2000)
        assert status.runs > 1  # handed over (continue-as-new) while the signals came in
        assert len(status.rejected) == MAX_REJECTED
        assert await status_size(handle) < STATUS_LIMIT
        await completes(client, handle)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
step_ids = st.sampled_from(["set_credit_terms", "create_customer", "manager_approval", "nope", ""]) | json_values
completions = st.fixed_dictionaries(
    {},
    optional={
        "step_id": step_ids,
        "role": st.sampled_from(["credit_controller", "finance_manager"]) | json_values,
        "completed_by": st.text(max_size=300) | json_values,
        "data": st.fixed_dictionaries({}, optional={
            "credit_limit": st.integers(-5, 60000) | json_values,
            "payment_terms": st.sampled_from(["NET15", "NET30", "NET90"]) | json_values,
        }) | json_values,
        "override_claim": st.booleans() | json_values,
        "by": st.text(max_size=300) | json_values,
        "text": st.text(max_size=50) | json_values,
    },
)  # fmt: skip
arguments = completions | json_values
signals = st.tuples(st.sampled_from(["complete_step", "add_note", "pause", "resume", "bogus"]), arguments)
updates = st.tuples(st.sampled_from(["submit_step", "claim_step", "release_step"]), arguments)
raw_signals = st.tuples(st.just("raw"), st.binary(max_size=40))
messages = st.lists(st.one_of(signals, updates, raw_signals), min_size=1, max_size=12)


@settings(max_examples=12, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=messages)
async def test_generated_messages_of_every_shape_never_break_a_waiting_execution(
    playbooks: PlaybookClient, batch: list[tuple[str, Any]]
) -> None:
    handle = await waiting_execution(playbooks)
    for name, arg in batch:
        if name == "raw":
            await handle.signal("complete_step", args=[raw_json(arg)])
        elif name.endswith("_step") and name != "complete_step":
            with contextlib.suppress(WorkflowUpdateFailedError, RPCError):  # refused to the caller: as updates are
                await handle.execute_update(name, arg)
        else:
            await handle.signal(name, arg)
    status = await playbooks.status(handle.id)  # answers, whatever came
    assert await status_size(handle) < STATUS_LIMIT
    credit = next(s for s in status.steps if s.id == "set_credit_terms")
    if credit.status == "completed":  # only a valid completion can have been applied
        assert validate_values(FORM, credit.data).ok
        assert credit.completed_by is None or isinstance(credit.completed_by, str)
    if status.status not in ("completed", "failed"):
        if credit.status == "waiting":
            await completes(playbooks, handle)
        else:
            await handle.signal("resume", {})
            assert (await handle.result())["status"] == "completed"
    await no_failed_task(handle)

