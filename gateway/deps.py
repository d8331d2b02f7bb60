"""FastAPI dependencies shared by the routers: the engine of this process and the request's caller."""

from __future__ import annotations

from fastapi import Request

from .engine import Engine


def engine(request: Request) -> Engine:
    found: Engine = request.app.state.engine
    return found
