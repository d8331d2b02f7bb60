"""The `playbook` command. Every user mistake ends in one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from activities.plugins import PluginError, load_step_types
from config import Settings
from model import Playbook, PlaybookError, load_library, load_playbook
from model.graph import mermaid
from model.playbook import PlaybookStatus
from model.schema import playbook_schema

from .catalog_view import catalog_list, performance
from .commands import register_runtime_commands
from .docs import load_valid_library, markdown_table, ordered, playbook_row
from .lifecycle import register as register_lifecycle
from .operations import register as register_operations
from .orgs import register as register_orgs
from .plumbing import Add, UserError, me, run_async
from .templates import register as register_templates
from .templates import template_rows
from .testing import register as register_authoring_commands
from .tokens import register as register_tokens


def _find(settings: Settings, ident: str) -> Playbook:
    path = Path(ident)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return load_playbook(path)
    # a playbook's file is named after its id: read that one file, not the whole library
    found = sorted(settings.playbooks_dir.rglob(f"{ident}.yaml"))
    if not found:
        raise UserError(f"no playbook {ident!r} in {settings.playbooks_dir} (see: {me()} list)")
    return load_playbook(found[0])


def cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    library = load_library([Path(p) for p in args.paths])
    for problem in library.problems:
        print(problem)
    valid = f"{len(library.playbooks)} valid" + (f" (+{len(library.templates)} templates)" if library.templates else "")
    summary = f"{library.checked} file(s) checked, {valid}, {len(library.problems)} problem(s)"
    print(summary, file=sys.stderr)
    return 1 if library.problems or not library.checked else 0


def cmd_schema(args: argparse.Namespace, settings: Settings) -> int:
    print(json.dumps(playbook_schema(), indent=2))
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    """The library grouped by module (or its templates, or an organization's catalog): text, JSON or Markdown."""
    if args.org:
        return run_async(catalog_list)(args, settings)
    library = load_valid_library(settings)
    fmt = "json" if args.json else args.format
    if args.templates:
        rows = template_rows(library)
        if fmt == "json":
            print(json.dumps(rows, indent=2))
            return 0
        width = max([len(row["id"]) for row in rows] + [2])
        for row in rows:
            print(f"{row['id']:<{width}}  {row['module']:<13} {row['steps']:>3} steps  made from it: "
                  f"{row['made_from_it']:>3}  {row['name']}")  # fmt: skip
        return 0
    playbooks = [pb for pb in ordered(library, args.module) if args.status in (None, pb.status.value)]
    if fmt == "json":
        print(json.dumps([playbook_row(pb) for pb in playbooks], indent=2))
    elif fmt == "markdown":
        print(markdown_table(library, playbooks, settings.playbooks_dir), end="")
    else:
        width = max([len(pb.id) for pb in playbooks] + [2])
        for row in map(playbook_row, playbooks):
            print(
                f"{row['id']:<{width}}  {row['module']:<13} {row['status']:<10} {row['steps']:>3} steps "
                f"{row['human_steps']:>2} human  {row['name']}"
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
    print(performance(settings, pb.id, args.state_dir))
    return 0


def cmd_graph(args: argparse.Namespace, settings: Settings) -> int:
    print(mermaid(_find(settings, args.id)), end="")
    return 0


def build_parser(extra: Sequence[Callable[[Add], None]] = ()) -> argparse.ArgumentParser:
    """The parser; `extra` registers commands of the layers above (the gateway's `serve`)."""
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
    p.add_argument("--format", choices=("text", "json", "markdown"), default="text", help="output format")
    p.add_argument("--json", action="store_true", help="same as --format json")
    p.add_argument("--status", choices=[s.value for s in PlaybookStatus], help="only playbooks with this status")
    p.add_argument("--templates", action="store_true", help="the templates, with how many playbooks came from each")
    p.add_argument("--org", help="what this organization runs by id, from the catalog (own, shared, platform)")
    p.add_argument("--state-dir", default=".local", help="without DATABASE_URL: the `playbook dev` state dir")
    p = add("show", cmd_show, "describe one playbook, with its performance when a database is there")
    p.add_argument("id", metavar="ID")
    p.add_argument("--json", action="store_true", help="the parsed definition as JSON")
    p.add_argument("--state-dir", default=".local", help="without DATABASE_URL: the `playbook dev` state dir")
    p = add("graph", cmd_graph, "print a playbook's steps as a Mermaid flowchart")
    p.add_argument("id", metavar="ID")
    register_runtime_commands(add)
    register_operations(add)
    register_authoring_commands(add)
    register_lifecycle(add)
    register_templates(add)
    register_tokens(add)
    register_orgs(add)
    for register in extra:
        register(add)
    return parser


def main(argv: list[str] | None = None, *, extra: Sequence[Callable[[Add], None]] = ()) -> None:
    args = build_parser(extra).parse_args(argv)
    settings = Settings.from_env()
    try:
        load_step_types()  # built-in activity types and plugins: validate, schema and show know them all
        code = args.handler(args, settings)
    except (UserError, PlaybookError, PluginError) as exc:
        print(f"playbook: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # the Temporal SDK may crash at interpreter exit after a clean run (sdk-python #300)
