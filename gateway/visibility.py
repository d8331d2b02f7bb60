"""Lists read from Temporal visibility: the organization's executions, and the inbox of waiting steps.

The inbox needs no query per execution: each execution publishes its waiting steps (role, form,
deadline, claim) in its memo, and one paged visibility list filtered by `WaitingFor` returns them all. That
scan grows with the organization (about a second at 1,000 waiting executions), so it is not made per request:
each organization's steps are kept as a snapshot per process (`gateway.snapshots`), and a request filters
and sorts that in memory.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import weakref
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field
from temporalio.client import Client, WorkflowExecution

from model import search_attributes as sa
from model.execution import StatusView

from .auth import Principal
from .problems import FieldProblem, Problem
from .settings import GatewaySettings
from .snapshots import Snapshots

_SAFE = re.compile(r"[A-Za-z0-9_.:\-\[\]/]{1,200}")


def literal(value: str, field: str) -> str:
    """A visibility query string literal; values that could escape one are refused (naming `field`)."""
    if not _SAFE.fullmatch(value):
        rule = "letters, digits and _ . : - [ ] / only"
        raise Problem(422, f"{field}: {value!r} cannot be used in a filter ({rule})",
                      errors=[FieldProblem(field=field, message=rule)])  # fmt: skip
    return f"'{value}'"


def _orgs(orgs: Iterable[str]) -> str:
    return f"{sa.ORGANIZATION_ID.name} IN ({', '.join(literal(o, 'organization_id') for o in orgs)})"


def _bad_page_token() -> Problem:
    message = "not a token this API returned"
    return Problem(422, f"page_token: {message}", errors=[FieldProblem(field="page_token", message=message)])


def decode_token(token: str | None) -> bytes | None:
    if not token:
        return None
    try:
        return base64.urlsafe_b64decode(token.encode())
    except (binascii.Error, ValueError):
        raise _bad_page_token() from None


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
    for key, field, value in ((sa.PLAYBOOK_ID, "playbook_id", playbook_id), (sa.PLAYBOOK_STATUS, "status", status),
                              (sa.WAITING_FOR, "waiting_for", waiting_for)):  # fmt: skip
        if value is not None:
            clauses.append(f"{key.name} = {literal(value, field)}")
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


Step = tuple[str, str]
"""A waiting step's key: (execution id, step id)."""
_KEPT: weakref.WeakKeyDictionary[Client, Snapshots[Step, Task]] = weakref.WeakKeyDictionary()


def kept_tasks(client: Client, *, max_age: float = GatewaySettings.tasks_max_age) -> Snapshots[Step, Task]:
    """This process's snapshots of the organizations' waiting steps, one set per Temporal client (made on
    first use, with `max_age`: the Engine makes them, with the gateway's setting)."""
    if (found := _KEPT.get(client)) is None:
        held = weakref.ref(client)  # weakly: values of a weak-keyed registry must not keep their key alive

        async def load(org: str) -> dict[Step, Task]:
            live = held()
            assert live is not None, "the snapshots of a client are only asked while someone holds the client"
            return await _waiting_in(live, org)

        found = _KEPT[client] = Snapshots(load, max_age=max_age)
    return found


def _task(execution_id: str, playbook_id: str | None, org: str | None, entry: dict[str, Any]) -> Task:
    """A Task from a waiting step as the memo (or the status query) shows it; `overdue` is set when served."""
    return Task(
        execution_id=execution_id, playbook_id=playbook_id, organization_id=org, overdue=False,
        deadline=datetime.fromisoformat(entry["deadline"]) if entry.get("deadline") else None,
        **{k: entry.get(k) for k in ("step_id", "name", "type", "assignee_role", "instructions", "form",
                                     "claimed_by", "claimed_at")},
        approvals_required=entry.get("approvals_required", 1), approvals=len(entry.get("approvals", [])),
    )  # fmt: skip


async def _waiting_in(client: Client, org: str) -> dict[Step, Task]:
    """Every waiting step of `org`: one visibility scan, the steps read from each execution's memo."""
    query = " AND ".join(["WorkflowType = 'PlaybookWorkflow'", "ExecutionStatus = 'Running'", _orgs([org]),
                          f"{sa.WAITING_FOR.name} IS NOT NULL"])  # fmt: skip
    found: dict[Step, Task] = {}
    seen = 0
    # pages of 200 and a pause every 50 memos: the scan runs beside requests, not in one block of the event loop
    async for execution in client.list_workflows(query, page_size=200):
        playbook_id = execution.typed_search_attributes.get(sa.PLAYBOOK_ID)
        for entry in (await execution.memo()).get("inbox", []):
            found[(execution.id, entry["step_id"])] = _task(execution.id, playbook_id, org, entry)
        seen += 1
        if seen % 50 == 0:
            await asyncio.sleep(0)
    return found


def noted(client: Client, status: StatusView, step_id: str) -> None:
    """A write through this process changed `status`'s execution: its waiting steps, as of now, in the inbox."""
    kept, org = kept_tasks(client), status.organization_id
    now = {w.step_id: w for w in status.waiting_for}
    for waiting in now.values():
        entry = waiting.model_dump(mode="json")
        kept.put(org, (status.execution_id, waiting.step_id),
                 _task(status.execution_id, status.playbook_id, org, entry))
    if step_id not in now:
        kept.put(org, (status.execution_id, step_id), None)


def ended(client: Client, org: str, execution_id: str) -> None:
    """An execution cancelled through this process: none of its steps waits any more."""
    kept = kept_tasks(client)
    for key in kept.keys(org):
        if key[0] == execution_id:
            kept.put(org, key, None)


async def tasks(client: Client, caller: Principal, *, orgs: Iterable[str], role: str | None,
                playbook_id: str | None, overdue: bool | None, limit: int,
                page_token: str | None) -> TaskPage:  # fmt: skip
    """The waiting steps of the organizations that need no role or one of the caller's, oldest deadline first.

    Read from this process's snapshots (`kept_tasks`): at most PLAYBOOK_TASKS_MAX_AGE seconds behind visibility,
    and current at once for the writes made through this process."""
    kept = kept_tasks(client)
    now = datetime.now(UTC)
    found: list[tuple[Task, bool]] = []
    for org in dict.fromkeys(orgs):
        for task in (await kept.get(org)).values():
            needs = task.assignee_role
            if (needs and needs not in caller.roles) or (role is not None and needs != role):
                continue
            if playbook_id is not None and task.playbook_id != playbook_id:
                continue
            late = task.deadline is not None and task.deadline < now
            if overdue is None or late == overdue:
                found.append((task, late))
    found.sort(key=lambda f: (f[0].deadline is None, f[0].deadline or now, f[0].execution_id, f[0].step_id))
    start = _offset(page_token)
    page = [task.model_copy(update={"overdue": late}) for task, late in found[start : start + limit]]
    return TaskPage(items=page, next_page_token=str(start + limit) if len(found) > start + limit else None)


def _offset(token: str | None) -> int:
    if not token:
        return 0
    if not token.isdigit():
        raise _bad_page_token()
    return int(token)
