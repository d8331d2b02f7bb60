"""Lists read from Temporal visibility: the organization's executions, and the inbox of waiting steps.

The inbox needs no query per execution: each execution publishes its waiting steps (role, form,
deadline, claim) in its memo, and one paged visibility list filtered by `WaitingFor` returns them all.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field
from temporalio.client import Client, WorkflowExecution

from model import search_attributes as sa

from .auth import Principal
from .problems import Problem

_SAFE = re.compile(r"[A-Za-z0-9_.:\-\[\]/]{1,200}")


def literal(value: str) -> str:
    """A visibility query string literal; values that could escape one are refused."""
    if not _SAFE.fullmatch(value):
        raise Problem(422, f"{value!r} cannot be used in a filter (letters, digits and _ . : - [ ] / only)")
    return f"'{value}'"


def _orgs(orgs: Iterable[str]) -> str:
    return f"{sa.ORGANIZATION_ID.name} IN ({', '.join(literal(o) for o in orgs)})"


def decode_token(token: str | None) -> bytes | None:
    if not token:
        return None
    try:
        return base64.urlsafe_b64decode(token.encode())
    except (binascii.Error, ValueError):
        raise Problem(422, "page_token: not a token this API returned") from None


class ExecutionItem(BaseModel):
    execution_id: str
    playbook_id: str | None
    organization_id: str | None
    status: str | None = Field(description="The playbook status (PlaybookStatus).")
    waiting_for: list[str]
    started_at: datetime
    closed_at: datetime | None


class ExecutionPage(BaseModel):
    items: list[ExecutionItem]
    next_page_token: str | None = Field(description="Pass as page_token for the next page; null on the last.")


def _item(execution: WorkflowExecution) -> ExecutionItem:
    attrs = execution.typed_search_attributes
    return ExecutionItem(
        execution_id=execution.id, playbook_id=attrs.get(sa.PLAYBOOK_ID), organization_id=attrs.get(sa.ORGANIZATION_ID),
        status=attrs.get(sa.PLAYBOOK_STATUS), waiting_for=list(attrs.get(sa.WAITING_FOR) or []),
        started_at=execution.start_time, closed_at=execution.close_time,
    )  # fmt: skip


async def executions(client: Client, orgs: Iterable[str], *, playbook_id: str | None, status: str | None,
                     waiting_for: str | None, page_size: int, page_token: str | None) -> ExecutionPage:  # fmt: skip
    clauses = ["WorkflowType = 'PlaybookWorkflow'", _orgs(orgs)]
    for key, value in ((sa.PLAYBOOK_ID, playbook_id), (sa.PLAYBOOK_STATUS, status), (sa.WAITING_FOR, waiting_for)):
        if value is not None:
            clauses.append(f"{key.name} = {literal(value)}")
    pages = client.list_workflows(" AND ".join(clauses), page_size=page_size, next_page_token=decode_token(page_token))
    await pages.fetch_next_page()
    token = pages.next_page_token
    return ExecutionPage(
        items=[_item(e) for e in pages.current_page or []],
        next_page_token=base64.urlsafe_b64encode(token).decode() if token else None,
    )


class Task(BaseModel):
    """A waiting step the caller may complete."""

    execution_id: str
    playbook_id: str | None
    organization_id: str | None
    step_id: str
    name: str
    type: str
    assignee_role: str | None
    instructions: str | None
    form: dict[str, Any] = Field(description="JSON Schema of the data to submit.")
    deadline: datetime | None
    overdue: bool
    claimed_by: str | None
    claimed_at: datetime | None = None
    approvals_required: int = 1
    approvals: int = Field(default=0, description="Approvals given so far.")


class TaskPage(BaseModel):
    items: list[Task]
    next_page_token: str | None


async def tasks(client: Client, caller: Principal, *, orgs: Iterable[str], role: str | None,
                playbook_id: str | None, overdue: bool | None, limit: int,
                page_token: str | None) -> TaskPage:  # fmt: skip
    """The waiting steps of the organizations that need no role or one of the caller's, oldest deadline first."""
    clauses = ["WorkflowType = 'PlaybookWorkflow'", "ExecutionStatus = 'Running'", _orgs(orgs),
               f"{sa.WAITING_FOR.name} IS NOT NULL"]  # fmt: skip
    if playbook_id is not None:
        clauses.append(f"{sa.PLAYBOOK_ID.name} = {literal(playbook_id)}")
    now = datetime.now(UTC)
    found: list[Task] = []
    async for execution in client.list_workflows(" AND ".join(clauses), page_size=1000):
        attrs = execution.typed_search_attributes
        for entry in (await execution.memo()).get("inbox", []):
            needs = entry.get("assignee_role")
            if (needs and needs not in caller.roles) or (role is not None and needs != role):
                continue
            deadline = datetime.fromisoformat(entry["deadline"]) if entry.get("deadline") else None
            late = deadline is not None and deadline < now
            if overdue is not None and late != overdue:
                continue
            found.append(Task(
                execution_id=execution.id, playbook_id=attrs.get(sa.PLAYBOOK_ID),
                organization_id=attrs.get(sa.ORGANIZATION_ID), overdue=late, deadline=deadline,
                **{k: entry.get(k) for k in ("step_id", "name", "type", "assignee_role", "instructions", "form",
                                             "claimed_by", "claimed_at")},
                approvals_required=entry.get("approvals_required", 1), approvals=len(entry.get("approvals", [])),
            ))  # fmt: skip
    found.sort(key=lambda t: (t.deadline is None, t.deadline or now, t.execution_id, t.step_id))
    start = _offset(page_token)
    rest = found[start + limit :]
    return TaskPage(items=found[start : start + limit], next_page_token=str(start + limit) if rest else None)


def _offset(token: str | None) -> int:
    if not token:
        return 0
    if not token.isdigit():
        raise Problem(422, "page_token: not a token this API returned")
    return int(token)
