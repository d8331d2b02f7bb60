"""The messages people and services send to an execution: a step completion."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .limits import MAX_DATA_BYTES, MAX_NAME, json_size


class StepCompletion(BaseModel):
    """The `complete_step` signal / `submit_step` update argument; also one completion of an example."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)

    step_id: str = Field(min_length=1, max_length=MAX_NAME,
                         description="The waiting step (in a foreach: `<foreach id>[<index>].<sub id>`).")  # fmt: skip
    data: dict[str, Any] = Field(default_factory=dict, description="The form's values.")
    completed_by: str | None = Field(default=None, max_length=MAX_NAME, description="Who completed it.")
    role: str | None = Field(default=None, max_length=MAX_NAME, description="The role the person acts in.")
    override_claim: bool = Field(
        default=False, description="An administrator completes a step someone else has claimed."
    )

    @field_validator("data")
    @classmethod
    def _bounded(cls, data: dict[str, Any]) -> dict[str, Any]:
        if json_size(data) > MAX_DATA_BYTES:
            raise ValueError(f"more than {MAX_DATA_BYTES} bytes as JSON")
        return data


class StepClaim(BaseModel):
    """The `claim_step` / `release_step` update argument: take a waiting step for yourself, or give it back."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    step_id: str = Field(min_length=1, max_length=MAX_NAME, description="The waiting step.")
    by: str = Field(min_length=1, max_length=MAX_NAME, description="Who claims or releases it.")
    role: str | None = Field(default=None, max_length=MAX_NAME,
                             description="The role they act in (the step's role, if it has one).")  # fmt: skip
    override: bool = Field(default=False, description="An administrator releases someone else's claim.")
