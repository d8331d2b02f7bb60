"""HTML forms from a form's JSON Schema, and the submitted form back to typed data.

The task's form arrives as JSON Schema (SPEC §3, `waiting_for[].form`), a start form is made the same way from
the playbook's `inputs` (`json_schema`), so one reading serves both. A submitted HTML form is strings; each is
turned into the field's type here, and what cannot be (bad JSON, a letter in a number) is reported beside its
field without asking the engine. The engine stays the judge of every rule: what it refuses comes back as
`errors` keyed by field name, shown beside the field with what the person typed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

PREFIX = "v."
"""Inputs are named `v.<field>`: a playbook's field may be called `csrf` or `next` like the form's own."""


@dataclass(frozen=True)
class Field:
    """One field of a form, as the template draws it."""

    name: str
    kind: str
    label: str
    required: bool = False
    description: str | None = None
    sensitive: bool = False
    options: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    default: Any = None

    @property
    def html_pattern(self) -> str | None:
        """The pattern as the browser's `pattern` attribute means it: the engine searches (a match anywhere
        counts), the browser matches the whole value, so the pattern may be surrounded by anything."""
        return None if self.pattern is None else f"[\\s\\S]*(?:{self.pattern})[\\s\\S]*"

    def option_text(self, option: Any) -> str:
        return option if isinstance(option, str) else json.dumps(option)


def _branch(prop: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The value branch of `anyOf: [value, null]`, and whether the schema was a union with a file reference."""
    branches = [b for b in prop.get("anyOf", [prop]) if b.get("type") != "null"]
    is_file = any("$ref" in b and b["$ref"].endswith("/FileRef") for b in branches)
    return (branches[0] if branches else {}), is_file


def _kind(value: dict[str, Any], is_file: bool) -> str:
    if is_file:
        return "file"
    kind = value.get("type")
    if kind == "array":
        return "multi_select" if "enum" in value.get("items", {}) else "json"
    if "enum" in value:
        return "select"
    if kind == "string":
        return {"date": "date", "date-time": "datetime"}.get(value.get("format", ""), "text")
    return {"integer": "integer", "number": "number", "boolean": "checkbox"}.get(kind or "", "json")


def fields(schema: dict[str, Any]) -> list[Field]:
    """The fields of a form's JSON Schema, in the playbook's order."""
    required = set(schema.get("required", []))
    found = []
    for name, prop in schema.get("properties", {}).items():
        value, is_file = _branch(prop)
        kind = _kind(value, is_file)
        options = value.get("items", {}).get("enum", []) if kind == "multi_select" else value.get("enum", [])
        length = ("minItems", "maxItems") if kind == "multi_select" else ("minLength", "maxLength")
        found.append(Field(
            name=name, kind=kind, label=prop.get("title") or name, required=name in required,
            description=prop.get("description"), sensitive=bool(prop.get("writeOnly")), options=tuple(options),
            minimum=value.get("minimum"), maximum=value.get("maximum"), min_length=value.get(length[0]),
            max_length=value.get(length[1]), pattern=value.get("pattern"), default=prop.get("default"),
        ))  # fmt: skip
    return found


@dataclass
class Submission:
    """A submitted form: typed data for the engine, what was typed (to show again), errors found on the way."""

    data: dict[str, Any] = field(default_factory=dict)
    typed: dict[str, str | list[str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def _number(text: str, kind: str) -> Any:
    try:
        return int(text) if kind == "integer" else float(text)
    except ValueError:
        # not a number at all: the engine says so in its own words (same rule as the API)
        return text


def read(form: list[Field], submitted: FormData) -> Submission:
    """Typed data from a submitted form; an empty field is no value (the engine then applies defaults)."""
    out = Submission()
    for f in form:
        if f.kind == "checkbox":
            out.data[f.name] = submitted.get(PREFIX + f.name) == "true"
            out.typed[f.name] = "true" if out.data[f.name] else ""
            continue
        if f.kind == "multi_select":
            chosen = [str(v) for v in submitted.getlist(PREFIX + f.name)]
            out.typed[f.name] = chosen
            by_text = {f.option_text(o): o for o in f.options}
            out.data[f.name] = [by_text.get(c, c) for c in chosen]
            continue
        text = str(submitted.get(PREFIX + f.name) or "")
        if not f.sensitive:
            out.typed[f.name] = text
        if text.strip() == "":
            continue
        if f.kind in ("integer", "number"):
            out.data[f.name] = _number(text.strip(), f.kind)
        elif f.kind == "select":
            out.data[f.name] = {f.option_text(o): o for o in f.options}.get(text, text)
        elif f.kind == "json":
            try:
                out.data[f.name] = json.loads(text)
            except json.JSONDecodeError as exc:
                out.errors[f.name] = f"is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        elif f.kind == "datetime":
            # the browser's datetime-local has no zone: the form says times are UTC, and so does the value
            out.data[f.name] = text if text.endswith("Z") or "+" in text[10:] else f"{text}Z"
        else:
            out.data[f.name] = text
    return out


def shown(form: list[Field], values: dict[str, Any]) -> dict[str, str | list[str]]:
    """What a form shows before anyone typed: the defaults, as the inputs hold them (sensitive ones never)."""
    typed: dict[str, str | list[str]] = {}
    for f in form:
        value = values.get(f.name, f.default)
        if f.sensitive or value is None:
            continue
        if f.kind == "multi_select":
            typed[f.name] = [f.option_text(v) for v in value]
        elif f.kind == "checkbox":
            typed[f.name] = "true" if value else ""
        elif f.kind in ("json", "file") and not isinstance(value, str):
            typed[f.name] = json.dumps(value, indent=2) if f.kind == "json" else str(value.get("uri", ""))
        elif f.kind == "select":
            typed[f.name] = f.option_text(value)
        elif f.kind == "datetime":
            typed[f.name] = str(value).removesuffix("Z")[:19]  # what datetime-local holds: no zone
        else:
            typed[f.name] = str(value)
    return typed


def field_errors(errors: list[Any], prefix: str) -> dict[str, str]:
    """The engine's per-field problems (`data.credit_limit`) keyed by form field (`credit_limit`)."""
    keyed: dict[str, str] = {}
    for problem in errors:
        name = problem.field.removeprefix(f"{prefix}.")
        keyed.setdefault(name, problem.message)
    return keyed
