"""Sensitive values and secrets rest nowhere in clear (SPEC §2.2, §7), with payload encryption on.

One execution takes a sensitive input, derives values from it in `set`, outputs, instructions, an `http` call
that echoes it back, a notification and a failing validation's message; a person submits a sensitive form
field; an `http` header carries a secret. Then every place a value can rest is searched.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from config.codec import EncryptionCodec, parse_keys
from runtime.worker import workflow_runner
from tests.fixtures_temporal import running_worker
from workflows import PlaybookWorkflow

TAX_ID = "TX-98765-QZ"
CARD = "GC-12345678"
TOKEN = "tok-s3cr3t-VALUE"
OLD_KEY = "k1:" + base64.b64encode(b"1" * 32).decode()
NEW_KEY = "k2:" + base64.b64encode(b"2" * 32).decode()
TABLES = ("core_organizations", "core_entities", "core_dynamic_data", "core_relationships",
          "universal_transactions", "universal_transaction_lines")  # fmt: skip


def encrypted(client: Client, keys: str) -> Client:
    converter = dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec(parse_keys(keys)))
    return Client(client.service_client, namespace=client.namespace, data_converter=converter)


class _Echo(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.authorizations.append(self.headers["Authorization"])  # type: ignore[attr-defined]
        answer = json.dumps({"echo": body, "auth": self.headers["Authorization"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    server.authorizations = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def playbook(url: str) -> dict[str, Any]:
    return {
        "id": "inline.sensitive.v1", "name": "Sensitive", "version": 1, "module": "finance",
        "smart_code": "HERA.FIN.TEST.SENSITIVE.v1",
        "inputs": {"customer": {"type": "string"}, "tax_id": {"type": "string", "sensitive": True}},
        "steps": [
            {"id": "derive", "type": "set", "with": {"vars": {"ref": "Tax reference {{ inputs.tax_id }}"}}},
            {"id": "register", "type": "http", "with": {
                "method": "POST", "url": url, "json": {"ref": "{{ vars.ref }}"},
                "headers": {"Authorization": "Bearer {{ secrets.API_TOKEN }}"}}},
            {"id": "check", "type": "validation", "on_error": "continue", "with": {"rules": [
                {"assert": "inputs.tax_id == 'nothing'", "message": "tax id {{ inputs.tax_id }} is not on file"}]}},
            {"id": "pay", "type": "human", "with": {
                "instructions": "Take payment for {{ vars.ref }}",
                "form": {"gift_card_number": {"type": "string", "pattern": "^GC-[0-9]{8}$", "sensitive": True}}}},
            {"id": "tell", "type": "notification", "with": {
                "channel": "log", "to": "ops",
                "body": "Paid by card {{ steps.pay.data.gift_card_number }} ({{ vars.ref }})"}},
        ],
        "outputs": {"ref": "{{ vars.ref }}", "card": "{{ steps.pay.data.gift_card_number }}",
                    "echoed": "{{ steps.register.output.body.echo.ref }}"},
    }  # fmt: skip


async def test_sensitive_values_and_secrets_rest_nowhere_in_clear(
    temporal: WorkflowEnvironment, catalog: Any, pg_admin: asyncpg.Connection, echo: ThreadingHTTPServer,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    monkeypatch.setenv("PLAYBOOK_HTTP_ALLOW", "127.0.0.1")
    monkeypatch.setenv("PLAYBOOK_SECRET_API_TOKEN", TOKEN)
    caplog.set_level(logging.DEBUG)
    client = encrypted(temporal.client, OLD_KEY)
    url = f"http://127.0.0.1:{echo.server_address[1]}/customers"
    async with running_worker(client, catalog) as playbooks:
        handle = await playbooks.start(
            "inline.sensitive.v1", organization="org_sensitive", playbook=playbook(url),
            data={"customer": "Acme", "tax_id": TAX_ID},
        )  # fmt: skip
        waiting = await playbooks.status(handle.id)
        while not waiting.waiting_for:
            waiting = await playbooks.status(handle.id)
        assert waiting.waiting_for[0].instructions == "Take payment for Tax reference ***"
        await playbooks.complete(handle.id, "pay", data={"gift_card_number": CARD})
        result = await handle.result()
        status = await handle.query("status")
        definition = await handle.query("definition")
        task_queue = playbooks.task_queue

    assert echo.authorizations == [f"Bearer {TOKEN}"]  # type: ignore[attr-defined]  (the secret reached the server)
    assert result["outputs"] == {"ref": "Tax reference ***", "card": "***", "echoed": "Tax reference ***"}
    places: dict[str, str] = {
        "result": json.dumps(result),
        "status query": json.dumps(status),
        "definition query": json.dumps(definition),
        "worker log": "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records),
    }
    for table in TABLES:
        rows = await pg_admin.fetch(f"SELECT t::text AS row FROM {table} t")  # every column, as text
        places[table] = "\n".join(r["row"] for r in rows)
    history = await temporal.client.get_workflow_handle(handle.id).fetch_history()  # a client with no codec
    places["raw history"] = "\n".join(repr(e.SerializeToString()) for e in history.events)
    assert "binary/encrypted" in places["raw history"]
    for name, text in places.items():
        for value in (TAX_ID, CARD, TOKEN):
            assert value not in text, f"{value} found in clear in the {name}"
    assert "tax id *** is not on file" in places["universal_transaction_lines"]

    # rotation: a worker holding the new key first and the old one second replays the run and reads it
    rotated = encrypted(temporal.client, f"{NEW_KEY},{OLD_KEY}")
    replayer = Replayer(
        workflows=[PlaybookWorkflow], data_converter=rotated.data_converter, workflow_runner=workflow_runner()
    )
    await replayer.replay_workflow(WorkflowHistory.from_json(handle.id, history.to_json()))
    async with running_worker(rotated, catalog, task_queue=task_queue):
        assert (await rotated.get_workflow_handle(handle.id).query("status"))["outputs"]["card"] == "***"


async def test_without_keys_the_history_holds_values_only_where_they_were_sent(
    temporal: WorkflowEnvironment, catalog: Any, pg_admin: asyncpg.Connection, echo: ThreadingHTTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Without keys (docs/sensitive.md): in clear only in the messages that carried the values in (the start, the
    person's completion) and the inputs of the steps that send them on; never a secret, never elsewhere."""
    monkeypatch.setenv("PLAYBOOK_HTTP_ALLOW", "127.0.0.1")
    monkeypatch.setenv("PLAYBOOK_SECRET_API_TOKEN", TOKEN)
    url = f"http://127.0.0.1:{echo.server_address[1]}/customers"
    async with running_worker(temporal.client, catalog) as playbooks:
        handle = await playbooks.start(
            "inline.sensitive.v1", organization="org_sensitive", playbook=playbook(url),
            data={"customer": "Acme", "tax_id": TAX_ID},
        )  # fmt: skip
        while not (await playbooks.status(handle.id)).waiting_for:
            pass
        await playbooks.complete(handle.id, "pay", data={"gift_card_number": CARD})
        await handle.result()
    history = await temporal.client.get_workflow_handle(handle.id).fetch_history()
    found: dict[str, set[str]] = {TAX_ID: set(), CARD: set(), TOKEN: set()}
    for event in history.events:
        kind = event.WhichOneof("attributes") or ""
        scheduled = kind == "activity_task_scheduled_event_attributes"
        where = event.activity_task_scheduled_event_attributes.activity_id if scheduled else kind
        for value, places in found.items():
            if value.encode() in event.SerializeToString():
                places.add(where)
    assert found == {
        TAX_ID: {"workflow_execution_started_event_attributes", "register", "check", "tell"},
        CARD: {"workflow_execution_update_accepted_event_attributes", "tell"},
        TOKEN: set(),
    }
