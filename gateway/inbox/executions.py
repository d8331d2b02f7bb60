"""An execution's page (progress, step timeline, outputs, the Web UI link), and live updates by SSE.

The live streams send the same HTML fragments the pages are made of, so a page updated by the script and one
reloaded by hand are the same page; without JavaScript, reloading is all it takes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sse_starlette import EventSourceResponse

from model.execution import StatusView
from model.status import ENDED

from ..auth import Principal
from ..deps import engine
from ..engine import Engine
from ..problems import Problem
from .render import HtmlRoute, fragment, page
from .session import viewer
from .settings import InboxSettings
from .tasks import my_tasks

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)
STATUS_POLL = 0.5
"""Seconds between status queries of a live execution page (as the API's event stream)."""
TASKS_POLL = 2.0
"""Seconds between inbox lists of a live My tasks page: a visibility list, cheaper than many queries."""


def web_ui_link(inbox: InboxSettings, execution_id: str) -> str | None:
    if not inbox.temporal_ui_url:
        return None
    namespace = quote(inbox.temporal_namespace)
    return f"{inbox.temporal_ui_url}/namespaces/{namespace}/workflows/{quote(execution_id, safe='')}"


def _body(request: Request, status: StatusView, caller: Principal) -> str:
    return fragment("_execution.html", execution=status, me=caller, ended=status.status in ENDED)


@router.get("/executions/{execution_id:path}/live")
async def execution_live(request: Request, execution_id: str, caller: Annotated[Principal, Depends(viewer)],
                         eng: Annotated[Engine, Depends(engine)]) -> EventSourceResponse:  # fmt: skip
    """`status` events with the page's live part whenever it changes, until the execution ends."""
    first = await eng.status(caller, execution_id)

    async def stream() -> AsyncIterator[dict[str, str]]:
        status, sent = first, None
        while True:
            html = _body(request, status, caller)
            if html != sent:
                sent = html
                yield {"event": "status", "data": html}
            if status.status in ENDED or await request.is_disconnected():
                return
            await asyncio.sleep(STATUS_POLL)
            status = await eng.client.status(execution_id)

    return EventSourceResponse(stream(), ping=15)


@router.get("/tasks/live")
async def tasks_live(request: Request, caller: Annotated[Principal, Depends(viewer)],
                     eng: Annotated[Engine, Depends(engine)], role: str = "", playbook_id: str = "",
                     here: str = "/") -> EventSourceResponse:  # fmt: skip
    """`tasks` events with the list of My tasks whenever it changes (new steps waiting, claims, completions)."""
    csrf = request.state.csrf

    async def stream() -> AsyncIterator[dict[str, str]]:
        sent = None
        while not await request.is_disconnected():
            found = await my_tasks(eng, caller, role=role, playbook_id=playbook_id)
            html = fragment("_tasks.html", tasks=found.items, more=found.next_page_token is not None, me=caller,
                            csrf=csrf, here=here)  # fmt: skip
            if html != sent:
                sent = html
                yield {"event": "tasks", "data": html}
            await asyncio.sleep(TASKS_POLL)

    return EventSourceResponse(stream(), ping=15)


@router.get("/executions/{execution_id:path}")
async def execution(request: Request, execution_id: str, caller: Annotated[Principal, Depends(viewer)],
                    eng: Annotated[Engine, Depends(engine)]) -> Response:  # fmt: skip
    status = await eng.status(caller, execution_id)
    return page(request, "execution.html", execution=status, ended=status.status in ENDED,
                name=await _name(eng, status), web_ui=web_ui_link(request.app.state.inbox, execution_id))  # fmt: skip


async def _name(eng: Engine, status: StatusView) -> str:
    """The playbook's name as the catalog has it now (the id, if the catalog no longer holds it)."""
    try:
        return (await eng.playbook(status.organization_id, status.playbook_id)).name
    except Problem:
        return status.playbook_id
