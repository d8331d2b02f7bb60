"""The engine's own activities: resolve and pin a definition, keep the execution row current, cancel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from temporalio import activity
from temporalio.client import Client

from model import PlaybookError, load_playbook
from model.execution import ExecutionUpdate, Prepared, PrepareRequest
from model.status import ExecutionStatus
from store import StepKey, Store

from .errors import fail, user_facing


class EngineActivities:
    def __init__(self, store: Store, client: Client, *, script_task_queue: str = "playbooks-scripts") -> None:
        self.store = store
        self.client = client
        self.script_task_queue = script_task_queue

    @activity.defn(name="prepare_execution")
    async def prepare_execution(self, req: PrepareRequest) -> Prepared:
        """Resolve the organization and the definition (validated here, once), and open the execution row."""
        async with user_facing():
            org = await self.store.resolve_organization(req.organization)
            definition = req.inline or await self.store.get_definition(org, req.playbook_id)
            if definition is None:
                raise fail(
                    "PlaybookNotFound",
                    f"no playbook {req.playbook_id!r} in the catalog of {req.organization}",
                )
        try:
            playbook = load_playbook(definition)
        except PlaybookError as exc:
            raise fail("InvalidPlaybook", f"playbook {req.playbook_id} is invalid: {exc}") from None
        async with user_facing():
            await self.store.upsert_execution(
                org,
                execution_id=req.execution_id,
                playbook_id=playbook.id,
                smart_code=playbook.smart_code,
                status=ExecutionStatus.running,
                requested_by=req.requested_by,
            )
        return Prepared(organization_uuid=str(org), playbook=playbook, script_task_queue=self.script_task_queue)

    @activity.defn(name="update_execution")
    async def update_execution(self, update: ExecutionUpdate) -> None:
        """Write pending audit lines and the execution's status (both idempotent)."""
        org = UUID(update.organization_uuid)
        metadata = {"error": update.error, "outputs": update.outputs}
        async with user_facing():
            for line in update.lines:
                key = StepKey(execution_id=update.execution_id, step_id=line.step_id, iteration=line.iteration)
                await self.store.record_step(org, key, line)
            await self.store.upsert_execution(
                org,
                execution_id=update.execution_id,
                playbook_id=update.playbook_id,
                smart_code=update.smart_code,
                status=update.status,
                metadata={k: v for k, v in metadata.items() if v is not None},
            )

    @activity.defn(name="request_cancellation")
    async def request_cancellation(self, workflow_id: str) -> None:
        """A `cancel` signal becomes Temporal's own cancellation, so the execution ends *cancelled*."""
        await self.client.get_workflow_handle(workflow_id).cancel()

    def activities(self) -> list[Callable[..., Any]]:
        return [self.prepare_execution, self.update_execution, self.request_cancellation]

