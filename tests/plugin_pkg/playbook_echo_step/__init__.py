"""The `echo` step type: a plugin package, installed with pip, that the engine finds by entry point."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from activities.steps import step_handler
from model.execution import StepRequest
from store import Store


class EchoWith(BaseModel):
    """Say some words back."""

    model_config = ConfigDict(extra="forbid")

    words: str = Field(min_length=1)
    shout: bool = False


@step_handler("echo", EchoWith)
async def echo(store: Store, req: StepRequest) -> dict[str, Any]:
    spec = EchoWith.model_validate(req.with_)
    return {"said": spec.words.upper() if spec.shout else spec.words}
