"""The gateway's figures: `GET /api/v1/tasks` with N waiting executions, and a start's overhead over the client.

    .venv/bin/python -m bench.gateway_bench [--waiting 1000] [--calls 60] [--starts 100]

A dev server, an embedded Postgres and a worker in a process of its own (`python worker.py`), payloads
encrypted as in production (PLAYBOOK_ENCRYPTION_KEYS). The app is called in-process (httpx ASGI
transport), so the figures are the gateway's own work plus Temporal's, without a network hop.

Inbox: where a visibility scan's time goes (the list, then decoding the memos), the first call (which waits
for its organization's snapshot), then `--calls` calls 50 ms apart — long enough for background refreshes
of the snapshot to run among them, as they do under an inbox's steady polling.
Start: `POST /api/v1/executions` against `PlaybookClient.start`, rounds interleaved (bare, API; then API,
bare), same body; the overhead is the difference of the two medians.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from typing import Any

import httpx

from bench.stack import temporal_dev, worker_process
from config import Settings, connect
from config.codec import KEYS_ENV, new_key_line
from gateway.app import create_app
from gateway.settings import GatewaySettings
from starter.client import PlaybookClient
from starter.tokens import mint
from store import Store
from store.pgserver import start_postgres

SECRET = "bench-secret-of-at-least-thirty-two-bytes"
ORG = "org_bench"
QUEUE = "bench"
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


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--waiting", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=60)
    parser.add_argument("--starts", type=int, default=100)
    args = parser.parse_args()
    os.environ.setdefault(KEYS_ENV, new_key_line("bench"))  # this process and the worker's
    with start_postgres() as pg:
        store = await Store.open(pg.dsn, auto_register_orgs=True, max_size=20)
        await store.publish_definition(None, playbook_id=PLAYBOOK["id"], definition=PLAYBOOK,
                                       smart_code=PLAYBOOK["smart_code"])  # fmt: skip
        async with temporal_dev() as env:
            address = env.client.service_client.config.target_host
            async with worker_process(dsn=pg.dsn, temporal_address=address, task_queue=QUEUE):
                temporal = await connect(Settings(temporal_address=address))
                client = PlaybookClient(temporal, task_queue=QUEUE)
                gateway = GatewaySettings(jwt_secret=SECRET, rate_limit="1000000/minute")
                app = create_app(Settings.from_env(), gateway, client=TimedClient(temporal, task_queue=QUEUE),
                                 store=store)  # fmt: skip
                bearer = mint(SECRET, sub="bench", orgs=[ORG], roles=["reviewer"], ttl_seconds=3600)
                headers = {"Authorization": f"Bearer {bearer}"}
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
        ))  # fmt: skip
    query = f"OrganizationId = '{ORG}' AND WaitingFor = 'review' AND ExecutionStatus = 'Running'"
    while (await client.client.count_workflows(query)).count < n:
        await asyncio.sleep(0.5)
    print(f"{n} executions waiting for a person after {time.perf_counter() - began:.1f}s")
    listing, decoding = [], []
    for _ in range(3):  # where a scan's time goes: the visibility list itself, then decoding each memo
        started = time.perf_counter()
        found = [e async for e in client.client.list_workflows(query, page_size=1000)]
        listing.append(time.perf_counter() - started)
        started = time.perf_counter()
        for execution in found:
            await execution.memo()
        decoding.append(time.perf_counter() - started)
    print(f"  one scan: visibility list {ms(statistics.median(listing))}, "
          f"memo decoding {ms(statistics.median(decoding))} (median of 3)")
    seconds = []
    for call in range(calls + 1):
        started = time.perf_counter()
        response = await http.get("/api/v1/tasks", params={"limit": 50}, headers=headers)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.text
        if call == 0:
            print(f"  first call (waits for the organization's snapshot): {ms(elapsed)}")
        else:
            seconds.append(elapsed)
        await asyncio.sleep(0.05)
    shown = len(response.json()["items"])
    print(f"GET /api/v1/tasks ({n} waiting, pages of {shown}): p50 {ms(percentile(seconds, 0.5))}, "
          f"p99 {ms(percentile(seconds, 0.99))} over {calls} calls 50 ms apart")


class TimedClient(PlaybookClient):
    """The gateway's client, timing its own starts: what an API start spends outside them is the gateway's."""

    inside: list[float] = []

    async def start(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await super().start(*args, **kwargs)
        finally:
            self.inside.append(time.perf_counter() - started)


async def _starts(client: PlaybookClient, http: httpx.AsyncClient, headers: dict[str, str], n: int) -> None:
    bare, api = [], []
    TimedClient.inside.clear()
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
    b, a = statistics.median(bare), statistics.median(api)
    own = statistics.median(total - inside for total, inside in zip(api, TimedClient.inside, strict=True))
    print(f"start: bare client p50 {ms(b)}, through the API p50 {ms(a)} (p99 {ms(percentile(api, 0.99))}): "
          f"overhead {ms(a - b)} p50 over {n} starts each (half with an Idempotency-Key); "
          f"the gateway's own time per API start (outside the client's start) p50 {ms(own)}")


if __name__ == "__main__":
    asyncio.run(main())
