"""My tasks, and one task: its instructions and its form; complete, approve or reject, claim and release."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from model.execution import StatusView, Waiting

from .. import visibility
from ..auth import Principal
from ..deps import engine
from ..engine import Engine
from ..problems import Problem
from . import forms
from .render import HtmlRoute, page, path_id
from .session import local_path, poster, viewer

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)
LIMIT = 200


async def my_tasks(eng: Engine, caller: Principal, *, role: str, playbook_id: str) -> visibility.TaskPage:
    """The waiting steps this person may complete, filtered as the page asks (the API's inbox, no HTTP hop)."""
    if role:
        caller.require_role(role)
    return await visibility.tasks(eng.client.client, caller, orgs=caller.orgs, role=role or None,
                                  playbook_id=playbook_id or None, overdue=None, limit=LIMIT,
                                  page_token=None)  # fmt: skip


@router.get("/")
async def inbox(request: Request, caller: Annotated[Principal, Depends(viewer)],
                eng: Annotated[Engine, Depends(engine)], role: str = "",
                playbook_id: str = "") -> Response:  # fmt: skip
    found = await my_tasks(eng, caller, role=role, playbook_id=playbook_id)
    catalog = [p for p in await eng.playbooks(caller.org(None)) if not p.template]
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return page(request, "tasks.html", tasks=found.items, more=found.next_page_token is not None, role=role,
                playbook_id=playbook_id, catalog=catalog, here=here)  # fmt: skip


def _waiting(status: StatusView, step_id: str) -> Waiting | None:
    return next((w for w in status.waiting_for if w.step_id == step_id), None)


def _task_page(request: Request, status: StatusView, step_id: str, *, typed: dict[str, Any] | None = None,
               errors: dict[str, str] | None = None, summary: str | None = None,
               code: int = 200) -> Response:  # fmt: skip
    waiting = _waiting(status, step_id)
    fields = forms.fields(waiting.form) if waiting else []
    return page(request, "task.html", status=code, execution=status, step_id=step_id, waiting=waiting,
                fields=fields, typed=forms.shown(fields, {}) if typed is None else typed, errors=errors or {},
                summary=summary, step=next((s for s in status.steps if s.id == step_id), None))  # fmt: skip


@router.get("/executions/{execution_id:path}/steps/{step_id}")
async def task(request: Request, execution_id: str, step_id: str, caller: Annotated[Principal, Depends(viewer)],
               eng: Annotated[Engine, Depends(engine)]) -> Response:  # fmt: skip
    return _task_page(request, await eng.status(caller, execution_id), step_id)


def _decision(submitted: Any) -> forms.Submission:
    """An approval's two buttons and its comment, as the form `{approved, comment}`."""
    comment = str(submitted.get(forms.PREFIX + "comment") or "")
    got = forms.Submission(typed={"comment": comment})
    got.data["approved"] = submitted.get("decision") == "approve"
    if comment.strip():
        got.data["comment"] = comment
    if submitted.get("decision") not in ("approve", "reject"):
        got.errors["approved"] = "choose Approve or Reject"
    return got


@router.post("/executions/{execution_id:path}/steps/{step_id}/complete")
async def complete(request: Request, execution_id: str, step_id: str, caller: Annotated[Principal, Depends(poster)],
                   eng: Annotated[Engine, Depends(engine)]) -> Response:  # fmt: skip
    status = await eng.status(caller, execution_id)
    waiting = _waiting(status, step_id)
    if waiting is None:
        return _task_page(request, status, step_id, code=409)
    submitted = await request.form()
    got = _decision(submitted) if waiting.type == "approval" else \
        forms.read(forms.fields(waiting.form), submitted)  # fmt: skip
    if got.errors:
        return _task_page(request, status, step_id, typed=got.typed, errors=got.errors, code=422,
                          summary="Some fields need attention.")  # fmt: skip
    try:
        await eng.complete(caller, execution_id, step_id, got.data)
    except Problem as exc:
        if exc.status not in (403, 409, 422):
            raise
        errors = forms.field_errors(exc.errors, "data")
        status = await eng.status(caller, execution_id)
        return _task_page(request, status, step_id, typed=got.typed, errors=errors, code=exc.status,
                          summary="Some fields need attention." if errors else exc.detail)  # fmt: skip
    return RedirectResponse(f"/executions/{path_id(execution_id)}", status_code=303)


@router.post("/executions/{execution_id:path}/steps/{step_id}/{action}")
async def claim(request: Request, execution_id: str, step_id: str, action: str,
                caller: Annotated[Principal, Depends(poster)], eng: Annotated[Engine, Depends(engine)],
                next: Annotated[str, Form()] = "/") -> Response:  # fmt: skip
    if action not in ("claim", "release"):
        raise Problem(404, f"no action {action!r} on a step (claim or release)")
    await eng.claim(caller, execution_id, step_id, release=action == "release")
    return RedirectResponse(local_path(next), status_code=303)
