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
`Store.resolve_definition` prefers the organization's own version, then one shared with it (store.catalog).

Exactly-once. A step's audit line (a ``playbook_step`` line of the execution's transaction, unique per
execution, step and iteration) is its idempotency record: a step write locks the execution row, returns
the recorded output if the line exists, and otherwise performs the business write and inserts the line
in the same transaction.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Self, TypeVar
from uuid import UUID

import asyncpg
from pydantic import BaseModel

from model.audit import AuditLine, StepAudit

from . import catalog
from .catalog import PLATFORM_ORG_ID
from .connection import init_connection, keep_session
from .errors import MAX_LEN, UNAVAILABLE, ExecutionNotFound, InvalidWrite, StoreError, UnknownOrganization, translate
from .migrate import MigrationError, migrate
from .records import (
    DefinitionWrite,
    EntityRecord,
    EntityResult,
    EntityWrite,
    ExecutionWrite,
    NoResult,
    RelationshipResult,
    RelationshipWrite,
    StepKey,
    TransactionResult,
    TransactionWrite,
)
from .sql import (
    VALUE_COLUMNS,
    check_entities,
    decode_field,
    field_value,
    insert_transaction,
    provenance,
    upsert_entity,
    upsert_execution_row,
)

_ORG_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")

_R = TypeVar("_R", bound=BaseModel)


async def _nothing(conn: asyncpg.Connection) -> NoResult:
    """The business write of a step that writes none (human, approval, set, ...): only its audit line."""
    return NoResult()


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
            pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=init_connection,
                                             reset=keep_session)
        except MigrationError as exc:
            raise StoreError(str(exc)) from exc
        except (asyncpg.PostgresError, *UNAVAILABLE) as exc:
            raise translate(exc) from exc
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
        except (asyncpg.PostgresError, *UNAVAILABLE) as exc:
            raise translate(exc) from exc

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
        if name is not None and not 1 <= len(name) <= MAX_LEN["organization_name"]:
            raise InvalidWrite("organization_name", f"1 to {MAX_LEN['organization_name']} characters")
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
        write = ExecutionWrite(execution_id=execution_id, playbook_id=playbook_id, smart_code=smart_code,
                                status=status, requested_by=requested_by, metadata=metadata or {})
        async with self._session(org) as conn:
            return await upsert_execution_row(conn, org, write)

    async def update_execution(self, org: UUID, write: ExecutionWrite, lines: Sequence[AuditLine]) -> None:
        """Record `lines` (each once) and the execution's status in one transaction: one flush, one commit."""
        async with self._session(org) as conn:
            for line in lines:
                key = StepKey(execution_id=write.execution_id, step_id=line.step_id, iteration=line.iteration)
                await self._step_in(conn, org, key, line, _nothing, NoResult)
            await upsert_execution_row(conn, org, write)

    async def record_step(self, org: UUID, key: StepKey, audit: StepAudit) -> None:
        """Record a step that writes no business data (human, approval, validation, set, ...).
        A second call with the same key changes nothing."""

        await self._step(org, key, audit, _nothing, NoResult)

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

    async def add_note(self, org: UUID, execution_id: str, note: dict[str, Any]) -> None:
        """Append a note to an execution's audit trail (a ``playbook_note`` line); a note_id seen before
        changes nothing."""
        async with self._session(org) as conn:
            execution = await conn.fetchval(
                """
                SELECT id FROM universal_transactions
                WHERE organization_id = $1 AND transaction_type = 'playbook_execution' AND transaction_code = $2
                FOR UPDATE
                """,
                org, execution_id,
            )
            if execution is None:
                raise ExecutionNotFound(f"execution_id: no execution {execution_id!r} in this organization")
            await conn.execute(
                """
                INSERT INTO universal_transaction_lines
                    (organization_id, transaction_id, line_number, line_type, smart_code, metadata)
                VALUES ($1, $2,
                        coalesce((SELECT max(line_number) FROM universal_transaction_lines WHERE transaction_id = $2),
                                 0) + 1,
                        'playbook_note', (SELECT smart_code FROM universal_transactions WHERE id = $2), $3)
                ON CONFLICT (transaction_id, (metadata ->> 'note_id')) WHERE line_type = 'playbook_note' DO NOTHING
                """,
                org, execution, {**note, "execution_id": execution_id},
            )

    async def notes(self, org: UUID, execution_id: str) -> list[dict[str, Any]]:
        """An execution's notes in the order they came (each line's metadata)."""
        async with self._session(org) as conn:
            rows = await conn.fetch(
                """
                SELECT l.metadata FROM universal_transactions t
                JOIN universal_transaction_lines l ON l.transaction_id = t.id AND l.line_type = 'playbook_note'
                WHERE t.transaction_type = 'playbook_execution' AND t.transaction_code = $1
                ORDER BY l.line_number
                """,
                execution_id,
            )
        return [row["metadata"] for row in rows]

    # ---------------------------------------------------------------------------------- step writes

    async def write_entity(self, org: UUID, key: StepKey, write: EntityWrite,
                           audit: StepAudit) -> EntityResult:
        """Upsert an entity and its dynamic fields, with the step's audit line, exactly once.

        By `entity_id` when given, else by (type, code) when a code is given, else a new entity.
        """

        async def upsert(conn: asyncpg.Connection) -> EntityResult:
            return await upsert_entity(conn, org, key, write)

        return await self._step(org, key, audit, upsert, EntityResult)

    async def write_transaction(self, org: UUID, key: StepKey, write: TransactionWrite,
                                audit: StepAudit) -> TransactionResult:
        """Insert a business transaction and its lines, with the step's audit line, exactly once."""

        async def insert(conn: asyncpg.Connection) -> TransactionResult:
            return await insert_transaction(conn, org, key, write)

        return await self._step(org, key, audit, insert, TransactionResult)

    async def write_relationship(self, org: UUID, key: StepKey, write: RelationshipWrite,
                                 audit: StepAudit) -> RelationshipResult:
        """Upsert a relationship between two entities of `org`, with the step's audit line, exactly once."""

        async def upsert(conn: asyncpg.Connection) -> RelationshipResult:
            await check_entities(conn, [("from_entity_id", write.from_entity_id),
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
                {**write.metadata, **provenance(key)},
            )
            return RelationshipResult(relationship_id=row_id)

        return await self._step(org, key, audit, upsert, RelationshipResult)

    async def _step(self, org: UUID, key: StepKey, audit: StepAudit,
                    write: Callable[[asyncpg.Connection], Awaitable[_R]], result_type: type[_R]) -> _R:
        """Run `write` and insert the audit line in one transaction, unless the step is already recorded."""
        async with self._session(None) as conn:
            return await self._step_in(conn, org, key, audit, write, result_type)

    async def _step_in(self, conn: asyncpg.Connection, org: UUID, key: StepKey, audit: StepAudit,
                       write: Callable[[asyncpg.Connection], Awaitable[_R]], result_type: type[_R]) -> _R:
        """The body of `_step`, on a connection already in a transaction."""
        # Tenant, execution row lock (serialises one execution's steps) and the exactly-once check, in one call.
        begun = await conn.fetchrow(
            "SELECT * FROM playbook_step_begin($1, $2, $3, $4)", org, key.execution_id, key.step_id, key.iteration
        )
        execution = begun["execution_id"]
        if execution is None:
            raise ExecutionNotFound(f"execution_id: no execution {key.execution_id!r} in this"
                                    " organization (upsert_execution first)")
        if begun["recorded"]:
            output = begun["output"] or {}
            return result_type.model_validate(
                {field: output.get(field) for field in result_type.model_fields}
            )
        result = await write(conn)
        await self._before_audit_line(conn, key)
        line = audit.model_dump(mode="json", include=set(StepAudit.model_fields))
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
            {**line, **provenance(key), "iteration": key.iteration},
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
                f"SELECT field_name, field_type, {', '.join(VALUE_COLUMNS)} FROM core_dynamic_data"
                " WHERE entity_id = $1",
                entity_id,
            )
        return EntityRecord(
            entity_id=row["id"], entity_type=row["entity_type"], entity_name=row["entity_name"],
            entity_code=row["entity_code"], status=row["status"], smart_code=row["smart_code"],
            metadata=row["metadata"], created_at=row["created_at"], updated_at=row["updated_at"],
            fields={field["field_name"]: decode_field(field) for field in fields},
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
            _, column, stored = field_value(value)
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
                                 smart_code: str, by: str | None = None, only_if_new: bool = False) -> str:
        """Publish a playbook definition to `org`'s catalog (None: the platform library), keeping it in the
        version history (`store.catalog`). Returns its sha256; the same content again writes nothing."""
        write = DefinitionWrite(playbook_id=playbook_id, definition=definition, smart_code=smart_code)
        async with self._session(PLATFORM_ORG_ID if org is None else org) as conn:
            return await catalog.publish(conn, PLATFORM_ORG_ID if org is None else org, playbook_id=playbook_id,
                                         definition=write.definition, smart_code=write.smart_code, by=by,
                                         only_if_new=only_if_new)

    async def get_definition(self, org: UUID, playbook_id: str) -> dict[str, Any] | None:
        """The definition `org` runs by id (its own, one shared with it, the platform's), else None."""
        entry = await self.resolve_definition(org, playbook_id)
        return entry.definition if entry else None

    async def resolve_definition(self, org: UUID, playbook_id: str) -> catalog.CatalogEntry | None:
        """The catalog entry `org` runs by id, with its status, sha256 and where it comes from."""
        async with self._session(org) as conn:
            return await catalog.resolve(conn, org, playbook_id)

    @asynccontextmanager
    async def catalog(self, org: UUID | None) -> AsyncIterator[asyncpg.Connection]:
        """A session on `org`'s catalog (None: the platform library) for the `store.catalog` functions."""
        async with self._session(PLATFORM_ORG_ID if org is None else org) as conn:
            yield conn

    async def list_definitions(self, org: UUID) -> list[dict[str, Any]]:
        """Every definition `org` may run: its own, and the platform library's where it has none, by id."""
        async with self._session(org) as conn:
            rows = await conn.fetch(
                """
                SELECT DISTINCT ON (entity_code) metadata FROM core_entities
                WHERE entity_type = 'playbook_definition' AND organization_id IN ($1, $2)
                ORDER BY entity_code, organization_id = $2
                """,
                org, PLATFORM_ORG_ID,
            )
        return [catalog.stored_definition(row["metadata"]) for row in rows]


def _check_org_code(code: str) -> None:
    if not _ORG_CODE.fullmatch(code):
        raise UnknownOrganization(
            f"organization_id: {code!r} is neither a uuid nor an organization code"
            " (letters, digits, _ . : -, at most 100 characters)"
        )

