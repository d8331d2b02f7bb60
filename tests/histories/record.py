"""Record the histories the replay test replays: one per library playbook example (first example).

Run after a change to the interpreter that is *meant* to change command order (guarded by
`workflow.patched`), never to paper over a non-deterministic change, or with ids for new playbooks only:
    .venv/bin/python -m tests.histories.record [PLAYBOOK_ID...]
Ops runbooks run against the targets the library examples use (tests.fixtures_ops.ops_targets), with a
script worker beside the business one.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.catalog import sync_catalog
from activities.plugins import load_step_types
from model import load_library
from model import search_attributes as sa
from runtime.worker import build_script_worker, build_worker
from starter.client import PlaybookClient
from starter.examples import run_example
from store import Store, migrate
from store.pgserver import start_postgres
from tests.fixtures_ops import ops_targets

HERE = Path(__file__).resolve().parent
LIBRARY = HERE.parent.parent / "playbooks"


@asynccontextmanager
async def recording_stack() -> AsyncIterator[tuple[str, Store, WorkflowEnvironment]]:
    """(Postgres DSN, store with the library's catalog, Temporal dev server) for recording histories."""
    with start_postgres(Path(tempfile.mkdtemp(prefix="pbrec-"))) as pg:
        await migrate(pg.dsn)
        store = await Store.open(pg.dsn, auto_register_orgs=True)
        try:
            await sync_catalog(store, LIBRARY)
            env = await WorkflowEnvironment.start_local(
                data_converter=pydantic_data_converter,
                search_attributes=list(sa.ALL),
                dev_server_existing_path=shutil.which("temporal") or str(Path(sys.executable).parent / "temporal"),
            )
            async with env:
                yield pg.dsn, store, env
        finally:
            await store.close()


async def record(only: set[str]) -> None:
    load_step_types()  # script, database, file and plugins: as the CLI and workers do before reading the library
    async with (
        recording_stack() as (dsn, store, env), ops_targets(dsn) as targets,
        build_worker(env.client, store, task_queue="record", script_task_queue="record-scripts"),
        build_script_worker(env.client, store, task_queue="record-scripts"),
    ):
        os.environ.update(targets)  # the in-process activities read their settings at run time
        client = PlaybookClient(env.client, task_queue="record")
        for playbook in load_library([LIBRARY]).playbooks.values():
            if only and playbook.id not in only:
                continue
            for example in playbook.examples[:1]:
                # the replay test replays under the file's name: child workflow ids derive from it
                outcome = await run_example(
                    client, playbook, example, organization="org_recorded", workflow_id=playbook.id
                )
                history = await client.handle(outcome.execution_id).fetch_history()
                (HERE / f"{playbook.id}.json").write_text(history.to_json())
                print(f"{playbook.id}: {'ok' if outcome.passed else outcome.differences}")


if __name__ == "__main__":
    asyncio.run(record(set(sys.argv[1:])))
