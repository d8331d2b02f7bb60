"""Record the histories of tests/histories/messages/: malformed signals, and executions that fail before a step.

    .venv/bin/python -m tests.histories.record_messages [SCENARIO...]

`malformed-signals` waits on a person, receives every malformed signal of `tests.malformed`, then a valid
completion; `unknown-playbook` names no playbook of the catalog; `invalid-inputs` breaks every input rule.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

from temporalio.client import WorkflowFailureError

from runtime.worker import build_worker
from starter.client import PlaybookClient
from tests.histories.record import recording_stack
from tests.malformed import send_all

HERE = Path(__file__).resolve().parent / "messages"
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
    async with recording_stack() as (_, store, env), build_worker(env.client, store, task_queue="record"):
        client = PlaybookClient(env.client, task_queue="record")
        for name, scenario in SCENARIOS.items():
            if only and name not in only:
                continue
            await scenario(client, name)  # the replay test replays under the file's name
            history = await client.handle(name).fetch_history()
            (folder / f"{name}.json").write_text(history.to_json())
            print(f"{name}: recorded")


if __name__ == "__main__":
    asyncio.run(record(set(sys.argv[1:]), HERE))
