"""The playbooks a person may start: the list (search, module filter) and each one's start form."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from model.playbook import Module, Playbook, PlaybookStatus
from model.variables import json_schema

from ..auth import Principal
from ..deps import engine
from ..engine import Engine
from ..problems import Problem
from . import forms
from .render import HtmlRoute, page, path_id
from .session import poster, viewer

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)
STARTABLE = (PlaybookStatus.published, PlaybookStatus.deprecated)


def _matches(playbook: Playbook, words: list[str]) -> bool:
    text = " ".join([playbook.id, playbook.name, playbook.description or "", *playbook.tags]).lower()
    return all(word in text for word in words)


@router.get("/playbooks")
async def playbooks(request: Request, caller: Annotated[Principal, Depends(viewer)],
                    eng: Annotated[Engine, Depends(engine)], q: str = "", module: str = "") -> Response:  # fmt: skip
    startable = [p for p in await eng.playbooks(caller.org(None)) if p.status in STARTABLE and not p.template]
    words = q.lower().split()
    shown = [p for p in startable if (not module or p.module.value == module) and _matches(p, words)]
    modules = sorted({p.module.value for p in startable}, key=[m.value for m in Module].index)
    return page(request, "playbooks.html", playbooks=shown, total=len(startable), q=q, module=module,
                modules=modules)  # fmt: skip


def _start_page(request: Request, playbook: Playbook, *, typed: dict[str, str | list[str]], key: str,
                errors: dict[str, str], summary: str | None = None, status: int = 200) -> Response:  # fmt: skip
    fields = forms.fields(json_schema(playbook.inputs))
    return page(request, "start.html", status=status, playbook=playbook, fields=fields, typed=typed, errors=errors,
                summary=summary, key=key)  # fmt: skip


@router.get("/playbooks/{playbook_id}")
async def start_form(request: Request, playbook_id: str, caller: Annotated[Principal, Depends(viewer)],
                     eng: Annotated[Engine, Depends(engine)]) -> Response:  # fmt: skip
    playbook = await eng.playbook(caller.org(None), playbook_id)
    typed = forms.shown(forms.fields(json_schema(playbook.inputs)), {})
    # one key per form shown: a double click or a resubmitted page starts the playbook once
    return _start_page(request, playbook, typed=typed, key=secrets.token_urlsafe(18), errors={})


@router.post("/playbooks/{playbook_id}")
async def start(request: Request, playbook_id: str, caller: Annotated[Principal, Depends(poster)],
                eng: Annotated[Engine, Depends(engine)]) -> Response:  # fmt: skip
    org = caller.org(None)
    playbook = await eng.playbook(org, playbook_id)
    submitted = await request.form()
    key = str(submitted.get("key") or secrets.token_urlsafe(18))[:100]
    got = forms.read(forms.fields(json_schema(playbook.inputs)), submitted)
    if got.errors:
        return _start_page(request, playbook, typed=got.typed, key=key, errors=got.errors, status=422,
                           summary="Some fields need attention.")  # fmt: skip
    try:
        execution_id, _ = await eng.start(caller, playbook_id=playbook_id, organization=org, initial_data=got.data,
                                          key=key)  # fmt: skip
    except Problem as exc:
        if exc.status != 422:
            raise
        errors = forms.field_errors(exc.errors, "initial_data")
        return _start_page(request, playbook, typed=got.typed, key=key, errors=errors, status=422,
                           summary=None if errors else exc.detail)  # fmt: skip
    return RedirectResponse(f"/executions/{path_id(execution_id)}", status_code=303)
