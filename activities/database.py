"""The `database` step: one SQL statement on a named Postgres connection, parameters always bound.

``connection: reporting`` reads its DSN from ``PLAYBOOK_DB_REPORTING`` on the worker, so DSNs and their
passwords never enter a playbook or workflow history. ``mode: read`` (the default) runs in a read-only
transaction; ``write`` commits. The statement's time is limited by the step's timeout (statement_timeout).
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any, Literal
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_jsonable_python
from temporalio import activity

from model.execution import StepRequest
from store import Store

from .errors import fail
from .outside import already_done
from .steps import step_audit, step_handler, step_key

MAX_ROWS = 1000
"""Rows kept in the output; `row_count` still counts them all."""
CONNECT_TIMEOUT = 10.0


class DatabaseWith(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connection: str = Field(
        pattern=r"^[a-z][a-z0-9_]*$", description="A connection name: the DSN is PLAYBOOK_DB_<NAME> on the worker."
    )
    sql: str = Field(min_length=1, description="One statement; $1, $2 … stand for params.")
    params: list[Any] = Field(default_factory=list, description="Values bound to $1, $2 … (never interpolated).")
    mode: Literal["read", "write"] = Field(default="read", description="read: a read-only transaction.")


def _dsn(name: str) -> str:
    variable = f"PLAYBOOK_DB_{name.upper()}"
    dsn = os.environ.get(variable)
    if not dsn:
        raise fail("UnknownConnection", f"with.connection: no connection {name!r} (set {variable} on the worker)")
    return dsn


async def _connect(name: str, timeout: float) -> asyncpg.Connection:
    limit = timeout - min(1.0, timeout / 10)  # the server stops the statement before Temporal's own timeout
    try:
        return await asyncpg.connect(
            _dsn(name), timeout=CONNECT_TIMEOUT, server_settings={"statement_timeout": str(int(limit * 1000))}
        )
    except (ValueError, asyncpg.ClientConfigurationError) as exc:  # a malformed DSN: never retried
        raise fail("InvalidConnection", f"with.connection {name!r}: invalid DSN: {exc}") from None
    except (asyncpg.InvalidAuthorizationSpecificationError, asyncpg.InvalidPasswordError,
            asyncpg.InvalidCatalogNameError) as exc:  # fmt: skip
        raise fail("InvalidConnection", f"with.connection {name!r}: {exc}") from None
    except (OSError, TimeoutError) as exc:  # the server may come back: retried per the step's policy
        raise RuntimeError(f"connection {name!r} unreachable: {type(exc).__name__}: {exc}") from None


def _position(sql: str, exc: asyncpg.PostgresError) -> str:
    at = getattr(exc, "position", None)
    if not at:
        return ""
    offset = int(at) - 1
    line = sql.count("\n", 0, offset) + 1
    column = offset - (sql.rfind("\n", 0, offset) + 1) + 1
    return f" at line {line}, column {column} (near {sql[offset : offset + 20]!r})"


async def run_statement(conn: asyncpg.Connection, spec: DatabaseWith) -> dict[str, Any]:
    async with conn.transaction(readonly=spec.mode == "read"):
        statement = await conn.prepare(spec.sql)
        if not statement.get_attributes():  # no result columns (UPDATE, DDL …): the status says how many rows
            await statement.fetch(*spec.params)
            words = statement.get_statusmsg().split()
            return {"rows": [], "row_count": int(words[-1]) if words and words[-1].isdigit() else 0}
        cursor = await statement.cursor(*spec.params)
        records = await cursor.fetch(MAX_ROWS)
        rest = await cursor.forward(2**31 - 1) if len(records) == MAX_ROWS else 0
    rows = [to_jsonable_python(dict(record)) for record in records]
    return {"rows": rows, "row_count": len(rows) + rest, **({"truncated": True} if rest else {})}


@step_handler("database", DatabaseWith)
async def database(store: Store, req: StepRequest) -> dict[str, Any]:
    spec = DatabaseWith.model_validate(req.with_)
    if spec.mode == "write" and (done := await already_done(store, req)) is not None:
        return done
    timeout = (activity.info().start_to_close_timeout or timedelta(minutes=5)).total_seconds()
    conn = await _connect(spec.connection, timeout)
    try:
        output = await run_statement(conn, spec)
    except asyncpg.ReadOnlySQLTransactionError:
        raise fail("ReadOnly", "with.mode: the statement writes but the step is mode: read (set mode: write)") from None
    except asyncpg.QueryCanceledError:
        raise RuntimeError(f"with.sql: timed out (step timeout {timeout:g}s)") from None
    except (asyncpg.PostgresSyntaxError, asyncpg.UndefinedTableError, asyncpg.UndefinedColumnError,
            asyncpg.UndefinedFunctionError) as exc:  # fmt: skip
        raise fail("InvalidSql", f"with.sql: {exc}{_position(spec.sql, exc)}") from None
    except asyncpg.InterfaceError as exc:  # a parameter of the wrong type or count
        raise fail("InvalidParams", f"with.params: {exc}") from None
    except asyncpg.PostgresError as exc:  # constraint violations and the like: the statement itself is wrong
        raise fail("DatabaseError", f"with.sql: {type(exc).__name__}: {exc}") from None
    finally:
        await conn.close()
    await store.record_step(UUID(req.organization_uuid), step_key(req), step_audit(req, output=output))
    return output
