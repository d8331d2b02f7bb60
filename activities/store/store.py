"""The engine's access to the universal tables: typed, tenant-scoped, exactly-once writes.

Tenancy. Every table has row-level security keyed by the transaction setting ``app.organization_id``
(``playbook_current_org()``), FORCEd so that the tables' owner is bound too. The pool's connections
work as the role ``playbook_engine`` (created by the migrations: no superuser, no BYPASSRLS, owns
nothing): a connection whose user can ``SET ROLE playbook_engine`` (superusers, members) does so on
connect; a DSN that names ``playbook_engine`` itself, or another ordinary role, is used as is; a role
that would bypass RLS and cannot switch is refused. Each method runs in one database transaction that
starts with ``set_config('app.organization_id', <org>, true)`` (``SET LOCAL``), so nothing outlives it
on a pooled connection.

Organizations. An organization sees only its own ``core_organizations`` row. Looking a code up (and
registering an unknown one) happens before any organization is known, so it goes through two
SECURITY DEFINER functions, ``playbook_find_org`` and ``playbook_register_org``, which run as the
tables' owner (a policy for that owner lets them see the whole directory). Registration on first use is
the Store's decision (``auto_register_orgs``), not the database's.

Platform library. Definitions published without an organization belong to the ``platform``
organization (fixed id `PLATFORM_ORG_ID`, created by the migrations). A SELECT-only policy lets every
organization read platform ``playbook_definition`` rows and nothing else of the platform's;
`Store.get_definition` prefers the organization's own version.

Exactly-once. A step's audit line (a ``playbook_step`` line of the execution's transaction, unique per
execution, step and iteration) is its idempotency record: a step write locks the execution row, returns
the recorded output if the line exists, and otherwise performs the business write and inserts the line
in the same transaction.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Decimal, localcontext
from types import TracebackType
from typing import Annotated, Any, Self, TypeVar
from uuid import UUID

import asyncpg
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from .migrate import MigrationError, migrate

__all__ = [
    "ENGINE_ROLE",
    "PLATFORM_ORG_ID",
    "EntityRecord",
    "EntityResult",
    "EntityWrite",
    "ExecutionNotFound",
    "InvalidWrite",
    "RelationshipResult",
    "RelationshipWrite",
    "StepAudit",
    "StepKey",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "TransactionLineWrite",
    "TransactionResult",
    "TransactionWrite",
    "UnknownOrganization",
]

ENGINE_ROLE = "playbook_engine"
"""The database role the engine works as (row-level security applies to it)."""
PLATFORM_ORG_ID = UUID("00000000-0000-0000-0000-000000000001")
"""The ``platform`` organization: owner of the playbook library every organization may read."""

_SMART_CODE = re.compile(r"HERA(\.[A-Z0-9]+){3,7}\.v[0-9]+")
_ORG_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")
# The same limits are CHECK constraints in migrations/0001 (defence in depth for other writers).
_MAX_LEN = {
    "organization_code": 100, "organization_name": 255, "entity_type": 100, "entity_name": 255,
    "entity_code": 255, "status": 50, "field_name": 100, "relationship_type": 100,
    "transaction_type": 100, "transaction_code": 255, "line_type": 100,
}


# ---------------------------------------------------------------------------------------------- errors

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


# ---------------------------------------------------------------------------------------------- models

def _smart_code(value: str) -> str:
    if not _SMART_CODE.fullmatch(value):
        raise ValueError("must be a HERA smart code such as HERA.CRM.CUST.ENT.PROF.v1")
    return value


def _currency(value: str) -> str:
    if not re.fullmatch(r"[A-Z]{3}", value):
        raise ValueError("must be a three-letter ISO 4217 code such as EUR")
    return value


SmartCode = Annotated[str, AfterValidator(_smart_code)]
_FIELD_TYPES = (bool, int, float, Decimal, str, date, dict, list)
Money = Annotated[Decimal, Field(allow_inf_nan=False)]
Text50 = Annotated[str, StringConstraints(min_length=1, max_length=50)]
Text100 = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Text255 = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class _Input(_Model):
    """An input model: invalid data raises `InvalidWrite` (not pydantic's ValidationError)."""

    @model_validator(mode="wrap")
    @classmethod
    def _as_invalid_write(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        try:
            return handler(data)
        except ValidationError as exc:
            raise InvalidWrite.from_validation_error(exc) from None


class StepKey(_Input):
    """Identifies one run of a step: the idempotency key of everything it writes."""

    execution_id: Text255
    """The execution (workflow id); its row must exist, see `Store.upsert_execution`."""
    step_id: Text255
    """The step's id in the playbook."""
    iteration: str = ""
    """Tells apart runs of one step inside a loop (e.g. the foreach index); "" elsewhere."""


class StepAudit(_Input):
    """What a step's audit line records."""

    step_type: Text100
    """The step's type (entity, human, approval, ...)."""
    status: Text50 = "completed"
    """The step's final status."""
    smart_code: SmartCode | None = None
    """The step's smart code, if it has one."""
    data: dict[str, Any] | None = None
    """What a person submitted (human and approval steps)."""
    output: dict[str, Any] | None = None
    """The step's output; for writes, the write's result is merged over it."""
    error: str | None = None
    """Why the step failed."""
    completed_by: str | None = None
    """Who completed a human step."""
    attempts: int = Field(default=1, ge=0)
    """How many attempts the step took."""
    started_at: datetime | None = None
    """When the step started."""
    finished_at: datetime | None = None
    """When the step finished."""


class EntityWrite(_Input):
    """An entity upsert and its dynamic fields."""

    entity_type: Text100
    """Kind of entity (customer, vendor, ...)."""
    entity_name: Text255
    """Display name."""
    entity_code: Text255 | None = None
    """Business key: with it, the entity of this type and code is updated if it exists."""
    entity_id: UUID | None = None
    """Update this existing entity (of the same type) instead of upserting by code."""
    status: Text50 | None = None
    """Entity status; on insert it defaults to ``active``, on update it is kept."""
    smart_code: SmartCode
    """The step's smart code, stored on the entity and its fields."""
    fields: dict[Text100, Any] = Field(default_factory=dict)
    """Dynamic fields, typed by Python type: bool, int/float/Decimal (number), date, datetime,
    dict/list (json), str (text). None deletes the field."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Merged into the entity's metadata (execution_id and step_id are added)."""

    @field_validator("fields")
    @classmethod
    def _storable(cls, fields: dict[str, Any]) -> dict[str, Any]:
        for name, value in fields.items():
            if value is not None and not isinstance(value, _FIELD_TYPES):
                raise ValueError(f"{name!r} has unsupported type {type(value).__name__}")
            if isinstance(value, float | Decimal) and not math.isfinite(value):
                raise ValueError(f"{name!r} must be a finite number")
        return fields


class TransactionLineWrite(_Input):
    """One line of a business transaction."""

    line_type: Text100 | None = None
    """Kind of line (item, tax, ...)."""
    entity_id: UUID | None = None
    """The entity the line is about (a product, ...); must exist in the organization."""
    quantity: Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
    """How many; never negative."""
    unit_price: Money
    """Price of one."""
    line_amount: Money | None = None
    """Defaults to quantity * unit_price, exactly."""
    smart_code: SmartCode | None = None
    """The line's smart code."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Stored on the line (execution_id and step_id are added)."""


class TransactionWrite(_Input):
    """A business transaction with its lines."""

    transaction_type: Text100
    """Kind of transaction (sale, purchase, ...)."""
    transaction_code: Text255 | None = None
    """Business reference (an invoice number, ...)."""
    transaction_date: datetime | date | None = None
    """Defaults to now; a date means midnight UTC, a naive datetime is taken as UTC."""
    source_entity_id: UUID | None = None
    """Where it comes from (e.g. the customer); must exist in the organization."""
    target_entity_id: UUID | None = None
    """Where it goes; must exist in the organization."""
    currency: Annotated[str, AfterValidator(_currency)] | None = None
    """ISO 4217 code."""
    total_amount: Money | None = None
    """Defaults to the exact sum of the line amounts."""
    status: Text50 | None = None
    """Defaults to ``active``."""
    smart_code: SmartCode
    """The step's smart code."""
    lines: list[TransactionLineWrite] = Field(default_factory=list)
    """The lines, numbered from 1 in this order."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Stored on the transaction (execution_id and step_id are added)."""

    @field_validator("lines", mode="before")
    @classmethod
    def _lines(cls, lines: Any) -> Any:
        # Validated one by one so that a line's errors name it: lines[2].quantity.
        if not isinstance(lines, list):
            return lines
        validated = []
        for index, line in enumerate(lines):
            try:
                validated.append(TransactionLineWrite.model_validate(line))
            except InvalidWrite as exc:
                raise exc.within(f"lines[{index}]") from None
        return validated


class RelationshipWrite(_Input):
    """A relationship between two entities of the organization (upserted on its four keys)."""

    from_entity_id: UUID
    """The entity it starts from."""
    to_entity_id: UUID
    """The entity it points to."""
    relationship_type: Text100
    """Kind of relationship (parent_of, supplies, ...)."""
    smart_code: SmartCode
    """The step's smart code."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Merged into the relationship's metadata (execution_id and step_id are added)."""


class _ExecutionWrite(_Input):
    execution_id: Text255
    playbook_id: Text255
    smart_code: SmartCode
    status: Text50
    requested_by: str | None
    metadata: dict[str, Any]


class _DefinitionWrite(_Input):
    playbook_id: Text255
    definition: dict[str, Any]
    smart_code: SmartCode


class _Result(_Model):
    model_config = ConfigDict(frozen=True)


class _NoResult(_Result):
    """The result of a step that writes no business data."""


class EntityResult(_Result):
    """Output of an entity step."""

    entity_id: UUID
    """The entity written."""
    entity_code: str | None
    """Its code."""
    created: bool
    """True if inserted, False if an existing entity was updated."""


class TransactionResult(_Result):
    """Output of a transaction step."""

    transaction_id: UUID
    """The transaction written."""
    transaction_code: str | None
    """Its code."""
    total_amount: Decimal
    """Its total, exact."""


class RelationshipResult(_Result):
    """Output of a relationship step."""

    relationship_id: UUID
    """The relationship written (or found, for an existing one)."""


class EntityRecord(_Model):
    """An entity as stored, with its dynamic fields decoded to Python values."""

    entity_id: UUID
    """Its id."""
    entity_type: str
    """Its type."""
    entity_name: str
    """Its name."""
    entity_code: str | None
    """Its code."""
    status: str
    """Its status."""
    smart_code: str
    """Its smart code."""
    fields: dict[str, Any]
    """Dynamic fields: str, Decimal, bool, date, datetime (UTC) or JSON values."""
    metadata: dict[str, Any]
    """Its metadata."""
    created_at: datetime
    """When it was inserted."""
    updated_at: datetime
    """When it was last written."""


# ------------------------------------------------------------------------------------------- the store

_R = TypeVar("_R", bound=BaseModel)
_VALUE_COLUMNS = ("field_value_text", "field_value_number", "field_value_boolean", "field_value_date",
                  "field_value_json")


class Store:
    """Tenant-scoped, exactly-once access to the universal tables. Open with `Store.open`."""

    def __init__(self, pool: asyncpg.Pool, *, auto_register_orgs: bool) -> None:
        self._pool = pool
        self.auto_register_orgs = auto_register_orgs
        """Register an unknown organization code on first use instead of refusing it."""
        self._org_ids: dict[str, UUID] = {}

    @classmethod
    async def open(cls, dsn: str, *, auto_register_orgs: bool = False, min_size: int = 1, max_size: int = 10,
                   run_migrations: bool = True) -> Store:
        """Connect a pool to `dsn` (applying pending migrations first, unless told not to)."""
        try:
            if run_migrations:
                await migrate(dsn)
            pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=_init_connection)
        except MigrationError as exc:
            raise StoreError(str(exc)) from exc
        except (asyncpg.PostgresError, *_UNAVAILABLE) as exc:
            raise _translate(exc) from exc
        return cls(pool, auto_register_orgs=auto_register_orgs)

    async def close(self) -> None:
        """Close the pool (waits for connections in use)."""
        await self._pool.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    @asynccontextmanager
    async def transaction(self, org: UUID) -> AsyncIterator[asyncpg.Connection]:
        """A database transaction under `org`'s row-level security, for queries the methods do not
        cover. Database errors surface as `StoreError`s."""
        async with self._session(org) as conn:
            yield conn

    @asynccontextmanager
    async def _session(self, org: UUID | None) -> AsyncIterator[asyncpg.Connection]:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                if org is not None:
                    await conn.execute("SELECT set_config('app.organization_id', $1, true)", str(org))
                yield conn
        except (asyncpg.PostgresError, *_UNAVAILABLE) as exc:
            raise _translate(exc) from exc

    # --------------------------------------------------------------------------------- organizations

    async def resolve_organization(self, org: str) -> UUID:
        """The id of the organization named by `org`: its uuid or its code (e.g. ``org_123``).

        An unknown code is registered when `auto_register_orgs` is on, else `UnknownOrganization`.
        """
        if (known := self._org_ids.get(org)) is not None:
            return known
        try:
            org_id: UUID | None = UUID(org)
        except ValueError:
            org_id = None
        if org_id is not None:
            async with self._session(org_id) as conn:
                # RLS shows a session its own organization row only: found means it exists.
                if await conn.fetchval("SELECT id FROM core_organizations") is None:
                    raise UnknownOrganization(f"organization_id: no organization with id {org}")
        else:
            _check_org_code(org)
            async with self._session(None) as conn:
                org_id = await conn.fetchval("SELECT playbook_find_org($1)", org)
                if org_id is None and self.auto_register_orgs:
                    org_id = await conn.fetchval("SELECT playbook_register_org($1)", org)
            if org_id is None:
                raise UnknownOrganization(f"organization_id: unknown organization {org!r}"
                                          " (auto-registration is off: register it first)")
        self._org_ids[org] = org_id
        return org_id

    async def register_organization(self, code: str, *, name: str | None = None) -> UUID:
        """Register organization `code` (idempotent: an existing one keeps its id and name)."""
        _check_org_code(code)
        if name is not None and not 1 <= len(name) <= _MAX_LEN["organization_name"]:
            raise InvalidWrite("organization_name", f"1 to {_MAX_LEN['organization_name']} characters")
        async with self._session(None) as conn:
            org_id: UUID = await conn.fetchval("SELECT playbook_register_org($1, $2)", code, name)
        self._org_ids[code] = org_id
        return org_id

    async def organizations(self) -> dict[str, UUID]:
        """Every organization's code and id (codes only: each one's rows are still read under its own RLS)."""
        async with self._session(None) as conn:
            rows = await conn.fetch("SELECT id, organization_code FROM playbook_organizations()")
        return {row["organization_code"]: row["id"] for row in rows}

    # ------------------------------------------------------------------------------------ executions

    async def upsert_execution(self, org: UUID, *, execution_id: str, playbook_id: str, smart_code: str,
                               status: str, requested_by: str | None = None,
                               metadata: dict[str, Any] | None = None) -> UUID:
        """Create the execution's row (a ``playbook_execution`` transaction coded `execution_id`), or
        update its status and merge `metadata` into it. Returns the row's id."""
        write = _ExecutionWrite(execution_id=execution_id, playbook_id=playbook_id, smart_code=smart_code,
                                status=status, requested_by=requested_by, metadata=metadata or {})
        merged = {**write.metadata, "execution_id": execution_id, "playbook_id": playbook_id}
        if requested_by is not None:
            merged["requested_by"] = requested_by
        async with self._session(org) as conn:
            row_id: UUID = await conn.fetchval(
                """
                INSERT INTO universal_transactions
                    (organization_id, transaction_type, transaction_code, smart_code, status, metadata)
                VALUES ($1, 'playbook_execution', $2, $3, $4, $5)
                ON CONFLICT (organization_id, transaction_code) WHERE transaction_type = 'playbook_execution'
                DO UPDATE SET status = EXCLUDED.status, smart_code = EXCLUDED.smart_code,
                              metadata = universal_transactions.metadata || EXCLUDED.metadata
                RETURNING id
                """,
                org, execution_id, write.smart_code, write.status, merged,
            )
        return row_id

    async def record_step(self, org: UUID, key: StepKey, audit: StepAudit) -> None:
        """Record a step that writes no business data (human, approval, validation, set, ...).
        A second call with the same key changes nothing."""

        async def nothing(conn: asyncpg.Connection) -> _NoResult:
            return _NoResult()

        await self._step(org, key, audit, nothing, _NoResult)

    async def step_lines(self, org: UUID, execution_id: str) -> list[dict[str, Any]]:
        """The audit lines of an execution in order ([] if there is no such execution): each line's
        metadata plus line_number, line_id, smart_code, entity_id and created_at."""
        async with self._session(org) as conn:
            rows = await conn.fetch(
                """
                SELECT l.line_number, l.id, l.smart_code, l.entity_id, l.created_at, l.metadata
                FROM universal_transactions t
                JOIN universal_transaction_lines l ON l.transaction_id = t.id AND l.line_type = 'playbook_step'
                WHERE t.organization_id = playbook_current_org() AND t.transaction_type = 'playbook_execution'
                  AND t.transaction_code = $1
                ORDER BY l.line_number
                """,
                execution_id,
            )
        return [{**row["metadata"], "line_number": row["line_number"], "line_id": row["id"],
                 "smart_code": row["smart_code"], "entity_id": row["entity_id"],
                 "created_at": row["created_at"]} for row in rows]

    # ---------------------------------------------------------------------------------- step writes

    async def write_entity(self, org: UUID, key: StepKey, write: EntityWrite,
                           audit: StepAudit) -> EntityResult:
        """Upsert an entity and its dynamic fields, with the step's audit line, exactly once.

        By `entity_id` when given, else by (type, code) when a code is given, else a new entity.
        """

        async def upsert(conn: asyncpg.Connection) -> EntityResult:
            return await _upsert_entity(conn, org, key, write)

        return await self._step(org, key, audit, upsert, EntityResult)

    async def write_transaction(self, org: UUID, key: StepKey, write: TransactionWrite,
                                audit: StepAudit) -> TransactionResult:
        """Insert a business transaction and its lines, with the step's audit line, exactly once."""

        async def insert(conn: asyncpg.Connection) -> TransactionResult:
            return await _insert_transaction(conn, org, key, write)

        return await self._step(org, key, audit, insert, TransactionResult)

    async def write_relationship(self, org: UUID, key: StepKey, write: RelationshipWrite,
                                 audit: StepAudit) -> RelationshipResult:
        """Upsert a relationship between two entities of `org`, with the step's audit line, exactly once."""

        async def upsert(conn: asyncpg.Connection) -> RelationshipResult:
            await _check_entities(conn, [("from_entity_id", write.from_entity_id),
                                         ("to_entity_id", write.to_entity_id)])
            row_id: UUID = await conn.fetchval(
                """
                INSERT INTO core_relationships
                    (organization_id, from_entity_id, to_entity_id, relationship_type, smart_code, metadata)
                VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (organization_id, from_entity_id, to_entity_id, relationship_type)
                DO UPDATE SET smart_code = EXCLUDED.smart_code,
                              metadata = core_relationships.metadata || EXCLUDED.metadata
                RETURNING id
                """,
                org, write.from_entity_id, write.to_entity_id, write.relationship_type, write.smart_code,
                {**write.metadata, **_provenance(key)},
            )
            return RelationshipResult(relationship_id=row_id)

        return await self._step(org, key, audit, upsert, RelationshipResult)

    async def _step(self, org: UUID, key: StepKey, audit: StepAudit,
                    write: Callable[[asyncpg.Connection], Awaitable[_R]], result_type: type[_R]) -> _R:
        """Run `write` and insert the audit line in one transaction, unless the step is already recorded."""
        async with self._session(org) as conn:
            # Serialises the steps of one execution: line numbers and the duplicate check cannot race.
            execution = await conn.fetchval(
                """
                SELECT id FROM universal_transactions
                WHERE organization_id = $1 AND transaction_type = 'playbook_execution' AND transaction_code = $2
                FOR UPDATE
                """,
                org, key.execution_id,
            )
            if execution is None:
                raise ExecutionNotFound(f"execution_id: no execution {key.execution_id!r} in this"
                                        " organization (upsert_execution first)")
            # Literal line_type: a parameter would keep generic plans off the partial unique index.
            recorded = await conn.fetchrow(
                """
                SELECT metadata -> 'output' AS output FROM universal_transaction_lines
                WHERE transaction_id = $1 AND line_type = 'playbook_step'
                  AND metadata ->> 'step_id' = $2 AND metadata ->> 'iteration' = $3
                """,
                execution, key.step_id, key.iteration,
            )
            if recorded is not None:
                output = recorded["output"] or {}
                return result_type.model_validate(
                    {field: output.get(field) for field in result_type.model_fields}
                )
            result = await write(conn)
            await self._before_audit_line(conn, key)
            line = audit.model_dump(mode="json")
            if written := result.model_dump(mode="json"):
                line["output"] = {**(audit.output or {}), **written}
            await conn.execute(
                """
                INSERT INTO universal_transaction_lines
                    (organization_id, transaction_id, line_number, line_type, entity_id, smart_code, metadata)
                SELECT $1, $2, coalesce(max(line_number), 0) + 1, 'playbook_step', $3, $4, $5
                FROM universal_transaction_lines WHERE transaction_id = $2
                """,
                # An entity step's line points at its entity.
                org, execution, getattr(result, "entity_id", None), audit.smart_code,
                {**line, **_provenance(key), "iteration": key.iteration},
            )
            return result

    async def _before_audit_line(self, conn: asyncpg.Connection, key: StepKey) -> None:
        """Runs between a step's business write and its audit line; a seam for atomicity tests."""

    # ------------------------------------------------------------------------------------------ reads

    async def entity_exists(self, org: UUID, entity_id: UUID | str) -> bool:
        """Whether `org` has an entity with this id (a string that is not a uuid is simply False)."""
        try:
            wanted = entity_id if isinstance(entity_id, UUID) else UUID(entity_id)
        except ValueError:
            return False
        async with self._session(org) as conn:
            found: bool = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM core_entities WHERE id = $1 AND organization_id = $2)",
                wanted, org,
            )
        return found

    async def find_entity(self, org: UUID, *, entity_type: str, entity_code: str) -> UUID | None:
        """The id of `org`'s entity of this type and code, if any."""
        async with self._session(org) as conn:
            found: UUID | None = await conn.fetchval(
                """
                SELECT id FROM core_entities
                WHERE organization_id = $1 AND entity_type = $2 AND entity_code = $3
                """,
                org, entity_type, entity_code,
            )
        return found

    async def get_entity(self, org: UUID, entity_id: UUID) -> EntityRecord | None:
        """`org`'s entity with this id and its dynamic fields, or None."""
        async with self._session(org) as conn:
            row = await conn.fetchrow(
                """
                SELECT id, entity_type, entity_name, entity_code, status, smart_code, metadata, created_at,
                       updated_at
                FROM core_entities WHERE id = $1 AND organization_id = $2
                """,
                entity_id, org,
            )
            if row is None:
                return None
            fields = await conn.fetch(
                f"SELECT field_name, field_type, {', '.join(_VALUE_COLUMNS)} FROM core_dynamic_data"
                " WHERE entity_id = $1",
                entity_id,
            )
        return EntityRecord(
            entity_id=row["id"], entity_type=row["entity_type"], entity_name=row["entity_name"],
            entity_code=row["entity_code"], status=row["status"], smart_code=row["smart_code"],
            metadata=row["metadata"], created_at=row["created_at"], updated_at=row["updated_at"],
            fields={field["field_name"]: _decode_field(field) for field in fields},
        )

    async def field_value_taken(self, org: UUID, *, entity_type: str, field_name: str, value: Any) -> bool:
        """Whether an entity of `entity_type` in `org` already has `field_name` equal to `value` (for
        ``unique`` validation rules). `field_name` may also be ``entity_code`` or ``entity_name``."""
        if value is None:
            return False
        if field_name in ("entity_code", "entity_name"):
            sql = f"""
                SELECT EXISTS (SELECT 1 FROM core_entities
                               WHERE organization_id = $1 AND entity_type = $2 AND {field_name} = $3)
            """
            args: tuple[Any, ...] = (str(value),)
        else:
            _, column, stored = _field_value(value)
            # The left(...) term lets a text lookup use core_dynamic_data_text_idx.
            prefix = "AND left(d.field_value_text, 200) = left($3, 200)" if column.endswith("_text") else ""
            sql = f"""
                SELECT EXISTS (
                    SELECT 1 FROM core_dynamic_data d JOIN core_entities e ON e.id = d.entity_id
                    WHERE d.organization_id = $1 AND e.entity_type = $2 AND d.field_name = $4
                      AND d.{column} = $3 {prefix})
            """
            args = (stored, field_name)
        async with self._session(org) as conn:
            taken: bool = await conn.fetchval(sql, org, entity_type, *args)
        return taken

    # ---------------------------------------------------------------------------------------- catalog

    async def publish_definition(self, org: UUID | None, *, playbook_id: str, definition: dict[str, Any],
                                 smart_code: str) -> str:
        """Publish a playbook definition to `org`'s catalog (None: the platform library). Returns the
        sha256 of its canonical JSON; publishing the same content again writes nothing."""
        write = _DefinitionWrite(playbook_id=playbook_id, definition=definition, smart_code=smart_code)
        try:
            canonical = json.dumps(write.definition, sort_keys=True, separators=(",", ":"),
                                   ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise InvalidWrite("definition", f"must be plain JSON ({exc})") from None
        sha256 = hashlib.sha256(canonical.encode()).hexdigest()
        name = str(definition.get("name") or playbook_id)[: _MAX_LEN["entity_name"]]
        status = str(definition.get("status") or "draft")[: _MAX_LEN["status"]]
        owner = PLATFORM_ORG_ID if org is None else org
        async with self._session(owner) as conn:
            await conn.execute(
                """
                INSERT INTO core_entities
                    (organization_id, entity_type, entity_name, entity_code, status, smart_code, metadata)
                VALUES ($1, 'playbook_definition', $2, $3, $4, $5, $6)
                ON CONFLICT (organization_id, entity_type, entity_code) DO UPDATE
                SET entity_name = EXCLUDED.entity_name, status = EXCLUDED.status,
                    smart_code = EXCLUDED.smart_code, metadata = EXCLUDED.metadata
                WHERE core_entities.metadata ->> 'sha256' IS DISTINCT FROM EXCLUDED.metadata ->> 'sha256'
                """,
                owner, name, playbook_id, status, write.smart_code,
                {"definition": write.definition, "sha256": sha256},
            )
        return sha256

    async def get_definition(self, org: UUID, playbook_id: str) -> dict[str, Any] | None:
        """`org`'s own published definition of `playbook_id`, else the platform library's, else None."""
        async with self._session(org) as conn:
            definition: dict[str, Any] | None = await conn.fetchval(
                """
                SELECT metadata -> 'definition' FROM core_entities
                WHERE entity_type = 'playbook_definition' AND entity_code = $1 AND organization_id IN ($2, $3)
                ORDER BY organization_id = $3
                LIMIT 1
                """,
                playbook_id, org, PLATFORM_ORG_ID,
            )
        return definition


# ------------------------------------------------------------------------------------------ write steps

def _provenance(key: StepKey) -> dict[str, str]:
    """What every business row records about the step that wrote it."""
    origin = {"execution_id": key.execution_id, "step_id": key.step_id}
    if key.iteration:
        origin["iteration"] = key.iteration
    return origin


async def _upsert_entity(conn: asyncpg.Connection, org: UUID, key: StepKey,
                         write: EntityWrite) -> EntityResult:
    metadata = {**write.metadata, **_provenance(key)}
    if write.entity_id is not None:
        row = await conn.fetchrow(
            """
            UPDATE core_entities
            SET entity_name = $3, entity_code = coalesce($4, entity_code), status = coalesce($5, status),
                smart_code = $6, metadata = metadata || $7
            WHERE id = $1 AND entity_type = $2 AND organization_id = playbook_current_org()
            RETURNING id, entity_code, false AS created
            """,
            write.entity_id, write.entity_type, write.entity_name, write.entity_code, write.status,
            write.smart_code, metadata,
        )
        if row is None:
            kind = await conn.fetchval(
                "SELECT entity_type FROM core_entities WHERE id = $1 AND organization_id = $2",
                write.entity_id, org,
            )
            if kind is None:
                raise InvalidWrite("entity_id", f"no entity {write.entity_id} in this organization")
            raise InvalidWrite("entity_id",
                               f"entity {write.entity_id} is a {kind!r}, not {write.entity_type!r}")
    else:
        row = await conn.fetchrow(
            """
            INSERT INTO core_entities
                (organization_id, entity_type, entity_name, entity_code, status, smart_code, metadata)
            VALUES ($1, $2, $3, $4, coalesce($5, 'active'), $6, $7)
            ON CONFLICT (organization_id, entity_type, entity_code) DO UPDATE
            SET entity_name = EXCLUDED.entity_name, status = coalesce($5, core_entities.status),
                smart_code = EXCLUDED.smart_code, metadata = core_entities.metadata || EXCLUDED.metadata
            RETURNING id, entity_code, xmax = 0 AS created
            """,
            org, write.entity_type, write.entity_name, write.entity_code, write.status, write.smart_code,
            metadata,
        )
    entity_id: UUID = row["id"]
    cleared = [name for name, value in write.fields.items() if value is None]
    if cleared:
        await conn.execute(
            "DELETE FROM core_dynamic_data WHERE entity_id = $1 AND field_name = ANY($2::text[])",
            entity_id, cleared,
        )
    rows = []
    for name, value in write.fields.items():
        if value is not None:
            field_type, column, stored = _field_value(value)
            values: list[Any] = [stored if c == column else None for c in _VALUE_COLUMNS]
            rows.append((org, entity_id, name, field_type, *values, write.smart_code, _provenance(key)))
    if rows:
        await conn.executemany(
            f"""
            INSERT INTO core_dynamic_data
                (organization_id, entity_id, field_name, field_type, {", ".join(_VALUE_COLUMNS)}, smart_code,
                 metadata)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            ON CONFLICT (entity_id, field_name) DO UPDATE
            SET field_type = EXCLUDED.field_type, {", ".join(f"{c} = EXCLUDED.{c}" for c in _VALUE_COLUMNS)},
                smart_code = EXCLUDED.smart_code, metadata = EXCLUDED.metadata
            """,
            rows,
        )
    return EntityResult(entity_id=entity_id, entity_code=row["entity_code"], created=row["created"])


async def _insert_transaction(conn: asyncpg.Connection, org: UUID, key: StepKey,
                              write: TransactionWrite) -> TransactionResult:
    await _check_entities(conn, [
        ("source_entity_id", write.source_entity_id),
        ("target_entity_id", write.target_entity_id),
        *((f"lines[{index}].entity_id", line.entity_id) for index, line in enumerate(write.lines)),
    ])
    # Money must be exact: with this context sums and products never round.
    with localcontext(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN):
        amounts = [line.quantity * line.unit_price if line.line_amount is None else line.line_amount
                   for line in write.lines]
        total = sum(amounts, Decimal(0)) if write.total_amount is None else write.total_amount
    when = write.transaction_date
    transaction_id: UUID = await conn.fetchval(
        """
        INSERT INTO universal_transactions
            (organization_id, transaction_type, transaction_code, transaction_date, source_entity_id,
             target_entity_id, total_amount, currency, status, smart_code, metadata)
        VALUES ($1, $2, $3, coalesce($4, now()), $5, $6, $7, $8, coalesce($9, 'active'), $10, $11)
        RETURNING id
        """,
        org, write.transaction_type, write.transaction_code, None if when is None else _utc(when),
        write.source_entity_id, write.target_entity_id, total, write.currency, write.status, write.smart_code,
        {**write.metadata, **_provenance(key)},
    )
    if write.lines:
        await conn.executemany(
            """
            INSERT INTO universal_transaction_lines
                (organization_id, transaction_id, line_number, line_type, entity_id, quantity, unit_price,
                 line_amount, smart_code, metadata)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            """,
            [(org, transaction_id, number, line.line_type, line.entity_id, line.quantity, line.unit_price,
              amount, line.smart_code, {**line.metadata, **_provenance(key)})
             for number, (line, amount) in enumerate(zip(write.lines, amounts, strict=True), start=1)],
        )
    return TransactionResult(transaction_id=transaction_id, transaction_code=write.transaction_code,
                             total_amount=total)


async def _check_entities(conn: asyncpg.Connection, refs: Sequence[tuple[str, UUID | None]]) -> None:
    """Fail with the field's name if a referenced entity is not the current organization's."""
    wanted = [entity_id for _, entity_id in refs if entity_id is not None]
    if not wanted:
        return
    rows = await conn.fetch(
        "SELECT id FROM core_entities WHERE id = ANY($1::uuid[]) "
        " AND organization_id = playbook_current_org()",
        wanted,
    )
    found = {row["id"] for row in rows}
    for field, entity_id in refs:
        if entity_id is not None and entity_id not in found:
            raise InvalidWrite(field, f"no entity {entity_id} in this organization")


def _utc(value: date) -> datetime:
    """A timestamptz value: dates are midnight UTC, naive datetimes are UTC."""
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _field_value(value: Any) -> tuple[str, str, Any]:
    """(field_type, field_value_* column, value as stored) for a dynamic field value."""
    # bool before int and datetime before date: each is a subclass of the other.
    if isinstance(value, bool):
        return "boolean", "field_value_boolean", value
    if isinstance(value, int | float | Decimal):
        # str() first: a float's shortest repr (0.1), not its binary expansion.
        return "number", "field_value_number", Decimal(str(value))
    if isinstance(value, datetime):
        return "datetime", "field_value_date", _utc(value)
    if isinstance(value, date):
        return "date", "field_value_date", _utc(value)
    if isinstance(value, dict | list):
        return "json", "field_value_json", value
    return "text", "field_value_text", str(value)


def _decode_field(row: asyncpg.Record) -> Any:
    match row["field_type"]:
        case "text":
            return row["field_value_text"]
        case "number":
            return row["field_value_number"]
        case "boolean":
            return row["field_value_boolean"]
        case "date":
            return row["field_value_date"].astimezone(UTC).date()
        case "datetime":
            return row["field_value_date"].astimezone(UTC)
    return row["field_value_json"]


def _check_org_code(code: str) -> None:
    if not _ORG_CODE.fullmatch(code):
        raise UnknownOrganization(
            f"organization_id: {code!r} is neither a uuid nor an organization code"
            " (letters, digits, _ . : -, at most 100 characters)"
        )


# ---------------------------------------------------------------------------------- connections, errors

def _json_default(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _json_dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, ensure_ascii=False)


async def _init_connection(conn: asyncpg.Connection) -> None:
    """Per new pool connection: the jsonb codec, then the engine's role (refusing one that bypasses RLS)."""
    await conn.set_type_codec("jsonb", encoder=_json_dumps, decoder=json.loads, schema="pg_catalog")
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


# asyncpg raises InternalClientError ("cannot switch to state ...") on a connection the server just killed.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InternalClientError,
)
# Connection loss, shutdown/restart, statement timeout, overload, serialization failure and deadlock.
_RETRYABLE: tuple[type[BaseException], ...] = (
    *_UNAVAILABLE,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.TransactionRollbackError,
)
# A constraint's table, as a field path prefix in messages.
_TABLE_PREFIX = {"universal_transaction_lines": "lines[].", "core_dynamic_data": "fields."}


def _translate(exc: BaseException) -> StoreError:
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
        if column in _MAX_LEN:
            return InvalidWrite(f"{prefix}{column}", f"1 to {_MAX_LEN[column]} characters")
        return InvalidWrite(f"{prefix}{column}", f"violates {constraint}")
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        if detail.endswith("_fkey"):
            return InvalidWrite("organization_id", "no such organization")
        return InvalidWrite(f"{prefix}{detail.removesuffix('_fk')}_id", "no such entity in this organization")
    if constraint == "core_entities_code_key":
        return InvalidWrite("entity_code", "already used by another entity of this type in this organization")
    return InvalidWrite(table or "input", f"violates {constraint or exc.__class__.__name__}")
