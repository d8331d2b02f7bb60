"""Record the histories of tests/histories/messages/: malformed signals, and executions that fail before a step.

    .venv/bin/python -m tests.histories.record_messages [SCENARIO...]

`malformed-signals` waits on a person, receives every malformed signal of `tests.malformed`, then a valid
completion; `unknown-playbook` names no playbook of the catalog; `invalid-inputs` breaks every input rule.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import tempfile
from pathlib import Path

from temporalio.client import WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.catalog import sync_catalog
from model import search_attributes as sa
from runtime.worker import build_worker
from starter.client import PlaybookClient
from store import Store, migrate
from store.pgserver import start_postgres
from tests.malformed import send_all

HERE = Path(__file__).resolve().parent / "messages"
LIBRARY = HERE.parents[2] / "playbooks"
GOOD = {"customer_name": "Acme Corp", "email": "ops@acme.example"}


async def malformed_signals(client: PlaybookClient, workflow_id: str) -> None:
    handle = await client.start("customer.create.v1", organization="org_recorded", data=GOOD, workflow_id=workflow_id)
    while not (await client.status(workflow_id)).waiting_for:
        await asyncio.sleep(0.05)
    await send_all(handle)
    await client.signal_complete(workflow_id, "set_credit_terms", role="credit_controller",
                                 data={"credit_limit": 1000, "payment_terms": "NET30"})  # fmt: skip
    await handle.result()


async def unknown_playbook(client: PlaybookClient, workflow_id: str) -> None:
    handle = await client.start("customer.craete.v1", organization="org_recorded", data=GOOD, workflow_id=workflow_id)
    with contextlib.suppress(WorkflowFailureError):
        await handle.result()


async def invalid_inputs(client: PlaybookClient, workflow_id: str) -> None:
    handle = await client.start("customer.create.v1", organization="org_recorded", data={"email": "nope"},
                                workflow_id=workflow_id)  # fmt: skip
    with contextlib.suppress(WorkflowFailureError):
        await handle.result()


SCENARIOS = {"malformed-signals": malformed_signals, "unknown-playbook": unknown_playbook,
             "invalid-inputs": invalid_inputs}  # fmt: skip


async def record(only: set[str], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with start_postgres(Path(tempfile.mkdtemp(prefix="pbrec-"))) as pg:
        await migrate(pg.dsn)
        store = await Store.open(pg.dsn, auto_register_orgs=True)
        await sync_catalog(store, LIBRARY)
        env = await WorkflowEnvironment.start_local(
            data_converter=pydantic_data_converter,
            search_attributes=list(sa.ALL),
            dev_server_existing_path=shutil.which("temporal") or str(Path(sys.executable).parent / "temporal"),
        )
        async with env, build_worker(env.client, store, task_queue="record"):
            client = PlaybookClient(env.client, task_queue="record")
            for name, scenario in SCENARIOS.items():
                if only and name not in only:
                    continue
                await scenario(client, name)  # the replay test replays under the file's name
                history = await client.handle(name).fetch_history()
                (folder / f"{name}.json").write_text(history.to_json())
                print(f"{name}: recorded")
        await store.close()


if __name__ == "__main__":
    asyncio.run(record(set(sys.argv[1:]), HERE))
