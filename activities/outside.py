"""Steps that reach outside: `http` calls an API, `notification` sends a message (log, webhook or email).

An external effect cannot share a database transaction, so these are at-least-once: a step already on
record is never sent again, and every request carries an ``Idempotency-Key`` (execution/step/iteration)
so the receiver can drop the rare duplicate after a crash between sending and recording.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import smtplib
import uuid
from email.message import EmailMessage
from typing import Any
from uuid import UUID

import httpx

from model.execution import StepRequest
from model.masking import mask
from model.steps import HttpWith, NotificationWith
from store import Store

from . import egress
from .errors import fail
from .steps import step_audit, step_handler, step_key

log = logging.getLogger("playbook.notification")
MAX_BODY = 64 * 1024
"""Response bodies kept in the step output (and so in workflow history) are cut here."""


def idempotency_key(req: StepRequest) -> str:
    return "/".join(part for part in (req.execution_id, req.iteration, req.step_id) if part)


async def already_done(store: Store, req: StepRequest) -> dict[str, Any] | None:
    """The output recorded for this step by an earlier attempt, if it got that far."""
    for line in await store.step_lines(UUID(req.organization_uuid), req.execution_id):
        if line["step_id"] == req.step_id and (line.get("iteration") or "") == req.iteration:
            output: dict[str, Any] = line.get("output") or {}
            return output
    return None


def _body(response: httpx.Response, raw: bytes) -> Any:
    if "json" in response.headers.get("content-type", ""):
        try:
            return json.loads(raw)
        except ValueError:
            pass
    return raw[:MAX_BODY].decode(response.encoding or "utf-8", errors="replace")


@step_handler("http")
async def http(store: Store, req: StepRequest) -> dict[str, Any]:
    if (done := await already_done(store, req)) is not None:
        return done
    spec = HttpWith.model_validate(req.with_)
    expected = [spec.expect_status] if isinstance(spec.expect_status, int) else spec.expect_status
    headers = {"Idempotency-Key": idempotency_key(req), **spec.headers}
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            response, raw = await egress.request(client, spec.method, spec.url, headers=headers, json=spec.json_)
    except httpx.HTTPError as exc:  # network trouble: Temporal retries per the step's policy
        raise RuntimeError(f"{spec.method} {spec.url}: {type(exc).__name__}: {exc}") from None
    ok = response.status_code in expected if expected else response.is_success
    if not ok:
        text = raw[:200].decode(response.encoding or "utf-8", errors="replace")
        message = f"{spec.method} {spec.url} answered {response.status_code}: {text}"
        if response.status_code >= 500 or response.status_code == 429:
            raise RuntimeError(message)  # the service may recover: retried
        raise fail("HttpStatus", mask(message, req.secrets), status=response.status_code)
    output: dict[str, Any] = {"status": response.status_code, "body": _body(response, raw)}
    if len(raw) >= egress.max_bytes():
        output["truncated_at_bytes"] = len(raw)
    await store.record_step(UUID(req.organization_uuid), step_key(req), step_audit(req, output=output))
    return output


@step_handler("notification")
async def notification(store: Store, req: StepRequest) -> dict[str, Any]:
    if (done := await already_done(store, req)) is not None:
        return done
    spec = NotificationWith.model_validate(req.with_)
    message_id = str(uuid.uuid5(uuid.NAMESPACE_URL, idempotency_key(req)))
    recipients = [spec.to] if isinstance(spec.to, str) else spec.to
    match spec.channel:
        case "log":
            subject, body = mask([spec.subject, spec.body], req.secrets)  # the log line is made masked
            log.info("notification %s to %s: %s — %s", message_id, ", ".join(recipients), subject, body)
        case "webhook":
            payload = {"message_id": message_id, "subject": spec.subject, "body": spec.body}
            async with httpx.AsyncClient(timeout=30) as client:
                for url in recipients:
                    response, _ = await egress.request(
                        client, "POST", url, json=payload, headers={"Idempotency-Key": message_id}
                    )
                    if not response.is_success:
                        raise RuntimeError(f"webhook {url} answered {response.status_code}")
        case "email":
            await asyncio.to_thread(_send_email, recipients, spec, message_id)
    output = {"delivered": True, "message_id": message_id, "channel": spec.channel, "to": recipients}
    await store.record_step(UUID(req.organization_uuid), step_key(req), step_audit(req, output=output))
    return output


def _send_email(recipients: list[str], spec: NotificationWith, message_id: str) -> None:
    host = os.environ.get("PLAYBOOK_SMTP_HOST")
    if not host:
        raise fail("NotConfigured", "the email channel needs PLAYBOOK_SMTP_HOST (and PLAYBOOK_SMTP_FROM)")
    email = EmailMessage()
    email["From"] = os.environ.get("PLAYBOOK_SMTP_FROM", "playbooks@localhost")
    email["To"] = ", ".join(recipients)
    email["Subject"] = spec.subject or "(no subject)"
    email["Message-ID"] = f"<{message_id}@playbooks>"
    email.set_content(spec.body)
    with smtplib.SMTP(host, int(os.environ.get("PLAYBOOK_SMTP_PORT", "25")), timeout=30) as smtp:
        smtp.send_message(email)

