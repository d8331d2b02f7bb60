"""Executable examples: run a playbook's examples against a live stack and compare what happened.

An example starts an execution, completes its human steps as written — through the `submit_step` update,
so a refused completion comes back with its reason instead of vanishing into ``status.rejected`` — and
compares the final status, the outputs (a subset: only the names the example gives, dicts compared key by
key) and the failure message (a substring). Every mismatch is a `Difference` naming the field, what was
expected and what happened. An execution that cannot go on as the example says (a step that never waits
for a person, a person nobody will come for, a deadline) ends the example at once with the reason,
instead of waiting for the timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowQueryFailedError
from temporalio.service import RPCError

from model import Example, Playbook
from model.execution import StatusView
from model.status import ENDED, StepStatus

from .client import PlaybookClient, StepRejected
from .plumbing import me

GROUP_TYPES = frozenset({"parallel", "sequential", "foreach", "switch"})
"""Step types that are `running` while their sub-steps run: they say nothing about progress themselves."""
FIRST_POLL, LAST_POLL = 0.05, 0.5
"""Status polling starts fast (most steps take milliseconds) and slows down for long ones."""
_MISSING = object()
TEST_ORGS = "org_test_"
"""The prefix of the fresh organization each example runs in: `playbook stats` leaves these out by default."""


@dataclass
class Difference:
    """One way an example's run differs from what it says: a field, expected vs got, or a note."""

    field: str
    expected: Any = _MISSING
    got: Any = _MISSING
    contains: bool = False
    """`expected` is a substring that `got` must contain (the failure message)."""
    note: str | None = None

    def lines(self) -> list[str]:
        if self.note is not None:
            return [f"{self.field}: {self.note}"]
        want = ("to contain " if self.contains else "") + _show(self.expected)
        got = _show(self.got)
        if len(want) + len(got) <= 70:
            return [f"{self.field}: expected {want}, got {got}"]
        return [f"{self.field}:", f"  expected {want}", f"  got      {got}"]


def _show(value: Any) -> str:
    if value is _MISSING:
        return "(missing)"
    return json.dumps(value, ensure_ascii=False, default=str)


@dataclass
class ExampleOutcome:
    """What running one example found."""

    playbook_id: str
    example: str
    execution_id: str | None = None
    differences: list[Difference] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.differences

    def headline(self) -> str:
        """``PASS appointment.book.v1: confirmed booking (2.1s)``."""
        return f"{'PASS' if self.passed else 'FAIL'} {self.playbook_id}: {self.example} ({self.seconds:.1f}s)"

    def report(self) -> list[str]:
        """The headline, then (on failure) each difference and the execution to look at."""
        lines = [self.headline()]
        if self.passed:
            return lines
        lines += [f"    {line}" for d in self.differences for line in d.lines()]
        if self.execution_id:
            lines.append(f"    inspect: {me()} status {shlex.quote(self.execution_id)}")
        return lines


def compare_outputs(expected: dict[str, Any], got: dict[str, Any], prefix: str = "outputs") -> list[Difference]:
    """Differences between expected outputs (a subset, recursively for dicts) and the real ones."""
    found: list[Difference] = []
    for name, want in expected.items():
        where = f"{prefix}.{name}"
        if name not in got:
            found.append(Difference(where, want))
        elif isinstance(want, dict) and isinstance(got[name], dict):
            found += compare_outputs(want, got[name], where)
        elif not same(want, got[name]):
            found.append(Difference(where, want, got[name]))
    return found


def same(expected: Any, got: Any) -> bool:
    """JSON equality: 1 equals 1.0, but true is not 1 and "1" is not 1 (Python's == says otherwise)."""
    if isinstance(expected, bool) or isinstance(got, bool):
        return type(expected) is type(got) and expected == got
    if isinstance(expected, int | float) and isinstance(got, int | float):
        return expected == got
    if isinstance(expected, list) and isinstance(got, list):
        return len(expected) == len(got) and all(same(e, g) for e, g in zip(expected, got, strict=True))
    if isinstance(expected, dict) and isinstance(got, dict):
        return expected.keys() == got.keys() and all(same(v, got[k]) for k, v in expected.items())
    return type(expected) is type(got) and bool(expected == got)


class _Stop(Exception):
    """The example cannot go on; the difference says why."""

    def __init__(self, difference: Difference) -> None:
        super().__init__(difference.note)
        self.difference = difference


class _Watch:
    """Polls one execution's status until something is true, or says why it never will be."""

    def __init__(self, client: PlaybookClient, execution_id: str, deadline: float, timeout: float) -> None:
        self.client = client
        self.execution_id = execution_id
        self.deadline = deadline
        self.timeout = timeout

    async def until(self, done: Callable[[StatusView], bool], blocked: Callable[[StatusView], str | None],
                    where: str, goal: str, *, ending: asyncio.Future[Any] | None = None,
                    interval: float = FIRST_POLL) -> None:  # fmt: skip
        """Poll until `done` (or until `ending` is done); `blocked` names what stands in the way (twice in a
        row to count: a step that just finished may not have started its dependents yet); `goal` says what
        timed out."""
        loop = asyncio.get_running_loop()
        suspect = None
        while ending is None or not ending.done():
            status: StatusView | None = None
            reason: str | None
            try:
                status = await self.client.status(self.execution_id)
            except (RPCError, WorkflowQueryFailedError) as exc:  # e.g. a workflow task that keeps failing
                reason = f"the status query failed: {getattr(exc, 'message', exc)}"
            else:
                if done(status):
                    return
                reason = blocked(status)
            if reason is not None and reason == suspect:
                raise _Stop(Difference(where, note=reason))
            suspect = reason
            if loop.time() >= self.deadline:
                doing = _activity(status) if status else reason
                raise _Stop(Difference(where, note=f"{goal} within {self.timeout:g}s ({doing})"))
            pause = min(interval, max(0.0, self.deadline - loop.time()))
            if ending is None:
                await asyncio.sleep(pause)
            else:
                await asyncio.wait({ending}, timeout=pause)
            interval = min(interval * 1.5, LAST_POLL)

    def unattended(self, status: StatusView, expected: set[str]) -> list[str]:
        """Steps waiting for a person the example will not send, whose deadline will not help in time."""
        horizon = datetime.now(UTC) + timedelta(seconds=self.deadline - asyncio.get_running_loop().time())
        return [
            f"{w.step_id}" + (f" (role {w.assignee_role})" if w.assignee_role else "")
            for w in status.waiting_for
            if w.step_id not in expected and (w.deadline is None or w.deadline > horizon)
        ]


def _activity(status: StatusView) -> str:
    """What an execution is doing, for a message: its status, running steps and waiting steps."""
    running = [s.id for s in status.steps if s.status == StepStatus.running and s.type not in GROUP_TYPES]
    waiting = [w.step_id for w in status.waiting_for]
    parts = [f"execution {status.status}"]
    if running:
        parts.append(f"running: {', '.join(running)}")
    if waiting:
        parts.append(f"waiting for: {', '.join(waiting)}")
    return "; ".join(parts)


def _ended(status: StatusView) -> str:
    return f"the execution {status.status}" + (f": {status.error}" if status.error else "")


async def _until_waiting(watch: _Watch, step_id: str, where: str) -> None:
    """Wait until `step_id` waits for a person; stop if it never will."""

    def waits(status: StatusView) -> bool:
        return any(w.step_id == step_id for w in status.waiting_for)

    def blocked(status: StatusView) -> str | None:
        if not status.steps:  # the definition is not resolved yet: no step exists so far
            return f"step {step_id} never waited for a person: {_ended(status)}" if status.status in ENDED else None
        view = next((s for s in status.steps if s.id == step_id), None)
        if view is None:
            return f"the execution has no step {step_id}"
        reason = f" ({view.error})" if view.error else ""
        if view.status == "skipped":
            return f"step {step_id} was skipped{reason}, so it never waited for a person"
        if status.status in ENDED:
            return f"step {step_id} never waited for a person: {_ended(status)}"
        if view.status in ENDED:
            return f"step {step_id} is already {view.status}{reason}, not waiting for a person"
        others = watch.unattended(status, {step_id})
        moving = any(s.status == StepStatus.running and s.type not in GROUP_TYPES for s in status.steps)
        if others and not moving:
            return f"step {step_id} is {view.status}; the execution waits for {', '.join(others)} instead"
        return None

    await watch.until(waits, blocked, where, f"step {step_id} did not wait for a person")


async def _until_ended(watch: _Watch, handle: WorkflowHandle[Any, Any]) -> tuple[str, dict[str, Any], str | None]:
    """The execution's ending: status, outputs and failure message. Its result is long-polled (no delay);
    meanwhile a slower status poll stops the example if it waits for a person the example does not send."""

    def blocked(status: StatusView) -> str | None:
        others = watch.unattended(status, set())
        return f"waits for {', '.join(others)}, which the example does not complete" if others else None

    ending = asyncio.ensure_future(_outcome(handle))
    try:
        await watch.until(lambda s: False, blocked, "execution", "did not end", ending=ending, interval=LAST_POLL)
    except BaseException:
        ending.cancel()
        raise
    return await ending


async def _outcome(handle: WorkflowHandle[Any, Any]) -> tuple[str, dict[str, Any], str | None]:
    try:
        result = await handle.result()
    except WorkflowFailureError as exc:
        cause = exc.cause
        status = "cancelled" if type(cause).__name__ == "CancelledError" else "failed"
        return status, {}, str(getattr(cause, "message", cause))
    return result["status"], result["outputs"], None


async def _stop(handle: WorkflowHandle[Any, Any], reason: str) -> None:
    """Terminate an execution the example gave up on, so it does not wait for a person forever."""
    with contextlib.suppress(RPCError):  # it ended on its own meanwhile
        await handle.terminate(f"playbook test: {reason}")


async def run_example(
    client: PlaybookClient,
    playbook: Playbook,
    example: Example,
    *,
    organization: str | None = None,
    inline: bool = False,
    timeout: float = 60.0,
    workflow_id: str | None = None,
) -> ExampleOutcome:
    """Start the example, complete its human steps as written, and compare status, outputs and error.

    `inline` sends the definition with the execution (a file the catalog does not have); else the catalog's
    definition of the id runs. Each example runs in its own fresh organization unless one is given, so
    examples never see each other's data (a uniqueness rule passes however often it runs).
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    outcome = ExampleOutcome(playbook.id, example.name)
    try:
        await _drive(client, playbook, example, outcome, organization, inline, started + timeout, timeout,
                     workflow_id)  # fmt: skip
    except _Stop as stop:
        outcome.differences.append(stop.difference)
    outcome.seconds = loop.time() - started
    return outcome


async def _drive(client: PlaybookClient, playbook: Playbook, example: Example, outcome: ExampleOutcome,
                 organization: str | None, inline: bool, deadline: float, timeout: float,
                 workflow_id: str | None = None) -> None:  # fmt: skip
    definition = playbook.model_dump(mode="json", by_alias=True, exclude_none=True) if inline else None
    try:
        handle = await client.start(
            playbook.id,
            organization=organization or f"{TEST_ORGS}{uuid.uuid4().hex[:10]}",
            data=example.initial_data,
            requested_by=example.requested_by or "playbook-test",
            playbook=definition,
            workflow_id=workflow_id,
        )
    except RPCError as exc:
        raise _Stop(Difference("start", note=f"Temporal refused to start it: {exc.message}")) from None
    outcome.execution_id = handle.id
    watch = _Watch(client, handle.id, deadline, timeout)
    try:
        for index, completion in enumerate(example.complete):
            where = f"complete[{index}] {completion.step_id}"
            await _until_waiting(watch, completion.step_id, where)
            try:
                await client.complete(
                    handle.id,
                    completion.step_id,
                    data=completion.data,
                    completed_by=completion.completed_by,
                    role=completion.role,
                )
            except StepRejected as exc:
                raise _Stop(Difference(where, note=f"rejected: {exc}")) from None
            except RPCError as exc:
                raise _Stop(Difference(where, note=f"could not complete it: {exc.message}")) from None
        status, outputs, error = await _until_ended(watch, handle)
    except _Stop as stop:
        await _stop(handle, stop.difference.note or "stopped")
        raise
    expect = example.expect
    if status != expect.status:
        outcome.differences.append(Difference("status", expect.status, status))
        if error and not expect.error:
            outcome.differences.append(Difference("error", note=error))
    if expect.error and (error is None or expect.error not in error):
        outcome.differences.append(Difference("error", expect.error, error, contains=True))
    outcome.differences += compare_outputs(expect.outputs, outputs)


@dataclass(frozen=True)
class Case:
    """One example to run: its playbook, and whether to send the definition inline."""

    playbook: Playbook
    example: Example
    inline: bool = False


async def run_examples(
    client: PlaybookClient,
    cases: Sequence[Case],
    *,
    concurrency: int = 8,
    organization: str | None = None,
    timeout: float = 60.0,
    on_outcome: Callable[[ExampleOutcome], None] | None = None,
) -> list[ExampleOutcome]:
    """Run examples, at most `concurrency` at once; outcomes in the order of `cases`.

    `on_outcome` hears each outcome as soon as its example finishes (to print progress).
    """
    gate = asyncio.Semaphore(concurrency)

    async def one(case: Case) -> ExampleOutcome:
        async with gate:
            outcome = await run_example(
                client, case.playbook, case.example, organization=organization, inline=case.inline, timeout=timeout
            )
        if on_outcome is not None:
            on_outcome(outcome)
        return outcome

    return list(await asyncio.gather(*(one(case) for case in cases)))
