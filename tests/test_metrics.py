"""The worker's Prometheus endpoint and structured step logs, after running a real playbook."""

from __future__ import annotations

import json
import logging
import re
import socket
import urllib.request
import uuid
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.observability import SDK_WORKFLOW_LOGGER, StructuredFormatter, metrics_address, metrics_runtime
from tests.fixtures_temporal import running_worker
from tests.probe_workflow import TypedSignalProbe

PROBE = {
    "id": "metrics.probe.v1",
    "name": "Metrics probe",
    "version": 1,
    "module": "ops",
    "smart_code": "HERA.OPS.METRICS.PLAYBOOK.PROBE.v1",
    "steps": [
        {
            "id": "register_host",
            "type": "entity",
            "smart_code": "HERA.OPS.HOST.ENT.PROF.v1",
            "with": {"entity_type": "host", "entity_name": "db-1", "entity_code": "HOST-{{ execution.id }}"},
        },
        {
            "id": "check_host",
            "type": "validation",
            "on_error": "continue",
            "with": {"rules": [{"assert": "1 == 2", "message": "the host is not ready"}]},
        },
    ],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def samples(text: str, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """The samples of metric `name` in a Prometheus text exposition, keyed by their label pairs."""
    found = {}
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match:
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
            found[labels] = float(match.group(2))
    return found


def value(found: dict[frozenset[tuple[str, str]], float], **labels: str) -> float:
    """The one sample whose labels include `labels`."""
    [hit] = [v for k, v in found.items() if set(labels.items()) <= k]
    return hit


async def metrics_client(temporal: WorkflowEnvironment, port: int) -> Client:
    """A client of the test server whose runtime serves Prometheus metrics on `port` (what a worker counts)."""
    return await Client.connect(
        temporal.client.service_client.config.target_host,
        namespace=temporal.client.namespace,
        data_converter=pydantic_data_converter,
        runtime=metrics_runtime(f"127.0.0.1:{port}"),
    )


async def test_step_metrics_and_logs_after_a_run(
    temporal: WorkflowEnvironment, store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    client = await metrics_client(temporal, port)
    org = f"org_metrics_{uuid.uuid4().hex[:8]}"
    caplog.set_level(logging.INFO, logger="playbook.steps")
    async with running_worker(client, store) as playbooks:
        handle = await playbooks.start(PROBE["id"], organization=org, playbook=PROBE)
        result = await handle.result()
    assert [s["status"] for s in result["steps"]] == ["completed", "failed"]

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    steps = samples(text, "playbook_steps_total")
    assert value(steps, playbook="metrics.probe.v1", step_type="entity", outcome="completed") == 1
    # A failed validation is final at once (never retried): one attempt, outcome failed.
    assert value(steps, playbook="metrics.probe.v1", step_type="validation", outcome="failed") == 1
    durations = samples(text, "playbook_step_duration_seconds_count")
    assert value(durations, playbook="metrics.probe.v1", step_type="entity", outcome="completed") == 1
    # The SDK's own metrics share the endpoint.
    assert value(samples(text, "temporal_workflow_completed"), workflow_type="PlaybookWorkflow") >= 1

    logged = {r.step_id: r for r in caplog.records if r.name == "playbook.steps" and r.execution_id == handle.id}
    assert set(logged) == {"register_host", "check_host"}
    entity = logged["register_host"]
    assert (entity.playbook, entity.step_type, entity.outcome, entity.attempt) == (
        "metrics.probe.v1", "entity", "completed", 1,
    )  # fmt: skip
    uuid.UUID(entity.organization_id)
    assert logged["check_host"].levelname == "WARNING"


async def test_a_signal_the_sdk_drops_is_counted_and_logged_in_one_line(
    temporal: WorkflowEnvironment, store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    client = await metrics_client(temporal, port)
    workflow_id = f"probe-{uuid.uuid4().hex[:8]}"
    async with running_worker(client, store, extra_workflows=[TypedSignalProbe]) as playbooks:
        handle = await client.start_workflow("TypedSignalProbe", id=workflow_id, task_queue=playbooks.task_queue)
        await handle.signal("poke", "not a number")
        await handle.signal("poke", 1)  # the workflow ends once a valid poke arrives: the bad one came first
        await handle.result()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    assert value(samples(text, "playbook_signals_dropped_total"), signal="poke") == 1
    [line] = [r for r in caplog.records if r.name == SDK_WORKFLOW_LOGGER and workflow_id in r.getMessage()]
    assert line.getMessage().startswith(f"signal poke to workflow {workflow_id} (run ")
    assert line.exc_info is None  # one line, no traceback


def step_record(**fields: Any) -> logging.LogRecord:
    record = logging.LogRecord("playbook.steps", logging.INFO, __file__, 1, "step %s %s", ("a", "completed"), None)
    record.__dict__.update(fields)
    return record


def test_json_log_lines_carry_the_step_identity() -> None:
    line = StructuredFormatter("json").format(
        step_record(execution_id="org_1/x.v1/abc", step_id="a", organization_id="0000", iteration=None)
    )
    entry = json.loads(line)
    assert entry["message"] == "step a completed"
    assert (entry["level"], entry["logger"]) == ("info", "playbook.steps")
    assert (entry["execution_id"], entry["step_id"], entry["organization_id"]) == ("org_1/x.v1/abc", "a", "0000")
    assert "iteration" not in entry  # fields without a value are left out


def test_text_log_lines_end_with_key_value_fields() -> None:
    line = StructuredFormatter("text").format(
        step_record(execution_id="org_1/x.v1/abc", step_id="a", reason="two words", temporal_activity={"attempt": 2})
    )
    assert line.endswith(
        ' playbook.steps: step a completed execution_id=org_1/x.v1/abc step_id=a reason="two words"'
        " temporal_activity.attempt=2"
    )


def test_metrics_address_from_the_environment() -> None:
    assert metrics_address({}) is None
    assert metrics_address({"PLAYBOOK_METRICS_PORT": "9464"}) == "0.0.0.0:9464"
    assert metrics_address({"PLAYBOOK_METRICS_PORT": "127.0.0.1:9000"}) == "127.0.0.1:9000"
    with pytest.raises(ValueError, match="PLAYBOOK_METRICS_PORT: 'ninety' is not a port number"):
        metrics_address({"PLAYBOOK_METRICS_PORT": "ninety"})
    with pytest.raises(ValueError, match="neither 'text' nor 'json'"):
        StructuredFormatter("xml")
