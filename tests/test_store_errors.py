"""Bad input gives one clear line naming the field and the rule, and leaves nothing half-written;
an outage is a distinct, retryable error."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from store import (
    EntityWrite,
    InvalidWrite,
    RelationshipWrite,
    StepAudit,
    StepKey,
    Store,
    StoreError,
    StoreUnavailable,
    TransactionLineWrite,
    TransactionWrite,
)

SC = "HERA.CRM.CUST.ENT.PROF.v1"


async def nothing_written(admin: asyncpg.Connection, org: UUID) -> None:
    """Only the execution row exists in `org`: no business row, no audit line."""
    for table in ("core_entities", "core_dynamic_data", "core_relationships", "universal_transaction_lines"):
        assert await admin.fetchval(f"SELECT count(*) FROM {table} WHERE organization_id = $1", org) == 0, table
    assert await admin.fetchval("SELECT count(*) FROM universal_transactions WHERE organization_id = $1", org) == 1


def line(**overrides: Any) -> dict[str, Any]:
    return {"quantity": 1, "unit_price": "9.99", **overrides}


async def test_unknown_entity_in_a_relationship(
    store: Store, pg_admin: asyncpg.Connection, org_a: UUID, exec_a: str
) -> None:
    missing = uuid4()
    write = RelationshipWrite(from_entity_id=missing, to_entity_id=uuid4(), relationship_type="parent_of",
                              smart_code=SC)
    with pytest.raises(InvalidWrite) as caught:
        await store.write_relationship(org_a, StepKey(execution_id=exec_a, step_id="link"), write,
                                       StepAudit(step_type="relationship"))
    assert str(caught.value) == f"from_entity_id: no entity {missing} in this organization"
    assert (caught.value.field, caught.value.retryable) == ("from_entity_id", False)
    await nothing_written(pg_admin, org_a)


async def test_negative_quantity(store: Store, pg_admin: asyncpg.Connection, org_a: UUID, exec_a: str) -> None:
    with pytest.raises(InvalidWrite) as caught:
        TransactionWrite(transaction_type="sale", smart_code=SC, lines=[line(), line(), line(quantity=-2)])
    assert str(caught.value) == "lines[2].quantity: must be >= 0"

    # Past the model (constructed without validation), the database's CHECK still refuses it, atomically.
    bad = TransactionLineWrite.model_construct(quantity=Decimal(-2), unit_price=Decimal(1), line_amount=None,
                                               line_type=None, entity_id=None, smart_code=None, metadata={})
    write = TransactionWrite(transaction_type="sale", smart_code=SC, lines=[line()])
    write.lines.append(bad)
    with pytest.raises(InvalidWrite, match=r"^lines\[\]\.quantity: must be >= 0$"):
        await store.write_transaction(org_a, StepKey(execution_id=exec_a, step_id="sale"), write,
                                      StepAudit(step_type="transaction"))
    await nothing_written(pg_admin, org_a)


async def test_string_too_long(store: Store, pg_admin: asyncpg.Connection, org_a: UUID, exec_a: str) -> None:
    with pytest.raises(InvalidWrite) as caught:
        EntityWrite(entity_type="customer", entity_name="x" * 256, smart_code=SC)
    assert str(caught.value) == "entity_name: at most 255 characters"

    bad = EntityWrite.model_construct(entity_type="customer", entity_name="x" * 300, entity_code=None,
                                      entity_id=None, status=None, smart_code=SC, fields={"a": 1}, metadata={})
    with pytest.raises(InvalidWrite, match=r"^entity_name: 1 to 255 characters$"):
        await store.write_entity(org_a, StepKey(execution_id=exec_a, step_id="e"), bad, StepAudit(step_type="entity"))
    await nothing_written(pg_admin, org_a)


@pytest.mark.parametrize(("build", "message"), [
    (lambda: EntityWrite(entity_type="customer", entity_name="", smart_code=SC), "entity_name: must not be empty"),
    (lambda: EntityWrite(entity_type="customer", entity_name="A", smart_code="crm.customer"),
     "smart_code: must be a HERA smart code such as HERA.CRM.CUST.ENT.PROF.v1"),
    (lambda: EntityWrite.model_validate({"entity_type": "c", "entity_name": "A", "smart_code": SC, "colour": 1}),
     "colour: unknown field"),
    (lambda: EntityWrite(entity_type="customer", entity_name="A", smart_code=SC, fields={"blob": b"\x00"}),
     "fields: 'blob' has unsupported type bytes"),
    (lambda: EntityWrite(entity_type="customer", entity_name="A", smart_code=SC, fields={"x": float("nan")}),
     "fields: 'x' must be a finite number"),
    (lambda: EntityWrite(entity_type="customer", entity_name="A", smart_code=SC, fields={"y" * 101: 1}),
     f"fields.{'y' * 101}[key]: at most 100 characters"),
    (lambda: EntityWrite(entity_type="customer", entity_name="A", smart_code=SC, entity_id="nope"),
     "entity_id: input should be a valid UUID"),
    (lambda: TransactionWrite(transaction_type="sale", smart_code=SC, currency="usd"),
     "currency: must be a three-letter ISO 4217 code such as EUR"),
    (lambda: TransactionWrite(transaction_type="sale", smart_code=SC, lines=[line(unit_price="Infinity")]),
     "lines[0].unit_price: input should be a finite number"),
    (lambda: TransactionWrite.model_validate({"transaction_type": "sale"}), "smart_code: required"),
    (lambda: TransactionWrite(transaction_type="sale", smart_code=SC, lines=[{"unit_price": 1, "extra": 1}]),
     "lines[0].quantity: required; lines[0].extra: unknown field"),
    (lambda: StepKey(execution_id="", step_id="a"), "execution_id: must not be empty"),
])
def test_invalid_input_is_one_clear_line(build: Any, message: str) -> None:
    with pytest.raises(InvalidWrite) as caught:
        build()
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


async def test_invalid_definition(store: Store) -> None:
    with pytest.raises(InvalidWrite, match=r"^definition: must be plain JSON"):
        await store.publish_definition(None, playbook_id="x.v1", definition={"when": {1, 2}}, smart_code=SC)


async def test_an_unreachable_database_is_retryable(tmp_path: Any) -> None:
    with pytest.raises(StoreUnavailable) as caught:
        await Store.open(f"postgresql://postgres@/postgres?host={tmp_path}", run_migrations=False)
    assert caught.value.retryable and isinstance(caught.value, StoreError)


async def test_a_killed_connection_is_retryable_and_the_pool_recovers(
    pg_dsn: str, pg_admin: asyncpg.Connection, org_a: UUID
) -> None:
    async with await Store.open(pg_dsn, run_migrations=False, max_size=1) as store:
        failures = []
        for _ in range(5):  # usually the first call after the kill fails; the pool may also notice first
            async with store.transaction(org_a) as conn:
                backend = await conn.fetchval("SELECT pg_backend_pid()")
            assert await pg_admin.fetchval("SELECT pg_terminate_backend($1)", backend)
            try:
                await store.entity_exists(org_a, uuid4())
            except StoreUnavailable as exc:
                failures.append(exc)
            assert not await store.entity_exists(org_a, uuid4())
        assert failures and all(exc.retryable for exc in failures)
