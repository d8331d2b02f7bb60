"""What operators read about a running execution: a short Markdown progress view.

The Markdown is the workflow's *current details* in the Temporal Web UI: done / running / waiting,
with the instructions and the exact signal to send to complete a waiting step.
"""

from __future__ import annotations

import json

from .run import RunState
from .status import PASSED, StepStatus

_ICONS = {
    StepStatus.pending: "⏳", StepStatus.running: "▶️", StepStatus.waiting: "✋", StepStatus.completed: "✅",
    StepStatus.failed: "❌", StepStatus.skipped: "⏭️", StepStatus.cancelled: "⛔",
}  # fmt: skip


def markdown(state: RunState, execution_id: str) -> str:
    """The progress view, masked like every other view of the execution."""
    playbook = state.playbook
    views = list(state.steps.values())
    done = sum(v.status in PASSED for v in views)
    lines = [
        f"**{playbook.name}** (`{playbook.id}`) · org `{state.input.organization_id}` · "
        f"**{state.status.upper()}** · {done}/{len(views)} steps",
        "",
    ]
    # a list, not a table: the Web UI draws Markdown tables without cell spacing ("approvalpending")
    lines += [
        f"- {_ICONS.get(v.status, '')} {v.name} `{v.id}` · {v.type} · **{v.status}**"
        + (f" · by {v.completed_by}" if v.completed_by else "")
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
            json.dumps(waiting.example, indent=2),  # one short line per field: the UI does not wrap code
            "```",
        ]
    if state.error:
        lines += ["", f"**Error:** {state.error}"]
    text: str = state.masked("\n".join(lines))
    return text
