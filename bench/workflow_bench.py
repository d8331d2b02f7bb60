"""What the interpreter costs, in one run: throughput against two hand-written baselines, history events,
and the latency people feel.

    .venv/bin/python -m bench.workflow_bench [--executions 30] [--steps 10] [--rounds 9] [--latency 40]

All on one dev server, one worker and one Postgres, at the same concurrency, in interleaved rounds:
- **PlaybookWorkflow** runs a playbook of N `entity` steps;
- **HandWritten** (same work) calls the project's activities — prepare, N × `entity`, update — as a team would;
- **BareHandWritten** calls one bare upsert statement per step: no audit trail, no exactly-once record.
Prints medians with the spread per round, history events, the extra events per execution, then the latency
from a `complete_step` signal (and a `submit_step` update) to the next step's activity starting, and from
start to the first step running (p50/p99, from the history's own event times): on the quiet stack first, and
the signal's again right after the throughput rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import time
import uuid
from datetime import datetime
from typing import Any, NamedTuple

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.bare import bare_upsert_activity
from bench.handwritten import BareHandWritten, HandWritten
from bench.stack import CpuMeter, local_stack
from model.execution import ExecutionInput
from runtime.worker import build_worker

NAMES = ("PlaybookWorkflow", "HandWritten", "BareHandWritten")
QUEUE = "bench"


def playbook(steps: int) -> dict[str, Any]:
    return {
        "id": "bench.entities.v1", "name": "Benchmark", "version": 1, "module": "ops",
        "smart_code": "HERA.OPS.BENCH.RUN.v1",
        "steps": [
            {"id": f"s{i}", "type": "entity", "smart_code": "HERA.OPS.BENCH.ENT.v1",
             "with": {"entity_type": "bench", "entity_name": f"item {i}", "entity_code": f"{{{{ execution.id }}}}-{i}"}}
            for i in range(steps)
        ],
    }  # fmt: skip


PEOPLE = {
    "id": "bench.people.v1", "name": "Latency", "version": 1, "module": "ops", "smart_code": "HERA.OPS.BENCH.RUN.v1",
    "steps": [
        {"id": "decide", "type": "human", "with": {"instructions": "Decide.", "form": {"ok": {"type": "boolean"}}}},
        {"id": "record", "type": "entity", "smart_code": "HERA.OPS.BENCH.ENT.v1",
         "with": {"entity_type": "bench", "entity_name": "after", "entity_code": "{{ execution.id }}"}},
    ],
}  # fmt: skip


def arg(definition: dict[str, Any]) -> ExecutionInput:
    return ExecutionInput(playbook_id=definition["id"], organization_id="org_bench", playbook=definition)


class Batch(NamedTuple):
    seconds: float
    events: int
    """History events of one of the batch's executions."""
    cpu: dict[str, float]
    """CPU seconds each process used during the batch."""


async def run_batch(client: Client, name: str, n: int, definition: dict[str, Any], meter: CpuMeter) -> Batch:
    """Start n executions at once and wait for all."""
    before = meter.read()
    started = time.perf_counter()
    handles = [
        await client.start_workflow(name, arg(definition), id=f"bench-{name}-{uuid.uuid4().hex[:10]}", task_queue=QUEUE)
        for _ in range(n)
    ]
    await asyncio.gather(*(h.result() for h in handles))
    elapsed = time.perf_counter() - started
    cpu = {k: v - before[k] for k, v in meter.read().items()}
    return Batch(elapsed, len([e async for e in handles[0].fetch_history_events()]), cpu)


async def event_times(client: Client, workflow_id: str) -> list[tuple[str, datetime]]:
    return [
        (EventType.Name(e.event_type).removeprefix("EVENT_TYPE_"), e.event_time.ToDatetime())
        async for e in client.get_workflow_handle(workflow_id).fetch_history_events()
    ]


async def latencies(client: Client, n: int, *, by_update: bool) -> tuple[list[float], list[float]]:
    """(start → first step running, completion sent → next step running), in ms, for n executions one by one."""
    to_first, to_next = [], []
    for _ in range(n):
        wid = f"bench-latency-{uuid.uuid4().hex[:10]}"
        handle = await client.start_workflow("PlaybookWorkflow", arg(PEOPLE), id=wid, task_queue=QUEUE)
        while "decide" not in (((await handle.query("status")).get("waiting_for") and "decide") or ""):
            status = await handle.query("status")
            if status["waiting_for"]:
                break
            await asyncio.sleep(0.005)
        completion = {"step_id": "decide", "data": {"ok": True}}
        sent = datetime.now().astimezone()
        if by_update:
            await handle.execute_update("submit_step", completion)
        else:
            await handle.signal("complete_step", completion)
        await handle.result()
        events = await event_times(client, wid)
        begun = events[0][1]
        # the first step is the human one: it "runs" when the workflow task that made it wait completes
        waiting_at = next(t for kind, t in events if kind == "WORKFLOW_TASK_COMPLETED")
        next_start = [t for kind, t in events if kind == "ACTIVITY_TASK_STARTED"][-1]
        to_first.append((waiting_at - begun).total_seconds() * 1000)
        to_next.append((next_start.timestamp() - sent.timestamp()) * 1000)
    return to_first, to_next


def show(label: str, values: list[float]) -> None:
    print(f"  {label + ':':<40} {pct(values, 0.5):6.1f} / {pct(values, 0.99):6.1f}")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--executions", type=int, default=30, help="concurrent executions per batch")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds after a warm-up")
    parser.add_argument("--latency", type=int, default=40, help="executions per latency measurement")
    args = parser.parse_args()
    definition = playbook(args.steps)
    async with local_stack() as (store, env, meter):
        worker = build_worker(env.client, store, task_queue=QUEUE, extra_workflows=[HandWritten, BareHandWritten],
                              extra_activities=[bare_upsert_activity(store)])  # fmt: skip
        async with worker:
            await latencies(env.client, 5, by_update=False)  # warm-up: the definition cache, the first connections
            first_sig, next_sig = await latencies(env.client, args.latency, by_update=False)
            _, next_upd = await latencies(env.client, args.latency, by_update=True)
            for name in NAMES:  # warm-up: sandbox caches, connection pools, the server's task queues
                await run_batch(env.client, name, args.executions, definition, meter)
            results: dict[str, list[Batch]] = {name: [] for name in NAMES}
            for round_no in range(args.rounds):
                order = NAMES[round_no % 3 :] + NAMES[: round_no % 3]  # a shared machine drifts: rotate the order
                for name in order:
                    results[name].append(await run_batch(env.client, name, args.executions, definition, meter))
            burst_first, burst_sig = await latencies(env.client, args.latency, by_update=False)
    print(f"{args.executions} concurrent executions x {args.steps} entity steps, {args.rounds} interleaved rounds")
    for name, runs in results.items():
        rates = [args.executions / run.seconds for run in runs]
        events = runs[0].events
        print(f"  {name:<17} {statistics.median(rates):6.1f} executions/s (rounds {min(rates):.1f}..{max(rates):.1f})"
              f"  {events} history events ({events / args.steps:.2f} per step)")  # fmt: skip
    print("CPU per execution (ms, all rounds; on shared cores throughput follows the sum)")
    for name, runs in results.items():
        used = {k: 1000 * sum(run.cpu[k] for run in runs) / (len(runs) * args.executions) for k in runs[0].cpu}
        split = "  ".join(f"{k} {v:5.1f}" for k, v in used.items())
        print(f"  {name:<17} {split}  sum {sum(used.values()):5.1f}")
    interpreted = results["PlaybookWorkflow"]
    for baseline, label in (("HandWritten", "same work"), ("BareHandWritten", "bare")):
        ratios = sorted(b.seconds / a.seconds for a, b in zip(interpreted, results[baseline], strict=True))
        extra = interpreted[0].events - results[baseline][0].events
        print(f"  ratio vs {label:<9} hand-written: {statistics.median(ratios):.2f}x "
              f"(rounds {ratios[0]:.2f}..{ratios[-1]:.2f}); extra history events per execution: {extra}")  # fmt: skip
    print(f"latency over {args.latency} executions, one at a time, on the quiet stack (ms, p50 / p99)")
    show("start -> first step running", first_sig)
    show("complete_step signal -> next activity", next_sig)
    show("submit_step update -> next activity", next_upd)
    print("the same right after the rounds (the dev server is slower to hand out workflow tasks for a while)")
    show("start -> first step running", burst_first)
    show("complete_step signal -> next activity", burst_sig)
    print(f"  worker process peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    asyncio.run(main())
