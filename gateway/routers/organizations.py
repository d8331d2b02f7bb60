"""Organizations: list and register them (role platform_admin) — no SQL by hand."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from ..auth import Principal, principal
from ..deps import engine
from ..engine import Engine
from ..problems import responses
from ..ratelimit import writer

router = APIRouter(prefix="/api/v1/organizations", tags=["organizations"])


class Organization(BaseModel):
    code: str
    id: str


class NewOrganization(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:\-]+$", examples=["org_acme"])
    name: str = Field(min_length=1, max_length=255, examples=["Acme Corp"])


@router.get("", response_model=list[Organization], responses=responses(401, 403))
async def list_organizations(
    caller: Annotated[Principal, Depends(principal)], eng: Annotated[Engine, Depends(engine)]
) -> list[Organization]:
    """Every registered organization (role platform_admin)."""
    caller.require_role(eng.admin_role)
    return [Organization(code=code, id=str(uid)) for code, uid in sorted((await eng.organizations()).items())]


@router.post("", status_code=201, response_model=Organization, responses=responses(401, 403, 422, 429))
async def register_organization(
    body: NewOrganization, response: Response, caller: Annotated[Principal, Depends(writer)],
    eng: Annotated[Engine, Depends(engine)],
) -> Organization:
    """Register an organization (idempotent: an existing code keeps its id and name)."""
    caller.require_role(eng.admin_role)
    uid = await eng.register_organization(body.code, body.name)
    return Organization(code=body.code, id=str(uid))
