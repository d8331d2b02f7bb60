"""What operators read about a running execution: a short Markdown progress view, and example form data.

The Markdown is the workflow's *current details* in the Temporal Web UI: done / running / waiting,
with the instructions and the exact signal to send to complete a waiting step.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .variables import Variable, VarType

if TYPE_CHECKING:
    from .run import RunState

_ICONS = {
    "pending": "⏳", "running": "▶️", "waiting": "✋", "completed": "✅",
    "failed": "❌", "skipped": "⏭️", "cancelled": "⛔",
}  # fmt: skip
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


def markdown(state: RunState, execution_id: str) -> str:
    """The progress view, masked like every other view of the execution."""
    playbook = state.playbook
    views = list(state.steps.values())
    done = sum(v.status in ("completed", "skipped") for v in views)
    lines = [
        f"**{playbook.name}** (`{playbook.id}`) · org `{state.input.organization_id}` · "
        f"**{state.status.upper()}** · {done}/{len(views)} steps",
        "",
        "| | step | type | status | by |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {_ICONS.get(v.status, '')} | {v.name} `{v.id}` | {v.type} | {v.status} | {v.completed_by or ''} |"
        for v in views
    ]
    for waiting in state.waiting_views(execution_id):
        deadline = f", deadline {waiting.deadline:%Y-%m-%d %H:%M} UTC" if waiting.deadline else ""
        role = f", role `{waiting.assignee_role}`" if waiting.assignee_role else ""
        lines += [
            "",
            f"### ✋ Waiting: {waiting.name} (`{waiting.step_id}`){role}{deadline}",
            f"> {waiting.instructions.strip()}" if waiting.instructions else "",
            "",
            "Complete it: *Send a Signal* → name `complete_step`, input:",
            "```json",
            json.dumps(waiting.example),
            "```",
        ]
    if state.error:
        lines += ["", f"**Error:** {state.error}"]
    text: str = state.masked("\n".join(lines))
    return text
