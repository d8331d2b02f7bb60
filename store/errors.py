"""The store's errors, and the translation of database errors into them (field and rule named)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from pydantic import ValidationError

MAX_LEN = {
    "organization_code": 100, "organization_name": 255, "entity_type": 100, "entity_name": 255,
    "entity_code": 255, "status": 50, "field_name": 100, "relationship_type": 100,
    "transaction_type": 100, "transaction_code": 255, "line_type": 100,
}
"""Text limits; the same limits are CHECK constraints in migrations/0001 (defence in depth for other writers)."""

class StoreError(Exception):
    """Base of the store's errors. `retryable` tells whether the same call may succeed later."""

    retryable: bool = False


class StoreUnavailable(StoreError):
    """The database is unreachable, restarting, overloaded, or aborted us (deadlock): retry later."""

    retryable = True


class UnknownOrganization(StoreError):
    """The organization id or code names no organization (and auto-registration is off)."""


class ExecutionNotFound(StoreError):
    """A step write for an execution whose row was never created (`Store.upsert_execution`)."""


class InvalidWrite(StoreError):
    """Input breaks a rule; the message is ``<field>: <rule>`` (several joined by ``; ``)."""

    def __init__(self, field: str, rule: str, *, more: Sequence[tuple[str, str]] = ()) -> None:
        self.field = field
        """Path of the offending field, e.g. ``lines[2].quantity``."""
        self.rule = rule
        """The rule it breaks, e.g. ``must be >= 0``."""
        self.problems = [(field, rule), *more]
        """Every (field, rule) found, the first being `field`/`rule`."""
        super().__init__("; ".join(f"{f}: {r}" for f, r in self.problems))

    @classmethod
    def from_validation_error(cls, exc: ValidationError) -> InvalidWrite:
        """The pydantic errors of a write model, as field paths and short rules."""
        problems = [(_path(err["loc"]), _rule(err)) for err in exc.errors()]
        return cls(*problems[0], more=problems[1:])

    def within(self, prefix: str) -> InvalidWrite:
        """The same problems, with field paths under `prefix` (e.g. ``lines[2]``)."""
        problems = [(f"{prefix}.{f}", r) for f, r in self.problems]
        return InvalidWrite(*problems[0], more=problems[1:])


def _path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith("["):  # pydantic marks dict-key errors with "[key]"
            path += part
        else:
            path += f".{part}" if path else part
    return path or "input"


def _rule(err: Any) -> str:
    ctx = err.get("ctx", {})
    match err["type"]:
        case "string_too_long":
            return f"at most {ctx['max_length']} characters"
        case "string_too_short":
            least = ctx["min_length"]
            return f"at least {least} characters" if least > 1 else "must not be empty"
        case "greater_than_equal":
            return f"must be >= {ctx['ge']}"
        case "missing":
            return "required"
        case "extra_forbidden":
            return "unknown field"
        case "value_error":
            return str(ctx["error"])
    message = str(err["msg"])
    return message[:1].lower() + message[1:]



# asyncpg raises InternalClientError ("cannot switch to state ...") on a connection the server just killed.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InternalClientError,
)
# Connection loss, shutdown/restart, statement timeout, overload, serialization failure and deadlock.
_RETRYABLE: tuple[type[BaseException], ...] = (
    *UNAVAILABLE,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.TransactionRollbackError,
)
# A constraint's table, as a field path prefix in messages.
_TABLE_PREFIX = {"universal_transaction_lines": "lines[].", "core_dynamic_data": "fields."}


def translate(exc: BaseException) -> StoreError:
    """The StoreError for a database or connection error."""
    if isinstance(exc, _RETRYABLE):
        return StoreUnavailable(f"database unavailable: {exc}")
    if isinstance(exc, asyncpg.exceptions.IntegrityConstraintViolationError):
        return _constraint_error(exc)
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        return StoreError(f"not allowed: {exc}")
    return StoreError(f"database error: {exc}")


def _constraint_error(exc: asyncpg.exceptions.IntegrityConstraintViolationError) -> InvalidWrite:
    """Name the field behind a violated constraint (the write models catch most of these first)."""
    table, constraint = exc.table_name or "", exc.constraint_name or ""
    prefix = _TABLE_PREFIX.get(table, "")
    detail = constraint.removeprefix(f"{table}_")
    if isinstance(exc, asyncpg.NotNullViolationError):
        return InvalidWrite(f"{prefix}{exc.column_name}", "required")
    if isinstance(exc, asyncpg.CheckViolationError):
        column = detail.removesuffix("_check")
        if column == "quantity":
            return InvalidWrite(f"{prefix}quantity", "must be >= 0")
        if column in MAX_LEN:
            return InvalidWrite(f"{prefix}{column}", f"1 to {MAX_LEN[column]} characters")
        return InvalidWrite(f"{prefix}{column}", f"violates {constraint}")
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        if detail.endswith("_fkey"):
            return InvalidWrite("organization_id", "no such organization")
        return InvalidWrite(f"{prefix}{detail.removesuffix('_fk')}_id", "no such entity in this organization")
    if constraint == "core_entities_code_key":
        return InvalidWrite("entity_code", "already used by another entity of this type in this organization")
    return InvalidWrite(table or "input", f"violates {constraint or exc.__class__.__name__}")
