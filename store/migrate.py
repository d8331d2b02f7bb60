"""Ordered SQL migrations, applied automatically and idempotently.

Files ``migrations/NNNN_name.sql`` run in name order, each in its own transaction, and are recorded in
``schema_migrations`` (name, sha256, applied_at). The whole run holds a Postgres advisory lock, so
workers starting together take turns: the first applies, the others find nothing left to do. A
recorded file whose content has changed is an error (ship a new migration instead).

``python -m store.migrate [DSN]`` applies them (DSN defaults to ``DATABASE_URL``) and prints
the names applied as a JSON list.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import sys
from pathlib import Path

import asyncpg

__all__ = ["MIGRATIONS_DIR", "MIGRATION_LOCK_KEY", "MigrationError", "migrate", "migration_files"]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
"""Where the SQL files live (shipped as package data)."""
MIGRATION_LOCK_KEY = 0x706C6179626F6F6B  # "playbook" in ASCII
"""The advisory lock key serialising migration runs on one database."""
_NAME = re.compile(r"^\d{4}_[a-z0-9_]+\.sql$")


class MigrationError(RuntimeError):
    """A migration could not be applied, or an applied one was edited afterwards."""


def migration_files() -> list[Path]:
    """The migration files, in the order they apply."""
    return sorted(path for path in MIGRATIONS_DIR.iterdir() if _NAME.match(path.name))


async def migrate(dsn: str) -> list[str]:
    """Apply the pending migrations to the database at `dsn`; return the names applied (often none)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        try:
            return await _apply_pending(conn)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    finally:
        await conn.close()


async def _apply_pending(conn: asyncpg.Connection) -> list[str]:
    # Checked first: CREATE ... IF NOT EXISTS still needs CREATE rights, which the engine role lacks.
    if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
        await conn.execute(
            "CREATE TABLE schema_migrations (name text PRIMARY KEY, sha256 text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
    recorded = dict(await conn.fetch("SELECT name, sha256 FROM schema_migrations"))
    applied = []
    for path in migration_files():
        sql = path.read_text(encoding="utf-8")
        digest = hashlib.sha256(sql.encode()).hexdigest()
        if path.name in recorded:
            if recorded[path.name] != digest:
                raise MigrationError(f"migration {path.name} was changed after it was applied")
            continue
        try:
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (name, sha256) VALUES ($1, $2)", path.name, digest
                )
        except asyncpg.PostgresError as exc:
            raise MigrationError(f"migration {path.name} failed: {exc}") from exc
        applied.append(path.name)
    return applied


def main(argv: list[str]) -> int:
    """Command line: apply migrations to argv[0] or DATABASE_URL, print the applied names."""
    dsn = argv[0] if argv else os.environ.get("DATABASE_URL")
    if not dsn:
        print("usage: python -m store.migrate DSN (or set DATABASE_URL)", file=sys.stderr)
        return 2
    try:
        print(json.dumps(asyncio.run(migrate(dsn))))
    except (MigrationError, OSError, asyncpg.PostgresError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
