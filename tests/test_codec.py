"""Encrypted histories stay replayable after key rotation; the codec server decodes for the Web UI only."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from config.codec import EncryptionCodec, parse_keys
from gateway.codec import app
from runtime.worker import workflow_runner
from tests.test_sensitive import NEW_KEY, OLD_KEY
from workflows import PlaybookWorkflow

RECORDED = Path(__file__).parent / "histories_encrypted" / "inline.sensitive.v1.json"
"""Recorded with OLD_KEY (tests/test_sensitive.py's execution); never re-record it to make a test pass."""


async def test_a_recorded_encrypted_history_replays_after_key_rotation() -> None:
    converter = dataclasses.replace(
        pydantic_data_converter, payload_codec=EncryptionCodec(parse_keys(f"{NEW_KEY},{OLD_KEY}"))
    )
    replayer = Replayer(workflows=[PlaybookWorkflow], data_converter=converter, workflow_runner=workflow_runner())
    await replayer.replay_workflow(WorkflowHistory.from_json(RECORDED.stem, RECORDED.read_text()))


def test_the_recorded_history_holds_only_ciphertext() -> None:
    text = RECORDED.read_text()
    for clear in ("TX-98765-QZ", "GC-12345678", "tok-s3cr3t-VALUE"):
        assert clear not in text and base64.b64encode(clear.encode()).decode()[:12] not in text


@pytest.fixture
def codec_server(monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("PLAYBOOK_ENCRYPTION_KEYS", f"{NEW_KEY},{OLD_KEY}")
    monkeypatch.setenv("PLAYBOOK_CODEC_CORS_ORIGIN", "http://localhost:8233")
    monkeypatch.setenv("PLAYBOOK_CODEC_REQUIRE_TOKEN", "ui-token")
    return TestClient(app())


def test_the_codec_server_round_trips_with_the_token_and_admits_the_ui_origin_only(codec_server: TestClient) -> None:
    plain = {"metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
             "data": base64.b64encode(b'{"card":"GC-1"}').decode()}  # fmt: skip
    auth = {"Authorization": "Bearer ui-token", "X-Namespace": "default"}
    sealed = codec_server.post("/codec/encode", json={"payloads": [plain]}, headers=auth).json()["payloads"]
    assert base64.b64decode(sealed[0]["metadata"]["encryption-key-id"]) == b"k2"  # the first key encrypts
    opened = codec_server.post("/codec/decode", json={"payloads": sealed}, headers=auth).json()["payloads"]
    assert json.loads(base64.b64decode(opened[0]["data"])) == {"card": "GC-1"}

    refused = codec_server.post("/codec/decode", json={"payloads": sealed})
    assert refused.status_code == 401 and refused.headers["content-type"] == "application/problem+json"
    preflight = {"Origin": "http://localhost:8233", "Access-Control-Request-Method": "POST"}
    assert codec_server.options("/codec/decode", headers=preflight).headers["access-control-allow-origin"] == (
        "http://localhost:8233"
    )
    other = {**preflight, "Origin": "http://evil.example"}
    assert "access-control-allow-origin" not in codec_server.options("/codec/decode", headers=other).headers
