"""Runtime commands of the `playbook` CLI: dev, worker, run, status, complete, pause, resume, cancel."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shlex
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowFailureError

from config import Settings
from model import PlaybookError, load_playbook
from model.execution import StatusView, StepView
from model.status import DONE, ENDED
from model.variables import validate_values

from .client import PlaybookClient, StepRejected
from .plumbing import Add, UserError, format_duration, json_arg, me, run_async


def _took(step: StepView, now: datetime) -> str:
    """How long a step took, or has been going on (running, waiting) so far."""
    if step.started_at is None:
        return ""
    end = step.finished_at if step.status in DONE else now
    return format_duration(((end or now) - step.started_at).total_seconds())


def _step_line(step: StepView, width: int, now: datetime) -> str:
    notes = []
    if step.completed_by:
        notes.append(f"by {step.completed_by}")
    if step.attempts > 1:
        notes.append(f"{step.attempts} attempts")
    if step.child_workflow_id:
        notes.append(f"child {step.child_workflow_id}")
    line = f"  {step.id:<{width}}  {step.type:<12} {step.status:<10} {_took(step, now):>7}  {', '.join(notes)}"
    return line.rstrip()


def _waiting_lines(status: StatusView) -> list[str]:
    """What each waiting step needs, and the command that completes it (with example values)."""
    lines = []
    for waiting in status.waiting_for:
        role = f" (role {waiting.assignee_role})" if waiting.assignee_role else ""
        due = f", due {waiting.deadline:%Y-%m-%d %H:%M} UTC" if waiting.deadline else ""
        lines.append(f"waiting for {waiting.step_id}{role}{due}: {waiting.instructions or waiting.name}")
        example = waiting.example.get("data", {})
        role_flag = f" --role {waiting.assignee_role}" if waiting.assignee_role else ""
        lines.append(
            f"  complete it: {me()} complete {shlex.quote(status.execution_id)} {waiting.step_id} "
            f"--data '{json.dumps(example)}'{role_flag} --by YOUR_NAME"
        )
    return lines


def _step_width(status: StatusView) -> int:
    return max([len(step.id) for step in status.steps] + [4])


def render_status(status: StatusView, *, now: datetime | None = None) -> str:
    """A readable view of an execution: a table of its steps (status, duration, who completed them),
    then what is waiting and how to complete it, rejections, the error and the outputs."""
    now = now or datetime.now(UTC)
    width = _step_width(status)
    lines = [
        f"{status.execution_id}  {status.playbook_id}  {status.status.upper()}  "
        f"{status.progress.completed}/{status.progress.total} steps ({status.progress.percent}%)",
        f"  {'step':<{width}}  {'type':<12} {'status':<10} {'took':>7}",
    ]
    for step in status.steps:
        lines.append(_step_line(step, width, now))
        if step.error:
            lines.append(f"  {'':<{width}}  error: {step.error}")
    lines += _waiting_lines(status)
    for rejected in status.rejected[-3:]:
        lines.append(f"rejected: {rejected.step_id}: {rejected.reason}")
    if status.error:
        lines.append(f"error: {status.error}")
    if status.outputs:
        lines.append(f"outputs: {json.dumps(status.outputs)}")
    for criterion in status.success_criteria:
        lines.append(f"criterion {'met' if criterion.met else 'UNMET'}: {criterion.criterion}")
    if status.definition_sha:
        replaced = f" (deprecated, superseded by {status.superseded_by})" if status.deprecated else ""
        lines.append(f"definition {status.definition_sha[:12]}{replaced}")
    for note in status.notes:
        lines.append(f"note by {note.by or '-'}: {note.text}")
    return "\n".join(lines)


async def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    data = json_arg(args.data)
    _check_inputs(settings, args.id, data)
    client = await PlaybookClient.connect(settings)
    handle = await client.start(
        args.id, organization=args.org, data=data, requested_by=args.requested_by or os.environ.get("USER")
    )
    print(f"started {handle.id}")
    if not args.wait:
        print(f"  status: {me()} status {shlex.quote(handle.id)}")
        return 0
    return await _follow(client, handle.id)


def _check_inputs(settings: Settings, playbook_id: str, data: dict[str, Any]) -> None:
    """Refuse inputs the library's definition refuses, before anything starts (no execution born failed).
    A playbook only in an organization's catalog is checked by the execution itself, as always."""
    found = sorted(settings.playbooks_dir.rglob(f"{playbook_id}.yaml"))
    try:
        playbook = load_playbook(found[0]) if found else None
    except PlaybookError:
        return  # a broken file: the catalog the worker serves decides
    if playbook is None:
        return
    if errors := validate_values(playbook.inputs, data).errors:
        raise UserError(f"--data: {'; '.join(map(str, errors))} (inputs of {playbook_id}; nothing was started)")


async def _follow(client: PlaybookClient, execution_id: str) -> int:
    """Print each step as it changes status, until the execution ends or waits for a person."""
    shown: dict[str, str] = {}
    while True:
        status = await client.status(execution_id)
        now = datetime.now(UTC)
        width = _step_width(status)
        for step in status.steps:
            if step.status != "pending" and shown.get(step.id) != step.status:
                shown[step.id] = step.status
                print(_step_line(step, width, now), flush=True)
        progress = f"{status.progress.completed}/{status.progress.total} steps ({status.progress.percent}%)"
        if status.status in ENDED:
            print(f"{status.status.upper()}  {progress}")
            if status.error:
                print(f"error: {status.error}")
            if status.outputs:
                print(f"outputs: {json.dumps(status.outputs)}")
            return 1 if status.status == "failed" else 0
        if status.waiting_for:
            print(f"{status.status.upper()}  {progress}")
            print("\n".join(_waiting_lines(status)), flush=True)
            return 0
        if (ending := await client.ending(execution_id)) is not None:  # ended as the query cannot tell
            return _temporal_ending(*ending)
        await asyncio.sleep(0.3)


def _temporal_ending(temporal_status: str, message: str | None) -> int:
    print(f"{temporal_status} (as Temporal reports it)" + (f"\nerror: {message}" if message else ""))
    return 0 if temporal_status == "COMPLETED" else 1


async def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    client = await PlaybookClient.connect(settings)
    status = await client.status(args.execution_id)
    print(status.model_dump_json(indent=2) if args.json else render_status(status))
    if not args.json and status.status not in ENDED and (ending := await client.ending(args.execution_id)):
        _temporal_ending(*ending)  # e.g. terminated: the execution's own state never saw its ending
    return 0


async def cmd_complete(args: argparse.Namespace, settings: Settings) -> int:
    data = json_arg(args.data)
    client = await PlaybookClient.connect(settings)
    try:
        await client.complete(
            args.execution_id, args.step_id, data=data, completed_by=args.by, role=args.role
        )
    except StepRejected as exc:
        raise UserError(f"rejected: {exc}") from None
    print(f"completed {args.step_id}")
    return 0


async def cmd_note(args: argparse.Namespace, settings: Settings) -> int:
    client = await PlaybookClient.connect(settings)
    try:
        how = await client.add_note(args.execution_id, args.text, by=args.by or os.environ.get("USER"))
    except WorkflowFailureError as exc:
        raise UserError(f"note not recorded: {getattr(exc.cause, 'message', None) or exc.cause}") from None
    print(f"note {how} on {args.execution_id}")
    return 0


def _control(name: str) -> Callable[[argparse.Namespace, Settings], Any]:
    async def command(args: argparse.Namespace, settings: Settings) -> int:
        client = await PlaybookClient.connect(settings)
        await getattr(client, name)(args.execution_id, args.reason)
        print(f"{name} sent to {args.execution_id}")
        return 0

    return command


async def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from activities.observability import configure_logging
    from runtime.worker import run_worker

    configure_logging(logging.INFO)
    await run_worker(settings, scripts=args.scripts)
    return 0


async def cmd_dev(args: argparse.Namespace, settings: Settings) -> int:
    from activities.observability import configure_logging

    from .dev import run_dev

    configure_logging(logging.WARNING)
    logging.getLogger("playbook").setLevel(logging.INFO)
    codec_port = args.codec_port or args.ui_port + 1
    await run_dev(settings, state_dir=Path(args.state_dir), ui_port=args.ui_port, port=args.port, codec_port=codec_port)
    return 0


def register_runtime_commands(add: Add) -> None:
    p = add("dev", run_async(cmd_dev), "run everything locally: Temporal + Web UI, Postgres, workers, gateway")
    p.add_argument("--state-dir", default=".local", help="where Temporal and Postgres keep their data")
    p.add_argument("--port", type=int, default=7233, help="Temporal frontend port")
    p.add_argument("--ui-port", type=int, default=8233, help="Temporal Web UI port")
    p.add_argument("--codec-port", type=int, default=None, help="codec server port (default: the UI port + 1)")
    p = add("worker", run_async(cmd_worker), "run a worker (configured by the environment)")
    p.add_argument(
        "--scripts", action="store_true", help="run `script` steps only, on PLAYBOOK_SCRIPT_TASK_QUEUE"
    )
    p = add("run", run_async(cmd_run), "start a playbook")
    p.add_argument("id", metavar="ID")
    p.add_argument("--org", required=True, help="organization code (org_123) or uuid")
    p.add_argument("--data", default="{}", help="the inputs, as a JSON object")
    p.add_argument("--requested-by", help="who asks (default: $USER)")
    p.add_argument("--wait", action="store_true", help="follow progress until done or a person is needed")
    p = add("status", run_async(cmd_status), "show an execution's progress")
    p.add_argument("execution_id", metavar="EXEC_ID")
    p.add_argument("--json", action="store_true", help="the raw status query")
    p = add("complete", run_async(cmd_complete), "complete a waiting human or approval step")
    p.add_argument("execution_id", metavar="EXEC_ID")
    p.add_argument("step_id", metavar="STEP_ID")
    p.add_argument("--data", default="{}", help="the form's data, as a JSON object")
    p.add_argument("--by", help="who completes it")
    p.add_argument("--role", help="the role they act in")
    p = add("note", run_async(cmd_note), "add a note to an execution, also after it has ended (lessons learned)")
    p.add_argument("execution_id", metavar="EXEC_ID")
    p.add_argument("text", metavar="TEXT")
    p.add_argument("--by", help="who writes it (default: $USER)")
    for name, text in (
        ("pause", "hold new steps"),
        ("resume", "continue a paused execution"),
        ("cancel", "stop and compensate"),
    ):
        p = add(name, run_async(_control(name)), text)
        p.add_argument("execution_id", metavar="EXEC_ID")
        p.add_argument("--reason")

