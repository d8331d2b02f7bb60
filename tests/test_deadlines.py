"""Deadlines, escalation chains and month-long waits, on the time-skipping test server (seconds, not months)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from starter.client import PlaybookClient
from tests.fixtures_temporal import running_worker


def escalating(**people: Any) -> dict[str, Any]:
    return {
        "id": "inline.escalate.v1", "name": "Escalation chain", "version": 1, "module": "service",
        "smart_code": "HERA.SERVICE.TEST.ESC.v1",
        "steps": [
            {"id": "triage", "type": "human", "timeout": "1h", "with": {
                "assignee_role": "agent", "instructions": "Triage the ticket", "on_timeout": "escalate",
                "escalate_to": ["team_lead", "manager"],
                "form": {"severity": {"type": "select", "options": ["low", "high"], "required": True}}, **people}},
        ],
        "outputs": {"severity": "{{ steps.triage.data.severity }}", "by": "{{ steps.triage.completed_by }}"},
    }  # fmt: skip


async def status_of(client: PlaybookClient, execution_id: str) -> Any:
    return await client.status(execution_id)


async def test_escalation_chain_moves_the_step_and_restarts_the_deadline(
    time_skipping: WorkflowEnvironment, store: Any
) -> None:
    env = time_skipping
    async with running_worker(env.client, store) as client:
        handle = await client.start("inline.escalate.v1", organization="org_esc", playbook=escalating())
        await env.sleep(timedelta(minutes=1))
        first = (await client.status(handle.id)).waiting_for[0]
        assert (first.assignee_role, first.escalations) == ("agent", 0)
        started = await env.get_current_time()
        assert first.deadline is not None
        assert timedelta(minutes=58) < first.deadline - started <= timedelta(hours=1)

        await env.sleep(timedelta(hours=1))
        second = (await client.status(handle.id)).waiting_for[0]
        assert (second.assignee_role, second.escalations) == ("team_lead", 1)
        assert second.deadline is not None and second.deadline > first.deadline + timedelta(minutes=59)

        await env.sleep(timedelta(hours=1))
        third = (await client.status(handle.id)).waiting_for[0]
        assert (third.assignee_role, third.escalations) == ("manager", 2)
        with pytest.raises(Exception, match="needs role 'manager'"):
            await client.complete(handle.id, "triage", data={"severity": "high"}, role="agent")
        await client.complete(handle.id, "triage", data={"severity": "high"}, role="manager", completed_by="meg")
        result = await handle.result()
    assert result["outputs"] == {"severity": "high", "by": "meg"}


async def test_after_the_last_role_the_next_deadline_fails_the_step(
    time_skipping: WorkflowEnvironment, store: Any
) -> None:
    async with running_worker(time_skipping.client, store) as client:
        handle = await client.start("inline.escalate.v1", organization="org_esc", playbook=escalating())
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()  # the server skips through 3 hours at once
    assert "step triage: deadline passed (1h without completion)" in str(failure.value.cause)


MONTHS = {
    "id": "inline.months.v1", "name": "Contract renewal", "version": 1, "module": "sales",
    "smart_code": "HERA.SALES.TEST.RENEW.v1",
    "steps": [
        {"id": "cool_off", "type": "wait", "with": {"duration": "30d"}},
        {"id": "renew", "type": "approval", "timeout": "60d",
         "with": {"assignee_role": "account_manager", "instructions": "Renew the contract?"}},
        {"id": "note", "type": "set", "with": {"vars": {"renewed": "{{ steps.renew.output.approved }}"}}},
    ],
    "outputs": {"renewed": "{{ vars.renewed }}"},
}  # fmt: skip


async def test_a_month_long_wait_and_a_two_month_deadline_pass_in_seconds(
    time_skipping: WorkflowEnvironment, store: Any
) -> None:
    env = time_skipping
    async with running_worker(env.client, store) as client:
        handle = await client.start("inline.months.v1", organization="org_months", playbook=MONTHS)
        begin = await env.get_current_time()
        await env.sleep(timedelta(days=30, hours=1))
        waiting = (await client.status(handle.id)).waiting_for
        assert [w.step_id for w in waiting] == ["renew"]
        assert waiting[0].deadline is not None
        assert timedelta(days=89) < waiting[0].deadline - begin < timedelta(days=91)
        await env.sleep(timedelta(days=45))
        await client.complete(handle.id, "renew", data={"approved": True}, role="account_manager")
        result = await handle.result()
    assert result["outputs"] == {"renewed": True}
    assert (await env.get_current_time()) - begin > timedelta(days=75)
