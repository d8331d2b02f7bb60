"""My tasks: the waiting steps the caller may complete, oldest deadline first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from .. import visibility
from ..auth import Principal, principal
from ..deps import engine
from ..engine import Engine
from ..problems import responses

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])


@router.get("", response_model=visibility.TaskPage, responses=responses(401, 403, 422))
async def list_tasks(
    caller: Annotated[Principal, Depends(principal)], eng: Annotated[Engine, Depends(engine)],
    organization_id: Annotated[str | None, Query(max_length=200)] = None,
    role: Annotated[str | None, Query(max_length=200, description="Only steps for this role.")] = None,
    playbook_id: Annotated[str | None, Query(max_length=200)] = None,
    overdue: Annotated[bool | None, Query(description="Only overdue (true) or not yet due (false) steps.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    page_token: Annotated[str | None, Query(max_length=20)] = None,
) -> visibility.TaskPage:  # fmt: skip
    """Steps waiting in the caller's organizations that need no role or one the token holds, with form,
    deadline and claim."""
    if role is not None:
        caller.require_role(role)
    orgs = caller.orgs_for(organization_id)
    return await visibility.tasks(eng.client.client, caller, orgs=orgs, role=role, playbook_id=playbook_id,
                                  overdue=overdue, limit=limit, page_token=page_token)  # fmt: skip
