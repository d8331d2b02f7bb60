"""Steps that wait for people: `human` and `approval`, with deadlines, escalation and its notices.

The decision itself arrives through the workflow's `complete_step` signal or `submit_step` update,
which check and apply it on the run state; these handlers wait for it through each deadline.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from model import expressions
from model.durations import format_duration
from model.execution import StepRequest
from model.run import WaitState
from model.status import StepStatus
from model.steps import ApprovalStep, HumanStep, Notify, OnReject, OnTimeout

from .dispatch import ExecutionFailed, Interpreter, Scope, StepFailed, cause, handles

NOTICE_TIMEOUT = timedelta(seconds=30)


@handles(HumanStep)
async def human(run: Interpreter, step: HumanStep, scope: Scope) -> Any:
    return await _people(run, step, scope)


@handles(ApprovalStep)
async def approval(run: Interpreter, step: ApprovalStep, scope: Scope) -> Any:
    return await _people(run, step, scope)


async def _people(run: Interpreter, step: HumanStep | ApprovalStep, scope: Scope) -> Any:
    state = run.state
    spec = step.with_
    view = state.steps[scope.id(step)]
    waiting = state.waiting.setdefault(view.id, WaitState(step_id=view.id, role=spec.assignee_role))
    view.status = StepStatus.waiting
    try:
        decided = await _await_people(run, view.id, step, waiting)
    except asyncio.CancelledError:
        if not run.handing_over:
            _stop_waiting(run, view.id)
        raise
    except ExecutionFailed:
        _stop_waiting(run, view.id)
        raise
    _stop_waiting(run, view.id)
    if not decided:  # the deadline skipped it
        view.data = expressions.render(spec.default or {}, run.context(scope))
        run.set_status(view.id, StepStatus.skipped, reason="deadline passed")
        return {"data": view.data, "completed_by": None}
    view.data, view.completed_by = waiting.data, waiting.completed_by
    output: dict[str, Any] = {"data": waiting.data, "completed_by": waiting.completed_by}
    if isinstance(step, ApprovalStep):
        approved = all(a.approved for a in waiting.approvals)
        output = {"approved": approved, "approvals": [a.model_dump(mode="json") for a in waiting.approvals]}
        if not approved and step.with_.on_reject == OnReject.fail:
            view.output = output
            raise StepFailed(view.id, f"rejected by {waiting.completed_by or 'an approver'}")
    view.output = output
    run.set_status(view.id, StepStatus.completed)
    await run.update_execution()  # who decided what is on record at once, not only at the end
    return output


async def _await_people(run: Interpreter, view_id: str, step: HumanStep | ApprovalStep, waiting: WaitState) -> bool:
    """Wait for a decision through each deadline; False when a deadline skips the step."""
    spec = step.with_
    roles = spec.escalation_roles
    while True:
        if step.timeout and waiting.deadline is None:
            waiting.deadline = workflow.now() + step.timeout
        run.changed()
        remaining = (waiting.deadline - workflow.now()).total_seconds() if waiting.deadline else None
        try:
            if remaining is not None and remaining <= 0:
                raise TimeoutError
            await workflow.wait_condition(lambda: waiting.decided, timeout=remaining)
            return True
        except TimeoutError:
            if spec.on_timeout == OnTimeout.escalate and waiting.escalations < len(roles):
                waiting.role = roles[waiting.escalations]
                waiting.claimed_by = waiting.claimed_at = None  # the next role's people decide who takes it
                waiting.escalations += 1
                waiting.escalated_at.append(workflow.now())
                waiting.deadline = None  # the next role gets a fresh deadline
                if spec.notify:
                    await _notify_escalation(run, view_id, step, spec.notify, waiting)
                continue
            if spec.on_timeout == OnTimeout.skip:
                return False
            limit = format_duration(step.timeout) if step.timeout else "the deadline"
            raise StepFailed(view_id, f"deadline passed ({limit} without completion)") from None


async def _notify_escalation(run: Interpreter, view_id: str, step: HumanStep | ApprovalStep, notify: Notify,
                             waiting: WaitState) -> None:  # fmt: skip
    """Tell `notify` that a step moved to the next role, through the notification step type."""
    info = workflow.info()
    body = f"{step.title} ({view_id}) in {info.workflow_id} now waits for role {waiting.role}."
    try:
        await run.busy_with(
            workflow.execute_activity(
                "notification",
                StepRequest(
                    organization_uuid=run.prepared.organization_uuid,
                    execution_id=info.workflow_id,
                    step_id=step.id,
                    step_type="notification",
                    iteration=f"{view_id.removesuffix(step.id)}escalation-{waiting.escalations}",
                    playbook_id=run.playbook.id,
                    with_={**notify.model_dump(), "subject": f"Escalated: {step.title}", "body": body},
                    secrets=run.state.secrets,
                ),
                start_to_close_timeout=NOTICE_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=5),
                activity_id=f"{view_id}/escalation-{waiting.escalations}" if run.named_activities else None,
            )
        )
    except ActivityError as exc:  # the escalation itself stands; the failed message is reported, not fatal
        workflow.logger.warning("escalation notice for %s was not delivered: %s", view_id, cause(exc))


def _stop_waiting(run: Interpreter, view_id: str) -> None:
    run.state.waiting.pop(view_id, None)
    run.changed()
