"""The HERA-compatible endpoint: the seed system's payloads work unchanged."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from model.status import ExecutionStatus
from model.variables import json_schema

from ..auth import Principal, principal
from ..deps import engine
from ..engine import Engine
from ..problems import responses
from ..ratelimit import writer
from .executions import Started

router = APIRouter(prefix="/api/v1/playbooks", tags=["playbooks (HERA)"])


class Execute(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["execute"]
    playbook_id: str = Field(min_length=1, max_length=200)
    organization_id: str | None = None
    initial_data: dict[str, Any] = Field(default_factory=dict)


class CompleteStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["complete_step"]
    execution_id: str = Field(min_length=1, max_length=300)
    step_id: str = Field(min_length=1, max_length=200)
    data: dict[str, Any] = Field(default_factory=dict)
    completed_by: str | None = Field(default=None, description="Ignored: the token's subject completes the step.")
    role: str | None = Field(default=None, description="Ignored: the role comes from the token.")


class PlaybookSummary(BaseModel):
    id: str
    name: str
    version: int
    module: str
    status: str
    description: str | None
    inputs: dict[str, Any] = Field(description="JSON Schema of initial_data.")


@router.get("", responses={200: {"description": "The catalog, one definition or one execution's status"},
                           **responses(401, 403, 404)})  # fmt: skip
async def get_playbooks(
    caller: Annotated[Principal, Depends(principal)], eng: Annotated[Engine, Depends(engine)],
    playbook_id: Annotated[str | None, Query(alias="playbookId", max_length=200)] = None,
    execution_id: Annotated[str | None, Query(alias="executionId", max_length=300)] = None,
    organization_id: Annotated[str | None, Query(max_length=200)] = None,
) -> Any:
    """The catalog of the caller's organization; `?playbookId=` one definition; `?executionId=` one status."""
    if execution_id is not None:
        return (await eng.status(caller, execution_id)).model_dump(mode="json")
    org = caller.org(organization_id)
    if playbook_id is not None:
        return (await eng.playbook(org, playbook_id)).model_dump(mode="json", by_alias=True, exclude_none=True)
    return [
        PlaybookSummary(id=p.id, name=p.name, version=p.version, module=p.module.value, status=p.status.value,
                        description=p.description, inputs=json_schema(p.inputs)).model_dump()
        for p in await eng.playbooks(org)
    ]


@router.post("", responses={201: {"model": Started, "description": "execute: started"},
                            200: {"description": "complete_step: the new status"},
                            **responses(401, 403, 404, 409, 422, 429)})  # fmt: skip
async def post_playbooks(
    body: Annotated[Execute | CompleteStep, Field(discriminator="action")], response: Response,
    caller: Annotated[Principal, Depends(writer)], eng: Annotated[Engine, Depends(engine)],
) -> Any:
    """`execute` starts a playbook (201); `complete_step` completes a waiting step and returns the new status."""
    if isinstance(body, Execute):
        execution_id, _ = await eng.start(caller, playbook_id=body.playbook_id, organization=body.organization_id,
                                          initial_data=body.initial_data, key=None)  # fmt: skip
        response.status_code = 201
        return Started(execution_id=execution_id, status=ExecutionStatus.running).model_dump()
    return (await eng.complete(caller, body.execution_id, body.step_id, body.data)).model_dump(mode="json")
