"""`playbook test` as users run it: against a real Temporal and Postgres, with a worker started here.

The CLI runs as a subprocess (asynchronously, so that this process's worker keeps serving it) with
TEMPORAL_ADDRESS and PLAYBOOK_TASK_QUEUE pointing at the session's dev server and the test's worker, and
PLAYBOOKS_DIR at a folder holding one library playbook: the command is tested, not the whole library.
"""

from __future__ import annotations

import asyncio
import re
import socket
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

import starter.examples
from model import load_playbook
from starter.examples import Case, Difference, ExampleOutcome, compare_outputs, run_examples, same
from tests.fixtures_temporal import running_worker

ROOT = Path(__file__).resolve().parent.parent
CUSTOMER = ROOT / "playbooks" / "crm" / "customer.create.v1.yaml"
HEADLINE = re.compile(r"^(PASS|FAIL) (\S+): (.+) \((\d+\.\d)s\)$")

REFUND = textwrap.dedent("""\
    id: refund.demo.v1
    name: Refund with approval
    version: 1
    module: sales
    smart_code: HERA.SALES.REFUND.PLAYBOOK.v1
    inputs:
      amount: {type: float, required: true, minimum: 0}
    steps:
      - id: compute
        type: set
        with:
          vars:
            fee: "{{ (inputs.amount * 0.1) | round(2) }}"
            summary: {amount: "{{ inputs.amount }}", currency: EUR}
      - id: approve
        type: approval
        when: inputs.amount > 100
        with: {assignee_role: manager}
      - id: note
        type: human
        with:
          instructions: Add a note.
          form: {note: {type: string}}
    outputs:
      fee: "{{ vars.fee }}"
      summary: "{{ vars.summary }}"
      approved: "{{ steps.approve.status == 'completed' }}"
    examples:
      - name: right expectations
        initial_data: {amount: 50}
        complete:
          - {step_id: note, data: {note: ok}}
        expect: {status: completed, outputs: {fee: 5.0, approved: false, summary: {currency: EUR}}}
      - name: wrong expectations
        initial_data: {amount: 50}
        complete:
          - {step_id: note, data: {note: ok}}
        expect:
          status: failed
          error: over the limit
          outputs: {fee: 6, approved: 0, summary: {currency: USD}, refund_id: R-1}
      - name: completes a step its condition skips
        initial_data: {amount: 50}
        complete:
          - {step_id: approve, role: manager, data: {approved: true}}
          - {step_id: note, data: {note: ok}}
      - name: forgets the note
        initial_data: {amount: 500}
        complete:
          - {step_id: approve, role: manager, data: {approved: true}}
    """)


@dataclass
class Done:
    code: int
    out: str
    err: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def playbook(*args: str, **env: str) -> Done:
    """Run the CLI without blocking the event loop (the worker of this test lives in it)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from starter.cli import main; main()", *args,
        cwd=ROOT, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=180)
    assert process.returncode is not None
    return Done(process.returncode, out.decode(), err.decode())


@asynccontextmanager
async def cli_stack(temporal: WorkflowEnvironment, store: Any, tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """A worker whose catalog has customer.create.v1 (also in the CLI's library), and the environment that points
    the CLI at it."""
    customer = load_playbook(CUSTOMER)
    definition = customer.model_dump(mode="json", by_alias=True, exclude_none=True)
    await store.publish_definition(None, playbook_id=customer.id, definition=definition, smart_code=customer.smart_code)
    library = tmp_path / "library"
    library.mkdir()
    (library / CUSTOMER.name).write_text(CUSTOMER.read_text())
    async with running_worker(temporal.client, store) as client:
        yield {
            "TEMPORAL_ADDRESS": temporal.client.service_client.config.target_host,
            "PLAYBOOK_TASK_QUEUE": client.task_queue,
            "PLAYBOOKS_DIR": str(library),
        }


@pytest.fixture
async def stack(temporal: WorkflowEnvironment, store: Any, tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    async with cli_stack(temporal, store, tmp_path) as env:
        yield env


def blocks(stdout: str) -> dict[str, list[str]]:
    """Each example's report: its headline's example name → the lines under it."""
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for line in stdout.splitlines():
        match = HEADLINE.match(line)
        if match:
            current = found[match[3]] = [match[1]]
        elif line.startswith("    "):
            current.append(line.strip())
    return found


async def test_passing_examples_exit_0_with_one_line_each(stack: dict[str, str]) -> None:
    done = await playbook("test", "customer.create.v1", **stack)
    assert done.code == 0, done.out + done.err
    names = [e.name for e in load_playbook(CUSTOMER).examples]
    lines = done.out.splitlines()
    headlines = [HEADLINE.match(line) for line in lines[:-1]]
    assert all(m and m[1] == "PASS" and m[2] == "customer.create.v1" for m in headlines), done.out
    assert sorted(m[3] for m in headlines if m) == sorted(names)
    assert re.fullmatch(rf"{len(names)} passed, 0 failed in \d+\.\ds", lines[-1])
    assert done.err == ""


async def test_wrong_expectations_exit_1_with_a_diff_per_field(
    stack: dict[str, str], temporal: WorkflowEnvironment, tmp_path: Path
) -> None:
    path = tmp_path / "refund.demo.v1.yaml"
    path.write_text(REFUND)  # not in the catalog: a path runs its definition inline
    done = await playbook("test", str(path), **stack)
    assert done.code == 1, done.out + done.err
    report = blocks(done.out)
    assert report["right expectations"] == ["PASS"]
    wrong = report["wrong expectations"]
    assert wrong[:7] == [
        "FAIL",
        'status: expected "failed", got "completed"',
        'error: expected to contain "over the limit", got null',
        "outputs.fee: expected 6, got 5.0",
        "outputs.approved: expected 0, got false",
        'outputs.summary.currency: expected "USD", got "EUR"',
        'outputs.refund_id: expected "R-1", got (missing)',
    ]
    assert wrong[7].startswith("inspect: playbook status ")
    assert report["completes a step its condition skips"][1] == (
        "complete[0] approve: step approve was skipped, so it never waited for a person"
    )
    forgot = report["forgets the note"]
    assert forgot[1] == "execution: waits for note, which the example does not complete"
    # the execution it gave up on does not wait for a person forever
    execution_id = forgot[2].removeprefix("inspect: playbook status ")
    described = await temporal.client.get_workflow_handle(execution_id).describe()
    assert described.status == WorkflowExecutionStatus.TERMINATED
    assert done.out.splitlines()[-1].startswith("1 passed, 3 failed in ")


async def test_library_run_reports_broken_files_and_filters_examples(stack: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "refund.demo.v1.yaml").write_text(REFUND)
    (tmp_path / "broken.v1.yaml").write_text("id: broken.v1\nname: Broken\n")
    # no target: the whole library, which here is tmp_path
    done = await playbook("test", "--inline", "--example", "RIGHT", **{**stack, "PLAYBOOKS_DIR": str(tmp_path)})
    assert done.code == 1, done.out + done.err
    lines = done.out.splitlines()
    assert [line for line in lines if line.startswith("INVALID ")] and all(
        "broken.v1.yaml" in line for line in lines if line.startswith("INVALID ")
    )
    assert list(blocks(done.out)) == ["right expectations"]
    assert re.fullmatch(r"1 passed, 0 failed, \d+ problem\(s\) in .+ \(run: playbook validate\) in \d+\.\ds", lines[-1])


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("no.such.v1",), {}, "playbook: no playbook 'no.such.v1' in {library} (see: playbook list)"),
        (("no/such/file.yaml",), {}, "playbook: no/such/file.yaml: no such file"),
        (("customer.create.v1", "--example", "zzz"), {}, "playbook: no examples matching 'zzz' to run"),
        (("customer.create.v1",), {"PLAYBOOK_TASK_QUEUE": "nobody-serves-this"},
         "playbook: no worker polls task queue 'nobody-serves-this' at {address} "
         "(start one: playbook dev, or playbook worker)"),
    ],
    ids=["unknown id", "missing file", "no example matches", "no worker"],
)
async def test_mistakes_are_one_line(
    stack: dict[str, str], args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    done = await playbook("test", *args, **{**stack, **env})
    assert done.code == 1
    assert done.err == message.format(address=stack["TEMPORAL_ADDRESS"], library=stack["PLAYBOOKS_DIR"]) + "\n"
    assert done.out == ""


async def test_no_temporal_is_one_line() -> None:
    address = f"127.0.0.1:{free_port()}"
    done = await playbook("test", str(CUSTOMER), TEMPORAL_ADDRESS=address)
    assert done.code == 1
    assert done.err == f"playbook: cannot reach Temporal at {address} (is `playbook dev` running?)\n"


# ---------------------------------------------------------------------------- comparison and concurrency
def test_outputs_are_a_subset_compared_as_json() -> None:
    got = {"total": 165.0, "ok": True, "code": "7", "nested": {"a": 1, "b": [1, 2]}, "extra": "ignored"}
    assert compare_outputs({"total": 165, "nested": {"b": [1, 2.0]}}, got) == []
    assert [(d.field, d.expected, d.got) for d in compare_outputs({"ok": 1, "code": 7, "nested": {"a": 2}}, got)] == [
        ("outputs.ok", 1, True),
        ("outputs.code", 7, "7"),
        ("outputs.nested.a", 2, 1),
    ]
    assert not same([1, 2], [1, 2, 3]) and not same({"a": 1}, {"a": 1, "b": 2}) and not same(None, 0)


def test_long_values_are_shown_on_two_lines() -> None:
    assert Difference("outputs.x", "a", "b").lines() == ['outputs.x: expected "a", got "b"']
    assert Difference("outputs.x", "a" * 50, "b" * 50).lines() == [
        "outputs.x:",
        f'  expected "{"a" * 50}"',
        f'  got      "{"b" * 50}"',
    ]


async def test_examples_run_concurrently_within_the_bound(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    running, most = 0, 0

    async def fake_run_example(client: Any, playbook: Any, example: Any, **options: Any) -> ExampleOutcome:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        running -= 1
        return ExampleOutcome(playbook.id, example.name)

    monkeypatch.setattr(starter.examples, "run_example", fake_run_example)
    (tmp_path / "refund.demo.v1.yaml").write_text(REFUND)
    refund = load_playbook(tmp_path / "refund.demo.v1.yaml")
    cases = [Case(refund, example) for example in refund.examples * 5]
    heard: list[str] = []
    outcomes = await run_examples(None, cases, concurrency=3, on_outcome=lambda o: heard.append(o.example))  # type: ignore[arg-type]
    assert most == 3
    assert [o.example for o in outcomes] == [c.example.name for c in cases]
    assert sorted(heard) == sorted(c.example.name for c in cases)

