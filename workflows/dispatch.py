"""How the interpreter hands a step to its handler: the scope a step runs in, the handler registry, failures.

A handler is registered for its own step class (`@handles(SwitchStep)`) and receives that class, so it
reads its typed ``with:`` directly. Step types without a workflow-side handler run as the activity of
the same name. Handlers see the workflow through the small `Interpreter` protocol, so they live in
their own modules without importing the workflow class.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from model.execution import Prepared
from model.playbook import Playbook
from model.run import RunState
from model.status import StepStatus
from model.steps import Step, StepBase


class ExecutionFailed(Exception):
    """The execution cannot complete; the message says why."""


class StepFailed(ExecutionFailed):
    """A step ended failed; the message names the step and the reason."""

    def __init__(self, step_id: str, reason: str) -> None:
        super().__init__(f"step {step_id}: {reason}")
        self.step_id = step_id
        self.reason = reason


@dataclass(frozen=True)
class Scope:
    """Where a step list runs: top level, or one foreach iteration (its own ids, loop variables, audit key)."""

    prefix: str = ""
    local: dict[str, Any] = field(default_factory=dict)

    @property
    def iteration(self) -> str:
        return self.prefix.removesuffix(".")

    def id(self, step: StepBase) -> str:
        return self.prefix + step.id


class Interpreter(Protocol):
    """What step handlers may use of the running workflow."""

    state: RunState
    handing_over: bool
    """A continue-as-new hand-over is stopping the step tree (steps keep their status)."""
    named_activities: bool
    """Activities and children are named after their steps (patched in; old runs replay without)."""

    @property
    def playbook(self) -> Playbook: ...

    @property
    def prepared(self) -> Prepared: ...

    def context(self, scope: Scope) -> dict[str, Any]: ...

    async def run_list(self, steps: list[Step], scope: Scope, *, parallel: bool = False) -> dict[str, Any]: ...

    def set_status(self, view_id: str, status: StepStatus, *, reason: str | None = None,
                   record: bool = True) -> None: ...  # fmt: skip

    async def busy_with(self, work: Awaitable[Any]) -> Any: ...

    async def may_start(self) -> None: ...

    async def update_execution(self) -> None: ...

    def changed(self) -> None: ...


S = TypeVar("S", bound=StepBase)
Handler = Callable[[Interpreter, S, Scope], Awaitable[Any]]
HANDLERS: dict[type[StepBase], Handler[Any]] = {}
"""Workflow-side handlers by step class; every other step runs as an activity."""


def handles(kind: type[S]) -> Callable[[Handler[S]], Handler[S]]:
    """Register the workflow-side handler of one step class."""

    def register(fn: Handler[S]) -> Handler[S]:
        HANDLERS[kind] = fn
        return fn

    return register


def cause(exc: BaseException) -> str:
    """The innermost ApplicationError's message: what the activity (or child) said went wrong."""
    found: BaseException | None = exc
    while found is not None and not isinstance(found, ApplicationError):
        found = found.__cause__
    return found.message if isinstance(found, ApplicationError) else str(exc)


async def reap(running: dict[Any, asyncio.Task[None]]) -> None:
    """Wait for the first of the running tasks to end; drop the ended ones, raising what they raised."""
    done, _ = await workflow.wait(list(running.values()), return_when=asyncio.FIRST_COMPLETED)
    for key, task in list(running.items()):
        if task in done:
            del running[key]
            task.result()


async def cancel_all(running: dict[Any, asyncio.Task[None]]) -> None:
    """Cancel the running tasks and wait until each has unwound (their steps end cancelled)."""
    for task in running.values():
        task.cancel()
    if running:
        await workflow.wait(list(running.values()))
