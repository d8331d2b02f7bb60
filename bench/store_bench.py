"""Micro-benchmark of the store's step writes: prints writes/s, no assertions.

Each write is a full step write (execution row lock, duplicate check, business rows, audit line, one
commit): entity upserts with 3 dynamic fields, and transactions with 10 lines, each at concurrency 1
and 16 (one execution per concurrent writer, as with parallel workflows).

    .venv/bin/python bench/store_bench.py [--writes 400] [--fast]

Starts a throw-away Postgres (durable settings unless --fast) unless DATABASE_URL is set; either way
the writes go to a scratch database that is dropped afterwards (DATABASE_URL's user needs CREATEDB).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import asyncpg

from store import (
    EntityWrite,
    StepAudit,
    StepKey,
    Store,
    TransactionWrite,
    start_postgres,
)

SMART_CODE = "HERA.BENCH.STORE.WRITE.v1"
Write = Callable[[Store, UUID, str, int], Awaitable[object]]


async def entity_upsert(store: Store, org: UUID, execution: str, n: int) -> object:
    return await store.write_entity(
        org, StepKey(execution_id=execution, step_id="upsert", iteration=str(n)),
        EntityWrite(entity_type="customer", entity_name=f"Customer {n}", entity_code=f"{execution}-{n}",
                    smart_code=SMART_CODE,
                    fields={"email": f"c{n}@example.com", "credit_limit": n, "vip": n % 2 == 0}),
        StepAudit(step_type="entity"),
    )


async def transaction_10_lines(store: Store, org: UUID, execution: str, n: int) -> object:
    return await store.write_transaction(
        org, StepKey(execution_id=execution, step_id="sale", iteration=str(n)),
        TransactionWrite(transaction_type="sale", transaction_code=f"INV-{n}", currency="EUR",
                         smart_code=SMART_CODE,
                         lines=[{"quantity": i + 1, "unit_price": "9.99"} for i in range(10)]),
        StepAudit(step_type="transaction"),
    )


async def measure(store: Store, org: UUID, write: Write, *, writes: int, concurrency: int) -> float:
    """Writes per second of `writes` calls spread over `concurrency` writers."""

    async def writer(count: int) -> None:
        execution = f"bench/{uuid.uuid4().hex}"
        await store.upsert_execution(org, execution_id=execution, playbook_id="bench.v1",
                                     smart_code=SMART_CODE, status="running")
        for n in range(count):
            await write(store, org, execution, n)

    per_writer = max(1, writes // concurrency)
    await writer(min(20, per_writer))  # warm-up: pool connections, prepared statements
    started = time.perf_counter()
    await asyncio.gather(*(writer(per_writer) for _ in range(concurrency)))
    return per_writer * concurrency / (time.perf_counter() - started)


async def run(dsn: str, writes: int) -> None:
    admin = await asyncpg.connect(dsn)
    name = f"playbook_bench_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        scratch = urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))
        async with await Store.open(scratch, auto_register_orgs=True, max_size=16) as store:
            org = await store.resolve_organization("org_bench")
            for label, write in (("entity upserts (3 fields)", entity_upsert),
                                 ("transactions (10 lines)", transaction_10_lines)):
                for concurrency in (1, 16):
                    rate = await measure(store, org, write, writes=writes, concurrency=concurrency)
                    print(f"{label:<28} concurrency {concurrency:>2}: {rate:8.0f} writes/s", flush=True)
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=400, help="writes per measurement (default 400)")
    parser.add_argument("--fast", action="store_true", help="own server without fsync (not durable)")
    args = parser.parse_args()
    with start_postgres(durable=not args.fast) as server:
        where = "DATABASE_URL" if os.environ.get("DATABASE_URL") else \
            f"embedded Postgres, fsync {'off' if args.fast else 'on'}"
        print(f"store bench: {args.writes} writes per line, {where}, {os.cpu_count()} CPUs", flush=True)
        asyncio.run(run(server.dsn, args.writes))


if __name__ == "__main__":
    main()
