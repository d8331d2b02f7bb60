"""Malformed messages a careless or hostile sender can send to an execution, and how to send them raw."""

from __future__ import annotations

from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHandle
from temporalio.common import RawValue


def raw_json(data: bytes) -> RawValue:
    """A payload that claims to be JSON, with these bytes: the SDK's converter cannot read a bad one."""
    return RawValue(Payload(metadata={"encoding": b"json/plain"}, data=data))


def nested(depth: int) -> bytes:
    return b'{"step_id": "set_credit_terms", "data": ' + b"[" * depth + b"]" * depth + b"}"


BIG = "x" * 100_000
"""A 100 KB field."""

TYPED: list[tuple[str, Any]] = [
    ("complete_step", {"step_id": 123, "data": {}}),
    ("complete_step", {"step_id": "set_credit_terms", "completed_by": 7, "data": {}}),
    ("complete_step", {"step_id": "set_credit_terms", "completed_by": BIG, "role": "credit_controller",
                       "data": {"credit_limit": 10, "payment_terms": "NET30"}}),
    ("complete_step", {"step_id": BIG, "data": {BIG: 1}}),
    ("complete_step", {"step_id": "set_credit_terms", "role": "credit_controller", "data": {BIG: "\u0000" * 1000}}),
    ("complete_step", ["not", "an", "object"]),
    ("complete_step", None),
    ("complete_step", "set_credit_terms"),
    ("add_note", {"text": BIG}),
    ("add_note", [1]),
    ("complete-step", {"step_id": "set_credit_terms"}),
]
"""(signal, argument) pairs the converter reads but the workflow must refuse."""

RAW: list[tuple[str, list[RawValue]]] = [
    ("complete_step", [raw_json(b"{not json")]),
    ("complete_step", [raw_json(b'{"step_id": "\\ud800", "data": {}}')]),
    ("complete_step", [raw_json(nested(300))]),
    ("complete_step", [RawValue(Payload(metadata={"encoding": b"binary/unknown"}, data=b"\x00\x01"))]),
    ("complete_step", [raw_json(b'{"step_id": "set_credit_terms"}'), raw_json(b"{}")]),
]
"""(signal, raw arguments) the SDK's converter cannot read, or too many of them."""


async def send_all(handle: WorkflowHandle[Any, Any]) -> int:
    """Send every malformed signal above once; the number sent."""
    for name, arg in TYPED:
        await handle.signal(name, arg)
    for name, args in RAW:
        await handle.signal(name, args=args)
    return len(TYPED) + len(RAW)
