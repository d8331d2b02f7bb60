"""What the store takes and gives: typed write inputs (invalid data raises `InvalidWrite`) and results."""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Self
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import InvalidWrite

_SMART_CODE = re.compile(r"HERA(\.[A-Z0-9]+){3,7}\.v[0-9]+")

def _smart_code(value: str) -> str:
    if not _SMART_CODE.fullmatch(value):
        raise ValueError("must be a HERA smart code such as HERA.CRM.CUST.ENT.PROF.v1")
    return value


def _currency(value: str) -> str:
    if not re.fullmatch(r"[A-Z]{3}", value):
        raise ValueError("must be a three-letter ISO 4217 code such as EUR")
    return value


SmartCode = Annotated[str, AfterValidator(_smart_code)]
_FIELD_TYPES = (bool, int, float, Decimal, str, date, dict, list)
Money = Annotated[Decimal, Field(allow_inf_nan=False)]
Text50 = Annotated[str, StringConstraints(min_length=1, max_length=50)]
Text100 = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Text255 = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class _Input(_Model):
    """An input model: invalid data raises `InvalidWrite` (not pydantic's ValidationError)."""

    @model_validator(mode="wrap")
    @classmethod
    def _as_invalid_write(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        try:
            return handler(data)
        except ValidationError as exc:
            raise InvalidWrite.from_validation_error(exc) from None


class StepKey(_Input):
    """Identifies one run of a step: the idempotency key of everything it writes."""

    execution_id: Text255
    """The execution (workflow id); its row must exist, see `Store.upsert_execution`."""
    step_id: Text255
    """The step's id in the playbook."""
    iteration: str = ""
    """Tells apart runs of one step inside a loop (e.g. the foreach index); "" elsewhere."""


class EntityWrite(_Input):
    """An entity upsert and its dynamic fields."""

    entity_type: Text100
    """Kind of entity (customer, vendor, ...)."""
    entity_name: Text255
    """Display name."""
    entity_code: Text255 | None = None
    """Business key: with it, the entity of this type and code is updated if it exists."""
    entity_id: UUID | None = None
    """Update this existing entity (of the same type) instead of upserting by code."""
    status: Text50 | None = None
    """Entity status; on insert it defaults to ``active``, on update it is kept."""
    smart_code: SmartCode
    """The step's smart code, stored on the entity and its fields."""
    fields: dict[Text100, Any] = Field(default_factory=dict)
    """Dynamic fields, typed by Python type: bool, int/float/Decimal (number), date, datetime,
    dict/list (json), str (text). None deletes the field."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Merged into the entity's metadata (execution_id and step_id are added)."""

    @field_validator("fields")
    @classmethod
    def _storable(cls, fields: dict[str, Any]) -> dict[str, Any]:
        for name, value in fields.items():
            if value is not None and not isinstance(value, _FIELD_TYPES):
                raise ValueError(f"{name!r} has unsupported type {type(value).__name__}")
            if isinstance(value, float | Decimal) and not math.isfinite(value):
                raise ValueError(f"{name!r} must be a finite number")
        return fields


class TransactionLineWrite(_Input):
    """One line of a business transaction."""

    line_type: Text100 | None = None
    """Kind of line (item, tax, ...)."""
    entity_id: UUID | None = None
    """The entity the line is about (a product, ...); must exist in the organization."""
    quantity: Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
    """How many; never negative."""
    unit_price: Money
    """Price of one."""
    line_amount: Money | None = None
    """Defaults to quantity * unit_price, exactly."""
    smart_code: SmartCode | None = None
    """The line's smart code."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Stored on the line (execution_id and step_id are added)."""


class TransactionWrite(_Input):
    """A business transaction with its lines."""

    transaction_type: Text100
    """Kind of transaction (sale, purchase, ...)."""
    transaction_code: Text255 | None = None
    """Business reference (an invoice number, ...)."""
    transaction_date: datetime | date | None = None
    """Defaults to now; a date means midnight UTC, a naive datetime is taken as UTC."""
    source_entity_id: UUID | None = None
    """Where it comes from (e.g. the customer); must exist in the organization."""
    target_entity_id: UUID | None = None
    """Where it goes; must exist in the organization."""
    currency: Annotated[str, AfterValidator(_currency)] | None = None
    """ISO 4217 code."""
    total_amount: Money | None = None
    """Defaults to the exact sum of the line amounts."""
    status: Text50 | None = None
    """Defaults to ``active``."""
    smart_code: SmartCode
    """The step's smart code."""
    lines: list[TransactionLineWrite] = Field(default_factory=list)
    """The lines, numbered from 1 in this order."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Stored on the transaction (execution_id and step_id are added)."""

    @field_validator("lines", mode="before")
    @classmethod
    def _lines(cls, lines: Any) -> Any:
        # Validated one by one so that a line's errors name it: lines[2].quantity.
        if not isinstance(lines, list):
            return lines
        validated = []
        for index, line in enumerate(lines):
            try:
                validated.append(TransactionLineWrite.model_validate(line))
            except InvalidWrite as exc:
                raise exc.within(f"lines[{index}]") from None
        return validated


class RelationshipWrite(_Input):
    """A relationship between two entities of the organization (upserted on its four keys)."""

    from_entity_id: UUID
    """The entity it starts from."""
    to_entity_id: UUID
    """The entity it points to."""
    relationship_type: Text100
    """Kind of relationship (parent_of, supplies, ...)."""
    smart_code: SmartCode
    """The step's smart code."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Merged into the relationship's metadata (execution_id and step_id are added)."""


class ExecutionWrite(_Input):
    execution_id: Text255
    playbook_id: Text255
    smart_code: SmartCode
    status: Text50
    requested_by: str | None
    metadata: dict[str, Any]


class DefinitionWrite(_Input):
    playbook_id: Text255
    definition: dict[str, Any]
    smart_code: SmartCode


class _Result(_Model):
    model_config = ConfigDict(frozen=True)


class NoResult(_Result):
    """The result of a step that writes no business data."""


class EntityResult(_Result):
    """Output of an entity step."""

    entity_id: UUID
    """The entity written."""
    entity_code: str | None
    """Its code."""
    created: bool
    """True if inserted, False if an existing entity was updated."""


class TransactionResult(_Result):
    """Output of a transaction step."""

    transaction_id: UUID
    """The transaction written."""
    transaction_code: str | None
    """Its code."""
    total_amount: Decimal
    """Its total, exact."""


class RelationshipResult(_Result):
    """Output of a relationship step."""

    relationship_id: UUID
    """The relationship written (or found, for an existing one)."""


class EntityRecord(_Model):
    """An entity as stored, with its dynamic fields decoded to Python values."""

    entity_id: UUID
    """Its id."""
    entity_type: str
    """Its type."""
    entity_name: str
    """Its name."""
    entity_code: str | None
    """Its code."""
    status: str
    """Its status."""
    smart_code: str
    """Its smart code."""
    fields: dict[str, Any]
    """Dynamic fields: str, Decimal, bool, date, datetime (UTC) or JSON values."""
    metadata: dict[str, Any]
    """Its metadata."""
    created_at: datetime
    """When it was inserted."""
    updated_at: datetime
    """When it was last written."""


