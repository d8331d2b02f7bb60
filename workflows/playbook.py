"""PlaybookWorkflow: the one generic interpreter of playbooks.

The definition is resolved once by the first activity (validated there, pinned in history); the
interpreter works on the typed `Playbook`, keeps every bit of run state in one serializable
`RunState`, schedules steps as a DAG and dispatches each step to a small handler registered by
type name. Automated types without a handler run as the activity of the same name, so a new
step type is an activity plus a `with:` model — never an interpreter change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

from model import expressions
from model import search_attributes as sa
from model.durations import format_duration
from model.execution import (
    DONE,
    ExecutionInput,
    ExecutionUpdate,
    Prepared,
    PrepareRequest,
    StepRequest,
    StepView,
)
from model.masking import secret_forms
from model.playbook import Playbook
from model.run import Rejected, RunState, WaitState
from model.steps import (
    HTTP_ALIASES,
    PEOPLE_TYPES,
    ApprovalWith,
    HumanWith,
    OnError,
    OnReject,
    OnTimeout,
    Step,
)
from model.validator import default_dependencies
from model.variables import validate_values

ENGINE_TIMEOUT = timedelta(seconds=30)
STEP_TIMEOUT = timedelta(minutes=5)
ENGINE_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))
"""Engine bookkeeping retries until the database is back: nothing is lost in an outage."""


class ExecutionFailed(Exception):
    """The execution cannot complete; the message says why."""


class StepFailed(ExecutionFailed):
    """A step ended failed; the message names the step and the reason."""

    def __init__(self, step_id: str, reason: str) -> None:
        super().__init__(f"step {step_id}: {reason}")
        self.step_id = step_id
        self.reason = reason


Handler = Callable[["PlaybookWorkflow", Step], Awaitable[Any]]
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
    def __init__(self) -> None:
        self.state: RunState | None = None

    # ------------------------------------------------------------------ run
    @workflow.run
    async def run(self, input: ExecutionInput) -> dict[str, Any]:
        self.state = state = RunState(input=input, started_at=workflow.now(), status="running")
        try:
            prepared = await workflow.execute_activity(
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
                summary="resolve the playbook and register the execution",
            )
            state.prepared = prepared
            playbook = prepared.playbook
            state.steps = {s.id: StepView(id=s.id, name=s.title, type=s.type) for _, s in playbook.walk()}
            self._upsert_search_attributes()
            checked = validate_values(playbook.inputs, input.initial_data)
            sensitive = playbook.sensitive_inputs()
            state.secrets = sorted(set().union(*(secret_forms(input.initial_data.get(n)) for n in sensitive)))
            if checked.errors:
                raise ExecutionFailed("invalid inputs: " + "; ".join(str(e) for e in checked.errors))
            state.inputs = checked.values
            await self._run_list(playbook.steps)
            self._finish(playbook)
            state.status = "completed"
        except ExecutionFailed as failure:
            await self._end("failed", str(failure))
            raise ApplicationError(self._masked(str(failure)), type="PlaybookFailed", non_retryable=True) from None
        except (asyncio.CancelledError, ActivityError) as exc:
            if not (isinstance(exc, asyncio.CancelledError) or is_cancelled_exception(exc)):
                raise
            await self._end("cancelled", state.error or "cancelled")
            raise
        await self._end("completed", None)
        return self._masked({"status": "completed", "outputs": state.outputs, "steps": self._step_views()})

    def _finish(self, playbook: Playbook) -> None:
        state = self._state
        context = self._context()
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
        self._upsert_search_attributes()
        await workflow.wait_condition(workflow.all_handlers_finished)
        if state.prepared is None:
            return
        await self._update_execution()

    async def _update_execution(self) -> None:
        state = self._state
        assert state.prepared is not None
        lines, state.unrecorded = state.unrecorded, []
        await workflow.execute_activity(
            "update_execution",
            ExecutionUpdate(
                organization_uuid=state.prepared.organization_uuid,
                execution_id=workflow.info().workflow_id,
                playbook_id=state.prepared.playbook.id,
                smart_code=state.prepared.playbook.smart_code,
                status=state.status,
                error=state.error,
                outputs=self._masked(state.outputs) if state.status == "completed" else None,
                lines=self._masked(lines),
            ),
            start_to_close_timeout=ENGINE_TIMEOUT,
            retry_policy=ENGINE_RETRY,
            summary=f"record status {state.status}",
        )

    async def _compensate(self) -> None:
        """Saga: compensation bodies of completed steps, in reverse completion order."""
        playbook = self._playbook
        for step_id in reversed(self._state.completion_order):
            step = playbook.step(step_id)
            if step.compensate:
                try:
                    await self._run_list(step.compensate)
                except StepFailed as failure:
                    self._state.error = f"{self._state.error}; compensation failed: {failure}"

    # ------------------------------------------------------------------ scheduling
    async def _run_list(self, steps: list[Step], *, parallel: bool = False) -> dict[str, Any]:
        """Run a list of steps as a DAG: every step whose dependencies are met starts at once."""
        deps = default_dependencies(steps, parallel=parallel)
        pending = {s.id: s for s in steps}
        running: dict[str, asyncio.Task[None]] = {}
        try:
            while pending or running:
                for step_id in [sid for sid in pending if all(self._met(d) for d in deps[sid])]:
                    running[step_id] = asyncio.create_task(self._run_step(pending.pop(step_id)))
                blocked = [sid for sid in pending if any(self._dead(d) for d in deps[sid])]
                for step_id in blocked:
                    pending.pop(step_id)
                    self._set_status(step_id, "skipped", reason="a dependency did not complete")
                if not running:
                    continue
                done, _ = await workflow.wait(list(running.values()), return_when=asyncio.FIRST_COMPLETED)
                for step_id, task in list(running.items()):
                    if task in done:
                        del running[step_id]
                        task.result()
        except BaseException:
            for task in running.values():
                task.cancel()
            if running:
                await workflow.wait(list(running.values()))
            for step_id in pending:
                self._set_status(step_id, "cancelled")
            raise
        return {s.id: self._state.steps[s.id].output for s in steps}

    def _met(self, step_id: str) -> bool:
        view = self._state.steps[step_id]
        return view.status in ("completed", "skipped") or (view.status == "failed" and self._continues(step_id))

    def _dead(self, step_id: str) -> bool:
        return self._state.steps[step_id].status == "cancelled"

    def _continues(self, step_id: str) -> bool:
        return self._playbook.step(step_id).on_error == OnError.continue_

    async def _run_step(self, step: Step) -> None:
        state = self._state
        view = state.steps[step.id]
        await workflow.wait_condition(lambda: not state.paused)
        try:
            if step.when is not None and not expressions.condition(step.when, self._context()):
                self._set_status(step.id, "skipped")
                return
            view.status, view.started_at = "running", workflow.now()
            view.output = await HANDLERS.get(step.type, PlaybookWorkflow._activity_step)(self, step)
            if view.status not in DONE:
                self._set_status(step.id, "completed")
            if view.status == "completed":
                state.completion_order.append(step.id)
        except expressions.ExpressionError as exc:
            self._fail(step, exc.message)
        except StepFailed as failure:
            self._fail(step, failure.reason)
        except ActivityError as exc:
            if is_cancelled_exception(exc):
                self._set_status(step.id, "cancelled")
                raise
            self._fail(step, _cause(exc))
        except asyncio.CancelledError:
            self._set_status(step.id, "cancelled")
            raise

    def _fail(self, step: Step, reason: str) -> None:
        """Mark a step failed; it fails the execution unless the step says on_error: continue."""
        self._set_status(step.id, "failed", reason=reason)
        if step.on_error != OnError.continue_:
            raise StepFailed(step.id, reason)

    def _set_status(self, step_id: str, status: str, *, reason: str | None = None, record: bool = True) -> None:
        self._state.set_status(step_id, status, now=workflow.now(), reason=reason, record=record)

    # ------------------------------------------------------------------ automated steps
    async def _activity_step(self, step: Step) -> Any:
        state = self._state
        assert state.prepared is not None
        rendered = self._render_with(step)
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
        view = state.steps[step.id]
        view.attempts = 1
        output = await workflow.execute_activity(
            activity_name(step.type),
            StepRequest(
                organization_uuid=state.prepared.organization_uuid,
                execution_id=workflow.info().workflow_id,
                step_id=step.id,
                step_type=step.type,
                smart_code=step.smart_code,
                with_=rendered,
                secrets=state.secrets,
                started_at=view.started_at,
            ),
            start_to_close_timeout=step.timeout or STEP_TIMEOUT,
            retry_policy=policy,
            summary=f"step {step.id} ({step.type})",
        )
        self._set_status(step.id, "completed", record=False)  # the activity wrote its own audit line
        return output

    def _render_with(self, step: Step) -> dict[str, Any]:
        raw = step.with_ if isinstance(step.with_, dict) else step.with_.model_dump(mode="json", by_alias=True)
        context = self._context()
        if step.type == "validation":
            rules = [
                {"passed": expressions.condition(rule["assert"], context), "message": rule["message"]}
                for rule in raw.pop("rules")
            ]
            return {**expressions.render(raw, context), "rules": expressions.render(rules, context)}
        rendered: dict[str, Any] = expressions.render(raw, context)
        return rendered

    # ------------------------------------------------------------------ workflow-side steps
    @handles("set")
    async def _set(self, step: Step) -> Any:
        values = expressions.render(step.with_.vars, self._context())  # type: ignore[union-attr]
        self._state.vars.update(values)
        return values

    @handles("wait")
    async def _wait(self, step: Step) -> Any:
        spec = step.with_
        if spec.duration is not None:  # type: ignore[union-attr]
            await workflow.sleep(spec.duration)  # type: ignore[union-attr]
            return None
        until = expressions.render(spec.until, self._context())  # type: ignore[union-attr]
        try:
            moment = datetime.fromisoformat(str(until))
        except ValueError:
            raise StepFailed(step.id, f"with.until: {until!r} is not an ISO 8601 time") from None
        delay = (moment - workflow.now()).total_seconds()
        if delay > 0:
            await workflow.sleep(delay)
        return None

    @handles("parallel", "sequential")
    async def _group(self, step: Step) -> Any:
        return await self._run_list(step.with_.steps, parallel=step.type == "parallel")  # type: ignore[union-attr]

    @handles("human", "approval")
    async def _people(self, step: Step) -> Any:
        state = self._state
        spec: HumanWith | ApprovalWith = step.with_  # type: ignore[assignment]
        view = state.steps[step.id]
        waiting = WaitState(step_id=step.id, role=spec.assignee_role)
        state.waiting[step.id] = waiting
        view.status = "waiting"
        try:
            decided = await self._await_people(step, spec, waiting)
        except (asyncio.CancelledError, ExecutionFailed):
            self._stop_waiting(step.id)
            raise
        self._stop_waiting(step.id)
        if not decided:  # the deadline skipped it
            view.data = expressions.render(spec.default or {}, self._context())
            self._set_status(step.id, "skipped", reason="deadline passed")
            return {"data": view.data, "completed_by": None}
        view.data, view.completed_by = waiting.data, waiting.completed_by
        output: dict[str, Any] = {"data": waiting.data, "completed_by": waiting.completed_by}
        if isinstance(spec, ApprovalWith):
            approved = all(a.approved for a in waiting.approvals)
            output = {"approved": approved, "approvals": [a.model_dump(mode="json") for a in waiting.approvals]}
            if not approved and spec.on_reject == OnReject.fail:
                view.output = output
                raise StepFailed(step.id, f"rejected by {waiting.completed_by or 'an approver'}")
        view.output = output
        self._set_status(step.id, "completed")
        await self._update_execution()  # who decided what is on record at once, not only at the end
        return output

    async def _await_people(self, step: Step, spec: HumanWith | ApprovalWith, waiting: WaitState) -> bool:
        """Wait for a decision through each deadline; False when a deadline skips the step."""
        roles = spec.escalation_roles
        while True:
            waiting.deadline = workflow.now() + step.timeout if step.timeout else None
            self._upsert_search_attributes()
            try:
                await workflow.wait_condition(lambda: waiting.decided, timeout=step.timeout)
                return True
            except TimeoutError:
                if spec.on_timeout == OnTimeout.escalate and waiting.escalations < len(roles):
                    waiting.role = roles[waiting.escalations]
                    waiting.escalations += 1
                    continue
                if spec.on_timeout == OnTimeout.skip:
                    return False
                limit = format_duration(step.timeout) if step.timeout else "the deadline"
                raise StepFailed(step.id, f"deadline passed ({limit} without completion)") from None

    def _stop_waiting(self, step_id: str) -> None:
        self._state.waiting.pop(step_id, None)
        self._upsert_search_attributes()

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
        self._upsert_search_attributes()
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
            summary="cancel this execution",
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
    def _playbook(self) -> Playbook:
        return self._state.playbook

    def _context(self) -> dict[str, Any]:
        return self._state.context(workflow.info().workflow_id)

    def _step_views(self) -> list[dict[str, Any]]:
        return [v.model_dump(mode="json") for v in self._state.steps.values()]

    def _masked(self, value: Any) -> Any:
        return self._state.masked(value)

    def _upsert_search_attributes(self) -> None:
        """Upsert only the attributes whose value changed (each upsert is a history event)."""
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


def _cause(exc: BaseException) -> str:
    """The innermost ApplicationError's message: what the activity said went wrong."""
    found: BaseException | None = exc
    while found is not None and not isinstance(found, ApplicationError):
        found = found.__cause__
    return found.message if isinstance(found, ApplicationError) else str(exc)


__all__ = ["HANDLERS", "PEOPLE_TYPES", "PlaybookWorkflow", "RunState", "handles"]
