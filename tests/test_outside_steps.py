"""`http` and `notification` steps against a real local HTTP server, and escalation notices through them."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from starter.client import PlaybookClient
from tests.fixtures_temporal import running_worker


class Receiver(ThreadingHTTPServer):
    """Records every request; answers POST /orders with 201 and JSON, /missing with 404."""

    received: list[dict[str, Any]]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"] or 0)) or b"null")
        self.server.received.append({"path": self.path, "body": body, "key": self.headers.get("Idempotency-Key")})
        status, answer = (201, {"order": "ORD-7", "echo": body}) if self.path != "/missing" else (404, {"error": "no"})
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv("PLAYBOOK_HTTP_ALLOW", "127.0.0.1")  # the test server is on loopback: allowed by name
    server = Receiver(("127.0.0.1", 0), _Handler)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def calls(url: str, path: str = "/orders") -> dict[str, Any]:
    return {
        "id": "inline.outside.v1", "name": "Outside", "version": 1, "module": "sales",
        "smart_code": "HERA.SALES.TEST.OUT.v1",
        "inputs": {"sku": {"type": "string", "required": True}},
        "steps": [
            {"id": "place", "type": "external_api", "with": {
                "method": "POST", "url": f"{url}{path}", "json": {"sku": "{{ inputs.sku }}", "qty": 2},
                "expect_status": 201}},
            {"id": "tell", "type": "notification", "with": {
                "channel": "webhook", "to": f"{url}/hooks", "subject": "Order placed",
                "body": "Order {{ steps.place.output.body.order }} for {{ inputs.sku }}"}},
            {"id": "trace", "type": "notification",
             "with": {"channel": "log", "to": "ops", "body": "{{ steps.tell.output.message_id }}"}},
        ],
        "outputs": {"order": "{{ steps.place.output.body.order }}", "status": "{{ steps.place.output.status }}",
                    "delivered": "{{ steps.tell.output.delivered }}"},
    }  # fmt: skip


async def test_http_and_webhook_steps_call_out_once_each(playbooks: PlaybookClient, receiver: Receiver) -> None:
    handle = await playbooks.start(
        "inline.outside.v1", organization=f"org_out_{uuid.uuid4().hex[:6]}", playbook=calls(receiver.url),
        data={"sku": "SKU-1"},
    )  # fmt: skip
    result = await handle.result()
    assert result["outputs"] == {"order": "ORD-7", "status": 201, "delivered": True}
    assert [r["path"] for r in receiver.received] == ["/orders", "/hooks"]
    assert receiver.received[0]["body"] == {"sku": "SKU-1", "qty": 2}
    assert receiver.received[0]["key"] == f"{handle.id}/place"
    assert receiver.received[1]["body"]["body"] == "Order ORD-7 for SKU-1"


async def test_an_unexpected_status_fails_the_step_with_the_answer(
    playbooks: PlaybookClient, receiver: Receiver
) -> None:
    handle = await playbooks.start(
        "inline.outside.v1", organization="org_out", playbook=calls(receiver.url, "/missing"), data={"sku": "X"}
    )
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert f"step place: POST {receiver.url}/missing answered 404" in str(failure.value.cause)
    assert len(receiver.received) == 1  # a 404 is not retried


async def test_each_escalation_is_announced_through_the_notification_step(
    time_skipping: WorkflowEnvironment, store: Any, receiver: Receiver
) -> None:
    definition = {
        "id": "inline.notify.v1", "name": "Escalation notices", "version": 1, "module": "service",
        "smart_code": "HERA.SERVICE.TEST.NOTE.v1",
        "steps": [{"id": "triage", "type": "human", "timeout": "1h", "with": {
            "assignee_role": "agent", "instructions": "Triage", "on_timeout": "escalate",
            "escalate_to": ["team_lead", "manager"], "notify": {"channel": "webhook", "to": f"{receiver.url}/pager"}}}],
    }  # fmt: skip
    async with running_worker(time_skipping.client, store) as client:
        handle = await client.start("inline.notify.v1", organization="org_notify", playbook=definition)
        with pytest.raises(WorkflowFailureError):
            await handle.result()  # three hours pass: two escalations, then the last deadline fails the step
    notices = [r for r in receiver.received if r["path"] == "/pager"]
    assert [n["body"]["subject"] for n in notices] == ["Escalated: Triage", "Escalated: Triage"]
    assert "now waits for role team_lead" in notices[0]["body"]["body"]
    assert "now waits for role manager" in notices[1]["body"]["body"]
    assert len({n["key"] for n in notices}) == 2


async def test_a_large_output_stays_in_postgres_and_history_gets_a_pointer(
    playbooks: PlaybookClient, catalog: Any, receiver: Receiver
) -> None:
    big = {"rows": [{"n": i, "text": "x" * 40} for i in range(1_000)]}  # about 50 KB echoed back
    definition = {
        "id": "inline.big.v1", "name": "Big answer", "version": 1, "module": "ops",
        "smart_code": "HERA.OPS.TEST.BIG.v1",
        "steps": [{"id": "fetch", "type": "http", "with": {"method": "POST", "url": f"{receiver.url}/orders",
                                                            "json": big, "expect_status": 201}}],
        "outputs": {"kept": "{{ steps.fetch.output.truncated }}", "where": "{{ steps.fetch.output.stored_in }}"},
    }  # fmt: skip
    code = f"org_big_{uuid.uuid4().hex[:6]}"
    handle = await playbooks.start("inline.big.v1", organization=code, playbook=definition)
    result = await handle.result()
    assert result["outputs"] == {"kept": True, "where": "universal_transaction_lines"}
    lines = await catalog.step_lines(await catalog.resolve_organization(code), handle.id)
    assert lines[0]["output"]["body"]["echo"] == big
