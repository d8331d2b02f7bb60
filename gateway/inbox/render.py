"""Pages from Jinja templates (sandboxed, autoescaped), and routes whose errors are pages too.

The API's errors are problem+json; a person in a browser gets the same problem as a page saying what went
wrong, and a missing or ended session sends them to sign in and back.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import PackageLoader
from jinja2.sandbox import SandboxedEnvironment
from temporalio.service import RPCError

from ..problems import FieldProblem, Problem
from .session import SignInNeeded

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
       "base-uri 'none'; frame-ancestors 'none'; form-action 'self'")  # fmt: skip
"""Our own script and styles only: an injected tag could not run even if escaping ever failed."""


def when(value: datetime | str | None) -> str:
    if value is None:
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).strftime("%-d %b %Y, %H:%M UTC")


def took(start: datetime | None, end: datetime | None) -> str:
    """How long a step ran, in the unit a person reads best."""
    if start is None or end is None:
        return ""
    seconds = (end - start).total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 90:
        return f"{seconds:.1f} s"
    minutes = seconds / 60
    if minutes < 90:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} h"


def path_id(execution_id: str) -> str:
    """An execution id inside a path: its `/` kept (routes take them raw), anything else percent-encoded."""
    return quote(execution_id, safe="/")


env = SandboxedEnvironment(loader=PackageLoader("gateway.inbox", "templates"), autoescape=True,
                           trim_blocks=True, lstrip_blocks=True)  # fmt: skip
env.filters.update(when=when, path_id=path_id, quote=lambda v: quote(str(v), safe=""))
env.globals.update(took=took)


def page(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    me = getattr(request.state, "viewer", None)
    html = env.get_template(template).render(request=request, me=me, csrf=getattr(request.state, "csrf", ""),
                                             inbox=request.app.state.inbox, **context)  # fmt: skip
    return HTMLResponse(html, status_code=status, headers={"Content-Security-Policy": CSP,
                                                           "X-Content-Type-Options": "nosniff"})  # fmt: skip


def fragment(template: str, **context: Any) -> str:
    """A part of a page (for live updates), rendered with the same environment."""
    return env.get_template(template).render(**context)


def error_page(request: Request, exc: Problem) -> Response:
    if isinstance(exc, SignInNeeded):
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/signin?next={quote(back, safe='')}", status_code=303)
    title = HTTPStatus(exc.status).phrase
    return page(request, "error.html", status=exc.status, title=title, detail=exc.detail, errors=exc.errors)


class HtmlRoute(APIRoute):
    """A route of the inbox: a Problem raised anywhere in it becomes an error page (or the sign-in)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except Problem as exc:
                return error_page(request, exc)
            except RequestValidationError as exc:  # a hand-made request: the inbox's own forms send every field
                errors = [FieldProblem(field=".".join(map(str, e["loc"][1:])), message=str(e["msg"]))
                          for e in exc.errors()]  # fmt: skip
                return error_page(request, Problem(422, "this request is not one the inbox sends", errors=errors))
            except RPCError as exc:
                return error_page(request, Problem(503, f"Temporal cannot answer now: {exc.message}"))

        return route
