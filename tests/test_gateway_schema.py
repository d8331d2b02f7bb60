"""Schemathesis against /openapi.json: stateful runs (start → status → complete) with no 5xx, no schema violation."""

from __future__ import annotations

import asyncio
import socket
import uuid
from typing import Any

import hypothesis
import schemathesis
import uvicorn
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from config import Settings
from gateway.app import create_app
from gateway.settings import GatewaySettings
from starter.tokens import mint
from tests.fixtures_temporal import running_worker

SECRET = "schemathesis-secret-of-at-least-32-bytes"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_the_api_keeps_its_schema_under_generated_traffic(temporal: Any, catalog: Any) -> None:
    org = f"org_st_{uuid.uuid4().hex[:8]}"
    bearer = mint(SECRET, sub="fuzzer", orgs=[org], roles=["credit_controller", "finance_manager"], ttl_seconds=900)
    async with running_worker(temporal.client, catalog) as client:
        app = create_app(Settings.from_env(), GatewaySettings(jwt_secret=SECRET, rate_limit="100000/minute"),
                         client=client, store=catalog)  # fmt: skip
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        try:
            await asyncio.to_thread(_run, f"http://127.0.0.1:{port}", bearer)
        finally:
            server.should_exit = True
            await serving


def _run(base: str, bearer: str) -> None:
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    headers = {"Authorization": f"Bearer {bearer}"}

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": headers, "timeout": 30}

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance],
                                   headers=headers)  # fmt: skip

    Workflow.run(settings=hypothesis.settings(
        max_examples=25, stateful_step_count=4, deadline=None, derandomize=True,
        suppress_health_check=list(hypothesis.HealthCheck), phases=[hypothesis.Phase.generate],
    ))  # fmt: skip
