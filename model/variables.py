"""Variables: the typed fields of playbook inputs and human-step forms.

One spec language serves both; `validate_values` checks a data dict against a set of specs
(coercing where a user would expect, e.g. ``"42"`` for an integer from a CLI) and reports every
bad field at once; `json_schema` exports the set for forms and editors.
"""

from __future__ import annotations

import copy
import re
from datetime import date, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, Literal

from annotated_types import Interval, Len
from pydantic import (
    AllowInfNan,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
    create_model,
    model_validator,
)

from .scalars import Bool, Int


class VarType(StrEnum):
    string = "string"
    integer = "integer"
    float = "float"
    boolean = "boolean"
    json = "json"
    select = "select"
    multi_select = "multi_select"
    date = "date"
    datetime = "datetime"
    file = "file"


class FileRef(BaseModel):
    """A file value: a reference (URI or object key) and metadata, never the bytes."""

    model_config = ConfigDict(extra="forbid")

    uri: str = Field(min_length=1, description="Where the file lives: a URI or an object-store key.")
    name: str | None = Field(default=None, description="The file's display name.")
    content_type: str | None = Field(default=None, description="Its MIME type.")
    size: int | None = Field(default=None, ge=0, description="Its size in bytes.")


class Variable(BaseModel):
    """One input or form field."""

    model_config = ConfigDict(extra="forbid")

    type: VarType = Field(description="The value's type.")
    required: Bool = Field(default=False, description="A value must be given (a default counts).")
    default: Any = Field(default=None, description="Used when no value is given; must satisfy the constraints.")
    minimum: float | None = Field(default=None, description="Smallest allowed number (integer, float).")
    maximum: float | None = Field(default=None, description="Largest allowed number (integer, float).")
    min_length: Int | None = Field(default=None, ge=0, description="Shortest string / fewest selections.")
    max_length: Int | None = Field(default=None, ge=0, description="Longest string / most selections.")
    pattern: str | None = Field(default=None, description="A regular expression a string must match.")
    options: list[Any] | None = Field(default=None, description="Allowed values of select and multi_select.")
    sensitive: Bool = Field(default=False, description="Masked as *** in status, results, logs and audit rows.")
    description: str | None = Field(default=None, description="Help text shown to people filling the form.")
    label: str | None = Field(default=None, description="A human title for the field.")

    @model_validator(mode="after")
    def _consistent(self) -> Variable:
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern: not a valid regular expression ({exc})") from None
        if self.type in (VarType.select, VarType.multi_select) and not self.options:
            raise ValueError(f"options: a {self.type.value} field needs a non-empty list of options")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError("minimum: greater than maximum")
        if self.default is not None:
            problems = validate_values({"default": self}, {"default": self.default}).errors
            if problems:
                raise ValueError(f"default: does not satisfy its own constraints ({problems[0].message})")
        return self


class FieldError(BaseModel):
    """One bad field: which, which rule, and a sentence for people."""

    field: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class ValuesResult(BaseModel):
    """The outcome of validating a data dict: clean JSON-ready values or every error."""

    values: dict[str, Any] = Field(default_factory=dict)
    errors: list[FieldError] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return value


_NOT_BOOL = BeforeValidator(_not_bool)


def _cli_bool(value: Any) -> Any:
    # "true"/"false" are what a CLI user types for a boolean; "yes", "on" or 1 stay what they are: not booleans
    return {"true": True, "false": False}.get(value, value) if isinstance(value, str) else value


_BOOLEAN = Annotated[bool, BeforeValidator(_cli_bool), Strict()]


def _annotation(spec: Variable) -> Any:
    """The constrained pydantic type of one variable."""
    interval = Interval(ge=spec.minimum, le=spec.maximum)
    length = Len(spec.min_length or 0, spec.max_length)
    match spec.type:
        case VarType.string:
            text = StringConstraints(min_length=spec.min_length, max_length=spec.max_length, pattern=spec.pattern)
            return Annotated[str, text]
        case VarType.integer:
            return Annotated[int, interval, _NOT_BOOL]
        case VarType.float:
            return Annotated[float, interval, AllowInfNan(False), _NOT_BOOL]
        case VarType.boolean:
            return _BOOLEAN
        case VarType.json:
            return Any
        case VarType.select:
            return Literal[tuple(spec.options or ())]
        case VarType.multi_select:
            return Annotated[list[Literal[tuple(spec.options or ())]], length]  # type: ignore[misc]
        case VarType.date:
            return date
        case VarType.datetime:
            return datetime
        case VarType.file:
            return FileRef | str
    raise AssertionError(spec.type)


class _Form:
    """A set of variables as a cache key: equal when their definitions are."""

    __slots__ = ("key", "specs")

    def __init__(self, specs: dict[str, Variable]) -> None:
        self.specs = specs
        self.key = tuple((name, spec.model_dump_json()) for name, spec in specs.items())

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Form) and self.key == other.key


def form_model(specs: dict[str, Variable]) -> type[BaseModel]:
    """A pydantic model for a set of variables (python regexes, unknown fields refused), built once per form:
    creating a model class was most of a workflow task that shows or checks a form."""
    return _form_model(_Form(specs))


@lru_cache(maxsize=1024)
def _form_model(form: _Form) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for index, (name, spec) in enumerate(form.specs.items()):
        annotation = _annotation(spec)
        # internal names, the form's own as aliases: a field may be called `register`, `json` or `copy`
        if spec.required and spec.default is None:
            fields[f"f{index}"] = (annotation, Field(..., alias=name, description=spec.description))
        else:
            fields[f"f{index}"] = (annotation | None, Field(spec.default, alias=name, description=spec.description))
    config = ConfigDict(extra="forbid", regex_engine="python-re", title="form")
    return create_model("Form", __config__=config, **fields)


_FILE_MESSAGE = "must be a URI/object key string or an object {uri, name?, content_type?, size?} (type)"

_RULES: dict[str, str] = {
    "missing": "required",
    "extra_forbidden": "unknown_field",
    "greater_than_equal": "minimum",
    "less_than_equal": "maximum",
    "string_too_short": "min_length",
    "string_too_long": "max_length",
    "too_short": "min_length",
    "too_long": "max_length",
    "string_pattern_mismatch": "pattern",
    "literal_error": "options",
}


def _message(err: Any) -> str:
    ctx = err.get("ctx") or {}
    match err["type"]:
        case "missing":
            return "is required"
        case "extra_forbidden":
            return "is not a field of this form"
        case "greater_than_equal":
            return f"must be >= {ctx.get('ge')} (minimum)"
        case "less_than_equal":
            return f"must be <= {ctx.get('le')} (maximum)"
        case "string_too_short" | "too_short":
            return f"must have at least {ctx.get('min_length')} characters/items (min_length)"
        case "string_too_long" | "too_long":
            return f"must have at most {ctx.get('max_length')} characters/items (max_length)"
        case "string_pattern_mismatch":
            return f"does not match the pattern {ctx.get('pattern')!r} (pattern)"
        case "literal_error":
            return f"must be one of {ctx.get('expected')} (options)"
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"{message[0].lower()}{message[1:]} (type)"


def validate_values(specs: dict[str, Variable], data: dict[str, Any] | None) -> ValuesResult:
    """Validate and coerce ``data`` against ``specs``; every bad field is reported, none is guessed."""
    if data is not None and not isinstance(data, dict):
        return ValuesResult(errors=[FieldError(field="data", rule="type", message="must be a JSON object")])
    # an explicit null is no value at all: a required field then says "is required"
    given = {k: v for k, v in (data or {}).items() if v is not None or k not in specs or not specs[k].required}
    try:
        checked = form_model(specs).model_validate(given)
    except ValidationError as exc:
        errors: dict[str, FieldError] = {}
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "data"
            spec = specs.get(field)
            if spec is not None and spec.type == VarType.file:
                # both union members report; one sentence says what a file value is
                errors[field] = FieldError(field=field, rule="type", message=_FILE_MESSAGE)
            else:
                errors.setdefault(
                    field,
                    FieldError(field=field, rule=_RULES.get(err["type"], "type"), message=_message(err)),
                )
        return ValuesResult(errors=list(errors.values()))
    return ValuesResult(values=checked.model_dump(mode="json", by_alias=True))


def json_schema(specs: dict[str, Variable]) -> dict[str, Any]:
    """The JSON Schema of a form (sensitive fields are ``writeOnly``, labels become titles); the caller's copy."""
    return copy.deepcopy(_json_schema(_Form(specs)))


@lru_cache(maxsize=1024)
def _json_schema(form: _Form) -> dict[str, Any]:
    schema = _form_model(form).model_json_schema()
    for name, spec in form.specs.items():
        prop = schema["properties"][name]
        prop["title"] = spec.label or name.replace("_", " ").capitalize()
        if spec.sensitive:
            prop["writeOnly"] = True
    return schema
