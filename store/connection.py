"""Per-connection setup: the jsonb codec and the engine's database role (row-level security applies to it)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from .errors import StoreError

ENGINE_ROLE = "playbook_engine"
"""The database role the engine works as (row-level security applies to it)."""

def _json_default(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, ensure_ascii=False)


async def init_connection(conn: asyncpg.Connection) -> None:
    """Per new pool connection: the jsonb codec, then the engine's role (refusing one that bypasses RLS)."""
    await conn.set_type_codec("jsonb", encoder=json_dumps, decoder=json.loads, schema="pg_catalog")
    user = await conn.fetchval("SELECT current_user")
    if user != ENGINE_ROLE:
        try:
            await conn.execute(f"SET ROLE {ENGINE_ROLE}")
        except asyncpg.InsufficientPrivilegeError:
            pass  # Not a member: fine for an ordinary role, which FORCEd RLS binds anyway (checked below).
        except asyncpg.UndefinedObjectError:
            raise StoreError(f"role {ENGINE_ROLE} does not exist: apply the migrations first") from None
    if await conn.fetchval("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"):
        raise StoreError(f"{user} bypasses row-level security and cannot SET ROLE {ENGINE_ROLE}:"
                         f" grant {ENGINE_ROLE} to it, or connect as {ENGINE_ROLE}")


async def keep_session(conn: asyncpg.Connection) -> None:
    """A connection back in the pool keeps its session: the engine changes none of it (its role is set once, the
    tenant per transaction), so asyncpg's reset statement would only cost a round trip per use. An open
    transaction is still rolled back by the pool before this runs."""
