"""A playbook's DAG as a Mermaid flowchart: groups as subgraphs, conditions on the edges."""

from __future__ import annotations

from .playbook import Playbook
from .steps import PEOPLE_TYPES, Step
from .validator import default_dependencies

_SHAPES = {"human": ('[/"', '"/]'), "approval": ('{"', '"}'), "wait": ('(["', '"])'), "set": ('[["', '"]]')}


def _label(text: str) -> str:
    return text.replace('"', "'").replace("\n", " ")


def _node(step: Step) -> str:
    left, right = _SHAPES.get(step.kind, ('["', '"]'))
    who = ""
    if step.kind in PEOPLE_TYPES and getattr(step.with_, "assignee_role", None):
        who = f"<br/>👤 {step.with_.assignee_role}"  # type: ignore[union-attr]
    return f"{left}{_label(step.title)}<br/><small>{step.type}</small>{who}{right}"


def _edge(src: str, dst: Step) -> str:
    if isinstance(dst.when, str):
        return f"  {src} -->|if {_label(dst.when)}| {dst.id}"
    return f"  {src} --> {dst.id}"


def _draw(steps: list[Step], lines: list[str], *, parallel: bool = False, entry: str | None = None) -> None:
    deps = default_dependencies(steps, parallel=parallel)
    for step in steps:
        bodies = _bodies(step)
        if bodies:
            lines.append(f'  subgraph {step.id}["{_label(step.title)} ({step.type})"]')
            for index, (label, body) in enumerate(bodies):
                entry_id = f"{step.id}__{index}" if label else None
                if entry_id:
                    lines.append(f'    {entry_id}(("{_label(label)}"))')
                _draw(body, lines, parallel=step.type == "parallel", entry=entry_id)
            lines.append("  end")
        else:
            lines.append(f"  {step.id}{_node(step)}")
        if deps[step.id]:
            lines.extend(_edge(dep, step) for dep in deps[step.id])
        elif entry:
            lines.append(_edge(entry, step))


def _bodies(step: Step) -> list[tuple[str, list[Step]]]:
    if step.kind == "switch":
        cases = [(f"when {case.when}", case.steps) for case in step.with_.cases]  # type: ignore[union-attr]
        return cases + ([("default", step.with_.default)] if step.with_.default else [])  # type: ignore[union-attr]
    if step.type == "foreach":
        return [(f"each {step.with_.as_}", step.children()[0])]  # type: ignore[union-attr]
    return [("", body) for body in step.children()]


def mermaid(playbook: Playbook) -> str:
    """The flowchart, top to bottom; paste into any Mermaid renderer (GitHub renders it in Markdown)."""
    lines = ["flowchart TD", f"  %% {playbook.id}: {_label(playbook.name)}"]
    _draw(playbook.steps, lines)
    return "\n".join(lines) + "\n"
