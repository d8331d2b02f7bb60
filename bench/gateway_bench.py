"""The gateway's figures: `GET /api/v1/tasks` with N waiting executions, and a start's overhead over the client.

    .venv/bin/python -m bench.gateway_bench [--waiting 1000] [--calls 30] [--starts 100]

One dev server, worker and embedded Postgres; the app is called in-process (httpx ASGI transport), so the
figures are the gateway's own work plus Temporal's, without a network hop. Prints p50/p99 of the inbox
and of a start through `POST /api/v1/executions` against `PlaybookClient.start` (alternating, same body).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from config import Settings
from gateway.app import create_app
from gateway.settings import GatewaySettings
from model import search_attributes as sa
from runtime.worker import build_worker
from starter.client import PlaybookClient
from starter.tokens import mint
from store import Store, migrate
from store.pgserver import start_postgres

SECRET = "bench-secret-of-at-least-thirty-two-bytes"
ORG = "org_bench"
PLAYBOOK = {
    "id": "bench.inbox.v1", "name": "Inbox benchmark", "version": 1, "module": "ops", "status": "published",
    "smart_code": "HERA.OPS.BENCH.INBOX.v1",
    "inputs": {"subject": {"type": "string", "required": True}},
    "steps": [{"id": "review", "type": "human", "timeout": "48h", "with": {
        "assignee_role": "reviewer", "instructions": "Review {{ inputs.subject }}.",
        "form": {"ok": {"type": "boolean", "required": True}, "note": {"type": "string"}}}}],
}  # fmt: skip


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--waiting", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--starts", type=int, default=100)
    args = parser.parse_args()
    with start_postgres() as pg:
        await migrate(pg.dsn)
        store = await Store.open(pg.dsn, auto_register_orgs=True, max_size=20)
        await store.publish_definition(None, playbook_id=PLAYBOOK["id"], definition=PLAYBOOK,
                                       smart_code=PLAYBOOK["smart_code"])  # fmt: skip
        env = await WorkflowEnvironment.start_local(
            data_converter=pydantic_data_converter, search_attributes=list(sa.ALL),
            dev_server_existing_path=shutil.which("temporal") or str(Path(sys.executable).parent / "temporal"),
            dev_server_extra_args=["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"],
        )  # fmt: skip
        async with env, build_worker(env.client, store, task_queue="bench"):
            client = PlaybookClient(env.client, task_queue="bench")
            app = create_app(Settings.from_env(), GatewaySettings(jwt_secret=SECRET, rate_limit="1000000/minute"),
                             client=client, store=store)  # fmt: skip
            headers = {"Authorization": "Bearer " + mint(SECRET, sub="bench", orgs=[ORG], roles=["reviewer"],
                                                         ttl_seconds=3600)}  # fmt: skip
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
                await _inbox(client, http, headers, args.waiting, args.calls)
                await _starts(client, http, headers, args.starts)
        await store.close()


async def _inbox(client: PlaybookClient, http: httpx.AsyncClient, headers: dict[str, str], n: int, calls: int) -> None:
    began = time.perf_counter()
    for batch in range(0, n, 50):
        await asyncio.gather(*(
            client.start(PLAYBOOK["id"], organization=ORG, data={"subject": f"item {i}"}, requested_by="bench")
            for i in range(batch, min(n, batch + 50))
        ))
    query = f"OrganizationId = '{ORG}' AND WaitingFor = 'review' AND ExecutionStatus = 'Running'"
    while (await client.client.count_workflows(query)).count < n:
        await asyncio.sleep(0.5)
    print(f"{n} executions waiting for a person after {time.perf_counter() - began:.1f}s")
    seconds = []
    for _ in range(calls):
        started = time.perf_counter()
        response = await http.get("/api/v1/tasks", params={"limit": 50}, headers=headers)
        seconds.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    total = len(response.json()["items"])
    listing, decoding = [], []
    for _ in range(5):  # where the time goes: the visibility list itself, then decoding each memo
        started = time.perf_counter()
        found = [e async for e in client.client.list_workflows(query, page_size=1000)]
        listing.append(time.perf_counter() - started)
        started = time.perf_counter()
        for execution in found:
            await execution.memo()
        decoding.append(time.perf_counter() - started)
    print(f"  of which: visibility list {statistics.median(listing) * 1000:.0f} ms, "
          f"memo decoding {statistics.median(decoding) * 1000:.0f} ms (median of 5)")
    print(f"GET /api/v1/tasks ({n} waiting, first page of {total}): p50 {percentile(seconds, 0.5) * 1000:.0f} ms, "
          f"p99 {percentile(seconds, 0.99) * 1000:.0f} ms over {calls} calls")  # fmt: skip


async def _starts(client: PlaybookClient, http: httpx.AsyncClient, headers: dict[str, str], n: int) -> None:
    bare, api = [], []
    body = {"playbook_id": PLAYBOOK["id"], "organization_id": ORG, "initial_data": {"subject": "x"}}
    for i in range(n):
        for kind in ("bare", "api") if i % 2 == 0 else ("api", "bare"):
            started = time.perf_counter()
            if kind == "bare":
                await client.start(PLAYBOOK["id"], organization=ORG, data={"subject": "x"}, requested_by="bench")
                bare.append(time.perf_counter() - started)
            else:
                key = {"Idempotency-Key": uuid.uuid4().hex} if i % 4 < 2 else {}
                response = await http.post("/api/v1/executions", json=body, headers={**headers, **key})
                api.append(time.perf_counter() - started)
                assert response.status_code == 201, response.text
    b, a = statistics.median(bare) * 1000, statistics.median(api) * 1000
    print(f"start: bare client p50 {b:.1f} ms, through the API p50 {a:.1f} ms (p99 {percentile(api, 0.99) * 1000:.1f}"
          f" ms): overhead {a - b:.1f} ms p50 over {n} starts each (half with an Idempotency-Key)")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
