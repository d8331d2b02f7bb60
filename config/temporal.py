"""The one place a Temporal client is built: the worker, the CLI, the services' client and the gateway."""

from __future__ import annotations

import dataclasses

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime

from .codec import EncryptionCodec, keys_from_env
from .settings import Settings

DATA_CONVERTER = pydantic_data_converter
"""Pydantic models as plain JSON payloads; clients and workers must share it."""


def data_converter() -> DataConverter:
    """The shared converter, with the encryption codec when PLAYBOOK_ENCRYPTION_KEYS (or its file) is set."""
    keys = keys_from_env()
    return dataclasses.replace(DATA_CONVERTER, payload_codec=EncryptionCodec(keys)) if keys else DATA_CONVERTER


async def connect(settings: Settings, *, runtime: Runtime | None = None) -> Client:
    """A client of the configured Temporal; `runtime` carries metrics (default: the SDK's, without)."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(),
        runtime=runtime,
    )
