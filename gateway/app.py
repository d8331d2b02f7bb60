"""The FastAPI application: routers, problems, authentication, rate limits, and the clients it shares."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from config import Settings
from starter.client import PlaybookClient
from store import Store

from . import codec, inbox, problems
from .auth import Verifier
from .engine import Engine
from .inbox.settings import InboxSettings
from .ratelimit import WriteLimiter
from .routers import executions, organizations, playbooks, tasks
from .settings import GatewaySettings


def create_app(settings: Settings, gateway: GatewaySettings, *, client: PlaybookClient | None = None,
               store: Store | None = None, inbox_settings: InboxSettings | None = None) -> FastAPI:  # fmt: skip
    """The app; without `client`/`store` it connects to Temporal and Postgres (DATABASE_URL) on startup."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if hasattr(app.state, "engine"):
            yield
            return
        own_store = store is None
        if own_store and not settings.database_url:
            raise RuntimeError("the gateway needs DATABASE_URL (the catalog and the organizations live there)")
        used_store = store or await Store.open(
            str(settings.database_url), auto_register_orgs=settings.auto_register_orgs
        )
        try:
            used_client = client or await PlaybookClient.connect(settings)
            app.state.engine = Engine(used_client, used_store, admin_role=gateway.admin_role,
                                      tasks_max_age=gateway.tasks_max_age)
            yield
        finally:
            if own_store:
                await used_store.close()

    app = FastAPI(
        title="Playbook engine",
        version="1",
        summary="Start playbooks, complete their human steps and watch them run.",
        description="Every request carries `Authorization: Bearer <JWT>`; errors are RFC 9457 problems.",
        lifespan=lifespan,
    )
    if client is not None and store is not None:  # given (tests, benchmarks): ready without a lifespan
        app.state.engine = Engine(client, store, admin_role=gateway.admin_role,
                                  tasks_max_age=gateway.tasks_max_age)
    app.state.verifier = Verifier(gateway)
    app.state.limiter = WriteLimiter(gateway)
    problems.install(app)
    for module in (playbooks, executions, tasks, organizations):
        app.include_router(module.router)
    # the Web UI's codec-server protocol (SPEC §7), outside the API's schema: it speaks Temporal's, not ours
    app.include_router(codec.router, include_in_schema=False)
    codec.cors(app)
    # the browser inbox at `/` (after the API, so /api, /docs and /codec keep their routes)
    inbox.install(app, inbox_settings or InboxSettings.from_env(temporal_namespace=settings.temporal_namespace))
    return app
