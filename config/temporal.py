"""The one place a Temporal client is built: the worker, the CLI, the services' client and the gateway."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime

from .settings import Settings

DATA_CONVERTER = pydantic_data_converter
"""Pydantic models as plain JSON payloads; clients and workers must share it."""


async def connect(settings: Settings, *, runtime: Runtime | None = None) -> Client:
    """A client of the configured Temporal; `runtime` carries metrics (default: the SDK's, without)."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=DATA_CONVERTER,
        runtime=runtime,
    )
