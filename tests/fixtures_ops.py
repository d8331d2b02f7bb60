"""Real targets for ops steps, reusable by any runbook test: a database to query, a files root, script workers.

- ``app_db``: a scratch database named by the connection ``app`` (``PLAYBOOK_DB_APP``) holding an
  ``app_errors`` table of recent errors — what an incident runbook queries;
- ``files_root``: a temporary folder as ``PLAYBOOK_FILES_ROOT``;
- ``ops_workers``: a business worker and a script worker (``--scripts``) on fresh queues, and a client.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from runtime.worker import build_script_worker
from starter.client import PlaybookClient
from store import PgServer
from tests.fixtures_pg import scratch_database
from tests.fixtures_temporal import running_worker

APP_ERRORS = """
CREATE TABLE app_errors (id serial PRIMARY KEY, service text NOT NULL, level text NOT NULL, message text NOT NULL,
                         at timestamptz NOT NULL DEFAULT now());
INSERT INTO app_errors (service, level, message) VALUES
  ('checkout', 'error', 'payment provider timeout'), ('checkout', 'error', 'payment provider timeout'),
  ('checkout', 'fatal', 'pool exhausted'), ('search', 'error', 'index shard unavailable');
"""


@pytest.fixture
async def app_db(pg_server: PgServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """The `app` connection: a database with recent errors; yields its DSN."""
    async with scratch_database(pg_server.dsn) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(APP_ERRORS)
        finally:
            await conn.close()
        monkeypatch.setenv("PLAYBOOK_DB_APP", dsn)
        yield dsn


@pytest.fixture
def files_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "files"
    root.mkdir()
    monkeypatch.setenv("PLAYBOOK_FILES_ROOT", str(root))
    return root


@pytest.fixture
async def ops_workers(temporal: WorkflowEnvironment, store: Any) -> AsyncIterator[PlaybookClient]:
    """A business worker and a script worker, each on its own fresh queue."""
    scripts = f"scripts-{uuid.uuid4()}"
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(build_script_worker(temporal.client, store, task_queue=scripts))
        yield await stack.enter_async_context(running_worker(temporal.client, store, script_task_queue=scripts))
