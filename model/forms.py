"""Example form data: what a person copies and edits to complete a waiting step."""

from __future__ import annotations

from typing import Any

from .variables import Variable, VarType

_PLACEHOLDERS: dict[VarType, Any] = {
    VarType.string: "...", VarType.integer: 0, VarType.float: 0, VarType.boolean: True, VarType.json: {},
    VarType.date: "2026-01-31", VarType.datetime: "2026-01-31T09:00:00Z", VarType.file: "s3://bucket/key",
}  # fmt: skip


def example_data(form: dict[str, Variable]) -> dict[str, Any]:
    """Form data valid in type (first option, zero, ...) for the hint a person copies and edits."""
    data: dict[str, Any] = {}
    for name, spec in form.items():
        if spec.default is not None:
            data[name] = spec.default
        elif spec.type == VarType.select:
            data[name] = (spec.options or [None])[0]
        elif spec.type == VarType.multi_select:
            data[name] = (spec.options or [])[:1]
        else:
            data[name] = _PLACEHOLDERS[spec.type]
    return data


def completion_signal(step_id: str, role: str | None, form: dict[str, Variable]) -> dict[str, Any]:
    """The `complete_step` signal argument that completes a waiting step."""
    signal: dict[str, Any] = {"step_id": step_id}
    if role:
        signal["role"] = role
    signal["completed_by"] = "your-name"
    signal["data"] = example_data(form)
    return signal
