"""A worker: migrations and catalog sync once, then PlaybookWorkflow and its activities until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import py_compile
import signal
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import activities.outside  # noqa: F401  (registers the http and notification step types)
import workflows
from activities.catalog import sync_catalog
from activities.engine import EngineActivities
from activities.observability import (
    DroppedSignals,
    StepTelemetry,
    configure_logging,
    metrics_address,
    metrics_runtime,
)
from activities.plugins import PluginError, load_step_types
from activities.steps import StepActivities
from config import Settings, connect
from model.execution import StepRequest
from store import Store
from workflows import PlaybookNoteWorkflow, PlaybookWorkflow
from workflows.automated import SCRIPT_TYPE

log = logging.getLogger("playbook.worker")
SCRIPTS_HELP = "run `script` steps only, on PLAYBOOK_SCRIPT_TASK_QUEUE (default playbooks-scripts)"

# deterministic, pure libraries shared with workflow code instead of re-imported per run
PASSTHROUGH = ("model", "jinja2", "markupsafe", "pydantic", "pydantic_core", "annotated_types", "yaml")


def workflow_runner() -> SandboxedWorkflowRunner:
    """The SDK sandbox: for workflows other than the engine's, and for the replay suite's check of the engine's.

    The engine's workflows run outside it (`sandboxed=False`); replayed in it, the workflow package is imported
    anew, so a call the sandbox restricts there (a clock, randomness, I/O) fails the replay.
    """
    _compile_workflow_modules()
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH))


def _compile_workflow_modules() -> None:
    """Write the workflow package's bytecode once per process: the sandbox imports it anew for every run, and
    without .pyc files (PYTHONDONTWRITEBYTECODE, editable installs) each run would compile it from source."""
    for path in Path(workflows.__file__).parent.glob("*.py"):
        with contextlib.suppress(OSError, py_compile.PyCompileError):
            py_compile.compile(str(path), doraise=True)


def build_worker(
    client: Client,
    store: Store,
    *,
    task_queue: str,
    script_task_queue: str = Settings.script_task_queue,
    after_write: Callable[[StepRequest], Awaitable[None] | None] | None = None,
    extra_workflows: Sequence[type] = (),
    extra_activities: Sequence[Callable[..., Any]] = (),
    **options: Any,
) -> Worker:
    """A worker for PlaybookWorkflow and every registered step activity but `script` on one task queue.

    Step activities are counted, timed and logged (`StepTelemetry`) through the client's runtime: with a
    Prometheus runtime (see `connect`) the step metrics appear beside the SDK's own. `script` steps are
    sent to `script_task_queue`, served by `build_script_worker` alone.
    """
    load_step_types()
    engine = EngineActivities(store, client, script_task_queue=script_task_queue)
    steps = StepActivities(store, after_write=after_write)
    runtime = client.service_client.config.runtime or Runtime.default()
    DroppedSignals.install(runtime.metric_meter)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[PlaybookWorkflow, PlaybookNoteWorkflow, *extra_workflows],
        activities=[*engine.activities(), *steps.activities(only=lambda name: name != SCRIPT_TYPE), *extra_activities],
        workflow_runner=workflow_runner(),
        graceful_shutdown_timeout=timedelta(seconds=30),
        interceptors=[StepTelemetry(runtime.metric_meter)],
        **options,
    )


def build_script_worker(client: Client, store: Store, *, task_queue: str, **options: Any) -> Worker:
    """A worker that runs programs: the `script` activity only, on the script task queue (no workflows)."""
    load_step_types()
    steps = StepActivities(store)
    runtime = client.service_client.config.runtime or Runtime.default()
    return Worker(
        client,
        task_queue=task_queue,
        activities=steps.activities(only=lambda name: name == SCRIPT_TYPE),
        graceful_shutdown_timeout=timedelta(seconds=30),
        interceptors=[StepTelemetry(runtime.metric_meter)],
        **options,
    )


async def run_worker(
    settings: Settings, *, scripts: bool = False, ready: Callable[[], None] | None = None
) -> None:
    """Migrate, sync the catalog and serve until SIGINT/SIGTERM; in-flight activities finish first.

    With `scripts`, serve only `script` steps on the script task queue (no catalog, no workflows).
    With ``PLAYBOOK_METRICS_PORT`` set, Prometheus metrics are served on that port (activities.observability).
    """
    if not settings.database_url:
        raise SystemExit("playbook worker: DATABASE_URL is not set (playbook dev starts a database for you)")
    try:
        load_step_types()
        bind = metrics_address()
        # One runtime per process: it owns the metrics port (a port in use fails here, before any work).
        runtime = metrics_runtime(bind) if bind else None
    except (ValueError, PluginError) as exc:
        raise SystemExit(f"playbook worker: {exc}") from None
    store = await Store.open(settings.database_url, auto_register_orgs=settings.auto_register_orgs,
                             max_size=settings.db_pool)  # fmt: skip
    try:
        synced = None if scripts else await sync_catalog(
            store, settings.playbooks_dir, (runtime or Runtime.default()).metric_meter
        )
        client = await connect(settings, runtime=runtime)
        if bind:
            log.info("metrics on http://%s/metrics", bind)
        if scripts:
            queue = settings.script_task_queue
            worker = build_script_worker(client, store, task_queue=queue)
        else:
            queue = settings.task_queue
            worker = build_worker(
                client, store, task_queue=queue, script_task_queue=settings.script_task_queue,
                max_cached_workflows=settings.workflow_cache, max_concurrent_activities=settings.activity_concurrency,
            )  # fmt: skip
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with worker:
            if synced is None:
                log.info("script worker on task queue %r", queue)
            else:
                log.info("worker on task queue %r: %d playbooks in the catalog", queue, synced.published)
            if ready:
                ready()
            await stop.wait()
            log.info("shutting down: waiting for in-flight activities")
    finally:
        await store.close()


def main(argv: Sequence[str] | None = None) -> None:
    """`python worker.py [--scripts]`: a worker configured by the environment, logging as PLAYBOOK_LOG_FORMAT says."""
    parser = argparse.ArgumentParser(prog="worker.py", description="Run a playbook worker.")
    parser.add_argument("--scripts", action="store_true", help=SCRIPTS_HELP)
    args = parser.parse_args(argv)
    configure_logging(logging.INFO)
    asyncio.run(run_worker(Settings.from_env(), scripts=args.scripts))


if __name__ == "__main__":
    main()
