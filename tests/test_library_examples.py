"""Every example of every library playbook, run against the session's real Temporal and real Postgres.

The library is read when tests are collected, so a playbook added to playbooks/ is tested on the next run
with no change here. The examples selected for this session (all of them, or those `-k` keeps) run once,
concurrently, in a session fixture; one test per example then reports its own outcome — the speed of one
concurrent run, the readability of one test per example. When ops runbooks are among them, their targets
(tests.fixtures_ops.ops_targets) and a script worker are set up for that run only.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from model import load_library
from runtime.worker import build_script_worker
from starter.examples import Case, ExampleOutcome, run_examples
from store import PgServer
from tests.fixtures_ops import ops_targets
from tests.fixtures_temporal import running_worker

LIBRARY_DIR = Path(__file__).resolve().parent.parent / "playbooks"
LIBRARY = load_library([LIBRARY_DIR])
"""Invalid files are left out here; test_language_library reports them."""
CASES = {
    f"{playbook.id}: {example.name}": Case(playbook, example)
    for playbook in LIBRARY.playbooks.values()
    for example in playbook.examples
}
CONCURRENCY = 16
TIMEOUT = 60.0
"""Seconds one example may take; a stuck one fails with what it waits for long before this."""


@pytest.fixture(scope="session")
async def library_outcomes(
    request: pytest.FixtureRequest, temporal: WorkflowEnvironment, store: Any, pg_server: PgServer
) -> dict[str, ExampleOutcome]:
    """Run the selected examples once, all at once (bounded), by catalog id as services run them."""
    selected = [
        str(item.callspec.params["name"])
        for item in request.session.items
        if isinstance(item, pytest.Function) and item.module is not None and item.module.__name__ == __name__
        and hasattr(item, "callspec")
    ]  # fmt: skip
    # publish the valid playbooks one by one (sync_catalog refuses the whole library for one broken file),
    # so that `playbook` steps find their children in the catalog
    for playbook in LIBRARY.playbooks.values():
        await store.publish_definition(
            None,
            playbook_id=playbook.id,
            definition=playbook.model_dump(mode="json", by_alias=True, exclude_none=True),
            smart_code=playbook.smart_code,
        )
    cases = [CASES[name] for name in selected]
    async with AsyncExitStack() as stack:
        options: dict[str, Any] = {}
        if any(case.playbook.module == "ops" for case in cases):
            patch = stack.enter_context(pytest.MonkeyPatch.context())
            for name, value in (await stack.enter_async_context(ops_targets(pg_server.dsn))).items():
                patch.setenv(name, value)
            options["script_task_queue"] = f"scripts-{uuid.uuid4()}"
            await stack.enter_async_context(
                build_script_worker(temporal.client, store, task_queue=options["script_task_queue"])
            )
        client = await stack.enter_async_context(running_worker(temporal.client, store, **options))
        outcomes = await run_examples(client, cases, concurrency=CONCURRENCY, timeout=TIMEOUT,
                                      on_outcome=_progress(request.config, len(cases)))  # fmt: skip
    return dict(zip(selected, outcomes, strict=True))


def _progress(config: pytest.Config, total: int) -> Callable[[ExampleOutcome], None]:
    """A line every tenth of the examples, so the minutes this fixture takes are not silent."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")  # none on an xdist worker: its output is not shown
    done = 0

    def show(outcome: ExampleOutcome) -> None:
        nonlocal done
        done += 1
        if reporter is not None and (done % max(1, total // 10) == 0 or done == total):
            reporter.write_line(f"library examples: {done}/{total} run")

    return show


# every example runs in the one session fixture above: with pytest-xdist they must share a worker (--dist loadgroup)
@pytest.mark.xdist_group("library_examples")
@pytest.mark.parametrize("name", list(CASES))
async def test_example(name: str, library_outcomes: dict[str, ExampleOutcome]) -> None:
    outcome = library_outcomes[name]
    if not outcome.passed:
        pytest.fail("\n".join(outcome.report()), pytrace=False)
