"""PlaybookWorkflow: the one generic interpreter of playbooks.

The definition is resolved once by the first activity (validated there, pinned in history); the
interpreter works on the typed `Playbook`, keeps every bit of run state in one serializable
`RunState`, schedules steps as a DAG and dispatches each step to a small handler registered by
type name. Automated types without a handler run as the activity of the same name, so a new
step type is an activity plus a `with:` model — never an interpreter change.

A step already done in the state is never run again: that one rule makes a run resumable, so a
long execution hands its state over to a fresh run (continue-as-new) whenever its history grows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError, is_cancelled_exception
from temporalio.workflow import ChildWorkflowCancellationType, ParentClosePolicy

from model import expressions
from model import search_attributes as sa
from model.durations import format_duration, parse_duration
from model.execution import DONE, ExecutionInput, ExecutionUpdate, Prepared, PrepareRequest, StepRequest
from model.masking import secret_forms
from model.playbook import Playbook
from model.progress import markdown
from model.run import LoopState, Rejected, RunState, WaitState
from model.steps import HTTP_ALIASES, ApprovalWith, HumanWith, Notify, OnError, OnReject, OnTimeout, Step
from model.validator import default_dependencies
from model.variables import validate_values

ENGINE_TIMEOUT = timedelta(seconds=30)
STEP_TIMEOUT = timedelta(minutes=5)
ENGINE_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))
"""Engine bookkeeping retries until the database is back: nothing is lost in an outage."""
HANDOVER_EVENTS = 8_000
"""Hand over at the latest here, even if the server has not suggested it yet (it warns at 10,240)."""
FLUSH_LINES = 200
"""Queued audit lines written as soon as this many wait, so the state stays small."""
KEEP_ITERATION_VIEWS = 100
"""A foreach with more items keeps status entries only for iterations in flight."""


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

    def id(self, step: Step) -> str:
        return self.prefix + step.id


Handler = Callable[["PlaybookWorkflow", Step, Scope], Awaitable[Any]]
HANDLERS: dict[str, Handler] = {}


def handles(*types: str) -> Callable[[Handler], Handler]:
    """Register the workflow-side handler of step types (the rest run as activities)."""

    def register(fn: Handler) -> Handler:
        for name in types:
            HANDLERS[name] = fn
        return fn

    return register


def activity_name(step_type: str) -> str:
    return "http" if step_type in HTTP_ALIASES else step_type


@workflow.defn(name="PlaybookWorkflow")
class PlaybookWorkflow:
    @workflow.init
    def __init__(self, input: ExecutionInput) -> None:
        # built before any signal or update is handled: a message that arrives with a new run finds the state
        if input.carried is not None:
            self.state = RunState.model_validate(input.carried)
            self.state.runs += 1
        else:
            self.state = RunState(input=input, started_at=workflow.now(), status="running")
        self._busy = 0
        self._named_activities = True  # activities and child workflows in flight: a hand-over waits for none
        self._handing_over = False

    # ------------------------------------------------------------------ run
    @workflow.run
    async def run(self, input: ExecutionInput) -> dict[str, Any]:
        # versioning: runs recorded before activities were named after their steps replay as they ran
        self._named_activities = workflow.patched("activity-ids-name-steps")
        state = self._state
        try:
            if state.prepared is None:
                await self._prepare(input)
            else:
                self._changed()
            await self._run_steps()
            self._finish(self._playbook)
            state.status = "completed"
        except ExecutionFailed as failure:
            await self._end("failed", str(failure))  # the error then also names failed compensations
            raise ApplicationError(state.error or str(failure), type="PlaybookFailed", non_retryable=True) from None
        except (asyncio.CancelledError, ActivityError, ChildWorkflowError) as exc:
            if not (isinstance(exc, asyncio.CancelledError) or is_cancelled_exception(exc)):
                raise
            await self._end("cancelled", state.error or "cancelled")
            raise
        await self._end("completed", None)
        return self._masked({"status": "completed", "outputs": state.outputs, "steps": self._step_views()})

    async def _run_steps(self) -> None:
        """The playbook's steps, until done — or until the history is long enough to hand over."""
        main = asyncio.create_task(self._run_list(self._playbook.steps, Scope()))
        handover = asyncio.create_task(workflow.wait_condition(self._handover_ready))
        try:
            await workflow.wait([main, handover], return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # Temporal's cancellation reaches this coroutine: stop the steps too
            main.cancel()
            await workflow.wait([main])
            raise
        finally:
            handover.cancel()
        if not main.done():
            await self._hand_over(main)
        main.result()

    async def _prepare(self, input: ExecutionInput) -> None:
        state = self._state
        state.prepared = await workflow.execute_activity(
            "prepare_execution",
            PrepareRequest(
                execution_id=workflow.info().workflow_id,
                organization=input.organization_id,
                playbook_id=input.playbook_id,
                inline=input.playbook,
                requested_by=input.requested_by,
            ),
            result_type=Prepared,
            start_to_close_timeout=ENGINE_TIMEOUT,
            retry_policy=ENGINE_RETRY,
            activity_id="prepare" if self._named_activities else None,
        )
        playbook = state.prepared.playbook
        state.add_views(playbook.steps)
        self._changed()
        checked = validate_values(playbook.inputs, input.initial_data)
        sensitive = playbook.sensitive_inputs()
        state.secrets = sorted(set().union(*(secret_forms(input.initial_data.get(n)) for n in sensitive)))
        if checked.errors:
            raise ExecutionFailed("invalid inputs: " + "; ".join(str(e) for e in checked.errors))
        state.inputs = checked.values

    def _finish(self, playbook: Playbook) -> None:
        state = self._state
        context = self._context(Scope())
        try:
            state.outputs = {k: expressions.render(v, context) for k, v in playbook.outputs.items()}
            for criterion in playbook.success_criteria:
                if not expressions.condition(criterion, context):
                    raise ExecutionFailed(f"success criterion is false: {criterion}")
        except expressions.ExpressionError as exc:
            raise ExecutionFailed(f"outputs: {exc.message}") from None

    async def _end(self, status: str, error: str | None) -> None:
        """Compensate if needed, then record the final status and the pending audit lines."""
        state = self._state
        state.status = status
        state.error = self._masked(error) if error else None
        if status != "completed":
            await self._compensate()
        self._changed()
        await workflow.wait_condition(workflow.all_handlers_finished)
        if state.prepared is not None:
            await self._update_execution()

    async def _update_execution(self) -> None:
        state = self._state
        lines, state.unrecorded = state.unrecorded, []
        await workflow.execute_activity(
            "update_execution",
            ExecutionUpdate(
                organization_uuid=self._prepared.organization_uuid,
                execution_id=workflow.info().workflow_id,
                playbook_id=self._playbook.id,
                smart_code=self._playbook.smart_code,
                status=state.status,
                error=state.error,
                outputs=self._masked(state.outputs) if state.status == "completed" else None,
                lines=self._masked(lines),
            ),
            start_to_close_timeout=ENGINE_TIMEOUT,
            retry_policy=ENGINE_RETRY,
        )

    async def _compensate(self) -> None:
        """Saga: compensation bodies of completed steps, in reverse completion order, each failure reported."""
        state = self._state
        failures: list[str] = []
        while state.completion_order:
            view_id = state.completion_order.pop()
            step = self._playbook.step(view_id.rsplit(".", 1)[-1])
            if not step.compensate:
                continue
            scope = Scope(prefix=view_id[: -len(step.id)])
            state.add_views(step.compensate, scope.prefix)
            try:
                await self._run_list(step.compensate, scope)
            except ExecutionFailed as failure:
                failures.append(f"compensation of {view_id} failed: {failure}")
        if failures:
            state.error = "; ".join([state.error or "", *failures]).lstrip("; ")

    # ------------------------------------------------------------------ continue-as-new
    def _handover_due(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() >= HANDOVER_EVENTS

    def _handover_ready(self) -> bool:
        """Due, no activity or child in flight, no update being handled: the state says everything."""
        return self._handover_due() and self._busy == 0 and workflow.all_handlers_finished()

    async def _hand_over(self, main: asyncio.Task[Any]) -> None:
        """Stop the step tree where it stands (people keep waiting, timers keep their deadlines), carry on fresh."""
        self._handing_over = True
        main.cancel()
        await workflow.wait([main])
        state = self._state
        if state.unrecorded:
            await self._update_execution()
        state.started_at = state.started_at or workflow.now()
        workflow.continue_as_new(state.input.model_copy(update={"carried": state.model_dump(mode="json")}))

    async def _may_start(self) -> None:
        """No new step starts while paused or while a hand-over is due (it waits for in-flight work to drain)."""
        if self._state.paused or self._handover_due():
            await workflow.wait_condition(lambda: not self._state.paused and not self._handover_due())

    # ------------------------------------------------------------------ scheduling
    async def _run_list(self, steps: list[Step], scope: Scope, *, parallel: bool = False) -> dict[str, Any]:
        """Run a list of steps as a DAG: every step whose dependencies are met starts at once."""
        deps = default_dependencies(steps, parallel=parallel)
        pending = {s.id: s for s in steps}
        running: dict[str, asyncio.Task[None]] = {}
        try:
            while pending or running:
                for step_id in [sid for sid in pending if all(self._met(scope.prefix + d) for d in deps[sid])]:
                    running[step_id] = asyncio.create_task(self._run_step(pending.pop(step_id), scope))
                for step_id in [sid for sid in pending if any(self._dead(scope.prefix + d) for d in deps[sid])]:
                    pending.pop(step_id)
                    self._set_status(scope.prefix + step_id, "skipped", reason="a dependency did not complete")
                if running:
                    await _reap(running)
        except GeneratorExit:
            raise  # the worker evicts this run from its cache: no workflow calls now
        except BaseException:
            await _cancel_all(running)
            if not self._handing_over:
                for step_id in pending:
                    self._set_status(scope.prefix + step_id, "cancelled")
            raise
        return {s.id: self._state.steps[scope.id(s)].output for s in steps}

    def _met(self, view_id: str) -> bool:
        view = self._state.steps[view_id]
        return view.status in ("completed", "skipped") or (view.status == "failed" and self._continues(view_id))

    def _dead(self, view_id: str) -> bool:
        return self._state.steps[view_id].status == "cancelled"

    def _continues(self, view_id: str) -> bool:
        return self._playbook.step(view_id.rsplit(".", 1)[-1]).on_error == OnError.continue_

    async def _run_step(self, step: Step, scope: Scope) -> None:
        state = self._state
        view = state.steps[scope.id(step)]
        if view.status in DONE:
            return  # done in an earlier run: a resumed run never repeats a step
        if view.status == "pending":
            await self._may_start()
        try:
            if view.status == "pending":
                if step.when is not None and not expressions.condition(step.when, self._context(scope)):
                    self._set_status(view.id, "skipped")
                    return
                view.status, view.started_at = "running", workflow.now()
                self._changed()
            view.output = await HANDLERS.get(step.type, PlaybookWorkflow._activity_step)(self, step, scope)
            if view.status not in DONE:
                self._set_status(view.id, "completed")
            if view.status == "completed":
                state.completion_order.append(view.id)
        except expressions.ExpressionError as exc:
            self._fail(step, view.id, exc.message)
        except StepFailed as failure:
            self._fail(step, view.id, failure.reason)
        except (ActivityError, ChildWorkflowError) as exc:
            if is_cancelled_exception(exc):
                self._set_status(view.id, "cancelled")
                raise
            self._fail(step, view.id, _cause(exc))
        except asyncio.CancelledError:
            if not self._handing_over:
                self._set_status(view.id, "cancelled")
            raise
        if len(state.unrecorded) >= FLUSH_LINES:
            await self._update_execution()

    def _fail(self, step: Step, view_id: str, reason: str) -> None:
        """Mark a step failed; it fails the execution unless the step says on_error: continue."""
        self._set_status(view_id, "failed", reason=reason)
        if step.on_error != OnError.continue_:
            raise StepFailed(view_id, reason)

    def _set_status(self, view_id: str, status: str, *, reason: str | None = None, record: bool = True) -> None:
        self._state.set_status(view_id, status, now=workflow.now(), reason=reason, record=record)
        self._changed()

    async def _busy_with(self, work: Awaitable[Any]) -> Any:
        """Await an activity or child workflow, counted so a hand-over waits for it."""
        self._busy += 1
        try:
            return await work
        finally:
            self._busy -= 1

    # ------------------------------------------------------------------ automated steps
    async def _activity_step(self, step: Step, scope: Scope) -> Any:
        state = self._state
        view = state.steps[scope.id(step)]
        rendered = self._render_with(step, scope)
        retry = step.retry
        policy = (
            RetryPolicy(
                maximum_attempts=retry.max_attempts,
                initial_interval=retry.initial_interval or timedelta(seconds=1),
                backoff_coefficient=retry.backoff_coefficient,
                maximum_interval=retry.maximum_interval,
            )
            if retry
            else RetryPolicy(maximum_interval=timedelta(seconds=30))
        )
        view.attempts = 1
        output = await self._busy_with(
            workflow.execute_activity(
                activity_name(step.type),
                StepRequest(
                    organization_uuid=self._prepared.organization_uuid,
                    execution_id=workflow.info().workflow_id,
                    step_id=step.id,
                    step_type=step.type,
                    iteration=scope.iteration,
                    playbook_id=self._playbook.id,
                    smart_code=step.smart_code,
                    with_=rendered,
                    secrets=state.secrets,
                    started_at=view.started_at,
                ),
                start_to_close_timeout=step.timeout or STEP_TIMEOUT,
                retry_policy=policy,
                # the step names its activity in the Web UI; a summary would cost a payload per step
                activity_id=view.id if self._named_activities else None,
            )
        )
        self._set_status(view.id, "completed", record=False)  # the activity wrote its own audit line
        return output

    def _render_with(self, step: Step, scope: Scope) -> dict[str, Any]:
        raw = step.with_ if isinstance(step.with_, dict) else step.with_.model_dump(mode="json", by_alias=True)
        context = self._context(scope)
        if step.type == "validation":
            rules = []
            for rule in raw.pop("rules"):
                passed = expressions.condition(rule["assert"], context)
                # a message explains a failure: it may read data that only exists when the rule fails
                rules.append(
                    {
                        "passed": passed,
                        "message": rule["message"] if passed else expressions.render(rule["message"], context),
                    }
                )
            return {**expressions.render(raw, context), "rules": rules}
        rendered: dict[str, Any] = expressions.render(raw, context)
        return rendered

    # ------------------------------------------------------------------ workflow-side steps
    @handles("set")
    async def _set(self, step: Step, scope: Scope) -> Any:
        values = expressions.render(step.with_.vars, self._context(scope))  # type: ignore[union-attr]
        self._state.vars.update(values)
        return values

    @handles("wait")
    async def _wait(self, step: Step, scope: Scope) -> Any:
        spec = step.with_
        view = self._state.steps[scope.id(step)]
        assert view.started_at is not None
        if spec.duration is not None:  # type: ignore[union-attr]
            duration = spec.duration  # type: ignore[union-attr]
            if isinstance(duration, str):
                rendered = expressions.render(duration, self._context(scope))
                try:
                    duration = parse_duration(rendered)
                except ValueError as exc:
                    raise StepFailed(view.id, f"with.duration: {exc}") from None
            until = view.started_at + duration
        else:
            text = expressions.render(spec.until, self._context(scope))  # type: ignore[union-attr]
            try:
                until = datetime.fromisoformat(str(text))
            except ValueError:
                raise StepFailed(view.id, f"with.until: {text!r} is not an ISO 8601 time") from None
        remaining = (until - workflow.now()).total_seconds()  # from the start: a resumed run keeps the deadline
        if remaining > 0:
            await workflow.sleep(remaining, summary=f"step {view.id}: wait until {until.isoformat()}")
        return None

    @handles("parallel", "sequential")
    async def _group(self, step: Step, scope: Scope) -> Any:
        return await self._run_list(step.with_.steps, scope, parallel=step.type == "parallel")  # type: ignore[union-attr]

    @handles("switch")
    async def _switch(self, step: Step, scope: Scope) -> Any:
        """The first case whose condition holds, else the default; the branches not taken end skipped."""
        spec = step.with_
        view_id = scope.id(step)
        choice = self._state.choices.get(view_id)
        if choice is None:
            context = self._context(scope)
            choice = next((i for i, c in enumerate(spec.cases) if expressions.condition(c.when, context)), -1)  # type: ignore[union-attr]
            self._state.choices[view_id] = choice
        branches = [case.steps for case in spec.cases] + [spec.default]  # type: ignore[union-attr]
        chosen = branches[choice]
        for branch in branches:
            if branch is not chosen:
                self._skip_all(branch, scope, "branch not taken")
        return await self._run_list(chosen, scope)

    def _skip_all(self, steps: list[Step], scope: Scope, reason: str) -> None:
        for step in steps:
            if self._state.steps[scope.id(step)].status == "pending":
                self._set_status(scope.id(step), "skipped", reason=reason)
            if step.type != "foreach":
                for body in step.children():
                    self._skip_all(body, scope, reason)

    @handles("foreach")
    async def _foreach(self, step: Step, scope: Scope) -> Any:
        """Sub-steps per item, `concurrency` at a time; results in item order."""
        spec = step.with_
        view_id = scope.id(step)
        loop = self._state.loops.get(view_id)
        if loop is None:
            items = expressions.render(spec.items, self._context(scope))  # type: ignore[union-attr]
            if not isinstance(items, list):
                raise StepFailed(view_id, f"with.items: gives a {type(items).__name__}, not a list")
            loop = LoopState(items=items, outputs=[None] * len(items), done=[False] * len(items))
            self._state.loops[view_id] = loop
        todo = [i for i, done in enumerate(loop.done) if not done]
        running: dict[int, asyncio.Task[None]] = {}
        try:
            while todo or running:
                while todo and len(running) < spec.concurrency:  # type: ignore[union-attr]
                    index = todo.pop(0)
                    running[index] = asyncio.create_task(self._iteration(step, scope, loop, index))
                await _reap(running)
        except GeneratorExit:
            raise  # the worker evicts this run from its cache: no workflow calls now
        except BaseException:
            await _cancel_all(running)
            raise
        return loop.outputs

    async def _iteration(self, step: Step, scope: Scope, loop: LoopState, index: int) -> None:
        spec = step.with_
        prefix = f"{scope.id(step)}[{index}]."
        context = {
            spec.as_: loop.items[index],  # type: ignore[union-attr]
            "loop": {"index": index + 1, "index0": index, "first": index == 0, "last": index == len(loop.items) - 1,
                     "length": len(loop.items)},
        }  # fmt: skip
        inner = Scope(prefix=prefix, local={**scope.local, **context})
        body: list[Step] = spec.steps  # type: ignore[union-attr]
        self._state.add_views(body, prefix)
        await self._may_start()
        outputs = await self._run_list(body, inner)
        loop.outputs[index] = outputs
        loop.done[index] = True
        if len(loop.items) > KEEP_ITERATION_VIEWS:  # keep the state small: the outputs and audit lines stay
            for key in [k for k in self._state.steps if k.startswith(prefix)]:
                del self._state.steps[key]
            self._state.completion_order = [k for k in self._state.completion_order if not k.startswith(prefix)]

    @handles("playbook")
    async def _child(self, step: Step, scope: Scope) -> Any:
        """Another playbook as a child workflow in the same organization; cancelling this one cancels it."""
        spec = step.with_
        view = self._state.steps[scope.id(step)]
        info = workflow.info()
        view.child_workflow_id = f"{info.workflow_id}/{view.id}"
        inputs = expressions.render(spec.inputs, self._context(scope))  # type: ignore[union-attr]
        try:
            result = await self._busy_with(
                workflow.execute_child_workflow(
                    PlaybookWorkflow.run,
                    ExecutionInput(
                        playbook_id=spec.playbook_id,  # type: ignore[union-attr]
                        organization_id=self._state.input.organization_id,
                        initial_data=inputs,
                        requested_by=info.workflow_id,
                    ),
                    id=view.child_workflow_id,
                    task_queue=info.task_queue,
                    cancellation_type=ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
                    parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
                    static_summary=f"{spec.playbook_id} for {self._state.input.organization_id}, from {view.id}",  # type: ignore[union-attr]
                )
            )
        except ChildWorkflowError as exc:
            if is_cancelled_exception(exc):
                raise
            raise StepFailed(view.id, f"child {view.child_workflow_id}: {_cause(exc)}") from None
        return result["outputs"]

    @handles("human", "approval")
    async def _people(self, step: Step, scope: Scope) -> Any:
        state = self._state
        spec: HumanWith | ApprovalWith = step.with_  # type: ignore[assignment]
        view = state.steps[scope.id(step)]
        waiting = state.waiting.setdefault(view.id, WaitState(step_id=view.id, role=spec.assignee_role))
        view.status = "waiting"
        try:
            decided = await self._await_people(view.id, step, spec, waiting)
        except asyncio.CancelledError:
            if not self._handing_over:
                self._stop_waiting(view.id)
            raise
        except ExecutionFailed:
            self._stop_waiting(view.id)
            raise
        self._stop_waiting(view.id)
        if not decided:  # the deadline skipped it
            view.data = expressions.render(spec.default or {}, self._context(scope))
            self._set_status(view.id, "skipped", reason="deadline passed")
            return {"data": view.data, "completed_by": None}
        view.data, view.completed_by = waiting.data, waiting.completed_by
        output: dict[str, Any] = {"data": waiting.data, "completed_by": waiting.completed_by}
        if isinstance(spec, ApprovalWith):
            approved = all(a.approved for a in waiting.approvals)
            output = {"approved": approved, "approvals": [a.model_dump(mode="json") for a in waiting.approvals]}
            if not approved and spec.on_reject == OnReject.fail:
                view.output = output
                raise StepFailed(view.id, f"rejected by {waiting.completed_by or 'an approver'}")
        view.output = output
        self._set_status(view.id, "completed")
        await self._update_execution()  # who decided what is on record at once, not only at the end
        return output

    async def _await_people(self, view_id: str, step: Step, spec: HumanWith | ApprovalWith, waiting: WaitState) -> bool:
        """Wait for a decision through each deadline; False when a deadline skips the step."""
        roles = spec.escalation_roles
        while True:
            if step.timeout and waiting.deadline is None:
                waiting.deadline = workflow.now() + step.timeout
            self._changed()
            remaining = (waiting.deadline - workflow.now()).total_seconds() if waiting.deadline else None
            try:
                if remaining is not None and remaining <= 0:
                    raise TimeoutError
                await workflow.wait_condition(lambda: waiting.decided, timeout=remaining)
                return True
            except TimeoutError:
                if spec.on_timeout == OnTimeout.escalate and waiting.escalations < len(roles):
                    waiting.role = roles[waiting.escalations]
                    waiting.escalations += 1
                    waiting.escalated_at.append(workflow.now())
                    waiting.deadline = None  # the next role gets a fresh deadline
                    if spec.notify:
                        await self._notify_escalation(view_id, step, spec.notify, waiting)
                    continue
                if spec.on_timeout == OnTimeout.skip:
                    return False
                limit = format_duration(step.timeout) if step.timeout else "the deadline"
                raise StepFailed(view_id, f"deadline passed ({limit} without completion)") from None

    async def _notify_escalation(self, view_id: str, step: Step, notify: Notify, waiting: WaitState) -> None:
        """Tell `notify` that a step moved to the next role, through the notification step type."""
        body = f"{step.title} ({view_id}) in {workflow.info().workflow_id} now waits for role {waiting.role}."
        try:
            await self._busy_with(
                workflow.execute_activity(
                    "notification",
                    StepRequest(
                        organization_uuid=self._prepared.organization_uuid,
                        execution_id=workflow.info().workflow_id,
                        step_id=step.id,
                        step_type="notification",
                        iteration=f"{view_id.removesuffix(step.id)}escalation-{waiting.escalations}",
                        playbook_id=self._playbook.id,
                        with_={**notify.model_dump(), "subject": f"Escalated: {step.title}", "body": body},
                        secrets=self._state.secrets,
                    ),
                    start_to_close_timeout=ENGINE_TIMEOUT,
                    retry_policy=RetryPolicy(maximum_attempts=5),
                    activity_id=f"{view_id}/escalation-{waiting.escalations}" if self._named_activities else None,
                )
            )
        except ActivityError as exc:  # the escalation itself stands; the failed message is reported, not fatal
            workflow.logger.warning("escalation notice for %s was not delivered: %s", view_id, _cause(exc))

    def _stop_waiting(self, view_id: str) -> None:
        self._state.waiting.pop(view_id, None)
        self._changed()

    # ------------------------------------------------------------------ people's messages
    @workflow.signal(name="complete_step")
    def complete_step(self, raw: Any) -> None:
        """Complete a waiting human/approval step; a completion that can't apply lands in status.rejected."""
        try:
            completion, data = self._state.check_completion(raw)
        except Rejected as exc:
            self._state.reject(raw, str(exc), now=workflow.now())
            return
        self._state.apply_completion(completion, data, now=workflow.now())

    @workflow.update(name="submit_step")
    def submit_step(self, raw: Any) -> dict[str, Any]:
        """Like complete_step, but an invalid completion is rejected to the caller with the reason."""
        completion, data = self._state.check_completion(raw)
        self._state.apply_completion(completion, data, now=workflow.now())
        return {"step_id": completion.step_id, "accepted": True}

    @submit_step.validator
    def _validate_submit(self, raw: Any) -> None:
        try:
            self._state.check_completion(raw)
        except Rejected as exc:
            raise ApplicationError(str(exc), type="Rejected", non_retryable=True) from None

    @workflow.signal(name="pause")
    async def pause(self, args: Any = None) -> None:
        """No new step starts while paused; running steps finish."""
        await self._set_paused(True)

    @workflow.signal(name="resume")
    async def resume(self, args: Any = None) -> None:
        await self._set_paused(False)

    async def _set_paused(self, paused: bool) -> None:
        state = self._state
        if state.status not in ("running", "paused") or state.paused == paused:
            return
        state.paused = paused
        state.status = "paused" if paused else "running"
        self._changed()
        if state.prepared is not None:
            await self._update_execution()

    @workflow.signal(name="cancel")
    async def cancel(self, args: Any = None) -> None:
        """Stop, compensate, end cancelled — through Temporal's own cancellation, so the UI shows it."""
        state = self._state
        if state.status in DONE:
            return
        reason = args.get("reason") if isinstance(args, dict) else None
        state.error = f"cancelled: {reason}" if reason else "cancelled"
        await workflow.execute_activity(
            "request_cancellation",
            workflow.info().workflow_id,
            start_to_close_timeout=ENGINE_TIMEOUT,
            retry_policy=ENGINE_RETRY,
        )

    # ------------------------------------------------------------------ queries
    @workflow.query(name="status")
    def status(self) -> dict[str, Any]:
        return self._state.status_view(workflow.info().workflow_id)

    @workflow.query(name="definition")
    def definition(self) -> dict[str, Any] | None:
        state = self._state
        return (
            state.prepared.playbook.model_dump(mode="json", by_alias=True, exclude_none=True)
            if state.prepared
            else None
        )

    # ------------------------------------------------------------------ helpers
    @property
    def _state(self) -> RunState:
        assert self.state is not None
        return self.state

    @property
    def _prepared(self) -> Prepared:
        assert self._state.prepared is not None
        return self._state.prepared

    @property
    def _playbook(self) -> Playbook:
        return self._state.playbook

    def _context(self, scope: Scope) -> dict[str, Any]:
        return self._state.context(workflow.info().workflow_id, prefix=scope.prefix, local=scope.local)

    def _step_views(self) -> list[dict[str, Any]]:
        return [v.model_dump(mode="json") for v in self._state.steps.values()]

    def _masked(self, value: Any) -> Any:
        return self._state.masked(value)

    def _changed(self) -> None:
        """Keep what operators see current: search attributes (only those that changed) and the details view."""
        state = self._state
        wanted: list[Any] = [
            (sa.PLAYBOOK_ID, state.input.playbook_id),
            (sa.ORGANIZATION_ID, state.input.organization_id),
            (sa.PLAYBOOK_STATUS, state.status),
            (sa.WAITING_FOR, state.waiting_for()),
        ]
        if state.prepared:
            wanted.append((sa.PLAYBOOK_MODULE, state.prepared.playbook.module.value))
        current = workflow.info().typed_search_attributes
        updates = [
            key.value_set(value) for key, value in wanted if current.get(key) != value and (value or current.get(key))
        ]
        if updates:
            workflow.upsert_search_attributes(updates)
        if state.prepared:
            workflow.set_current_details(markdown(state, workflow.info().workflow_id))


async def _reap(running: dict[Any, asyncio.Task[None]]) -> None:
    """Wait for the first of the running tasks to end; drop the ended ones, raising what they raised."""
    done, _ = await workflow.wait(list(running.values()), return_when=asyncio.FIRST_COMPLETED)
    for key, task in list(running.items()):
        if task in done:
            del running[key]
            task.result()


async def _cancel_all(running: dict[Any, asyncio.Task[None]]) -> None:
    """Cancel the running tasks and wait until each has unwound (their steps end cancelled)."""
    for task in running.values():
        task.cancel()
    if running:
        await workflow.wait(list(running.values()))


def _cause(exc: BaseException) -> str:
    """The innermost ApplicationError's message: what the activity (or child) said went wrong."""
    found: BaseException | None = exc
    while found is not None and not isinstance(found, ApplicationError):
        found = found.__cause__
    return found.message if isinstance(found, ApplicationError) else str(exc)
