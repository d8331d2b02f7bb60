"""The benchmarks' stack: a throw-away Postgres and a Temporal dev server with the engine's search attributes."""

from __future__ import annotations

import shutil
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from config import DATA_CONVERTER
from model import search_attributes as sa
from store import Store
from store.pgserver import start_postgres


@asynccontextmanager
async def local_stack() -> AsyncIterator[tuple[Store, WorkflowEnvironment]]:
    """(store, Temporal environment), both stopped on exit; the dev server tuned as `playbook dev` tunes it."""
    with start_postgres() as pg:
        store = await Store.open(pg.dsn, auto_register_orgs=True, max_size=20)
        try:
            env = await WorkflowEnvironment.start_local(
                data_converter=DATA_CONVERTER,
                search_attributes=list(sa.ALL),
                dev_server_existing_path=shutil.which("temporal") or str(Path(sys.executable).parent / "temporal"),
                dev_server_extra_args=["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"],
            )
            async with env:
                yield store, env
        finally:
            await store.close()
