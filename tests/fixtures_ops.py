"""Real targets for ops steps, reusable by any runbook test: a database to query, a files root, script workers.

- ``app_db``: a scratch database named by the connection ``app`` (``PLAYBOOK_DB_APP``) loaded from
  ``tests/ops/app.sql`` (recent errors, a deploy ledger, accounts, orders, daily samples);
- ``files_root``: a temporary folder as ``PLAYBOOK_FILES_ROOT``;
- ``ops_workers``: a business worker and a script worker (``--scripts``) on fresh queues, and a client;
- ``ops_targets``: everything the library's ops runbooks act on at once (the `app` and `scratch`
  connections, a copy of ``tests/ops/files`` as the files root, the tools of ``tests/ops/bin`` on the
  script path), as the environment variables a worker reads — for the library examples and the recorder.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
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

OPS = Path(__file__).resolve().parent / "ops"
TOOLS = OPS / "bin"


async def load(dsn: str, script: str) -> None:
    """Run one of the SQL files of tests/ops on a database."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute((OPS / script).read_text())
    finally:
        await conn.close()


@pytest.fixture
async def app_db(pg_server: PgServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """The `app` connection: a database with recent errors; yields its DSN."""
    async with scratch_database(pg_server.dsn) as dsn:
        await load(dsn, "app.sql")
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


@asynccontextmanager
async def ops_targets(admin_dsn: str) -> AsyncIterator[dict[str, str]]:
    """Fresh targets for the library's ops runbooks on the server of `admin_dsn`, as worker settings.

    The tools find the venv's Python (with asyncpg) first on the script path; the allow-list hands them
    the connections and the files root, nothing else of the worker's environment.
    """
    async with scratch_database(admin_dsn) as app, scratch_database(admin_dsn) as scratch:
        await load(app, "app.sql")
        await load(scratch, "scratch.sql")
        with tempfile.TemporaryDirectory(prefix="playbook-ops-files-") as folder:
            root = Path(folder) / "files"
            shutil.copytree(OPS / "files", root)
            yield {
                "PLAYBOOK_DB_APP": app,
                "PLAYBOOK_DB_SCRATCH": scratch,
                "PLAYBOOK_FILES_ROOT": str(root),
                "PLAYBOOK_SCRIPT_PATH": os.pathsep.join(
                    [str(TOOLS), str(Path(sys.executable).parent), "/usr/bin", "/bin"]
                ),
                "PLAYBOOK_SCRIPT_ENV": "PATH,LANG,TZ,PLAYBOOK_DB_APP,PLAYBOOK_DB_SCRATCH,PLAYBOOK_FILES_ROOT",
            }
