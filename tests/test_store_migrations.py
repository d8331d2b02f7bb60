"""Migrations: created from empty, re-applied as a no-op, serialised across processes."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import asyncpg
import pytest

from store import MigrationError, migrate
from store.migrate import MIGRATION_LOCK_KEY, migration_files

TABLES = {
    "core_organizations", "core_entities", "core_dynamic_data", "core_relationships",
    "universal_transactions", "universal_transaction_lines",
}
ALL = [path.name for path in migration_files()]
REPO = Path(__file__).resolve().parents[1]


async def fetch(dsn: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


async def test_schema_from_empty_then_reapplied_as_no_op(empty_dsn: str) -> None:
    assert ALL[:2] == ["0001_universal_tables.sql", "0002_tenancy.sql"]
    assert await migrate(empty_dsn) == ALL
    tables = await fetch(empty_dsn, "SELECT tablename, rowsecurity FROM pg_tables WHERE schemaname = 'public'")
    assert {row["tablename"] for row in tables} == TABLES | {"schema_migrations"}
    assert all(row["rowsecurity"] for row in tables if row["tablename"] in TABLES)
    forced = await fetch(empty_dsn, "SELECT relname FROM pg_class WHERE relforcerowsecurity")
    assert {row["relname"] for row in forced} == TABLES

    assert await migrate(empty_dsn) == []
    recorded = await fetch(empty_dsn, "SELECT name FROM schema_migrations ORDER BY name")
    assert [row["name"] for row in recorded] == ALL


async def test_an_edited_migration_is_refused(empty_dsn: str) -> None:
    await migrate(empty_dsn)
    await fetch(empty_dsn, "UPDATE schema_migrations SET sha256 = 'edited' WHERE name = '0001_universal_tables.sql'")
    with pytest.raises(MigrationError, match=r"0001_universal_tables\.sql was changed after it was applied"):
        await migrate(empty_dsn)


async def test_two_processes_migrating_at_once_apply_each_file_once(empty_dsn: str) -> None:
    holder = await asyncpg.connect(empty_dsn)
    try:
        # Hold the lock so that both processes are provably contending for it when it is released.
        await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-m", "store.migrate", empty_dsn, cwd=REPO,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
            for _ in range(2)
        ]
        for _ in range(300):
            waiting = await holder.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
            if waiting == 2:
                break
            await asyncio.sleep(0.05)
        assert waiting == 2
        await holder.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
        outputs = [await proc.communicate() for proc in procs]
    finally:
        await holder.close()
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    applied = [json.loads(out) for out, _ in outputs]
    assert sorted(applied, key=len) == [[], ALL]
    recorded = await fetch(empty_dsn, "SELECT name FROM schema_migrations ORDER BY name")
    assert [row["name"] for row in recorded] == ALL
