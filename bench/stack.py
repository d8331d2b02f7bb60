"""The benchmarks' stack: a throw-away Postgres and a Temporal dev server with the engine's search attributes,
and (for figures that must not share a process with the worker) a worker of its own."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import psutil
from temporalio.testing import WorkflowEnvironment

from config import DATA_CONVERTER
from model import search_attributes as sa
from store import Store
from store.pgserver import start_postgres

ROOT = Path(__file__).resolve().parent.parent


@asynccontextmanager
async def temporal_dev() -> AsyncIterator[WorkflowEnvironment]:
    """A Temporal dev server tuned as `playbook dev` tunes it, stopped on exit."""
    env = await WorkflowEnvironment.start_local(
        data_converter=DATA_CONVERTER,
        search_attributes=list(sa.ALL),
        dev_server_existing_path=shutil.which("temporal") or str(Path(sys.executable).parent / "temporal"),
        dev_server_extra_args=["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"],
    )
    async with env:
        yield env


class CpuMeter:
    """CPU seconds used so far by this process (worker and client), the Temporal dev server and Postgres: on
    two cores they share, throughput follows their sum, and the split says whose work grew."""

    def __init__(self, postmaster: psutil.Process | None) -> None:
        self._postmaster = postmaster

    def read(self) -> dict[str, float]:
        me = psutil.Process()
        used = {"worker": _seconds(me), "temporal": 0.0, "postgres": 0.0}
        for child in me.children(recursive=True):
            if child.name().startswith("temporal"):
                used["temporal"] += _seconds(child)
        if self._postmaster is not None:  # its backends, living and ended (a local server only)
            times = self._postmaster.cpu_times()
            used["postgres"] = _seconds(self._postmaster) + times.children_user + times.children_system
            used["postgres"] += sum(_seconds(p) for p in self._postmaster.children())
        return used


def _seconds(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.Error:  # ended between listing and reading
        return 0.0
    return float(times.user + times.system)


async def _postmaster(dsn: str) -> psutil.Process | None:
    conn = await asyncpg.connect(dsn)
    try:
        data = Path(await conn.fetchval("SHOW data_directory"))
    finally:
        await conn.close()
    pid_file = data / "postmaster.pid"
    return psutil.Process(int(pid_file.read_text().split()[0])) if pid_file.exists() else None


@asynccontextmanager
async def local_stack() -> AsyncIterator[tuple[Store, WorkflowEnvironment, CpuMeter]]:
    """(store, Temporal environment, their CPU meter), stopped on exit."""
    with start_postgres() as pg:
        store = await Store.open(pg.dsn, auto_register_orgs=True, max_size=20)
        try:
            meter = CpuMeter(await _postmaster(pg.dsn))
            async with temporal_dev() as env:
                yield store, env, meter
        finally:
            await store.close()


@asynccontextmanager
async def worker_process(*, dsn: str, temporal_address: str, task_queue: str,
                         env: Mapping[str, str] = {}) -> AsyncIterator[None]:  # fmt: skip
    """`python worker.py` in a process of its own, ready on exit from `async with`; stopped (SIGTERM) after.

    Its library folder is empty: the benchmark publishes what it runs."""
    with tempfile.TemporaryDirectory(prefix="bench-lib-") as library:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "worker.py"), cwd=ROOT,
            env={**os.environ, **env, "DATABASE_URL": dsn, "TEMPORAL_ADDRESS": temporal_address,
                 "PLAYBOOK_TASK_QUEUE": task_queue, "PLAYBOOKS_DIR": library, "PLAYBOOK_AUTO_REGISTER_ORGS": "1"},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        assert proc.stdout is not None
        seen: list[str] = []
        while b"worker on task queue" not in (line := await proc.stdout.readline()):
            if not line:
                raise RuntimeError("the worker exited before it was ready:\n" + "".join(seen))
            seen.append(line.decode(errors="replace"))
        # keep reading what it logs, so a full pipe never blocks it
        drain = asyncio.create_task(proc.stdout.read())
        try:
            yield
        finally:
            proc.terminate()
            await proc.wait()
            await drain
