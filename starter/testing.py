"""`playbook test`: run playbooks' executable examples against the running stack; and `playbook docs`.

A playbook named by id runs the catalog's definition (what the worker serves); one named by a path runs the
file's definition, sent inline, so an edited or brand-new file is tested without re-syncing the catalog.
Examples run concurrently (bounded); each prints one line as it finishes, a failure its differences.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

from config import Settings
from model import Library, Playbook, load_library

from .client import PlaybookClient
from .docs import cmd_docs
from .examples import Case, ExampleOutcome, run_examples
from .plumbing import Add, UserError, me, run_async

YAML_SUFFIXES = (".yaml", ".yml")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def register(add: Add) -> None:
    """Add the authoring commands: `test` (run examples) and `docs` (the library's README)."""
    p = add("test", run_async(cmd_test), "run playbooks' examples against the running stack; exit 0 if all pass")
    p.add_argument(
        "targets", nargs="*", metavar="ID|PATH", help="playbook ids, files or folders (default: the whole library)"
    )
    p.add_argument("--example", metavar="TEXT", help="only examples whose name contains TEXT")
    p.add_argument("--concurrency", type=_positive, default=8, help="examples run at once (default 8)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds one example may take (default 60)")
    p.add_argument("--org", help="run every example in this organization (default: a fresh one per example)")
    p.add_argument("--inline", action="store_true", help="send library playbooks inline too, not by catalog id")
    p = add("docs", cmd_docs, "print the library's README: the table of `list --format markdown` and the graphs")
    p.add_argument("-o", "--output", metavar="PATH", help="write it there (only if the library is valid)")


class _Selection:
    """The playbooks to test, each with whether it goes inline, and the problems of files that do not load."""

    def __init__(self) -> None:
        self.playbooks: dict[str, tuple[Playbook, bool]] = {}
        self.problems: list[str] = []

    def add(self, playbook: Playbook, inline: bool) -> None:
        self.playbooks.setdefault(playbook.id, (playbook, inline))


def _select(args: argparse.Namespace, settings: Settings) -> _Selection:
    selection = _Selection()
    library: Library | None = None
    if not args.targets:
        library = load_library([settings.playbooks_dir])
        if not library.checked:
            raise UserError(f"no playbook files in {settings.playbooks_dir}")
        # one broken file must not hide the others' results: it is reported and fails the run
        selection.problems = [str(p) for p in library.problems]
        for playbook in library.playbooks.values():
            selection.add(playbook, args.inline)
    for target in args.targets:
        path = Path(target)
        if path.suffix in YAML_SUFFIXES and not path.exists():
            raise UserError(f"{target}: no such file")
        if path.is_dir() or path.suffix in YAML_SUFFIXES:
            found = load_library([path])
            if found.problems:
                raise UserError(
                    f"{found.problems[0]} ({len(found.problems)} problem(s); run: {me()} validate {target})"
                )
            if not found.playbooks and found.templates:
                raise UserError(f"{target}: {next(iter(found.templates))} is a template, never run: "
                                "make a playbook of it with playbook new")  # fmt: skip
            if not found.playbooks:
                raise UserError(f"{target}: no playbook files")
            for playbook in found.playbooks.values():
                selection.add(playbook, True)
            continue
        library = library or load_library([settings.playbooks_dir])
        if target not in library.playbooks:
            broken = f"; {len(library.problems)} file(s) there do not load" if library.problems else ""
            raise UserError(f"no playbook {target!r} in {settings.playbooks_dir} (see: {me()} list{broken})")
        selection.add(library.playbooks[target], args.inline)
    return selection


async def _check_worker(client: PlaybookClient, settings: Settings) -> None:
    """Refuse at once when no worker serves the task queue: every example would just time out."""
    described = await client.client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.client.namespace,
            task_queue=TaskQueue(name=client.task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    if not described.pollers:
        raise UserError(
            f"no worker polls task queue {client.task_queue!r} at {settings.temporal_address} "
            "(start one: playbook dev, or playbook worker)"
        )


async def cmd_test(args: argparse.Namespace, settings: Settings) -> int:
    """Run the selected examples; print a line per example and a summary; 0 only if every one passed."""
    selection = _select(args, settings)
    cases: list[Case] = []
    for playbook, inline in selection.playbooks.values():
        examples = [e for e in playbook.examples if not args.example or args.example.lower() in e.name.lower()]
        if not examples and not args.example:
            print(f"SKIP {playbook.id}: no examples")
        cases += [Case(playbook, example, inline) for example in examples]
    for problem in selection.problems:
        print(f"INVALID {problem}")
    if not cases:
        which = f" matching {args.example!r}" if args.example else ""
        raise UserError(f"no examples{which} to run")
    client = await PlaybookClient.connect(settings)
    await _check_worker(client, settings)

    def show(outcome: ExampleOutcome) -> None:
        print("\n".join(outcome.report()), flush=True)

    started = time.monotonic()
    outcomes = await run_examples(
        client, cases, concurrency=args.concurrency, organization=args.org, timeout=args.timeout, on_outcome=show
    )
    failed = [o for o in outcomes if not o.passed]
    summary = f"{len(outcomes) - len(failed)} passed, {len(failed)} failed"
    if selection.problems:
        summary += f", {len(selection.problems)} problem(s) in {settings.playbooks_dir} (run: {me()} validate)"
    print(f"{summary} in {time.monotonic() - started:.1f}s")
    if any("in the catalog of" in line for o in failed for line in o.report()):
        print("hint: the catalog lacks a playbook: restart the worker to sync it, or pass its file, or use --inline")
    return 1 if failed or selection.problems else 0


__all__ = ["register"]
