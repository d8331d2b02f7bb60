"""The library's documentation: the rows of `playbook list`, its Markdown table, and playbooks/README.md.

`playbook docs -o playbooks/README.md` regenerates the README from the YAML files (a test fails when the
committed one is out of date), so the catalog people read is always the one that runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from config import Settings
from model import Library, Playbook, load_library
from model.graph import mermaid
from model.steps import PEOPLE_TYPES

from .plumbing import UserError, me

REGENERATE = "playbook docs -o playbooks/README.md"


def load_valid_library(settings: Settings) -> Library:
    """The library of PLAYBOOKS_DIR; a library with problems is refused in one line."""
    library = load_library([settings.playbooks_dir])
    if library.problems:
        raise UserError(
            f"{len(library.problems)} problem(s) in {settings.playbooks_dir}; run: {me()} validate "
            f"{settings.playbooks_dir}"
        )
    return library


def playbook_row(playbook: Playbook) -> dict[str, Any]:
    """One playbook as `playbook list` shows it (the JSON format's object)."""
    walked = [step for _, step in playbook.walk()]
    return {
        "id": playbook.id,
        "name": playbook.name,
        "module": playbook.module.value,
        "category": playbook.category,
        "status": playbook.status.value,
        "steps": len(walked),
        "human_steps": sum(step.kind in PEOPLE_TYPES for step in walked),
        "description": playbook.description,
    }


def ordered(library: Library, module: str | None = None) -> list[Playbook]:
    """The library's playbooks grouped by module (in id order within one), optionally one module only."""
    playbooks = sorted(library.playbooks.values(), key=lambda p: (p.module.value, p.id))
    return [p for p in playbooks if module is None or p.module.value == module]


def _cell(text: str | None) -> str:
    """Table-safe text: one line, pipes and angle brackets escaped."""
    if not text:
        return "—"
    return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;")


def _link(library: Library, playbook: Playbook, base: Path) -> str:
    path = library.files[playbook.id]
    return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()


def markdown_table(library: Library, playbooks: list[Playbook], base: Path) -> str:
    """The Markdown table of `playbooks`: each id links to its file, relative to `base` (the library folder)."""
    lines = [
        "| id | module | category | steps | human steps | description |",
        "|---|---|---|--:|--:|---|",
    ]
    for playbook in playbooks:
        row = playbook_row(playbook)
        link = f"[{row['id']}]({_link(library, playbook, base)})"
        cells = [link, row["module"], _cell(row["category"]), str(row["steps"]), str(row["human_steps"])]
        lines.append(f"| {' | '.join(cells)} | {_cell(row['description'])} |")
    return "\n".join(lines) + "\n"


def readme(library: Library, base: Path) -> str:
    """playbooks/README.md: a summary per module, the table, and a Mermaid graph per playbook."""
    playbooks = ordered(library)
    modules: dict[str, list[Playbook]] = {}
    for playbook in playbooks:
        modules.setdefault(playbook.module.value, []).append(playbook)
    examples = sum(len(p.examples) for p in playbooks)
    out = [
        "# The playbook library",
        "",
        f"<!-- Generated from the YAML files of this folder by `{REGENERATE}`: do not edit by hand. -->",
        "",
        f"{len(playbooks)} playbooks in {len(modules)} modules, with {examples} executable examples "
        "(`playbook test ID` runs a playbook's examples against a running stack; CI runs them all). "
        "How to write one: [the authoring guide](../docs/authoring.md).",
        "",
        "| module | playbooks | categories |",
        "|---|--:|---|",
    ]
    for module, members in modules.items():
        categories = sorted({p.category for p in members if p.category})
        out.append(f"| [{module}](#{module}) | {len(members)} | {_cell(', '.join(categories))} |")
    out += ["", "## Playbooks", "", markdown_table(library, playbooks, base).rstrip("\n")]
    for module, members in modules.items():
        out += ["", f"## {module}"]
        for playbook in members:
            out += ["", f"### {playbook.id} — {_cell(playbook.name)}", ""]
            if playbook.description:
                out += [" ".join(playbook.description.split()), ""]
            facts = [f"[{library.files[playbook.id].name}]({_link(library, playbook, base)})", playbook.status.value]
            if playbook.category:
                facts.insert(1, playbook.category)
            if playbook.examples:
                facts.append(f"examples: {'; '.join(_cell(e.name) for e in playbook.examples)}")
            out += [" · ".join(facts), "", "```mermaid", mermaid(playbook).rstrip("\n"), "```"]
    return "\n".join(out) + "\n"


def cmd_docs(args: argparse.Namespace, settings: Settings) -> int:
    """Print (or write, only if the library is valid) the library's README."""
    library = load_valid_library(settings)
    # links are relative to where the README lives, so they work on GitHub and in an editor alike
    text = readme(library, Path(args.output).parent if args.output else settings.playbooks_dir)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}: {len(library.playbooks)} playbooks", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
