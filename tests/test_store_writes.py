"""Step writes: exactly-once, atomic with their audit line, typed dynamic fields, exact money."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from store import (
    EntityResult,
    EntityWrite,
    ExecutionNotFound,
    InvalidWrite,
    RelationshipWrite,
    StepAudit,
    StepKey,
    Store,
    TransactionWrite,
)
from tests.fixtures_pg import new_execution

SC = "HERA.CRM.CUST.ENT.PROF.v1"


def customer(code: str | None = "C-1", **fields: Any) -> EntityWrite:
    return EntityWrite(entity_type="customer", entity_name="Acme", entity_code=code, smart_code=SC, fields=fields)


def audit(step_type: str = "entity") -> StepAudit:
    return StepAudit(step_type=step_type, started_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))


async def count(admin: asyncpg.Connection, table: str, org: UUID) -> int:
    """Rows of `org` in `table`, seen as superuser (RLS does not hide anything here)."""
    found: int = await admin.fetchval(f"SELECT count(*) FROM {table} WHERE organization_id = $1", org)
    return found


async def test_entity_write_twice_is_one_row_with_the_first_result(
    store: Store, pg_admin: asyncpg.Connection, org_a: UUID, exec_a: str
) -> None:
    key = StepKey(execution_id=exec_a, step_id="create_customer")
    first = await store.write_entity(org_a, key, customer(email="a@x.io"), audit())
    again = await store.write_entity(org_a, key, customer(email="changed@x.io"), audit())
    assert first.created and again == first
    assert await count(pg_admin, "core_entities", org_a) == 1
    record = await store.get_entity(org_a, first.entity_id)
    assert record is not None and record.fields == {"email": "a@x.io"}
    lines = await store.step_lines(org_a, exec_a)
    assert len(lines) == 1
    assert lines[0]["output"] == first.model_dump(mode="json")
    assert lines[0]["entity_id"] == first.entity_id


async def test_the_same_step_in_another_iteration_is_another_write(
    store: Store, org_a: UUID, exec_a: str
) -> None:
    writes = [
        await store.write_entity(org_a, StepKey(execution_id=exec_a, step_id="each", iteration=str(i)),
                                 customer(code=f"C-{i}"), audit())
        for i in range(2)
    ]
    assert writes[0].entity_id != writes[1].entity_id
    lines = await store.step_lines(org_a, exec_a)
    assert [(line["step_id"], line["iteration"], line["line_number"]) for line in lines] == [
        ("each", "0", 1), ("each", "1", 2)
    ]
    record = await store.get_entity(org_a, writes[1].entity_id)
    assert record is not None
    assert record.metadata == {"execution_id": exec_a, "step_id": "each", "iteration": "1"}


async def test_concurrent_retries_of_one_step_write_once(
    store: Store, pg_admin: asyncpg.Connection, org_a: UUID, exec_a: str
) -> None:
    key = StepKey(execution_id=exec_a, step_id="create")
    results = await asyncio.gather(*(store.write_entity(org_a, key, customer(), audit()) for _ in range(6)))
    assert len(set(results)) == 1
    assert await count(pg_admin, "core_entities", org_a) == 1
    assert len(await store.step_lines(org_a, exec_a)) == 1


async def test_upsert_by_code_and_by_id(store: Store, org_a: UUID, exec_a: str) -> None:
    first = await store.write_entity(org_a, StepKey(execution_id=exec_a, step_id="a"), customer(), audit())
    by_code = await store.write_entity(
        org_a, StepKey(execution_id=exec_a, step_id="b"),
        EntityWrite(entity_type="customer", entity_name="Acme Ltd", entity_code="C-1", smart_code=SC,
                    status="vip"), audit(),
    )
    assert by_code == EntityResult(entity_id=first.entity_id, entity_code="C-1", created=False)
    by_id = await store.write_entity(
        org_a, StepKey(execution_id=exec_a, step_id="c"),
        EntityWrite(entity_type="customer", entity_name="Acme plc", entity_id=first.entity_id, smart_code=SC),
        audit(),
    )
    assert by_id == EntityResult(entity_id=first.entity_id, entity_code="C-1", created=False)
    record = await store.get_entity(org_a, first.entity_id)
    assert record is not None
    assert (record.entity_name, record.status, record.metadata["step_id"]) == ("Acme plc", "vip", "c")
    assert record.updated_at > record.created_at

    with pytest.raises(InvalidWrite, match=r"^entity_id: entity .* is a 'customer', not 'vendor'$"):
        await store.write_entity(
            org_a, StepKey(execution_id=exec_a, step_id="d"),
            EntityWrite(entity_type="vendor", entity_name="X", entity_id=first.entity_id, smart_code=SC), audit(),
        )


async def test_dynamic_fields_round_trip_typed(
    store: Store, pg_admin: asyncpg.Connection, org_a: UUID, exec_a: str
) -> None:
    fields: dict[str, Any] = {
        "credit_limit": 50000, "discount": 0.1, "balance": Decimal("1234.5600"), "active": True,
        "vip": False, "since": date(2024, 2, 29), "seen_at": datetime(2026, 5, 1, 12, 30, tzinfo=UTC),
        "address": {"city": "Oslo", "lines": ["Karl Johans gate 1"]}, "tags": ["a", "b"], "email": "a@x.io",
    }
    written = await store.write_entity(org_a, StepKey(execution_id=exec_a, step_id="a"), customer(**fields),
                                       audit())
    record = await store.get_entity(org_a, written.entity_id)
    assert record is not None
    assert record.fields == {**fields, "discount": Decimal("0.1")}
    assert isinstance(record.fields["since"], date) and not isinstance(record.fields["since"], datetime)
    types = dict(await pg_admin.fetch(
        "SELECT field_name, field_type FROM core_dynamic_data WHERE entity_id = $1", written.entity_id
    ))
    assert types == {
        "credit_limit": "number", "discount": "number", "balance": "number", "active": "boolean", "vip": "boolean",
        "since": "date", "seen_at": "datetime", "address": "json", "tags": "json", "email": "text",
    }

    # A later write retypes a field and None deletes one.
    await store.write_entity(org_a, StepKey(execution_id=exec_a, step_id="b"),
                             customer(credit_limit="unlimited", email=None), audit())
    record = await store.get_entity(org_a, written.entity_id)
    assert record is not None
    assert record.fields["credit_limit"] == "unlimited" and "email" not in record.fields


async def test_field_value_taken_per_type(store: Store, org_a: UUID, org_b: UUID, exec_a: str) -> None:
    fields: dict[str, Any] = {"email": "a@x.io", "n": 7, "ok": True, "since": date(2024, 1, 1), "doc": {"k": 1}}
    await store.write_entity(org_a, StepKey(execution_id=exec_a, step_id="a"), customer("C-1", **fields), audit())
    for name, value in fields.items():
        assert await store.field_value_taken(org_a, entity_type="customer", field_name=name, value=value)
        assert not await store.field_value_taken(org_a, entity_type="vendor", field_name=name, value=value)
        assert not await store.field_value_taken(org_b, entity_type="customer", field_name=name, value=value)
    assert not await store.field_value_taken(org_a, entity_type="customer", field_name="email", value="b@x.io")
    assert not await store.field_value_taken(org_a, entity_type="customer", field_name="n", value=8)
    assert await store.field_value_taken(org_a, entity_type="customer", field_name="entity_code", value="C-1")
    assert not await store.field_value_taken(org_a, entity_type="customer", field_name="email", value=None)


async def test_entity_exists_and_find(store: Store, org_a: UUID, exec_a: str) -> None:
    written = await store.write_entity(org_a, StepKey(execution_id=exec_a, step_id="a"), customer(), audit())
    assert await store.entity_exists(org_a, written.entity_id)
    assert await store.entity_exists(org_a, str(written.entity_id))
    assert not await store.entity_exists(org_a, "not-a-uuid")
    assert not await store.entity_exists(org_a, UUID(int=7))
    assert await store.find_entity(org_a, entity_type="customer", entity_code="C-1") == written.entity_id
    assert await store.find_entity(org_a, entity_type="customer", entity_code="C-2") is None


async def test_transaction_with_lines_exact_money_once(
    store: Store, pg_admin: asyncpg.Connection, org_a: UUID, exec_a: str
) -> None:
    product = await store.write_entity(
        org_a, StepKey(execution_id=exec_a, step_id="product"),
        EntityWrite(entity_type="product", entity_name="Widget", smart_code=SC), audit(),
    )
    write = TransactionWrite(
        transaction_type="sale", transaction_code="INV-1", transaction_date=date(2026, 3, 1), currency="EUR",
        smart_code="HERA.FIN.SALE.TXN.INV.v1", metadata={"channel": "web"},
        lines=[
            {"quantity": 3, "unit_price": 0.1, "entity_id": product.entity_id},
            {"quantity": "0.333", "unit_price": "3"},
            {"quantity": 1, "unit_price": 5, "line_amount": "4.99", "line_type": "discounted"},
        ],
    )
    key = StepKey(execution_id=exec_a, step_id="invoice")
    first = await store.write_transaction(org_a, key, write, audit("transaction"))
    assert first.total_amount == Decimal("5.29") + Decimal("0.999") and first.transaction_code == "INV-1"
    assert await store.write_transaction(org_a, key, write, audit("transaction")) == first

    header = await pg_admin.fetchrow(
        "SELECT total_amount, transaction_date, currency, metadata->>'step_id' AS step,"
        " metadata->>'channel' AS channel FROM universal_transactions WHERE id = $1", first.transaction_id,
    )
    assert dict(header) == {"total_amount": Decimal("6.289"), "transaction_date": datetime(2026, 3, 1, tzinfo=UTC),
                            "currency": "EUR", "step": "invoice", "channel": "web"}
    lines = await pg_admin.fetch(
        "SELECT line_number, line_amount, entity_id, metadata->>'execution_id' AS execution"
        " FROM universal_transaction_lines WHERE transaction_id = $1 ORDER BY line_number", first.transaction_id,
    )
    assert [tuple(line) for line in lines] == [
        (1, Decimal("0.3"), product.entity_id, exec_a), (2, Decimal("0.999"), None, exec_a),
        (3, Decimal("4.99"), None, exec_a),
    ]
    assert await count(pg_admin, "universal_transactions", org_a) == 2  # the execution and the sale
    explicit = await store.write_transaction(
        org_a, StepKey(execution_id=exec_a, step_id="explicit"),
        TransactionWrite(transaction_type="sale", smart_code="HERA.FIN.SALE.TXN.INV.v1", total_amount="10.00",
                         lines=[{"quantity": 1, "unit_price": 1}]), audit("transaction"),
    )
    assert explicit.total_amount == Decimal("10.00")


async def test_relationship_write_once(
    store: Store, pg_admin: asyncpg.Connection, org_a: UUID, exec_a: str
) -> None:
    a = await store.write_entity(org_a, StepKey(execution_id=exec_a, step_id="a"), customer("A"), audit())
    b = await store.write_entity(org_a, StepKey(execution_id=exec_a, step_id="b"), customer("B"), audit())
    write = RelationshipWrite(from_entity_id=a.entity_id, to_entity_id=b.entity_id, relationship_type="parent_of",
                              smart_code="HERA.CRM.CUST.REL.PARENT.v1")
    key = StepKey(execution_id=exec_a, step_id="link")
    first = await store.write_relationship(org_a, key, write, audit("relationship"))
    assert await store.write_relationship(org_a, key, write, audit("relationship")) == first
    # The same relationship from another step is the same row (upsert on its four keys).
    other = await store.write_relationship(org_a, StepKey(execution_id=exec_a, step_id="relink"), write,
                                           audit("relationship"))
    assert other == first
    assert await count(pg_admin, "core_relationships", org_a) == 1


async def test_record_step_once_and_in_order(store: Store, org_a: UUID, exec_a: str) -> None:
    human = StepAudit(step_type="human", data={"credit_limit": 60000}, completed_by="ann", attempts=2)
    for _ in range(2):
        await store.record_step(org_a, StepKey(execution_id=exec_a, step_id="set_terms"), human)
    await store.record_step(org_a, StepKey(execution_id=exec_a, step_id="approve"),
                            StepAudit(step_type="approval", status="failed", error="rejected", output={"x": 1}))
    lines = await store.step_lines(org_a, exec_a)
    assert [(line["line_number"], line["step_id"], line["status"]) for line in lines] == [
        (1, "set_terms", "completed"), (2, "approve", "failed")
    ]
    assert lines[0]["data"] == {"credit_limit": 60000} and lines[0]["completed_by"] == "ann"
    assert lines[0]["attempts"] == 2 and lines[0]["output"] is None
    assert lines[1]["error"] == "rejected" and lines[1]["output"] == {"x": 1}


async def test_execution_row_upsert(store: Store, pg_admin: asyncpg.Connection, org_a: UUID) -> None:
    first = await store.upsert_execution(org_a, execution_id="wf-1", playbook_id="p.v1", smart_code=SC,
                                         status="running", requested_by="svc", metadata={"module": "crm"})
    again = await store.upsert_execution(org_a, execution_id="wf-1", playbook_id="p.v1", smart_code=SC,
                                         status="completed", metadata={"outputs": {"id": 1}})
    assert again == first
    row = await pg_admin.fetchrow("SELECT status, metadata::text AS metadata FROM universal_transactions"
                                  " WHERE id = $1", first)
    assert row["status"] == "completed"
    for part in ('"module": "crm"', '"requested_by": "svc"', '"outputs": {"id": 1}', '"playbook_id": "p.v1"'):
        assert part in row["metadata"]


async def test_step_write_without_execution_row(store: Store, org_a: UUID) -> None:
    with pytest.raises(ExecutionNotFound, match=r"^execution_id: no execution 'nope' in this organization"):
        await store.write_entity(org_a, StepKey(execution_id="nope", step_id="a"), customer(), audit())
    assert await store.step_lines(org_a, "nope") == []


async def test_a_failure_after_the_business_write_leaves_neither_row(
    store: Store, pg_admin: asyncpg.Connection, org_a: UUID, exec_a: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def crash(conn: asyncpg.Connection, key: StepKey) -> None:
        raise RuntimeError("worker died between the business write and the audit line")

    monkeypatch.setattr(store, "_before_audit_line", crash)
    key = StepKey(execution_id=exec_a, step_id="create")
    with pytest.raises(RuntimeError, match="worker died"):
        await store.write_entity(org_a, key, customer(email="a@x.io"), audit())
    with pytest.raises(RuntimeError, match="worker died"):
        await store.write_transaction(
            org_a, StepKey(execution_id=exec_a, step_id="sale"),
            TransactionWrite(transaction_type="sale", smart_code=SC, lines=[{"quantity": 1, "unit_price": 2}]),
            audit("transaction"),
        )
    for table in ("core_entities", "core_dynamic_data", "universal_transaction_lines"):
        assert await count(pg_admin, table, org_a) == 0, table
    assert await count(pg_admin, "universal_transactions", org_a) == 1  # the execution row only

    monkeypatch.undo()
    retried = await store.write_entity(org_a, key, customer(email="a@x.io"), audit())
    assert retried.created
    assert len(await store.step_lines(org_a, exec_a)) == 1


async def test_audit_lines_number_sequentially_under_concurrency(store: Store, org_a: UUID) -> None:
    execution = await new_execution(store, org_a)
    await asyncio.gather(*(
        store.record_step(org_a, StepKey(execution_id=execution, step_id=f"s{i}"), StepAudit(step_type="set"))
        for i in range(12)
    ))
    lines = await store.step_lines(org_a, execution)
    assert [line["line_number"] for line in lines] == list(range(1, 13))
    assert {line["step_id"] for line in lines} == {f"s{i}" for i in range(12)}


async def test_database_maintains_timestamps(store: Store, org_a: UUID, exec_a: str) -> None:
    written = await store.write_entity(org_a, StepKey(execution_id=exec_a, step_id="a"), customer(), audit())
    async with store.transaction(org_a) as conn:
        await conn.execute(
            "UPDATE core_entities SET created_at = '2000-01-01', updated_at = '2000-01-01' WHERE id = $1",
            written.entity_id,
        )
    record = await store.get_entity(org_a, written.entity_id)
    assert record is not None
    assert record.created_at.year > 2000 and record.updated_at > record.created_at
