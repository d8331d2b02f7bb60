"""Step types: common fields plus one ``with:`` model per type, as a discriminated union on ``type``.

Built-in types are members of the union. Further types are registered by name with their ``with:``
model (`register_step_type`); the parser accepts them as `CustomStep` and the validator checks
their ``with:`` against the registered model — adding a type never touches the interpreter.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, JsonValue, Tag, field_validator, model_validator

from .durations import Duration
from .scalars import Int
from .variables import Variable

STEP_ID = r"^[a-z][a-z0-9_]*$"
SMART_CODE = r"^HERA\.[A-Z0-9]+\.[A-Z0-9]+(\.[A-Z0-9]+){1,5}\.v[0-9]+$"
Template = Annotated[str, Field(pattern=r"\{\{"), Field(description="A {{ template }}.")]
Number = int | float | Template
"""A number, or a template that gives one."""
Condition = str | bool
"""A bare expression (no braces), or a literal true/false."""
SmartCode = Annotated[str, Field(pattern=SMART_CODE, description="HERA.<MODULE>.<PART>(.<PART>){1,5}.v<N>")]


class Strict(BaseModel):
    """Every playbook model: unknown fields are errors (a typo is never silently ignored)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Retry(Strict):
    """How a failed step is retried (validation failures never are)."""

    max_attempts: Int = Field(default=3, ge=1, description="Attempts in all, the first included.")
    initial_interval: Duration | None = Field(default=None, description="Wait before the first retry.")
    backoff_coefficient: float = Field(default=2.0, ge=1.0, description="Each wait is the last times this.")
    maximum_interval: Duration | None = Field(default=None, description="The longest wait between attempts.")


class OnError(StrEnum):
    fail = "fail"
    continue_ = "continue"


class OnTimeout(StrEnum):
    fail = "fail"
    skip = "skip"
    escalate = "escalate"


class OnReject(StrEnum):
    fail = "fail"
    continue_ = "continue"


class StepBase(Strict):
    """Fields every step has."""

    id: str = Field(pattern=STEP_ID, description="Unique across the playbook, nested steps included.")
    type: str = Field(description="The step type.")
    name: str | None = Field(default=None, description="A human title.")
    description: str | None = Field(default=None, description="What the step is for.")
    depends_on: list[str] | None = Field(
        default=None, description="Steps of the same list this one waits for; default: the step before it."
    )
    when: Condition | None = Field(default=None, description="Run only if true; else the step is skipped.")
    smart_code: SmartCode | None = Field(default=None, description="HERA smart code of what the step writes.")
    timeout: Duration | None = Field(default=None, description="Deadline (activity timeout, or human deadline).")
    retry: Retry | None = Field(default=None, description="Retry policy of an automated step.")
    on_error: OnError = Field(default=OnError.fail, description="fail the execution, or continue.")
    compensate: list[Step] | None = Field(
        default=None, description="Steps run (saga) if the execution later fails or is cancelled."
    )

    @property
    def kind(self) -> str:
        """The canonical type: an alias (`manual`, `conditional`, `webhook` …) as the type it stands for."""
        return ALIASES.get(self.type, self.type)

    @property
    def title(self) -> str:
        return self.name or self.id.replace("_", " ").capitalize()

    def children(self) -> list[list[Step]]:
        """Nested step lists (group bodies, branches), for walking the whole playbook."""
        return []


# ---------------------------------------------------------------- business writes
class EntityWith(Strict):
    entity_type: str = Field(min_length=1, description="The kind of entity (customer, stylist…).")
    entity_name: str = Field(min_length=1, description="Its display name.")
    entity_code: str | None = Field(default=None, description="Business key; upserts by (type, code).")
    entity_id: str | None = Field(default=None, description="Update this existing entity.")
    status: str | None = None
    fields: dict[str, Any] = Field(default_factory=dict, description="Dynamic fields (typed by value).")
    metadata: dict[str, Any] = Field(default_factory=dict)


class LineWith(Strict):
    line_type: str | None = None
    entity_id: str | None = None
    quantity: Number = Field(description="How many (a number or a template).")
    unit_price: Number = Field(description="Price per unit.")
    line_amount: Number | None = Field(default=None, description="Default: quantity × unit_price.")
    smart_code: SmartCode | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class TransactionWith(Strict):
    transaction_type: str = Field(min_length=1)
    transaction_code: str | None = None
    transaction_date: str | None = None
    source_entity_id: str | None = None
    target_entity_id: str | None = None
    currency: str | None = None
    total_amount: Number | None = Field(default=None, description="Default: the exact sum of line amounts.")
    status: str | None = None
    lines: list[LineWith] | Template = Field(default_factory=list, description="Lines, or a template giving them.")
    metadata: dict[str, Any] = Field(default_factory=dict)


class RelationshipWith(Strict):
    from_entity_id: str = Field(min_length=1)
    to_entity_id: str = Field(min_length=1)
    relationship_type: str = Field(min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict)


class Rule(Strict):
    assert_: Condition = Field(alias="assert", description="A condition that must hold.")
    message: str = Field(description="Shown when it does not.")


class UniqueRule(Strict):
    entity_type: str
    field: str
    value: Any
    message: str


class ExistsRule(Strict):
    entity_id: str
    message: str


class ValidationWith(Strict):
    rules: list[Rule] = Field(default_factory=list)
    unique: list[UniqueRule] = Field(default_factory=list)
    exists: list[ExistsRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_empty(self) -> ValidationWith:
        if not (self.rules or self.unique or self.exists):
            raise ValueError("a validation step needs at least one of rules, unique, exists")
        return self


class _BusinessStep(StepBase):
    smart_code: SmartCode = Field(description="Required: HERA smart code of the business data written.")


class EntityStep(_BusinessStep):
    type: Literal["entity"]
    with_: EntityWith = Field(alias="with")


class TransactionStep(_BusinessStep):
    type: Literal["transaction"]
    with_: TransactionWith = Field(alias="with")


class RelationshipStep(_BusinessStep):
    type: Literal["relationship"]
    with_: RelationshipWith = Field(alias="with")


class ValidationStep(StepBase):
    type: Literal["validation"]
    with_: ValidationWith = Field(alias="with")


# ---------------------------------------------------------------- people
class Notify(Strict):
    """Who hears about an escalation, and how (through the notification step type)."""

    channel: Literal["email", "webhook", "log"]
    to: str | list[str]


class _PeopleWith(Strict):
    assignee_role: str | None = Field(default=None, description="Only this role may complete the step.")
    notify: Notify | None = Field(default=None, description="Told each time the step escalates to the next role.")
    on_timeout: OnTimeout = Field(default=OnTimeout.fail, description="What the deadline (timeout) does.")
    escalate_to: str | list[str] | None = Field(default=None, description="Role(s) to escalate to, in order.")
    default: dict[str, Any] | None = Field(default=None, description="Data used when the deadline skips.")

    @property
    def escalation_roles(self) -> list[str]:
        if self.escalate_to is None:
            return []
        return [self.escalate_to] if isinstance(self.escalate_to, str) else list(self.escalate_to)

    @model_validator(mode="after")
    def _escalation(self) -> _PeopleWith:
        if self.on_timeout == OnTimeout.escalate and not self.escalate_to:
            raise ValueError("escalate_to: on_timeout escalate needs escalate_to (a role or a list of roles)")
        return self


class HumanWith(_PeopleWith):
    instructions: str = Field(min_length=1, description="What the person is asked to do.")
    form: dict[str, Variable] = Field(default_factory=dict, description="The data the person submits.")


APPROVAL_FORM = {
    "approved": Variable(type="boolean", required=True, description="Approve (true) or reject (false)."),
    "comment": Variable(type="string", description="Why."),
}


class ApprovalWith(_PeopleWith):
    instructions: str | None = None
    approvals_required: Int = Field(default=1, ge=1, description="Distinct people who must approve.")
    on_reject: OnReject = Field(default=OnReject.fail, description="fail the execution, or continue.")

    @property
    def form(self) -> dict[str, Variable]:
        return APPROVAL_FORM


class HumanStep(StepBase):
    type: Literal["human", "manual"]
    with_: HumanWith = Field(alias="with")


class ApprovalStep(StepBase):
    type: Literal["approval"]
    with_: ApprovalWith = Field(alias="with", default_factory=ApprovalWith)


# ---------------------------------------------------------------- in the workflow
class SetWith(Strict):
    vars: dict[str, Any] = Field(min_length=1, description="Variables to compute (global to the run).")

    @field_validator("vars")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not re.match(STEP_ID, name):
                raise ValueError(f"{name!r} is not a variable name (lower-case letters, digits, _)")
        return value


class SetStep(StepBase):
    type: Literal["set"]
    with_: SetWith = Field(alias="with")


class WaitWith(Strict):
    duration: Duration | Template | None = Field(default=None, description="How long: 30s, 48h, or a template.")
    until: str | None = Field(default=None, description="An ISO 8601 time, or a template giving one.")

    @model_validator(mode="after")
    def _one(self) -> WaitWith:
        if (self.duration is None) == (self.until is None):
            raise ValueError("give exactly one of duration, until")
        return self


class WaitStep(StepBase):
    type: Literal["wait"]
    with_: WaitWith = Field(alias="with")


class GroupWith(Strict):
    steps: list[Step] = Field(min_length=1)


class ParallelStep(StepBase):
    type: Literal["parallel"]
    with_: GroupWith = Field(alias="with")

    def children(self) -> list[list[Step]]:
        return [self.with_.steps]


class SequentialStep(StepBase):
    type: Literal["sequential"]
    with_: GroupWith = Field(alias="with")

    def children(self) -> list[list[Step]]:
        return [self.with_.steps]


class ForeachWith(Strict):
    items: list[Any] | Template = Field(description="A list, or a template giving one.")
    as_: str = Field(default="item", alias="as", pattern=STEP_ID, description="The loop variable's name.")
    concurrency: Int = Field(default=1, ge=1, le=500, description="Iterations run at once.")
    steps: list[Step] = Field(min_length=1)


class ForeachStep(StepBase):
    type: Literal["foreach"]
    with_: ForeachWith = Field(alias="with")

    def children(self) -> list[list[Step]]:
        return [self.with_.steps]


class Case(Strict):
    when: Condition
    steps: list[Step] = Field(min_length=1)


class SwitchWith(Strict):
    cases: list[Case] = Field(min_length=1)
    default: list[Step] = Field(default_factory=list)


class SwitchStep(StepBase):
    type: Literal["switch", "conditional"]
    with_: SwitchWith = Field(alias="with")

    def children(self) -> list[list[Step]]:
        return [case.steps for case in self.with_.cases] + [self.with_.default]


class PlaybookWith(Strict):
    playbook_id: str = Field(min_length=1)
    inputs: dict[str, Any] = Field(default_factory=dict)


class PlaybookStep(StepBase):
    type: Literal["playbook"]
    with_: PlaybookWith = Field(alias="with")


# ---------------------------------------------------------------- the outside world
class NotificationWith(Strict):
    channel: Literal["email", "webhook", "log"]
    to: str | list[str]
    subject: str | None = None
    body: str


class NotificationStep(StepBase):
    type: Literal["notification"]
    with_: NotificationWith = Field(alias="with")


class HttpWith(Strict):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    url: str = Field(min_length=1)
    headers: dict[str, str] = Field(default_factory=dict)
    json_: Any = Field(default=None, alias="json")
    expect_status: int | list[int] | None = None


HTTP_ALIASES = ("http", "external_api", "webhook", "api_call")
ALIASES = {"manual": "human", "conditional": "switch", **{name: "http" for name in HTTP_ALIASES}}
"""Other names a step type is written with (the Agentical vocabulary); a step keeps the name as written."""


class HttpStep(StepBase):
    type: Literal["http", "external_api", "webhook", "api_call"]
    with_: HttpWith = Field(alias="with")


# ---------------------------------------------------------------- registered types
_REGISTRY: dict[str, type[BaseModel]] = {}


def register_step_type(name: str, with_model: type[BaseModel]) -> None:
    """Make ``type: <name>`` a valid step whose ``with:`` is checked against ``with_model``."""
    if not re.match(STEP_ID, name) or name in BUILTIN_TYPES:
        raise ValueError(f"cannot register step type {name!r}")
    _REGISTRY[name] = with_model


def registered_step_types() -> dict[str, type[BaseModel]]:
    return dict(_REGISTRY)


_MEMBERS: dict[str, type[StepBase]] = {
    "entity": EntityStep,
    "transaction": TransactionStep,
    "relationship": RelationshipStep,
    "validation": ValidationStep,
    "human": HumanStep,
    "approval": ApprovalStep,
    "set": SetStep,
    "wait": WaitStep,
    "parallel": ParallelStep,
    "sequential": SequentialStep,
    "foreach": ForeachStep,
    "switch": SwitchStep,
    "playbook": PlaybookStep,
    "notification": NotificationStep,
    "http": HttpStep,
}
BUILTIN_TYPES = frozenset(_MEMBERS) | frozenset(ALIASES)


class CustomStep(StepBase):
    """A step of a registered type; its ``with:`` is checked against the registered model."""

    type: str = Field(
        description="A registered step type.",
        json_schema_extra={"not": {"enum": list[JsonValue](sorted(BUILTIN_TYPES))}},
    )  # so that editors match a built-in type against its own schema only
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")

    @field_validator("type")
    @classmethod
    def _registered(cls, value: str) -> str:
        if value not in _REGISTRY:
            known = ", ".join(sorted([*BUILTIN_TYPES, *_REGISTRY]))
            raise ValueError(f"unknown step type {value!r} (known: {known})")
        return value


def step_tag(value: Any) -> str:
    """The union member a step belongs to: its type (an alias's canonical one), `custom` for registered types."""
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    kind = ALIASES.get(kind, kind) if isinstance(kind, str) else kind
    return kind if kind in _MEMBERS else "custom"


Step = Annotated[
    Annotated[EntityStep, Tag("entity")]
    | Annotated[TransactionStep, Tag("transaction")]
    | Annotated[RelationshipStep, Tag("relationship")]
    | Annotated[ValidationStep, Tag("validation")]
    | Annotated[HumanStep, Tag("human")]
    | Annotated[ApprovalStep, Tag("approval")]
    | Annotated[SetStep, Tag("set")]
    | Annotated[WaitStep, Tag("wait")]
    | Annotated[ParallelStep, Tag("parallel")]
    | Annotated[SequentialStep, Tag("sequential")]
    | Annotated[ForeachStep, Tag("foreach")]
    | Annotated[SwitchStep, Tag("switch")]
    | Annotated[PlaybookStep, Tag("playbook")]
    | Annotated[NotificationStep, Tag("notification")]
    | Annotated[HttpStep, Tag("http")]
    | Annotated[CustomStep, Tag("custom")],
    Discriminator(step_tag),
]
"""Any step, chosen by its ``type``."""

PEOPLE_TYPES = frozenset({"human", "approval"})
_RECURSIVE: list[type[BaseModel]] = [*_MEMBERS.values(), CustomStep, GroupWith, ForeachWith, Case, SwitchWith, StepBase]
for _model in _RECURSIVE:  # models that contain `Step` resolve the forward reference once it exists
    _model.model_rebuild()
