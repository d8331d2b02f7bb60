"""A newcomer's first hour has no dead ends (issue 19): the CLI as installed, against a real Temporal and Postgres.

The commands run as the console script a user runs (`.venv/bin/playbook`, not on PATH here), so the hints they
print are checked the way a user pastes them.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from model import load_library
from model.variables import Variable, validate_values
from tests.test_playbook_test_command import Done, cli_stack

PLAYBOOK = Path(sys.executable).parent / "playbook"
GOOD = json.dumps({"customer_name": "Acme Corp", "email": "ops@acme.example"})


async def shell(command: str, env: dict[str, str]) -> Done:
    """A command line as a user types (or pastes) it, without blocking this process's worker."""
    process = await asyncio.create_subprocess_shell(
        command, env={"PATH": "/usr/bin:/bin", **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return Done(process.returncode, out.decode(), err.decode())


async def cli(*args: str, env: dict[str, str]) -> Done:
    return await shell(" ".join([str(PLAYBOOK), *(f"'{a}'" for a in args)]), env)


@pytest.fixture
async def stack(
    temporal: WorkflowEnvironment, store: Any, pg_dsn: str, tmp_path: Path
) -> AsyncIterator[dict[str, str]]:
    """The CLI's environment beside a worker with customer.create.v1, and the database for its pre-checks."""
    async with cli_stack(temporal, store, tmp_path) as env:
        yield {**env, "DATABASE_URL": pg_dsn}


def started(done: Done) -> str:
    match = re.search(r"^started (\S+)$", done.out, re.MULTILINE)
    assert match, done.out + done.err
    return match[1]


async def test_an_unknown_playbook_id_ends_failed_with_the_cause_in_wait_status_and_the_query(
    stack: dict[str, str],
) -> None:
    done = await cli("run", "customer.craete.v1", "--org", "org_hour", "--data", GOOD, "--wait", env=stack)
    cause = "no playbook 'customer.craete.v1' in the catalog of org_hour"
    assert done.code == 1
    assert f"error: {cause}" in done.out
    execution_id = started(done)
    status = await cli("status", execution_id, env=stack)
    assert status.code == 0
    assert " FAILED " in status.out.splitlines()[0]
    assert f"error: {cause}" in status.out
    query = json.loads((await cli("status", execution_id, "--json", env=stack)).out)
    assert (query["status"], query["error"]) == ("failed", cause)  # the query, after the ending, on a real server


async def test_invalid_inputs_are_refused_before_starting_or_end_failed_with_every_field(
    stack: dict[str, str], tmp_path: Path
) -> None:
    refused = await cli("run", "customer.create.v1", "--org", "org_hour", "--wait", env=stack)  # no --data
    assert refused.code == 1
    assert refused.out == ""  # nothing started
    assert refused.err == ("playbook: --data: customer_name: is required; email: is required "
                           "(inputs of customer.create.v1; nothing was started)\n")  # fmt: skip
    # a CLI without the definition at hand starts it: the execution says why it failed, naming every field
    elsewhere = {**stack, "PLAYBOOKS_DIR": str(tmp_path / "empty")}
    done = await cli("run", "customer.create.v1", "--org", "org_hour", "--data", '{"email": "nope"}', "--wait",
                     env=elsewhere)  # fmt: skip
    assert done.code == 1
    [error] = [line for line in done.out.splitlines() if line.startswith("error: ")]
    assert error.startswith("error: invalid inputs: ")
    assert "email: does not match the pattern" in error and "customer_name: is required" in error
    status = json.loads((await cli("status", started(done), "--json", env=stack)).out)
    assert status["status"] == "failed" and status["error"] == error.removeprefix("error: ")


async def test_the_printed_hints_run_when_pasted(stack: dict[str, str]) -> None:
    done = await cli("run", "customer.create.v1", "--org", "org_hour", "--data", GOOD, "--wait", env=stack)
    assert done.code == 0, done.err
    [hint] = [line for line in done.out.splitlines() if line.strip().startswith("complete it: ")]
    command = hint.strip().removeprefix("complete it: ")
    assert command.startswith(f"{PLAYBOOK} complete ")  # as invoked: `playbook` alone is not on this PATH
    completed = await shell(command, stack)
    assert (completed.code, completed.out) == (0, "completed set_credit_terms\n"), completed.err
    status_hint = (await cli("run", "customer.create.v1", "--org", "org_hour", "--data", GOOD, env=stack)).out
    [line] = [line for line in status_hint.splitlines() if line.strip().startswith("status: ")]
    assert (await shell(line.strip().removeprefix("status: "), stack)).code == 0


def test_validate_reports_every_independent_problem_in_one_pass(tmp_path: Path) -> None:
    path = tmp_path / "greeting.yaml"
    path.write_text(
        "id: customer.greet.v1\nname: Greet\nversion: 1\nmodule: crm\n"
        "inputs:\n  name: {type: string, required: true}\n"
        "steps:\n  - id: hello\n    type: set\n    with:\n      vars: {greeting: 'Hello {{ inputs.nmae }}'}\n"
    )
    problems = [str(p) for p in load_library([path]).problems]
    assert problems == [
        f"{path}:1: smart_code: is required",
        f"{path}:1: id: the file must be named customer.greet.v1.yaml (found greeting.yaml)",
        f"{path}:11: step hello: with.vars.greeting: inputs.nmae: no such input",
    ]


def test_only_true_and_false_are_booleans() -> None:
    form = {"approved": Variable(type="boolean", required=True)}
    assert [str(e) for e in validate_values(form, {"approved": "yes"}).errors] == [
        "approved: input should be a valid boolean (type)"
    ]
    for refused in ("on", "1", 1, 0, "True"):
        assert not validate_values(form, {"approved": refused}).ok
    # JSON booleans, and the words a CLI user types for them
    assert [validate_values(form, {"approved": v}).values for v in (True, "true", False, "false")] == [
        {"approved": True}, {"approved": True}, {"approved": False}, {"approved": False}
    ]


async def test_playbook_test_leaves_the_users_stats_as_they_were(stack: dict[str, str]) -> None:
    before = await cli("stats", "--json", env=stack)
    tested = await cli("test", "customer.create.v1", env=stack)
    assert tested.code == 0, tested.out + tested.err
    after = await cli("stats", "--json", env=stack)
    assert not [item for item in json.loads(after.out) if item["organization"].startswith("org_test_")]
    assert sorted(i["organization"] for i in json.loads(after.out)) == sorted(
        i["organization"] for i in json.loads(before.out)
    )
    with_tests = json.loads((await cli("stats", "--json", "--include-tests", env=stack)).out)
    assert any(item["organization"].startswith("org_test_") for item in with_tests)  # kept apart, not lost
