"""What the routes do, on behalf of a verified caller: tenancy, pre-checks, and the `starter` client's calls.

Tenancy: an execution belongs to the organization it was started for (its `OrganizationId`); a caller
whose token lacks that organization gets the same 404 as for an execution that does not exist.
Idempotent starts need no store of their own: the key becomes the workflow id (never reused, even after
the execution ended) and a hash of the body rides in the memo, so a replay can tell a same from another body.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from pydantic import ValidationError
from temporalio.client import WorkflowExecutionStatus, WorkflowQueryFailedError
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from model import search_attributes as sa
from model.execution import StatusView, Waiting
from model.playbook import Playbook
from model.variables import validate_values
from starter.client import PlaybookClient, StepRejected
from store import InvalidWrite, Store, UnknownOrganization

from . import visibility
from .auth import Principal
from .problems import FieldProblem, Problem

CATALOG_TTL = 5.0
"""Seconds a definition read from the catalog serves starts' input checks (and `?playbookId=`) here. A version
published meanwhile is what the execution runs regardless (it reads the catalog itself); only the gateway's
pre-check of `initial_data` may use the previous version's inputs for that long. Unknown ids are never kept."""


def _not_found(execution_id: str) -> Problem:
    return Problem(404, f"no execution {execution_id!r} in your organizations")


def fingerprint(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class Engine:
    """The gateway's one object per process: the Temporal client, the catalog's store, and the inbox's
    snapshots (`visibility.kept_tasks`), which the writes made here keep current."""

    def __init__(self, client: PlaybookClient, store: Store, *, admin_role: str, tasks_max_age: float) -> None:
        self.client, self.store, self.admin_role = client, store, admin_role
        self._definitions: dict[tuple[str, str], tuple[float, Playbook]] = {}
        """(org, playbook id) → (until when, definition): a start reads none from Postgres in the common case."""
        visibility.kept_tasks(client.client, max_age=tasks_max_age)

    # ---------------------------------------------------------------- catalog
    async def _org_uuid(self, org: str) -> Any:
        try:
            return await self.store.resolve_organization(org)
        except UnknownOrganization as exc:
            raise Problem(404, str(exc)) from None

    async def playbooks(self, org: str) -> list[Playbook]:
        valid = []
        for definition in await self.store.list_definitions(await self._org_uuid(org)):
            try:
                valid.append(Playbook.model_validate(definition))
            except ValidationError:
                continue  # as a worker skips a bad file: one bad row never hides the rest of the catalog
        return sorted(valid, key=lambda p: p.id)

    async def playbook(self, org: str, playbook_id: str) -> Playbook:
        """The definition `org` runs by that id, read again once CATALOG_TTL passed."""
        key = (org, playbook_id)
        if (kept := self._definitions.get(key)) is not None and kept[0] > time.monotonic():
            return kept[1]
        definition = await self.store.get_definition(await self._org_uuid(org), playbook_id)
        if definition is None:
            raise Problem(404, f"no playbook {playbook_id!r} in the catalog of {org}")
        try:
            playbook = Playbook.model_validate(definition)
        except ValidationError:
            raise Problem(404, f"playbook {playbook_id!r} of {org} is not a valid definition") from None
        self._definitions[key] = (time.monotonic() + CATALOG_TTL, playbook)
        return playbook

    # ---------------------------------------------------------------- starting
    async def start(self, caller: Principal, *, playbook_id: str, organization: str | None,
                    initial_data: dict[str, Any], key: str | None) -> tuple[str, bool]:  # fmt: skip
        """Start (or, for a known Idempotency-Key with the same body, find) an execution: (id, created)."""
        org = caller.org(organization)
        playbook = await self.playbook(org, playbook_id)
        checked = validate_values(playbook.inputs, initial_data)
        if checked.errors:
            errors = [FieldProblem(field=f"initial_data.{e.field}", message=e.message) for e in checked.errors]
            raise Problem(422, "invalid initial_data: " + "; ".join(str(e) for e in checked.errors), errors=errors)
        if key is None:
            handle = await self.client.start(playbook_id, organization=org, data=initial_data, requested_by=caller.sub)
            return handle.id, True
        body = fingerprint({"playbook_id": playbook_id, "organization_id": org, "initial_data": initial_data})
        workflow_id = f"{org}/{playbook_id}/k-{fingerprint([org, key])[:24]}"
        try:
            await self.client.start(playbook_id, organization=org, data=initial_data, requested_by=caller.sub,
                                    workflow_id=workflow_id, memo={"idempotency": body}, once=True)  # fmt: skip
        except WorkflowAlreadyStartedError:
            memo = await (await self.client.handle(workflow_id).describe()).memo()
            if memo.get("idempotency") != body:
                reused = FieldProblem(field="Idempotency-Key", message="used with another body")
                raise Problem(422, "this Idempotency-Key was used with another body", errors=[reused]) from None
            return workflow_id, False
        return workflow_id, True

    # ---------------------------------------------------------------- reading
    async def owned(self, caller: Principal, execution_id: str) -> tuple[WorkflowExecutionStatus | None, str]:
        """404 unless the execution exists in one of the caller's organizations; its Temporal status and org."""
        try:
            description = await self.client.handle(execution_id).describe()
        except RPCError as exc:
            if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                raise _not_found(execution_id) from None
            raise
        org = description.typed_search_attributes.get(sa.ORGANIZATION_ID)
        if description.workflow_type != "PlaybookWorkflow" or org not in caller.orgs:
            raise _not_found(execution_id)
        return description.status, org

    async def status(self, caller: Principal, execution_id: str) -> StatusView:
        await self.owned(caller, execution_id)
        try:
            return await self.client.status(execution_id)
        except WorkflowQueryFailedError as exc:
            raise Problem(503, f"the execution cannot answer now: {exc}") from None

    # ---------------------------------------------------------------- people
    def _waiting(self, status: StatusView, step_id: str) -> Waiting:
        for waiting in status.waiting_for:
            if waiting.step_id == step_id:
                return waiting
        for step in status.steps:
            if step.id == step_id:
                raise Problem(409, f"step {step_id} is {step.status}, not waiting for a person")
        raise Problem(404, f"execution {status.execution_id} has no step {step_id!r}")

    def _role(self, caller: Principal, waiting: Waiting) -> str | None:
        if waiting.assignee_role:
            caller.require_role(waiting.assignee_role)
        return waiting.assignee_role

    async def complete(self, caller: Principal, execution_id: str, step_id: str, data: dict[str, Any]) -> StatusView:
        status = await self.status(caller, execution_id)
        waiting = self._waiting(status, step_id)
        role = self._role(caller, waiting)
        admin = self.admin_role in caller.roles
        if waiting.claimed_by and waiting.claimed_by != caller.sub and not admin:
            raise Problem(409, f"step {step_id} is claimed by {waiting.claimed_by}")
        try:
            await self.client.complete(execution_id, step_id, data=data, completed_by=caller.sub, role=role,
                                       override_claim=admin)  # fmt: skip
        except StepRejected as exc:
            raise await self._refusal(execution_id, step_id, data, exc) from None
        return await self._after_write(execution_id, step_id)

    async def _after_write(self, execution_id: str, step_id: str) -> StatusView:
        """The status after a completion, claim or release, which the inbox of this process shows at once."""
        status = await self.client.status(execution_id)
        visibility.noted(self.client.client, status, step_id)
        return status

    async def _refusal(self, execution_id: str, step_id: str, data: dict[str, Any], exc: StepRejected) -> Problem:
        if exc.conflict:
            return Problem(409, str(exc))
        pinned = Playbook.model_validate(await self.client.handle(execution_id).query("definition"))
        step = pinned.step(step_id.rsplit(".", 1)[-1])
        checked = validate_values(step.with_.form, data)  # type: ignore[union-attr]
        errors = [FieldProblem(field=f"data.{e.field}", message=e.message) for e in checked.errors]
        return Problem(422, str(exc), errors=errors)

    async def claim(self, caller: Principal, execution_id: str, step_id: str, *, release: bool) -> StatusView:
        status = await self.status(caller, execution_id)
        waiting = self._waiting(status, step_id)
        role = None if release else self._role(caller, waiting)
        try:
            await self.client.claim(execution_id, step_id, by=caller.sub, role=role, release=release,
                                    override=self.admin_role in caller.roles)  # fmt: skip
        except StepRejected as exc:
            raise Problem(409 if exc.conflict else 422, str(exc)) from None
        return await self._after_write(execution_id, step_id)

    async def control(self, caller: Principal, execution_id: str, action: str, reason: str | None) -> None:
        state, org = await self.owned(caller, execution_id)
        if state != WorkflowExecutionStatus.RUNNING:
            raise Problem(409, f"execution {execution_id} has ended: it cannot {action}")
        await getattr(self.client, action)(execution_id, reason)
        if action == "cancel":
            visibility.ended(self.client.client, org, execution_id)

    # ---------------------------------------------------------------- organizations
    async def organizations(self) -> dict[str, Any]:
        return await self.store.organizations()

    async def register_organization(self, code: str, name: str) -> Any:
        try:
            return await self.store.register_organization(code, name=name)
        except (InvalidWrite, UnknownOrganization) as exc:
            field = "name" if isinstance(exc, InvalidWrite) else "code"
            raise Problem(422, str(exc), errors=[FieldProblem(field=field, message=str(exc))]) from None
