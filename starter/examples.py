"""Executable examples: run a playbook's examples against a live stack and compare what happened."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import WorkflowFailureError, WorkflowHandle

from model import Example, Playbook

from .client import PlaybookClient


@dataclass
class ExampleOutcome:
    playbook_id: str
    example: str
    execution_id: str
    differences: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.differences


async def _wait_for(client: PlaybookClient, execution_id: str, step_id: str, timeout: float) -> str | None:
    """Wait until a step waits for a person; the execution's status if it ended first."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        status = await client.status(execution_id)
        if any(w.step_id == step_id for w in status.waiting_for):
            return None
        if status.status in ("completed", "failed", "cancelled"):
            return status.status
        await asyncio.sleep(0.05)
    return "still running"


async def _outcome(handle: WorkflowHandle[Any, Any]) -> tuple[str, dict[str, Any], str | None]:
    try:
        result = await handle.result()
    except WorkflowFailureError as exc:
        cause = exc.cause
        status = "cancelled" if type(cause).__name__ == "CancelledError" else "failed"
        return status, {}, str(getattr(cause, "message", cause))
    return result["status"], result["outputs"], None


async def run_example(
    client: PlaybookClient,
    playbook: Playbook,
    example: Example,
    *,
    organization: str | None = None,
    inline: bool = False,
    step_timeout: float = 30.0,
) -> ExampleOutcome:
    """Start the example, complete its human steps as written, and compare status and outputs."""
    definition = playbook.model_dump(mode="json", by_alias=True, exclude_none=True) if inline else None
    handle = await client.start(
        playbook.id,
        organization=organization or f"org_example_{uuid.uuid4().hex[:8]}",
        data=example.initial_data,
        requested_by=example.requested_by or "playbook-test",
        playbook=definition,
    )
    outcome = ExampleOutcome(playbook.id, example.name, handle.id)
    for completion in example.complete:
        ended = await _wait_for(client, handle.id, completion.step_id, step_timeout)
        if ended:
            outcome.differences.append(
                f"step {completion.step_id} never waited for a person (execution {ended})"
            )
            if ended == "still running":
                await handle.terminate("example stuck")
            return outcome
        await client.complete(
            handle.id,
            completion.step_id,
            data=completion.data,
            completed_by=completion.completed_by,
            role=completion.role,
        )
    status, outputs, error = await _outcome(handle)
    expect = example.expect
    if status != expect.status:
        outcome.differences.append(
            f"status: expected {expect.status}, got {status}" + (f" ({error})" if error else "")
        )
    if expect.error and (error is None or expect.error not in error):
        outcome.differences.append(f"error: expected to contain {expect.error!r}, got {error!r}")
    for name, expected in expect.outputs.items():
        if name not in outputs:
            outcome.differences.append(f"outputs.{name}: missing (expected {expected!r})")
        elif outputs[name] != expected:
            outcome.differences.append(f"outputs.{name}: expected {expected!r}, got {outputs[name]!r}")
    return outcome
