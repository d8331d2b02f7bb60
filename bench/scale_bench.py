"""Many executions waiting on people at once, and what a `status` query costs as histories grow.

    .venv/bin/python -m bench.scale_bench [--waiting 10000] [--cache 1000] [--queries 200]

Phase 1: `--waiting` executions each wait on a human step, served by one worker whose sticky cache holds
`--cache` of them. Prints the worker process's RSS, and `status` query p50/p99 on cached executions (the most
recent ones) and on evicted ones (the oldest: each query replays the history first).
Phase 2: executions that completed 10, 100 and 1,000 steps (a foreach of `set` steps) before waiting; `status`
p50/p99 on each, cached (the same execution again) and evicted (a worker with a one-entry cache, alternating).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import Client

from bench.stack import local_stack
from model.execution import ExecutionInput
from runtime.worker import build_worker

QUEUE = "scale"


def waiting_playbook(loop_steps: int = 0) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    if loop_steps:
        steps.append({"id": "warm", "type": "foreach", "with": {
            "items": list(range(loop_steps)), "concurrency": 50,
            "steps": [{"id": "tick", "type": "set", "with": {"vars": {"last": "{{ item }}"}}}]}})  # fmt: skip
    steps.append({"id": "decide", "type": "human", "timeout": "30d", "with": {
        "assignee_role": "clerk", "instructions": "Decide.", "form": {"ok": {"type": "boolean", "required": True}}}})
    return {"id": f"scale.wait{loop_steps}.v1", "name": "Scale", "version": 1, "module": "ops",
            "smart_code": "HERA.OPS.BENCH.RUN.v1", "steps": steps}  # fmt: skip


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def start_waiting(client: Client, n: int, definition: dict[str, Any]) -> list[str]:
    ids = [f"scale-{uuid.uuid4().hex[:12]}" for _ in range(n)]
    gate = asyncio.Semaphore(64)

    async def one(wid: str) -> None:
        async with gate:
            arg = ExecutionInput(playbook_id=definition["id"], organization_id="org_scale", playbook=definition)
            await client.start_workflow("PlaybookWorkflow", arg, id=wid, task_queue=QUEUE)

    await asyncio.gather(*(one(w) for w in ids))
    return ids


async def until_waiting(client: Client, ids: list[str], playbook_id: str) -> None:
    """Until every one of them is waiting (the WaitingFor search attribute, as operators would look)."""
    query = f"PlaybookId = '{playbook_id}' AND WaitingFor = 'decide' AND ExecutionStatus = 'Running'"
    while True:
        count = (await client.count_workflows(query)).count
        if count >= len(ids):
            return
        await asyncio.sleep(1)


async def query_ms(client: Client, ids: list[str]) -> list[float]:
    times = []
    for wid in ids:
        began = time.perf_counter()
        await client.get_workflow_handle(wid).query("status")
        times.append((time.perf_counter() - began) * 1000)
    return times


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return f"p50 {statistics.median(ordered):7.1f} ms  p99 {p99:7.1f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--waiting", type=int, default=10_000)
    parser.add_argument("--cache", type=int, default=1000, help="the worker's max_cached_workflows")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    async with local_stack() as (store, env, _):
        client = env.client
        base = rss_mib()
        async with build_worker(client, store, task_queue=QUEUE, max_cached_workflows=args.cache):
            began = time.perf_counter()
            ids = await start_waiting(client, args.waiting, waiting_playbook())
            await until_waiting(client, ids, "scale.wait0.v1")
            took = time.perf_counter() - began
            print(f"{args.waiting} executions waiting on a person after {took:.0f} s "
                  f"({args.waiting / took:.0f}/s); sticky cache {args.cache}")  # fmt: skip
            print(f"  worker process RSS: {rss_mib():.0f} MiB (before the worker: {base:.0f} MiB)")
            recent = ids[-min(args.queries, args.cache) :]
            await query_ms(client, recent)  # make sure they are the cached ones
            print(f"  status, cached:  {summary(await query_ms(client, recent))}")
            oldest = ids[: args.queries]
            print(f"  status, evicted: {summary(await query_ms(client, oldest))}")
            print(f"  worker process RSS after the queries: {rss_mib():.0f} MiB")
        print("status cost by history length (completed steps before the wait)")
        for loop_steps in (10, 100, 1000):
            definition = waiting_playbook(loop_steps)
            async with build_worker(client, store, task_queue=QUEUE):
                pair = await start_waiting(client, 2, definition)
                await until_waiting(client, pair, definition["id"])
                events = len([e async for e in client.get_workflow_handle(pair[0]).fetch_history_events()])
                cached = await query_ms(client, [pair[0]] * 30)
            async with build_worker(client, store, task_queue=QUEUE, max_cached_workflows=1):
                evicted = await query_ms(client, pair * 15)
            print(f"  {loop_steps:>5} steps, {events:>5} events: "
                  f"cached {summary(cached)} | evicted {summary(evicted)}")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
