"""Operators find executions by search attribute (Temporal's list API), and `playbook setup` registers them."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from config import Settings
from model import search_attributes as sa
from starter.client import PlaybookClient
from starter.operations import ensure_setup

ROOT = Path(__file__).resolve().parent.parent
CUSTOMER = {"customer_name": "Acme Corp", "email": "ops@acme.example"}


async def listed(client: Client, query: str, expected: set[str]) -> set[str]:
    """The ids `query` lists, once they equal `expected`: visibility catches up with the workflow in a moment."""
    found: set[str] = set()
    for _ in range(200):
        found = {execution.id async for execution in client.list_workflows(query)}
        if found == expected:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"{query!r} lists {found}, expected {expected}")


async def test_executions_are_found_by_playbook_org_status_and_waiting_step(playbooks: PlaybookClient) -> None:
    org = f"org_search_{uuid.uuid4().hex[:8]}"
    handle = await playbooks.start("customer.create.v1", organization=org, data=CUSTOMER, requested_by="svc-crm")
    client = playbooks.client
    mine = f"OrganizationId = '{org}'"

    waiting = f"PlaybookId = 'customer.create.v1' AND WaitingFor = 'set_credit_terms' AND {mine}"
    assert await listed(client, waiting, {handle.id}) == {handle.id}
    await listed(client, f"PlaybookModule = 'crm' AND PlaybookStatus = 'running' AND {mine}", {handle.id})
    await listed(client, f"WaitingFor = 'manager_approval' AND {mine}", set())

    await playbooks.complete(
        handle.id, "set_credit_terms", data={"credit_limit": 60000, "payment_terms": "NET30"},
        completed_by="carol", role="credit_controller",
    )  # fmt: skip
    await listed(client, f"WaitingFor = 'manager_approval' AND {mine}", {handle.id})
    await listed(client, waiting, set())

    await playbooks.complete(handle.id, "manager_approval", data={"approved": True}, role="finance_manager")
    await handle.result()
    await listed(client, f"PlaybookStatus = 'completed' AND {mine}", {handle.id})
    assert (await client.count_workflows(f"PlaybookStatus = 'running' AND {mine}")).count == 0


def settings_for(env: WorkflowEnvironment, namespace: str) -> Settings:
    return Settings(temporal_address=env.client.service_client.config.target_host, temporal_namespace=namespace)


async def registered(env: WorkflowEnvironment, namespace: str) -> dict[str, Any]:
    response = await env.client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    return dict(response.custom_attributes)


async def test_setup_creates_the_namespace_and_registers_the_attributes_once(temporal: WorkflowEnvironment) -> None:
    namespace = f"setup-{uuid.uuid4().hex[:8]}"
    first = await ensure_setup(settings_for(temporal, namespace))
    assert first[0] == f"namespace {namespace}: created (retention 7 days)"
    assert "search attribute WaitingFor (KeywordList): registered" in first
    assert await registered(temporal, namespace) == {key.name: int(key.indexed_value_type) for key in sa.ALL}

    again = await ensure_setup(settings_for(temporal, namespace))
    assert again == [f"namespace {namespace}: exists"] + [
        f"search attribute {key.name} ({'KeywordList' if key is sa.WAITING_FOR else 'Keyword'}): already registered"
        for key in sa.ALL
    ]


async def test_setup_refuses_an_attribute_of_another_type(temporal: WorkflowEnvironment) -> None:
    from starter.plumbing import UserError

    namespace = f"setup-{uuid.uuid4().hex[:8]}"
    service = temporal.client.workflow_service
    await service.register_namespace(
        RegisterNamespaceRequest(namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400))
    )
    for _ in range(100):  # a new namespace becomes visible to the operator API after a moment
        try:
            await temporal.client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(
                    namespace=namespace, search_attributes={"PlaybookId": IndexedValueType.INDEXED_VALUE_TYPE_TEXT}
                )
            )
            break
        except RPCError:
            await asyncio.sleep(0.1)
    with pytest.raises(UserError, match="PlaybookId is Text, needs Keyword"):
        await ensure_setup(settings_for(temporal, namespace))


def test_setup_command_on_the_default_namespace(temporal: WorkflowEnvironment) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from starter.cli import main; main()", "setup"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
             "TEMPORAL_ADDRESS": temporal.client.service_client.config.target_host},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "namespace default: exists"
    assert "search attribute PlaybookId (Keyword): already registered" in done.stdout
