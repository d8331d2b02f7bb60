"""Record the histories the replay test replays: one per library playbook example (first example).

Run after a change to the interpreter that is *meant* to change command order (guarded by
`workflow.patched`), never to paper over a non-deterministic change, or with ids for new playbooks only:
    .venv/bin/python -m tests.histories.record [PLAYBOOK_ID...]
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.catalog import sync_catalog
from model import load_library
from model import search_attributes as sa
from runtime.worker import build_worker
from starter.client import PlaybookClient
from starter.examples import run_example
from store import Store, migrate
from store.pgserver import start_postgres

HERE = Path(__file__).resolve().parent
LIBRARY = HERE.parent.parent / "playbooks"


async def record(only: set[str]) -> None:
    with start_postgres(Path(tempfile.mkdtemp(prefix="pbrec-"))) as pg:
        await migrate(pg.dsn)
        store = await Store.open(pg.dsn, auto_register_orgs=True)
        await sync_catalog(store, LIBRARY)
        env = await WorkflowEnvironment.start_local(
            data_converter=pydantic_data_converter,
            search_attributes=list(sa.ALL),
            dev_server_existing_path=shutil.which("temporal")
            or str(Path(sys.executable).parent / "temporal"),
        )
        async with env, build_worker(env.client, store, task_queue="record"):
            client = PlaybookClient(env.client, task_queue="record")
            for playbook in load_library([LIBRARY]).playbooks.values():
                if only and playbook.id not in only:
                    continue
                for example in playbook.examples[:1]:
                    outcome = await run_example(client, playbook, example, organization="org_recorded")
                    history = await client.handle(outcome.execution_id).fetch_history()
                    (HERE / f"{playbook.id}.json").write_text(history.to_json())
                    print(f"{playbook.id}: {'ok' if outcome.passed else outcome.differences}")
        await store.close()


if __name__ == "__main__":
    asyncio.run(record(set(sys.argv[1:])))
