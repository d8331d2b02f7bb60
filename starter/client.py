"""A small typed client for services (and the CLI): start a playbook, complete a step, read its status."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError

from config import Settings, connect
from model import search_attributes as sa
from model.execution import NOTE_WORKFLOW_NAME, WORKFLOW_NAME, ExecutionInput, Note, NoteRequest, StatusView
from model.messages import StepClaim, StepCompletion


class StepRejected(Exception):
    """A completion the execution refused (wrong role, invalid data, not waiting…)."""

    def __init__(self, message: str, *, conflict: bool = False) -> None:
        super().__init__(message)
        self.conflict = conflict
        """The step is not waiting or someone else holds it (the request was right, the moment not)."""

    @classmethod
    def of(cls, exc: WorkflowUpdateFailedError) -> StepRejected:
        cause = exc.cause
        message = getattr(cause, "message", None) or str(cause)
        return cls(message, conflict=isinstance(cause, ApplicationError) and cause.type == "Conflict")


class PlaybookClient:
    """Start and drive playbook executions through Temporal."""

    def __init__(self, client: Client, *, task_queue: str = "playbooks") -> None:
        self.client = client
        self.task_queue = task_queue

    @classmethod
    async def connect(cls, settings: Settings) -> PlaybookClient:
        client = await connect(settings)
        return cls(client, task_queue=settings.task_queue)

    async def start(
        self,
        playbook_id: str,
        *,
        organization: str,
        data: dict[str, Any] | None = None,
        requested_by: str | None = None,
        playbook: dict[str, Any] | None = None,
        workflow_id: str | None = None,
        memo: dict[str, Any] | None = None,
        once: bool = False,
    ) -> WorkflowHandle[Any, Any]:
        """Start an execution; its id is ``<organization>/<playbook_id>/<unique suffix>`` unless given.
        `once`: the id is never reused, even after that execution ended (idempotent starts)."""
        execution_id = workflow_id or f"{organization}/{playbook_id}/{uuid.uuid4().hex[:12]}"
        return await self.client.start_workflow(
            WORKFLOW_NAME,
            ExecutionInput(
                playbook_id=playbook_id,
                organization_id=organization,
                initial_data=data or {},
                requested_by=requested_by,
                playbook=playbook,
            ),
            id=execution_id,
            task_queue=self.task_queue,
            memo=memo,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE if once else WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.PLAYBOOK_ID, playbook_id),
                    SearchAttributePair(sa.ORGANIZATION_ID, organization),
                ]
            ),
            static_summary=f"{playbook_id} for {organization}"
            + (f", requested by {requested_by}" if requested_by else ""),
        )

    def handle(self, execution_id: str) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(execution_id)

    async def complete(
        self,
        execution_id: str,
        step_id: str,
        *,
        data: dict[str, Any] | None = None,
        completed_by: str | None = None,
        role: str | None = None,
        override_claim: bool = False,
    ) -> None:
        """Complete a waiting step through the `submit_step` update; raise StepRejected with the reason."""
        completion = StepCompletion(
            step_id=step_id, data=data or {}, completed_by=completed_by, role=role, override_claim=override_claim
        )
        try:
            await self.handle(execution_id).execute_update(
                "submit_step", completion.model_dump(exclude_none=True, exclude_defaults=True)
            )
        except WorkflowUpdateFailedError as exc:
            raise StepRejected.of(exc) from None

    async def signal_complete(
        self, execution_id: str, step_id: str, *, data: dict[str, Any] | None = None, **who: str | None
    ) -> None:
        """Complete a step by signal (fire and forget; refusals land in status.rejected)."""
        completion = StepCompletion(step_id=step_id, data=data or {}, **who)
        await self.handle(execution_id).signal("complete_step", completion.model_dump(exclude_none=True))

    async def status(self, execution_id: str) -> StatusView:
        return StatusView.model_validate(await self.handle(execution_id).query("status"))

    async def ending(self, execution_id: str) -> tuple[str, str | None] | None:
        """How Temporal says the execution ended — its status (``FAILED``, ``TERMINATED``, …) and the failure's
        message — or None while it runs: the truth also for an ending the `status` query cannot know."""
        handle = self.handle(execution_id)
        described = await handle.describe()
        if described.status in (None, WorkflowExecutionStatus.RUNNING):
            return None
        try:
            await handle.result()
        except WorkflowFailureError as exc:
            return described.status.name, str(getattr(exc.cause, "message", None) or exc.cause)
        return described.status.name, None

    async def add_note(self, execution_id: str, text: str, *, by: str | None = None) -> str:
        """Add a note to an execution, open or closed; returns "signalled" or "recorded".

        An open execution gets the `add_note` signal (the note shows in `status.notes`); a closed one
        cannot take signals, so a `PlaybookNote` workflow writes the note to its audit trail.
        """
        note = Note(note_id=uuid.uuid4().hex, text=text, by=by)
        handle = self.handle(execution_id)
        described = await handle.describe()
        if described.status == WorkflowExecutionStatus.RUNNING:
            await handle.signal("add_note", note.model_dump(mode="json", exclude_none=True))
            return "signalled"
        status = await self.status(execution_id)
        note.at = datetime.now(UTC)
        await self.client.execute_workflow(
            NOTE_WORKFLOW_NAME,
            NoteRequest(organization=status.organization_id, execution_id=execution_id, note=note),
            id=f"{execution_id}/note/{note.note_id}",
            task_queue=self.task_queue,
        )
        return "recorded"

    async def claim(self, execution_id: str, step_id: str, *, by: str, role: str | None = None,
                    release: bool = False, override: bool = False) -> dict[str, Any]:  # fmt: skip
        """Claim a waiting step for `by` (or release it); raise StepRejected with the reason."""
        claim = StepClaim(step_id=step_id, by=by, role=role, override=override)
        try:
            result: dict[str, Any] = await self.handle(execution_id).execute_update(
                "release_step" if release else "claim_step", claim.model_dump(exclude_none=True)
            )
        except WorkflowUpdateFailedError as exc:
            raise StepRejected.of(exc) from None
        return result

    async def pause(self, execution_id: str, reason: str | None = None) -> None:
        await self.handle(execution_id).signal("pause", {"reason": reason})

    async def resume(self, execution_id: str, reason: str | None = None) -> None:
        await self.handle(execution_id).signal("resume", {"reason": reason})

    async def cancel(self, execution_id: str, reason: str | None = None) -> None:
        await self.handle(execution_id).signal("cancel", {"reason": reason})
