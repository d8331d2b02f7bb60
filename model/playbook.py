"""The playbook: metadata, inputs, steps, outputs, success criteria and executable examples."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import Any

from pydantic import Field, PrivateAttr

from .messages import StepCompletion
from .scalars import Int
from .steps import Condition, SmartCode, Step, Strict
from .variables import Variable

PLAYBOOK_ID = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\.v[0-9]+$"
MODULES = (
    "crm", "finance", "hr", "inventory", "manufacturing", "projects",
    "purchasing", "sales", "salon", "service", "ops",
)  # fmt: skip
OPS_CATEGORIES = (
    "incident_response", "troubleshooting", "deployment", "maintenance", "security", "code_review",
    "testing", "release", "onboarding", "monitoring", "backup", "disaster_recovery", "capacity_planning",
)  # fmt: skip


class Module(StrEnum):
    crm = "crm"
    finance = "finance"
    hr = "hr"
    inventory = "inventory"
    manufacturing = "manufacturing"
    projects = "projects"
    purchasing = "purchasing"
    sales = "sales"
    salon = "salon"
    service = "service"
    ops = "ops"


class PlaybookStatus(StrEnum):
    draft = "draft"
    published = "published"
    archived = "archived"
    deprecated = "deprecated"


class Expectation(Strict):
    status: str = Field(default="completed", pattern="^(completed|failed|cancelled)$")
    outputs: dict[str, Any] = Field(
        default_factory=dict, description="A subset of the outputs that must match."
    )
    error: str | None = Field(default=None, description="A substring of the failure message.")


class Example(Strict):
    """Executable documentation: run by `playbook test` and by CI."""

    name: str
    initial_data: dict[str, Any] = Field(default_factory=dict)
    requested_by: str | None = None
    complete: list[StepCompletion] = Field(
        default_factory=list, description="Human steps completed, in order, as people would."
    )
    expect: Expectation = Field(default_factory=Expectation)


class Playbook(Strict):
    """A playbook definition: the YAML file, validated and typed."""

    id: str = Field(pattern=PLAYBOOK_ID, description="<name>.v<major>; the file is <id>.yaml.")
    name: str = Field(min_length=1)
    version: Int = Field(ge=1, description="Equals the .vN suffix of id.")
    module: Module
    category: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")
    status: PlaybookStatus = PlaybookStatus.draft
    smart_code: SmartCode
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    inputs: dict[str, Variable] = Field(default_factory=dict)
    steps: list[Step] = Field(min_length=1)
    outputs: dict[str, Any] = Field(default_factory=dict)
    success_criteria: list[Condition] = Field(default_factory=list)
    examples: list[Example] = Field(default_factory=list)
    template: bool = Field(
        default=False, description="A reusable skeleton (playbooks/templates/): never run; `playbook new` copies it."
    )
    derived_from: str | None = Field(
        default=None, pattern=PLAYBOOK_ID, description="The template or playbook this one was made from."
    )
    _index: dict[str, Step] | None = PrivateAttr(default=None)

    def walk(self) -> Iterator[tuple[tuple[str | int, ...], Step]]:
        """Every step with its path in the file, nested and compensation steps included, in order."""
        yield from _walk(self.steps, ("steps",))

    def step(self, step_id: str) -> Step:
        """The step with this id, nested ones included (indexed once per definition)."""
        if self._index is None:
            self._index = {step.id: step for _, step in self.walk()}
        return self._index[step_id]

    def sensitive_inputs(self) -> set[str]:
        return {name for name, spec in self.inputs.items() if spec.sensitive}


def _walk(steps: list[Step], path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], Step]]:
    for index, step in enumerate(steps):
        here = (*path, index)
        yield here, step
        for sub_path, body in zip(_child_paths(step), step.children(), strict=True):
            yield from _walk(body, (*here, *sub_path))
        if step.compensate:
            yield from _walk(step.compensate, (*here, "compensate"))


def _child_paths(step: Step) -> list[tuple[str | int, ...]]:
    if step.kind == "switch":
        cases = [("with", "cases", i, "steps") for i in range(len(step.children()) - 1)]
        return [*cases, ("with", "default")]
    return [("with", "steps")] if step.children() else []
