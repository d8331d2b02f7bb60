"""Shared fixtures: a real Postgres (tests.fixtures_pg) and a real Temporal (tests.fixtures_temporal)."""

from pathlib import Path
from typing import Any

import pytest

from activities.catalog import sync_catalog
from activities.plugins import load_step_types

load_step_types()  # the built-in activity types (script, database, file …) and installed plugins, as the CLI does
pytest_plugins = ["tests.fixtures_pg", "tests.fixtures_temporal", "tests.fixtures_ops", "tests.inbox_browser"]

LIBRARY = Path(__file__).resolve().parent.parent / "playbooks"


@pytest.fixture
async def catalog(store: Any) -> Any:
    """The store with the playbook library published (idempotent: unchanged definitions write nothing)."""
    await sync_catalog(store, LIBRARY)
    return store
