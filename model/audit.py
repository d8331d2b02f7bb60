"""The audit line of a step: what the engine records about each step in the execution's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from .status import StepStatus
from .steps import SmartCode


class StepAudit(BaseModel):
    """What a step's audit line records (a `playbook_step` line of the execution's transaction)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    step_type: Annotated[str, Field(min_length=1, max_length=100)]
    """The step's type (entity, human, approval, ...)."""
    status: StepStatus = StepStatus.completed
    """The step's final status."""
    smart_code: SmartCode | None = None
    """The step's smart code, if it has one."""
    data: dict[str, Any] | None = None
    """What a person submitted (human and approval steps)."""
    output: dict[str, Any] | None = None
    """The step's output; for writes, the write's result is merged over it."""
    error: str | None = None
    """Why the step failed."""
    completed_by: str | None = None
    """Who completed a human step."""
    attempts: int = Field(default=1, ge=0)
    """How many attempts the step took."""
    started_at: datetime | None = None
    """When the step started."""
    finished_at: datetime | None = None
    """When the step finished."""


class AuditLine(StepAudit):
    """A step's audit line queued by the workflow (steps without an activity of their own): the audit and its step."""

    step_id: str
    """The step's id in the playbook."""
    iteration: str = ""
    """The foreach iteration it ran in ("" elsewhere)."""
