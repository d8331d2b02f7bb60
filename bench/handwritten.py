"""The benchmark's baseline: a hand-written workflow doing the same activities as the interpreter.

A module of its own because workflow modules must not import the database driver (sandbox).
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

from model.execution import ExecutionInput, ExecutionUpdate, Prepared, PrepareRequest, StepRequest
from model.status import ExecutionStatus

RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))


@workflow.defn(name="HandWritten")
class HandWritten:
    """What a team would write by hand for the same job: resolve, N writes, record the end."""

    @workflow.run
    async def run(self, input: ExecutionInput) -> None:
        info = workflow.info()
        prepared = await workflow.execute_activity(
            "prepare_execution",
            PrepareRequest(execution_id=info.workflow_id, organization=input.organization_id,
                           playbook_id=input.playbook_id, inline=input.playbook),
            result_type=Prepared, start_to_close_timeout=timedelta(seconds=30), retry_policy=RETRY,
        )  # fmt: skip
        for step in prepared.playbook.steps:
            await workflow.execute_activity(
                "entity",
                StepRequest(
                    organization_uuid=prepared.organization_uuid, execution_id=info.workflow_id, step_id=step.id,
                    step_type="entity", smart_code=step.smart_code,
                    with_={**step.with_.model_dump(mode="json"), "entity_code": f"{info.workflow_id}-{step.id}"},  # type: ignore[union-attr]
                ),
                start_to_close_timeout=timedelta(minutes=5), retry_policy=RETRY,
            )  # fmt: skip
        await workflow.execute_activity(
            "update_execution",
            ExecutionUpdate(
                organization_uuid=prepared.organization_uuid, execution_id=info.workflow_id,
                playbook_id=prepared.playbook.id, smart_code=prepared.playbook.smart_code,
                status=ExecutionStatus.completed,
            ),
            start_to_close_timeout=timedelta(seconds=30), retry_policy=RETRY,
        )  # fmt: skip


@workflow.defn(name="BareHandWritten")
class BareHandWritten:
    """What a user would write without an audit trail: one bare upsert activity per step, nothing else."""

    @workflow.run
    async def run(self, input: ExecutionInput) -> None:
        info = workflow.info()
        for step in (input.playbook or {})["steps"]:
            await workflow.execute_activity(
                "bare_upsert", BareUpsert(organization=input.organization_id, code=f"{info.workflow_id}-{step['id']}"),
                start_to_close_timeout=timedelta(minutes=5), retry_policy=RETRY,
            )  # fmt: skip


class BareUpsert(BaseModel):
    organization: str
    code: str
