"""Operator commands of the `playbook` CLI: `setup` (prepare a Temporal cluster) and `stats` (performance).

`playbook setup` makes an existing cluster ready for the engine, idempotently: the namespace (created when
missing) and the five search attributes operators filter executions by (`model.search_attributes`).
`playbook dev` needs none of it: its dev server gets them from start-up flags.

`playbook stats` reports, per organization and playbook, executions by status, the success rate of the
ended ones, and the median and p95 durations of executions and of each step. The figures come from the
views of migration 0003 (`playbook_stats`, `playbook_step_stats`) over the universal tables, read through
the Store under each organization's row-level security.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

from google.protobuf.duration_pb2 import Duration
from pydantic import BaseModel
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, RegisterNamespaceRequest
from temporalio.service import RPCError, RPCStatusCode

from config import Settings, connect
from model import search_attributes as sa
from store import Store, StoreError

from .examples import TEST_ORGS
from .plumbing import Add, UserError, format_duration, run_async

__all__ = ["ExecutionStats", "StepStats", "ensure_setup", "playbook_stats", "register", "render_stats"]

_T = TypeVar("_T")


# ---------------------------------------------------------------------------------------------- setup


def _type_name(value: int) -> str:
    """``KeywordList`` for INDEXED_VALUE_TYPE_KEYWORD_LIST (the names the temporal CLI and the UI use)."""
    words = IndexedValueType.Name(value).removeprefix("INDEXED_VALUE_TYPE_").split("_")  # type: ignore[arg-type]
    return "".join(word.capitalize() for word in words)


async def _retrying(
    deadline: float,
    what: str,
    call: Callable[[], Awaitable[_T]],
    transient: tuple[RPCStatusCode, ...] = (RPCStatusCode.UNAVAILABLE,),
) -> _T:
    """`call()` again every second while it fails transiently, until `deadline` (time.monotonic())."""
    while True:
        try:
            return await call()
        except RPCError as exc:
            if exc.status not in transient or time.monotonic() >= deadline:
                raise UserError(f"{what}: {exc.message}") from None
        except RuntimeError as exc:  # Client.connect: the server is not there (yet)
            if time.monotonic() >= deadline:
                raise UserError(f"{what}: {exc}") from None
        await asyncio.sleep(1)


async def ensure_setup(settings: Settings, *, wait: float = 30, retention: timedelta = timedelta(days=7)) -> list[str]:
    """Make the cluster at ``settings.temporal_address`` ready; return one line per thing checked or done.

    Waits up to `wait` seconds for the server (and for a new namespace to become visible). A search
    attribute already registered with the wrong type is an error: filters on it would not work.
    """
    deadline = time.monotonic() + wait
    namespace = settings.temporal_namespace
    client = await _retrying(
        deadline, f"cannot reach Temporal at {settings.temporal_address}",
        lambda: connect(settings),
    )  # fmt: skip
    report = []
    try:
        await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=namespace))
        report.append(f"namespace {namespace}: exists")
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        retention_seconds = int(retention.total_seconds())
        await client.workflow_service.register_namespace(
            RegisterNamespaceRequest(
                namespace=namespace, workflow_execution_retention_period=Duration(seconds=retention_seconds)
            )
        )
        report.append(f"namespace {namespace}: created (retention {retention.days} days)")

    def listed() -> Awaitable[Any]:
        return client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))

    # A new namespace reaches every frontend's cache after a moment: NOT_FOUND until then.
    transient = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.NOT_FOUND)
    existing = dict((await _retrying(deadline, "search attributes", listed, transient)).custom_attributes)
    wanted = {key.name: int(key.indexed_value_type) for key in sa.ALL}
    clashes = [
        f"{name} is {_type_name(existing[name])}, needs {_type_name(kind)}"
        for name, kind in wanted.items()
        if name in existing and existing[name] != kind
    ]
    if clashes:
        raise UserError("search attributes registered with another type: " + "; ".join(clashes))
    missing = {name: kind for name, kind in wanted.items() if name not in existing}
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)  # type: ignore[arg-type]
        )
        now = dict((await listed()).custom_attributes)
        if absent := sorted(set(missing) - set(now)):
            raise UserError(f"search attributes not registered by the server: {', '.join(absent)}")
    for name, kind in wanted.items():
        state = "registered" if name in missing else "already registered"
        report.append(f"search attribute {name} ({_type_name(kind)}): {state}")
    return report


async def cmd_setup(args: argparse.Namespace, settings: Settings) -> int:
    """`playbook setup`: namespace and search attributes, idempotently."""
    for line in await ensure_setup(settings, wait=args.wait, retention=timedelta(days=args.retention_days)):
        print(line)
    return 0


# ---------------------------------------------------------------------------------------------- stats


class StepStats(BaseModel):
    """One step of a playbook in one organization (a row of the ``playbook_step_stats`` view)."""

    step_id: str
    step_type: str | None
    runs: int
    completed: int
    failed: int
    skipped: int
    cancelled: int
    success_rate: float | None
    """completed / (completed + failed); None before any ended so."""
    median_s: float | None
    """Median duration of the completed runs, in seconds."""
    p95_s: float | None
    """95th percentile (interpolated) of the completed runs' durations, in seconds."""


class ExecutionStats(BaseModel):
    """One playbook in one organization (a row of the ``playbook_stats`` view) with its steps."""

    organization: str
    """The organization's code."""
    organization_id: UUID
    playbook_id: str | None
    executions: int
    running: int
    paused: int
    completed: int
    failed: int
    cancelled: int
    success_rate: float | None
    """completed / (completed + failed + cancelled); None while none has ended."""
    median_s: float | None
    """Median duration of the ended executions (first step's start to last step's end), in seconds."""
    p95_s: float | None
    """95th percentile (interpolated) of those durations, in seconds."""
    steps: list[StepStats]


_EXECUTION_SQL = """
    SELECT playbook_id, executions, running, paused, completed, failed, cancelled, success_rate, median_s, p95_s
    FROM playbook_stats WHERE $1::text IS NULL OR playbook_id = $1 ORDER BY playbook_id
"""
_STEP_SQL = """
    SELECT playbook_id, step_id, step_type, runs, completed, failed, skipped, cancelled, success_rate, median_s,
           p95_s
    FROM playbook_step_stats WHERE $1::text IS NULL OR playbook_id = $1 ORDER BY playbook_id, mean_position, step_id
"""


async def playbook_stats(
    store: Store, organizations: Mapping[str, UUID], playbook_id: str | None = None
) -> list[ExecutionStats]:
    """The figures of each organization in `organizations` (code -> id), read under its own RLS."""
    report = []
    for code, org in organizations.items():
        async with store.transaction(org) as conn:
            executions = await conn.fetch(_EXECUTION_SQL, playbook_id)
            steps = await conn.fetch(_STEP_SQL, playbook_id)
        by_playbook: dict[str | None, list[StepStats]] = {}
        for row in steps:
            by_playbook.setdefault(row["playbook_id"], []).append(
                StepStats.model_validate({k: v for k, v in row.items() if k != "playbook_id"})
            )
        report += [
            ExecutionStats(organization=code, organization_id=org, steps=by_playbook.get(row["playbook_id"], []),
                           **dict(row.items()))
            for row in executions
        ]  # fmt: skip
    return report


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def render_stats(report: list[ExecutionStats]) -> str:
    """The report as aligned text: a heading per playbook and organization, then a table of its steps."""
    if not report:
        return "no executions recorded yet"
    blocks = []
    for item in report:
        lines = [
            f"{item.playbook_id}  ({item.organization})  {item.executions} "
            f"execution{'' if item.executions == 1 else 's'}: {item.completed} completed, "
            f"{item.failed} failed, {item.cancelled} cancelled, {item.running} running, {item.paused} paused",
            f"  success {_percent(item.success_rate)}   duration median {format_duration(item.median_s)}"
            f"   p95 {format_duration(item.p95_s)}",
        ]
        width = max([len(step.step_id) for step in item.steps] + [4])
        lines.append(
            f"  {'step':<{width}}  {'type':<12} {'runs':>5} {'done':>5} {'failed':>6} {'skipped':>7} "
            f"{'success':>8} {'median':>8} {'p95':>8}"
        )
        for step in item.steps:
            lines.append(
                f"  {step.step_id:<{width}}  {step.step_type or '-':<12} {step.runs:>5} {step.completed:>5} "
                f"{step.failed:>6} {step.skipped:>7} {_percent(step.success_rate):>8} "
                f"{format_duration(step.median_s):>8} {format_duration(step.p95_s):>8}"
            )
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def database_url(settings: Settings, state_dir: Path) -> tuple[str, Callable[[], None]]:
    """DATABASE_URL, else the Postgres of `playbook dev` (found running, or started for this command)."""
    if settings.database_url:
        return settings.database_url, lambda: None
    if not (state_dir / "postgres" / "pgdata" / "PG_VERSION").exists():
        raise UserError(f"no database: set DATABASE_URL, or run `playbook dev` first (it keeps one in {state_dir})")
    from store.pgserver import start_postgres

    server = start_postgres(state_dir / "postgres")  # left running if `playbook dev` runs it
    return server.dsn, server.stop


async def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    """`playbook stats`: per-playbook figures of one organization, or of all."""
    dsn, stop = database_url(settings, Path(args.state_dir))
    try:
        async with await Store.open(dsn) as store:
            if args.org:
                organizations = {args.org: await store.resolve_organization(args.org)}
            else:  # `playbook test`'s own organizations are test runs, not the user's work
                organizations = {code: org for code, org in (await store.organizations()).items()
                                 if args.include_tests or not code.startswith(TEST_ORGS)}  # fmt: skip
            report = await playbook_stats(store, organizations, args.playbook)
    except StoreError as exc:
        raise UserError(str(exc)) from None
    finally:
        stop()
    if args.json:
        print(json.dumps([item.model_dump(mode="json") for item in report], indent=2))
    else:
        print(render_stats(report))
    return 0


def register(add: Add) -> None:
    """Add `setup` and `stats` to the CLI."""
    p = add("setup", run_async(cmd_setup), "prepare a Temporal cluster: namespace and search attributes")
    p.add_argument(
        "--wait",
        type=float,
        default=30,
        metavar="SECONDS",
        help="how long to wait for the server to answer (default 30)",
    )
    p.add_argument(
        "--retention-days",
        type=int,
        default=7,
        metavar="DAYS",
        help="history retention of a namespace created here (default 7)",
    )
    p = add(
        "stats",
        run_async(cmd_stats),
        "per-playbook executions, success rate, median and p95 durations per step (from Postgres)",
    )
    p.add_argument("--org", help="one organization (code or uuid); default: every organization")
    p.add_argument("--include-tests", action="store_true",
                   help=f"also the {TEST_ORGS}* organizations `playbook test` runs its examples in")  # fmt: skip
    p.add_argument("--playbook", metavar="ID", help="one playbook")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.add_argument(
        "--state-dir",
        default=".local",
        help="without DATABASE_URL: the `playbook dev` state directory whose Postgres to read",
    )
