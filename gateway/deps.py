"""FastAPI dependencies shared by the routers: the engine of this process and the request's caller."""

from __future__ import annotations

from fastapi import Request

from .engine import Engine


async def engine(request: Request) -> Engine:
    # async though it awaits nothing: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per request
    found: Engine = request.app.state.engine
    return found
