"""Executions: list, start (idempotent), status, live status (SSE), complete, claim, release, control."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse

from model.status import ENDED, ExecutionStatus

from .. import visibility
from ..auth import Principal, principal
from ..deps import engine
from ..engine import Engine
from ..problems import responses
from ..ratelimit import writer

router = APIRouter(prefix="/api/v1/executions", tags=["executions"])
SSE_POLL = 0.5
"""Seconds between status queries of a live status stream."""


class StartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    playbook_id: str = Field(min_length=1, max_length=200, examples=["customer.create.v1"])
    organization_id: str | None = Field(
        default=None, description="One of the token's organizations (default: its first)."
    )
    initial_data: dict[str, Any] = Field(default_factory=dict, description="The playbook's inputs.")


class Started(BaseModel):
    execution_id: str
    status: ExecutionStatus


class Completion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: dict[str, Any] = Field(default_factory=dict, description="The form's values.")


class Control(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=1000)


class Accepted(BaseModel):
    execution_id: str
    action: str


@router.get("", response_model=visibility.ExecutionPage, responses=responses(401, 403, 422))
async def list_executions(
    caller: Annotated[Principal, Depends(principal)], eng: Annotated[Engine, Depends(engine)],
    organization_id: Annotated[str | None, Query(max_length=200)] = None,
    playbook_id: Annotated[str | None, Query(max_length=200)] = None,
    status: ExecutionStatus | None = None,
    waiting_for: Annotated[str | None, Query(max_length=200, description="A step id awaiting a person.")] = None,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
    page_token: Annotated[str | None, Query(max_length=4000)] = None,
) -> visibility.ExecutionPage:  # fmt: skip
    """The caller's organizations' executions, newest first (Temporal visibility, paged)."""
    return await visibility.executions(
        eng.client.client, caller.orgs_for(organization_id), playbook_id=playbook_id,
        status=status.value if status else None, waiting_for=waiting_for, page_size=page_size, page_token=page_token,
    )  # fmt: skip


_BY_ID = {"execution_id": "$response.body#/execution_id"}
STARTED_LINKS = {
    "GetExecution": {"operationId": "getExecution", "parameters": _BY_ID},
    "CompleteStep": {"operationId": "completeStep", "parameters": _BY_ID},
}


@router.post("", status_code=201, response_model=Started, operation_id="startExecution", responses={
    201: {"description": "Started", "links": STARTED_LINKS},
    200: {"model": Started, "description": "An earlier start with the same Idempotency-Key and body"},
    **responses(401, 403, 404, 422, 429)})  # fmt: skip
async def start_execution(
    body: StartRequest, response: Response, caller: Annotated[Principal, Depends(writer)],
    eng: Annotated[Engine, Depends(engine)],
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
) -> Started:
    """Start a playbook; `requested_by` is the token's subject. The same Idempotency-Key and body start it once."""
    execution_id, created = await eng.start(caller, playbook_id=body.playbook_id, organization=body.organization_id,
                                            initial_data=body.initial_data, key=idempotency_key)  # fmt: skip
    if not created:
        response.status_code = 200
    response.headers["Location"] = f"/api/v1/executions/{execution_id}"
    return Started(execution_id=execution_id, status=ExecutionStatus.running)


@router.get("/{execution_id:path}/events", responses={
    200: {"content": {"text/event-stream": {}}, "description": "`status` events until the execution ends"},
    **responses(401, 404)})  # fmt: skip
async def execution_events(
    execution_id: str, request: Request, caller: Annotated[Principal, Depends(principal)],
    eng: Annotated[Engine, Depends(engine)],
) -> EventSourceResponse:
    """Server-Sent Events: a `status` event whenever the status changes, until the execution ends."""
    first = await eng.status(caller, execution_id)

    async def stream() -> AsyncIterator[dict[str, str]]:
        status, sent = first, None
        while True:
            text = json.dumps(status.model_dump(mode="json"))
            if text != sent:
                sent = text
                yield {"event": "status", "data": text}
            if status.status in ENDED or await request.is_disconnected():
                return
            await asyncio.sleep(SSE_POLL)
            status = await eng.client.status(execution_id)

    return EventSourceResponse(stream(), ping=15)


@router.post("/{execution_id:path}/steps/{step_id}/complete", operation_id="completeStep",
             responses=responses(401, 403, 404, 409, 422, 429))
async def complete_step(
    execution_id: str, step_id: str, body: Completion, caller: Annotated[Principal, Depends(writer)],
    eng: Annotated[Engine, Depends(engine)],
) -> dict[str, Any]:
    """Complete a waiting step (the `submit_step` update): `completed_by` and the role come from the token."""
    return (await eng.complete(caller, execution_id, step_id, body.data)).model_dump(mode="json")


@router.post("/{execution_id:path}/steps/{step_id}/claim", responses=responses(401, 403, 404, 409, 429))
async def claim_step(
    execution_id: str, step_id: str, caller: Annotated[Principal, Depends(writer)],
    eng: Annotated[Engine, Depends(engine)],
) -> dict[str, Any]:
    """Take a waiting step for yourself (409 if someone else holds it)."""
    return (await eng.claim(caller, execution_id, step_id, release=False)).model_dump(mode="json")


@router.post("/{execution_id:path}/steps/{step_id}/release", responses=responses(401, 403, 404, 409, 429))
async def release_step(
    execution_id: str, step_id: str, caller: Annotated[Principal, Depends(writer)],
    eng: Annotated[Engine, Depends(engine)],
) -> dict[str, Any]:
    """Give back a step you hold (an administrator may release anyone's)."""
    return (await eng.claim(caller, execution_id, step_id, release=True)).model_dump(mode="json")


def _control(action: str) -> Any:
    async def route(
        execution_id: str, caller: Annotated[Principal, Depends(writer)], eng: Annotated[Engine, Depends(engine)],
        body: Control | None = None,
    ) -> Accepted:
        await eng.control(caller, execution_id, action, body.reason if body else None)
        return Accepted(execution_id=execution_id, action=action)

    route.__name__ = f"{action}_execution"
    route.__doc__ = f"Send `{action}` to the execution (`{{reason?}}`)."
    return route


for _action in ("pause", "resume", "cancel"):
    router.add_api_route(f"/{{execution_id:path}}/{_action}", _control(_action), methods=["POST"], status_code=202,
                         response_model=Accepted, responses=responses(401, 404, 409, 429))  # fmt: skip


@router.get("/{execution_id:path}", operation_id="getExecution", responses={
    200: {"description": "The status", "links": {"CompleteWaitingStep": {"operationId": "completeStep", "parameters": {
        "execution_id": "$response.body#/execution_id", "step_id": "$response.body#/waiting_for/0/step_id"}}}},
    **responses(401, 404)})  # fmt: skip
async def get_execution(
    execution_id: str, caller: Annotated[Principal, Depends(principal)], eng: Annotated[Engine, Depends(engine)],
) -> dict[str, Any]:
    """The execution's `status` query (sensitive values masked)."""
    return (await eng.status(caller, execution_id)).model_dump(mode="json")
