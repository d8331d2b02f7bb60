"""Automated steps: the step's ``with:`` rendered in the workflow, then run as the activity of its type."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

from model import expressions, secrets
from model.execution import StepRequest
from model.status import StepStatus
from model.steps import HTTP_ALIASES, Step, ValidationStep

from .dispatch import Interpreter, Scope

STEP_TIMEOUT = timedelta(minutes=5)
"""An automated step's deadline when it sets no `timeout`."""
SCRIPT_TYPE = "script"
"""Runs programs: scheduled on the script workers' own task queue, never on the business one."""
SCRIPT_HEARTBEAT = timedelta(seconds=30)
"""A script's worker proves it is alive this often (it heartbeats every 5 s): a killed one's step is retried."""


def activity_name(step_type: str) -> str:
    return "http" if step_type in HTTP_ALIASES else step_type


def retry_policy(step: Step) -> RetryPolicy:
    retry = step.retry
    if retry is None:
        return RetryPolicy(maximum_interval=timedelta(seconds=30))
    return RetryPolicy(
        maximum_attempts=retry.max_attempts,
        initial_interval=retry.initial_interval or timedelta(seconds=1),
        backoff_coefficient=retry.backoff_coefficient,
        maximum_interval=retry.maximum_interval,
    )


async def run_activity(run: Interpreter, step: Step, scope: Scope) -> Any:
    state = run.state
    view = state.steps[scope.id(step)]
    rendered = render_with(run, step, scope)
    view.attempts = 1
    name = activity_name(step.type)
    timeout = step.timeout or STEP_TIMEOUT
    script = name == SCRIPT_TYPE  # no recorded history has a script step: their commands are unchanged
    output = await run.busy_with(
        workflow.execute_activity(
            name,
            StepRequest(
                organization_uuid=run.prepared.organization_uuid,
                execution_id=workflow.info().workflow_id,
                step_id=step.id,
                step_type=step.type,
                iteration=scope.iteration,
                playbook_id=run.playbook.id,
                smart_code=step.smart_code,
                with_=rendered,
                secrets=state.secrets,
                started_at=view.started_at,
            ),
            start_to_close_timeout=timeout,
            retry_policy=retry_policy(step),
            task_queue=run.prepared.script_task_queue if script else None,
            heartbeat_timeout=min(SCRIPT_HEARTBEAT, timeout) if script else None,
            # the step names its activity in the Web UI; a summary would cost a payload per step
            activity_id=view.id if run.named_activities else None,
        )
    )
    run.set_status(view.id, StepStatus.completed, record=False)  # the activity wrote its own audit line
    return output


def render_with(run: Interpreter, step: Step, scope: Scope) -> dict[str, Any]:
    raw = step.with_ if isinstance(step.with_, dict) else step.with_.model_dump(mode="json", by_alias=True)
    context = run.context(scope)
    if isinstance(step, ValidationStep):
        rules = []
        for rule in raw.pop("rules"):
            passed = expressions.condition(rule["assert"], context)
            # a message explains a failure: it may read data that only exists when the rule fails
            rules.append(
                {
                    "passed": passed,
                    "message": rule["message"] if passed else expressions.render(rule["message"], context),
                }
            )
        return {**expressions.render(raw, context), "rules": rules}
    if secrets.allowed_in(step.type):  # references stay references: the activity resolves them
        context = {**context, secrets.NAMESPACE: secrets.REFERENCES}
    rendered: dict[str, Any] = expressions.render(raw, context)
    return rendered

