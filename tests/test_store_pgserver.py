"""The project's own Postgres: persistent across crashes and restarts, DATABASE_URL honoured."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest

from store import StepAudit, StepKey, Store, StoreUnavailable, migrate, start_postgres
from store.pgserver import PgServer
from tests.fixtures_pg import new_execution


@pytest.fixture
def no_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)


@pytest.fixture
def data_root() -> Iterator[Path]:
    """A directory for persistent clusters. Not pytest's tmp_path: another pytest session starting makes
    /tmp/pytest-of-<user> private again, and the server's OS user (as root) must traverse it."""
    root = Path(tempfile.mkdtemp(prefix="pbpg-test-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


async def query(dsn: str, sql: str) -> object:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])


@pytest.mark.usefixtures("no_database_url")
async def test_a_persistent_server_survives_a_crash(data_root: Path) -> None:
    # Deep enough that the socket cannot live in the data dir (Unix socket paths stop at 107 bytes).
    data_dir = data_root / ("d" * 80) / "postgres"
    server = start_postgres(data_dir)
    try:
        assert str(data_dir) not in server.dsn
        await query(server.dsn, "CREATE TABLE kept AS SELECT 1 AS x")
        os.kill(postmaster_pid(data_dir), signal.SIGKILL)

        server = start_postgres(data_dir)  # finds the stale postmaster.pid and starts anyway
        assert await query(server.dsn, "SELECT count(*) FROM kept") == 1
        assert start_postgres(data_dir).dsn == server.dsn  # a running server is adopted, not restarted
    finally:
        server.stop()
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()

    with start_postgres(data_dir) as again:
        assert await query(again.dsn, "SELECT count(*) FROM kept") == 1


@pytest.mark.usefixtures("no_database_url")
async def test_the_store_rides_out_a_database_restart(data_root: Path) -> None:
    server = start_postgres(data_root)
    try:
        await migrate(server.dsn)
        async with await Store.open(server.dsn, auto_register_orgs=True) as store:
            org = await store.resolve_organization("org_1")
            execution = await new_execution(store, org)
            server.stop()
            with pytest.raises(StoreUnavailable) as caught:
                await store.record_step(org, StepKey(execution_id=execution, step_id="a"), StepAudit(step_type="set"))
            assert caught.value.retryable
            server = start_postgres(data_root)
            await store.record_step(org, StepKey(execution_id=execution, step_id="a"), StepAudit(step_type="set"))
            assert len(await store.step_lines(org, execution)) == 1
    finally:
        server.stop()


def test_database_url_is_used_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"postgresql://someone@db.example:5432/{uuid4().hex}"
    monkeypatch.setenv("DATABASE_URL", url)
    with start_postgres() as server:
        assert isinstance(server, PgServer) and server.dsn == url
