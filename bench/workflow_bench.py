"""Interpreted playbook vs a hand-written workflow doing the same activities, in one run.

    .venv/bin/python -m bench.workflow_bench [--executions 100] [--steps 10]

Both run on the same dev server, worker and Postgres: the hand-written workflow calls the same
`prepare_execution`, N × `entity` and `update_execution` activities with the same options. Prints
executions/s, steps/s, the throughput ratio, history events per step and the worker's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from bench.handwritten import HandWritten
from model import search_attributes as sa
from model.execution import ExecutionInput
from runtime.worker import build_worker
from starter.client import PlaybookClient
from store import Store, migrate
from store.pgserver import start_postgres


def playbook(steps: int) -> dict[str, Any]:
    return {
        "id": "bench.entities.v1",
        "name": "Benchmark",
        "version": 1,
        "module": "ops",
        "smart_code": "HERA.OPS.BENCH.RUN.v1",
        "steps": [
            {
                "id": f"s{i}",
                "type": "entity",
                "smart_code": "HERA.OPS.BENCH.ENT.v1",
                "with": {
                    "entity_type": "bench",
                    "entity_name": f"item {i}",
                    "entity_code": f"{{{{ execution.id }}}}-{i}",
                },
            }
            for i in range(steps)
        ],
    }


async def run_batch(
    client: PlaybookClient, workflow_name: str, n: int, definition: dict[str, Any]
) -> tuple[float, int]:
    """Start n executions at once, wait for all; (seconds, history events of one execution)."""
    started = time.perf_counter()
    handles = []
    for _ in range(n):
        arg = ExecutionInput(playbook_id=definition["id"], organization_id="org_bench", playbook=definition)
        handles.append(
            await client.client.start_workflow(
                workflow_name,
                arg,
                id=f"bench-{workflow_name}-{uuid.uuid4().hex[:10]}",
                task_queue=client.task_queue,
            )
        )
    await asyncio.gather(*(h.result() for h in handles))
    elapsed = time.perf_counter() - started
    events = len([e async for e in handles[0].fetch_history_events()])
    return elapsed, events


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--executions", type=int, default=100)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5, help="paired rounds after a warm-up; the order alternates")
    args = parser.parse_args()
    definition = playbook(args.steps)
    names = ["PlaybookWorkflow", "HandWritten"]
    with start_postgres() as pg:
        await migrate(pg.dsn)
        store = await Store.open(pg.dsn, auto_register_orgs=True, max_size=20)
        env = await WorkflowEnvironment.start_local(
            data_converter=pydantic_data_converter,
            search_attributes=list(sa.ALL),
            dev_server_existing_path=shutil.which("temporal") or str(Path(sys.executable).parent / "temporal"),
            dev_server_extra_args=["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"],
        )
        async with env, build_worker(env.client, store, task_queue="bench", extra_workflows=[HandWritten]):
            client = PlaybookClient(env.client, task_queue="bench")
            for name in names:  # warm-up: sandbox caches, connection pools, the server's task queues
                await run_batch(client, name, args.executions, definition)
            results: dict[str, list[tuple[float, int]]] = {name: [] for name in names}
            for round_no in range(args.rounds):
                # a shared 2-core machine drifts: pair the two in each round, in alternating order
                for name in names if round_no % 2 == 0 else reversed(names):
                    results[name].append(await run_batch(client, name, args.executions, definition))
        await store.close()
    print(f"{args.executions} concurrent executions x {args.steps} entity steps, {args.rounds} paired rounds")
    for name, runs in results.items():
        rate = statistics.median(args.executions / seconds for seconds, _ in runs)
        events = runs[0][1]
        print(
            f"  {name:<17} {rate:6.1f} executions/s  {rate * args.steps:7.1f} steps/s (median)  "
            f"{events} history events ({events / args.steps:.2f} per step)"
        )
    ratios = sorted(b[0] / a[0] for a, b in zip(results["PlaybookWorkflow"], results["HandWritten"], strict=True))
    print(
        f"  throughput ratio interpreted / hand-written: {statistics.median(ratios):.2f}x "
        f"(per round {ratios[0]:.2f}..{ratios[-1]:.2f})"
    )
    extra = (results["PlaybookWorkflow"][0][1] - results["HandWritten"][0][1]) / args.steps
    print(f"  extra history events per step: {extra:.2f}")
    print(f"  worker process peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    asyncio.run(main())
