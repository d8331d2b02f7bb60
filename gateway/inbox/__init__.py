"""The task inbox: server-rendered pages for the people a playbook waits on (SPEC §6, "The inbox").

Mounted at `/` by the gateway; it uses the gateway's own engine, visibility lists, verifier and rate limiter
in-process, and speaks HTML where the API speaks JSON.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from . import catalog, executions, signin, tasks
from .oidc import Provider
from .settings import InboxSettings


def install(app: FastAPI, settings: InboxSettings) -> None:
    app.state.inbox = settings
    app.state.oidc = Provider(settings) if settings.oidc else None
    app.mount("/static", StaticFiles(packages=[("gateway.inbox", "static")]), name="inbox-static")
    # task routes first: `/executions/{id}/steps/{step}` must win over `/executions/{id}` (ids contain `/`)
    for module in (signin, catalog, tasks, executions):
        app.include_router(module.router)
