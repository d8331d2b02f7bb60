"""The SQL of step writes: entity upserts with dynamic fields, transactions with lines, reference checks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Decimal, localcontext
from typing import Any
from uuid import UUID

import asyncpg

from .errors import InvalidWrite
from .records import EntityResult, EntityWrite, ExecutionWrite, StepKey, TransactionResult, TransactionWrite

VALUE_COLUMNS = ("field_value_text", "field_value_number", "field_value_boolean", "field_value_date",
                 "field_value_json")
"""The typed value columns of core_dynamic_data, in table order."""

def provenance(key: StepKey) -> dict[str, str]:
    """What every business row records about the step that wrote it."""
    origin = {"execution_id": key.execution_id, "step_id": key.step_id}
    if key.iteration:
        origin["iteration"] = key.iteration
    return origin


async def upsert_entity(conn: asyncpg.Connection, org: UUID, key: StepKey,
                         write: EntityWrite) -> EntityResult:
    metadata = {**write.metadata, **provenance(key)}
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
            field_type, column, stored = field_value(value)
            values: list[Any] = [stored if c == column else None for c in VALUE_COLUMNS]
            rows.append((org, entity_id, name, field_type, *values, write.smart_code, provenance(key)))
    if rows:
        await conn.executemany(
            f"""
            INSERT INTO core_dynamic_data
                (organization_id, entity_id, field_name, field_type, {", ".join(VALUE_COLUMNS)}, smart_code,
                 metadata)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            ON CONFLICT (entity_id, field_name) DO UPDATE
            SET field_type = EXCLUDED.field_type, {", ".join(f"{c} = EXCLUDED.{c}" for c in VALUE_COLUMNS)},
                smart_code = EXCLUDED.smart_code, metadata = EXCLUDED.metadata
            """,
            rows,
        )
    return EntityResult(entity_id=entity_id, entity_code=row["entity_code"], created=row["created"])


async def insert_transaction(conn: asyncpg.Connection, org: UUID, key: StepKey,
                              write: TransactionWrite) -> TransactionResult:
    await check_entities(conn, [
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
        {**write.metadata, **provenance(key)},
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
              amount, line.smart_code, {**line.metadata, **provenance(key)})
             for number, (line, amount) in enumerate(zip(write.lines, amounts, strict=True), start=1)],
        )
    return TransactionResult(transaction_id=transaction_id, transaction_code=write.transaction_code,
                             total_amount=total)


async def check_entities(conn: asyncpg.Connection, refs: Sequence[tuple[str, UUID | None]]) -> None:
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


def field_value(value: Any) -> tuple[str, str, Any]:
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


def decode_field(row: asyncpg.Record) -> Any:
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


async def upsert_execution_row(conn: asyncpg.Connection, org: UUID, write: ExecutionWrite) -> UUID:
    """Create the execution's row or update its status, merging its metadata; returns the row's id."""
    merged = {**write.metadata, "execution_id": write.execution_id, "playbook_id": write.playbook_id}
    if write.requested_by is not None:
        merged["requested_by"] = write.requested_by
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
        org, write.execution_id, write.smart_code, write.status, merged,
    )
    return row_id
