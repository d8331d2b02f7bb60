"""The engine's own activities: resolve and pin a definition, keep the execution row current, cancel."""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from uuid import UUID

from temporalio import activity
from temporalio.client import Client

from model import Playbook, PlaybookError, load_playbook
from model.execution import ExecutionUpdate, NoteRequest, Prepared, PrepareRequest
from model.status import ExecutionStatus
from store import RUNNABLE, ExecutionWrite, Store
from store.catalog import definition_sha

from .errors import fail, user_facing

DEFINITION_CACHE = 256
"""Distinct definitions a worker keeps validated (least recently used dropped first)."""


class EngineActivities:
    def __init__(self, store: Store, client: Client, *, script_task_queue: str = "playbooks-scripts") -> None:
        self.store = store
        self.client = client
        self.script_task_queue = script_task_queue
        self._definitions: OrderedDict[str, Playbook] = OrderedDict()
        """Validated definitions by sha256: validation compiles every template, once per worker is enough."""

    def _validated(self, definition: dict[str, Any]) -> Playbook:
        sha = hashlib.sha256(json.dumps(definition, sort_keys=True, default=str).encode()).hexdigest()
        if (known := self._definitions.get(sha)) is not None:
            self._definitions.move_to_end(sha)
            return known
        playbook = self._definitions[sha] = load_playbook(definition)
        if len(self._definitions) > DEFINITION_CACHE:
            self._definitions.popitem(last=False)
        return playbook

    @activity.defn(name="prepare_execution")
    async def prepare_execution(self, req: PrepareRequest) -> Prepared:
        """Resolve the organization and the definition (validated here, once), and open the execution row."""
        async with user_facing():
            org = await self.store.resolve_organization(req.organization)
            entry = None if req.inline else await self.store.resolve_definition(org, req.playbook_id)
        if entry is None and not req.inline:
            raise fail("PlaybookNotFound", f"no playbook {req.playbook_id!r} in the catalog of {req.organization}")
        if entry is not None and entry.status not in RUNNABLE:
            # SPEC §8: only published and deprecated playbooks start by id; inline definitions may be drafts
            raise fail(
                "PlaybookNotRunnable",
                f"playbook {req.playbook_id} is {entry.status} in the catalog of {req.organization}: "
                "only published or deprecated playbooks start by id",
            )
        definition = entry.definition if entry else req.inline or {}
        try:
            playbook = self._validated(definition)
        except PlaybookError as exc:
            raise fail("InvalidPlaybook", f"playbook {req.playbook_id} is invalid: {exc}") from None
        if playbook.template:
            raise fail("PlaybookNotRunnable", f"{playbook.id} is a template: make a playbook of it with playbook new")
        async with user_facing():
            await self.store.upsert_execution(
                org,
                execution_id=req.execution_id,
                playbook_id=playbook.id,
                smart_code=playbook.smart_code,
                status=ExecutionStatus.running,
                requested_by=req.requested_by,
            )
        return Prepared(
            organization_uuid=str(org),
            playbook=playbook,
            definition_sha=entry.sha256 if entry else definition_sha(definition),
            deprecated=entry is not None and entry.status == "deprecated",
            superseded_by=entry.superseded_by if entry else None,
            script_task_queue=self.script_task_queue,
        )

    @activity.defn(name="update_execution")
    async def update_execution(self, update: ExecutionUpdate) -> None:
        """Write pending audit lines and the execution's status (both idempotent)."""
        org = UUID(update.organization_uuid)
        metadata = {"error": update.error, "outputs": update.outputs}
        write = ExecutionWrite(
            execution_id=update.execution_id, playbook_id=update.playbook_id, smart_code=update.smart_code,
            status=update.status, requested_by=None, metadata={k: v for k, v in metadata.items() if v is not None},
        )  # fmt: skip
        async with user_facing():
            await self.store.update_execution(org, write, update.lines)

    @activity.defn(name="record_note")
    async def record_note(self, req: NoteRequest) -> None:
        """Write a note to the execution's audit trail (idempotent by note id)."""
        async with user_facing():
            org = await self.store.resolve_organization(req.organization)
            await self.store.add_note(org, req.execution_id, req.note.model_dump(mode="json"))

    @activity.defn(name="request_cancellation")
    async def request_cancellation(self, workflow_id: str) -> None:
        """A `cancel` signal becomes Temporal's own cancellation, so the execution ends *cancelled*."""
        await self.client.get_workflow_handle(workflow_id).cancel()

    def activities(self) -> list[Callable[..., Any]]:
        return [self.prepare_execution, self.update_execution, self.record_note, self.request_cancellation]

