"""The `playbook` command. Every user mistake ends in one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from model import Playbook, PlaybookError, load_library
from model.graph import mermaid

from .commands import register_runtime_commands
from .config import Settings


class UserError(Exception):
    """A mistake the user can fix; printed as one line."""


def _library(settings: Settings) -> dict[str, Playbook]:
    library = load_library([settings.playbooks_dir])
    if library.problems:
        raise UserError(
            f"{len(library.problems)} problem(s) in {settings.playbooks_dir}; run: playbook validate"
        )
    return library.playbooks


def _find(settings: Settings, ident: str) -> Playbook:
    path = Path(ident)
    if path.suffix in (".yaml", ".yml") and path.exists():
        from model import load_playbook

        return load_playbook(path)
    playbooks = _library(settings)
    if ident not in playbooks:
        raise UserError(f"no playbook {ident!r} in {settings.playbooks_dir} (see: playbook list)")
    return playbooks[ident]


def cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    library = load_library([Path(p) for p in args.paths])
    for problem in library.problems:
        print(problem)
    summary = f"{library.checked} file(s) checked, {len(library.playbooks)} valid, {len(library.problems)} problem(s)"
    print(summary, file=sys.stderr)
    return 1 if library.problems or not library.checked else 0


def cmd_schema(args: argparse.Namespace, settings: Settings) -> int:
    schema = Playbook.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Playbook"
    print(json.dumps(schema, indent=2))
    return 0


def _row(pb: Playbook) -> dict[str, Any]:
    walked = [s for _, s in pb.walk()]
    return {
        "id": pb.id,
        "name": pb.name,
        "module": pb.module.value,
        "category": pb.category,
        "status": pb.status.value,
        "steps": len(walked),
        "human_steps": sum(s.type in ("human", "approval") for s in walked),
        "description": pb.description,
    }


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    rows = [_row(pb) for pb in sorted(_library(settings).values(), key=lambda p: (p.module, p.id))]
    if args.module:
        rows = [r for r in rows if r["module"] == args.module]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max([len(r["id"]) for r in rows] + [2])
    for r in rows:
        print(
            f"{r['id']:<{width}}  {r['module']:<13} {r['steps']:>3} steps {r['human_steps']:>2} human  {r['name']}"
        )
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    pb = _find(settings, args.id)
    if args.json:
        print(json.dumps(pb.model_dump(mode="json", by_alias=True, exclude_none=True), indent=2))
        return 0
    print(
        f"{pb.id} — {pb.name} ({pb.module.value}{'/' + pb.category if pb.category else ''}, {pb.status.value})"
    )
    if pb.description:
        print(f"  {pb.description}")
    print("inputs:")
    for name, spec in pb.inputs.items():
        flags = " required" if spec.required else ""
        flags += " sensitive" if spec.sensitive else ""
        print(f"  {name}: {spec.type.value}{flags}")
    print("steps:")
    for path, step in pb.walk():
        depth = sum(1 for p in path if p in ("steps", "compensate", "default")) - 1
        when = f"  when {step.when}" if step.when is not None else ""
        print(f"  {'  ' * depth}{step.id} [{step.type}]{when}")
    for name in pb.outputs:
        print(f"output: {name}")
    return 0


def cmd_graph(args: argparse.Namespace, settings: Settings) -> int:
    print(mermaid(_find(settings, args.id)), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="playbook", description="Business and operations playbooks on Temporal."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, handler: Callable[[argparse.Namespace, Settings], int], help: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(handler=handler)
        return p

    p = add("validate", cmd_validate, "check playbook files or folders; one line per problem")
    p.add_argument("paths", nargs="+", metavar="PATH")
    add("schema", cmd_schema, "print the JSON Schema of the playbook language (for editors)")
    p = add("list", cmd_list, "list the playbook library")
    p.add_argument("--module", help="only this module")
    p.add_argument("--json", action="store_true", help="JSON output")
    p = add("show", cmd_show, "describe one playbook")
    p.add_argument("id", metavar="ID")
    p.add_argument("--json", action="store_true", help="the parsed definition as JSON")
    p = add("graph", cmd_graph, "print a playbook's steps as a Mermaid flowchart")
    p.add_argument("id", metavar="ID")
    register_runtime_commands(add)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = Settings.from_env()
    try:
        code = args.handler(args, settings)
    except (UserError, PlaybookError) as exc:
        print(f"playbook: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # the Temporal SDK may crash at interpreter exit after a clean run (sdk-python #300)
