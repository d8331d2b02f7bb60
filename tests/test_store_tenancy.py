"""Tenancy through the engine's role: RLS isolates reads and writes; organizations; the platform library."""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import asyncpg
import pytest

from store import (
    ENGINE_ROLE,
    PLATFORM_ORG_ID,
    EntityWrite,
    ExecutionNotFound,
    InvalidWrite,
    RelationshipWrite,
    StepAudit,
    StepKey,
    Store,
    StoreError,
    TransactionWrite,
    UnknownOrganization,
    migrate,
)
from tests.fixtures_pg import new_execution

SC = "HERA.CRM.CUST.ENT.PROF.v1"
TABLES = ("core_entities", "core_dynamic_data", "core_relationships", "universal_transactions",
          "universal_transaction_lines")
own_server_only = pytest.mark.skipif("DATABASE_URL" in os.environ, reason="creates cluster-wide roles")


def as_user(dsn: str, user: str) -> str:
    """`dsn` with another user (no password: the test server trusts local connections)."""
    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


async def populate(store: Store, org: UUID) -> dict[str, UUID]:
    """One row of every kind in `org`; returns their ids."""
    execution = await new_execution(store, org)
    a = await store.write_entity(org, StepKey(execution_id=execution, step_id="a"),
                                 EntityWrite(entity_type="customer", entity_name="A", entity_code="SAME",
                                             smart_code=SC, fields={"email": "a@x.io"}),
                                 StepAudit(step_type="entity"))
    b = await store.write_entity(org, StepKey(execution_id=execution, step_id="b"),
                                 EntityWrite(entity_type="customer", entity_name="B", smart_code=SC),
                                 StepAudit(step_type="entity"))
    await store.write_relationship(org, StepKey(execution_id=execution, step_id="r"),
                                   RelationshipWrite(from_entity_id=a.entity_id, to_entity_id=b.entity_id,
                                                     relationship_type="knows", smart_code=SC),
                                   StepAudit(step_type="relationship"))
    sale = await store.write_transaction(org, StepKey(execution_id=execution, step_id="t"),
                                         TransactionWrite(transaction_type="sale", smart_code=SC,
                                                          lines=[{"quantity": 1, "unit_price": 1}]),
                                         StepAudit(step_type="transaction"))
    return {"entity": a.entity_id, "other": b.entity_id, "sale": sale.transaction_id,
            "execution": await store.upsert_execution(org, execution_id=execution, playbook_id="test.v1",
                                                      smart_code=SC, status="running")}


async def test_pool_connections_work_as_the_engine_role(store: Store, org_a: UUID) -> None:
    for _ in range(3):  # also after the pool has reset returned connections
        async with store.transaction(org_a) as conn:
            row = await conn.fetchrow(
                "SELECT current_user AS me, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
            )
        assert tuple(row) == (ENGINE_ROLE, False, False)


async def test_a_returned_connection_carries_no_tenant_into_its_next_use(store: Store, org_a: UUID) -> None:
    """The pool keeps sessions (no reset statement per use): the tenant is transaction-local, and a transaction
    left open by an error is rolled back before the connection is used again."""
    await populate(store, org_a)
    with pytest.raises(ZeroDivisionError):
        async with store.transaction(org_a) as conn:
            assert await conn.fetchval("SELECT count(*) FROM core_entities WHERE organization_id = $1", org_a) == 2
            raise ZeroDivisionError
    for _ in range(3):  # the pool hands the last returned connection out first
        async with store._pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT current_setting('app.organization_id', true)") in (None, "")
            assert await conn.fetchval("SELECT count(*) FROM core_entities WHERE organization_id = $1", org_a) == 0
            assert await conn.fetchval("SELECT current_user") == ENGINE_ROLE


async def test_reads_see_only_the_sessions_organization(store: Store, org_a: UUID, org_b: UUID) -> None:
    await populate(store, org_a)
    theirs = await populate(store, org_b)
    assert not await store.entity_exists(org_a, theirs["entity"])
    assert await store.get_entity(org_a, theirs["entity"]) is None
    assert await store.find_entity(org_a, entity_type="customer", entity_code="SAME") != theirs["entity"]
    async with store.transaction(org_a) as conn:
        for table in TABLES:
            assert await conn.fetchval(f"SELECT count(*) FROM {table} WHERE organization_id = $1", org_b) == 0
            # the platform library (playbook definitions) is readable by every organization, nothing else
            others = f"SELECT count(*) FROM {table} WHERE organization_id NOT IN ($1, $2)"
            assert await conn.fetchval(others, org_a, PLATFORM_ORG_ID) == 0
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") > 0
        assert await conn.fetchval("SELECT count(*) FROM core_organizations") == 1
    async with store._pool.acquire() as conn:  # no organization set: nothing but the public platform library
        for table in (*TABLES, "core_organizations"):
            column = "id" if table == "core_organizations" else "organization_id"
            query = f"SELECT count(*) FROM {table} WHERE {column} <> $1"
            assert await conn.fetchval(query, PLATFORM_ORG_ID) == 0


async def test_writes_cannot_touch_another_organization(store: Store, org_a: UUID, org_b: UUID) -> None:
    theirs = await populate(store, org_b)
    async with store.transaction(org_a) as conn:
        for table, id_key in (("core_entities", "entity"), ("universal_transactions", "sale")):
            assert await conn.execute(f"UPDATE {table} SET status = 'hacked' WHERE id = $1", theirs[id_key]) \
                == "UPDATE 0"
            assert await conn.execute(f"DELETE FROM {table} WHERE id = $1", theirs[id_key]) == "DELETE 0"
    with pytest.raises(StoreError, match="row-level security"):
        async with store.transaction(org_a) as conn:
            await conn.execute("INSERT INTO core_entities (organization_id, entity_type, entity_name, smart_code)"
                               " VALUES ($1, 'customer', 'X', $2)", org_b, SC)
    with pytest.raises(StoreError, match="permission denied"):
        async with store.transaction(org_a) as conn:
            await conn.execute("UPDATE core_organizations SET status = 'x'")

    mine = await new_execution(store, org_a)
    key = StepKey(execution_id=mine, step_id="x")
    with pytest.raises(InvalidWrite, match=f"^from_entity_id: no entity {theirs['entity']} in this organization$"):
        await store.write_relationship(org_a, key, RelationshipWrite(
            from_entity_id=theirs["entity"], to_entity_id=theirs["other"], relationship_type="r", smart_code=SC,
        ), StepAudit(step_type="relationship"))
    with pytest.raises(InvalidWrite, match=r"^lines\[0\].entity_id: no entity"):
        await store.write_transaction(org_a, key, TransactionWrite(
            transaction_type="sale", smart_code=SC, lines=[{"quantity": 1, "unit_price": 1,
                                                           "entity_id": theirs["entity"]}],
        ), StepAudit(step_type="transaction"))
    with pytest.raises(InvalidWrite, match=r"^entity_id: no entity"):
        await store.write_entity(org_a, key, EntityWrite(entity_type="customer", entity_name="X",
                                                         entity_id=theirs["entity"], smart_code=SC),
                                 StepAudit(step_type="entity"))
    async with store.transaction(org_b) as conn:
        assert await conn.fetchval("SELECT count(*) FROM core_entities WHERE status = 'hacked'") == 0
        assert await conn.fetchval("SELECT count(*) FROM core_entities WHERE organization_id = $1", org_b) == 2


async def test_a_step_of_another_organizations_execution_is_not_found(
    store: Store, org_a: UUID, org_b: UUID
) -> None:
    theirs = await new_execution(store, org_b)
    with pytest.raises(ExecutionNotFound):
        await store.record_step(org_a, StepKey(execution_id=theirs, step_id="x"), StepAudit(step_type="set"))
    assert await store.step_lines(org_b, theirs) == []


async def test_organizations_by_code_or_id_and_auto_registration(store: Store, pg_dsn: str) -> None:
    code = f"org_{uuid.uuid4().hex[:8]}"
    org = await store.resolve_organization(code)
    assert await store.resolve_organization(code) == org
    assert await store.resolve_organization(str(org)) == org
    async with await Store.open(pg_dsn, run_migrations=False) as strict:
        assert await strict.resolve_organization(code) == org
        assert await strict.resolve_organization(str(org)) == org
        with pytest.raises(UnknownOrganization, match=r"^organization_id: unknown organization 'org_new_\w+' "
                                                      r"\(auto-registration is off: register it first\)$"):
            await strict.resolve_organization(f"org_new_{code}")
        with pytest.raises(UnknownOrganization, match="no organization with id"):
            await strict.resolve_organization(str(uuid.uuid4()))
        with pytest.raises(UnknownOrganization, match="neither a uuid nor an organization code"):
            await strict.resolve_organization("org 1; drop table")
        registered = await strict.register_organization(f"org_new_{code}", name="New Org")
        assert await strict.resolve_organization(f"org_new_{code}") == registered
        assert await store.resolve_organization(f"org_new_{code}") == registered


async def test_platform_library_and_org_override(store: Store, org_a: UUID, org_b: UUID) -> None:
    playbook_id = f"demo.{uuid.uuid4().hex[:8]}.v1"
    platform = {"id": playbook_id, "name": "Demo", "status": "published", "steps": [{"id": "a"}]}
    sha = await store.publish_definition(None, playbook_id=playbook_id, definition=platform, smart_code=SC)
    assert len(sha) == 64
    assert await store.get_definition(org_a, playbook_id) == platform
    assert await store.get_definition(org_b, playbook_id) == platform
    assert await store.get_definition(org_a, "no.such.v1") is None

    own = {**platform, "name": "Demo for A"}
    own_sha = await store.publish_definition(org_a, playbook_id=playbook_id, definition=own, smart_code=SC)
    assert own_sha != sha
    assert await store.get_definition(org_a, playbook_id) == own
    assert await store.get_definition(org_b, playbook_id) == platform

    async with store.transaction(PLATFORM_ORG_ID) as conn:
        stamp = await conn.fetchval("SELECT updated_at FROM core_entities WHERE entity_code = $1", playbook_id)
    # Same content, keys in another order: same sha, nothing written.
    reordered = dict(reversed(list(platform.items())))
    assert await store.publish_definition(None, playbook_id=playbook_id, definition=reordered, smart_code=SC) == sha
    async with store.transaction(PLATFORM_ORG_ID) as conn:
        assert await conn.fetchval("SELECT updated_at FROM core_entities WHERE entity_code = $1",
                                   playbook_id) == stamp
    async with store.transaction(org_b) as conn:  # readable, not writable, and nothing else of the platform's
        assert await conn.execute("UPDATE core_entities SET status = 'x' WHERE entity_code = $1",
                                  playbook_id) == "UPDATE 0"
        assert await conn.fetchval("SELECT count(*) FROM core_entities WHERE organization_id = $1",
                                   PLATFORM_ORG_ID) >= 1
        assert await conn.fetchval("SELECT count(*) FROM core_organizations WHERE id = $1", PLATFORM_ORG_ID) == 0


@own_server_only
async def test_connecting_as_the_engine_role_directly(pg_dsn: str, pg_admin: asyncpg.Connection) -> None:
    await pg_admin.execute(f"ALTER ROLE {ENGINE_ROLE} LOGIN")
    try:
        async with await Store.open(as_user(pg_dsn, ENGINE_ROLE), auto_register_orgs=True) as direct:
            org = await direct.resolve_organization(f"org_{uuid.uuid4().hex[:8]}")
            async with direct.transaction(org) as conn:
                assert await conn.fetchval("SELECT session_user::text || '/' || current_user") == \
                    f"{ENGINE_ROLE}/{ENGINE_ROLE}"
                assert await conn.fetchval("SELECT count(*) FROM core_organizations") == 1
    finally:
        await pg_admin.execute(f"ALTER ROLE {ENGINE_ROLE} NOLOGIN")


@own_server_only
async def test_an_owner_that_is_no_superuser_is_bound_by_forced_rls(
    pg_admin: asyncpg.Connection, empty_dsn: str
) -> None:
    owner = f"pb_owner_{uuid.uuid4().hex[:8]}"
    database = urlsplit(empty_dsn).path.lstrip("/")
    await pg_admin.execute(f"CREATE ROLE {owner} LOGIN")
    await pg_admin.execute(f'ALTER DATABASE "{database}" OWNER TO {owner}')
    try:
        dsn = as_user(empty_dsn, owner)
        assert await migrate(dsn) != []  # the engine role exists already (cluster-wide), so no CREATEROLE needed
        async with await Store.open(dsn, auto_register_orgs=True) as owned:
            a = await owned.resolve_organization("org_a")
            b = await owned.resolve_organization("org_b")
            await populate(owned, b)
            async with owned.transaction(a) as conn:
                assert await conn.fetchval("SELECT current_user") == owner
                # Business rows stay hidden; the organization directory does not (its functions need it).
                for table in TABLES:
                    assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0
    finally:
        admin_of_db = await asyncpg.connect(empty_dsn)
        try:
            await admin_of_db.execute(f"REASSIGN OWNED BY {owner} TO CURRENT_USER")
            await admin_of_db.execute(f"DROP OWNED BY {owner}")
        finally:
            await admin_of_db.close()
        await pg_admin.execute(f"DROP ROLE {owner}")


@own_server_only
async def test_a_role_that_bypasses_rls_is_refused(pg_admin: asyncpg.Connection, pg_dsn: str) -> None:
    bypass = f"pb_bypass_{uuid.uuid4().hex[:8]}"
    await pg_admin.execute(f"CREATE ROLE {bypass} LOGIN BYPASSRLS")
    try:
        with pytest.raises(StoreError, match=f"^{bypass} bypasses row-level security"):
            await Store.open(as_user(pg_dsn, bypass), run_migrations=False)
    finally:
        await pg_admin.execute(f"DROP ROLE {bypass}")
