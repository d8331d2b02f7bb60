"""Steps the workflow runs itself: `set`, `wait`, groups, `switch`, `foreach` and child playbooks."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError, is_cancelled_exception
from temporalio.workflow import ChildWorkflowCancellationType, ParentClosePolicy

from model import expressions
from model.durations import parse_duration
from model.execution import WORKFLOW_NAME, ExecutionInput
from model.run import LoopState
from model.status import StepStatus
from model.steps import (
    ForeachStep,
    ParallelStep,
    PlaybookStep,
    SequentialStep,
    SetStep,
    Step,
    SwitchStep,
    WaitStep,
)

from .dispatch import Interpreter, Scope, StepFailed, cancel_all, cause, handles, reap

KEEP_ITERATION_VIEWS = 100
"""A foreach with more items keeps status entries only for iterations in flight."""


@handles(SetStep)
async def set_vars(run: Interpreter, step: SetStep, scope: Scope) -> Any:
    values = expressions.render(step.with_.vars, run.context(scope))
    run.state.vars.update(values)
    return values


@handles(WaitStep)
async def wait(run: Interpreter, step: WaitStep, scope: Scope) -> Any:
    spec = step.with_
    view = run.state.steps[scope.id(step)]
    assert view.started_at is not None
    if spec.duration is not None:
        duration = spec.duration
        if isinstance(duration, str):
            rendered = expressions.render(duration, run.context(scope))
            try:
                duration = parse_duration(rendered)
            except ValueError as exc:
                raise StepFailed(view.id, f"with.duration: {exc}") from None
        until = view.started_at + duration
    else:
        text = expressions.render(spec.until, run.context(scope))
        try:
            until = datetime.fromisoformat(str(text))
        except ValueError:
            raise StepFailed(view.id, f"with.until: {text!r} is not an ISO 8601 time") from None
    remaining = (until - workflow.now()).total_seconds()  # from the start: a resumed run keeps the deadline
    if remaining > 0:
        await workflow.sleep(remaining, summary=f"step {view.id}: wait until {until.isoformat()}")
    return None


@handles(ParallelStep)
async def parallel(run: Interpreter, step: ParallelStep, scope: Scope) -> Any:
    return await run.run_list(step.with_.steps, scope, parallel=True)


@handles(SequentialStep)
async def sequential(run: Interpreter, step: SequentialStep, scope: Scope) -> Any:
    return await run.run_list(step.with_.steps, scope)


@handles(SwitchStep)
async def switch(run: Interpreter, step: SwitchStep, scope: Scope) -> Any:
    """The first case whose condition holds, else the default; the branches not taken end skipped."""
    spec = step.with_
    view_id = scope.id(step)
    choice = run.state.choices.get(view_id)
    if choice is None:
        context = run.context(scope)
        choice = next((i for i, c in enumerate(spec.cases) if expressions.condition(c.when, context)), -1)
        run.state.choices[view_id] = choice
    branches = [case.steps for case in spec.cases] + [spec.default]
    chosen = branches[choice]
    for branch in branches:
        if branch is not chosen:
            _skip_all(run, branch, scope, "branch not taken")
    return await run.run_list(chosen, scope)


def _skip_all(run: Interpreter, steps: list[Step], scope: Scope, reason: str) -> None:
    for step in steps:
        if run.state.steps[scope.id(step)].status == StepStatus.pending:
            run.set_status(scope.id(step), StepStatus.skipped, reason=reason)
        if not isinstance(step, ForeachStep):
            for body in step.children():
                _skip_all(run, body, scope, reason)


@handles(ForeachStep)
async def foreach(run: Interpreter, step: ForeachStep, scope: Scope) -> Any:
    """Sub-steps per item, `concurrency` at a time; results in item order."""
    spec = step.with_
    view_id = scope.id(step)
    loop = run.state.loops.get(view_id)
    if loop is None:
        items = expressions.render(spec.items, run.context(scope))
        if not isinstance(items, list):
            raise StepFailed(view_id, f"with.items: gives a {type(items).__name__}, not a list")
        loop = LoopState(items=items, outputs=[None] * len(items), done=[False] * len(items))
        run.state.loops[view_id] = loop
    todo = [i for i, done in enumerate(loop.done) if not done]
    running: dict[int, asyncio.Task[None]] = {}
    try:
        while todo or running:
            while todo and len(running) < spec.concurrency:
                index = todo.pop(0)
                running[index] = asyncio.create_task(_iteration(run, step, scope, loop, index))
            await reap(running)
    except GeneratorExit:
        raise  # the worker evicts this run from its cache: no workflow calls now
    except BaseException:
        await cancel_all(running)
        raise
    return loop.outputs


async def _iteration(run: Interpreter, step: ForeachStep, scope: Scope, loop: LoopState, index: int) -> None:
    spec = step.with_
    prefix = f"{scope.id(step)}[{index}]."
    context = {
        spec.as_: loop.items[index],
        "loop": {"index": index + 1, "index0": index, "first": index == 0, "last": index == len(loop.items) - 1,
                 "length": len(loop.items)},
    }  # fmt: skip
    inner = Scope(prefix=prefix, local={**scope.local, **context})
    run.state.add_views(spec.steps, prefix)
    await run.may_start()
    outputs = await run.run_list(spec.steps, inner)
    loop.outputs[index] = outputs
    loop.done[index] = True
    if len(loop.items) > KEEP_ITERATION_VIEWS:  # keep the state small: the outputs and audit lines stay
        for key in [k for k in run.state.steps if k.startswith(prefix)]:
            del run.state.steps[key]
        run.state.completion_order = [k for k in run.state.completion_order if not k.startswith(prefix)]


@handles(PlaybookStep)
async def child(run: Interpreter, step: PlaybookStep, scope: Scope) -> Any:
    """Another playbook as a child workflow in the same organization; cancelling this one cancels it."""
    spec = step.with_
    view = run.state.steps[scope.id(step)]
    info = workflow.info()
    view.child_workflow_id = f"{info.workflow_id}/{view.id}"
    inputs = expressions.render(spec.inputs, run.context(scope))
    organization = run.state.input.organization_id
    try:
        result: dict[str, Any] = await run.busy_with(
            workflow.execute_child_workflow(
                WORKFLOW_NAME,
                ExecutionInput(
                    playbook_id=spec.playbook_id,
                    organization_id=organization,
                    initial_data=inputs,
                    requested_by=info.workflow_id,
                ),
                id=view.child_workflow_id,
                task_queue=info.task_queue,
                cancellation_type=ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
                parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
                static_summary=f"{spec.playbook_id} for {organization}, from {view.id}",
            )
        )
    except ChildWorkflowError as exc:
        if is_cancelled_exception(exc):
            raise
        raise StepFailed(view.id, f"child {view.child_workflow_id}: {cause(exc)}") from None
    return result["outputs"]
