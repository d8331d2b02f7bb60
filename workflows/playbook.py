"""PlaybookWorkflow: the one generic interpreter of playbooks.

The definition is resolved once by the first activity (validated there, pinned in history); the
interpreter works on the typed `Playbook`, keeps every bit of run state in one serializable
`RunState`, schedules steps as a DAG and dispatches each step to a small handler registered by
step class (`workflows.dispatch`; people in `people`, control flow in `control`). Automated types
without a handler run as the activity of the same name (`automated`), so a new step type is an
activity plus a `with:` model — never an interpreter change. This module keeps the lifecycle, the
scheduler, the hand-over, the messages and the queries.

A step already done in the state is never run again: that one rule makes a run resumable, so a
long execution hands its state over to a fresh run (continue-as-new) whenever its history grows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError, is_cancelled_exception

from model import expressions
from model import search_attributes as sa
from model.claims import apply_claim, check_claim
from model.execution import (
    WORKFLOW_NAME,
    Criterion,
    ExecutionInput,
    ExecutionUpdate,
    NoteRequest,
    Prepared,
    PrepareRequest,
)
from model.limits import MAX_REASON_BYTES, MAX_TEXT, clip, quote
from model.masking import secret_forms
from model.playbook import Playbook
from model.progress import markdown
from model.run import Conflict, Rejected, RunState
from model.status import DONE, ENDED, PASSED, ExecutionStatus, StepStatus
from model.steps import OnError, Step
from model.validator import default_dependencies
from model.variables import validate_values

from . import control, people  # noqa: F401  (register the workflow-side step handlers)
from .automated import run_activity
from .dispatch import HANDLERS, ExecutionFailed, Scope, StepFailed, cancel_all, cause, reap

ENGINE_TIMEOUT = timedelta(seconds=30)
ENGINE_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))
"""Engine bookkeeping retries until the database is back: nothing is lost in an outage."""
HANDOVER_EVENTS = 8_000
"""Hand over at the latest here, even if the server has not suggested it yet (it warns at 10,240)."""
CURRENT = "interpreter-2026-12"
"""The one patch a new run records: it stands for local bookkeeping, named activities and the inbox memo."""
FLUSH_LINES = 200
"""Queued audit lines written as soon as this many wait, so the state stays small."""


# outside the SDK sandbox, which cost a third of the worker's CPU; the replay suite replays every recording inside it
@workflow.defn(name=WORKFLOW_NAME, sandboxed=False)
class PlaybookWorkflow:
    state: RunState
    """Everything the execution knows: one object, carried over by continue-as-new."""
    named_activities: bool
    local_bookkeeping: bool
    """Prepare and execution updates run as local activities (patched in; old runs replay as activities)."""
    handing_over: bool

    @workflow.init
    def __init__(self, input: ExecutionInput) -> None:
        # built before any signal or update is handled: a message that arrives with a new run finds the state
        if input.carried is not None:
            self.state = RunState.model_validate(input.carried)
            self.state.runs += 1
        else:
            self.state = RunState(input=input, started_at=workflow.now(), status=ExecutionStatus.running)
        self._busy = 0  # activities and child workflows in flight: a hand-over waits for none
        self.named_activities = True
        self.local_bookkeeping = True
        self.handing_over = False
        self._details_due = False
        self.inbox_memo: bool | None = None
        """The waiting steps are published in the memo (None: a run from before `CURRENT` has not asked yet)."""
        # what the memo's inbox last said; unknown in a carried-over run, so its first change rewrites it
        self._inbox_sent: list[dict[str, Any]] | None = None if input.carried is not None else []
        self._signals: dict[str, Callable[[Any], Awaitable[None]]] = {
            "complete_step": self.complete_step, "pause": self.pause, "resume": self.resume,
            "cancel": self.cancel, "add_note": self.add_note,
        }  # fmt: skip

    # ------------------------------------------------------------------ run
    @workflow.run
    async def run(self, input: ExecutionInput) -> dict[str, Any]:
        self._versions()
        state = self.state
        self._details = asyncio.create_task(self._keep_details())
        try:
            if state.prepared is None:
                await self._prepare(input)
            else:
                self.changed()
            await self._run_steps()
            self._finish(self.playbook)
            state.status = ExecutionStatus.completed
        except ExecutionFailed as failure:
            await self._end(ExecutionStatus.failed, str(failure))  # the error then also names failed compensations
            raise ApplicationError(state.error or str(failure), type="PlaybookFailed", non_retryable=True) from None
        except (asyncio.CancelledError, ActivityError, ChildWorkflowError) as exc:
            if not (isinstance(exc, asyncio.CancelledError) or is_cancelled_exception(exc)):
                raise
            await self._end(ExecutionStatus.cancelled, state.error or "cancelled")
            raise
        await self._end(ExecutionStatus.completed, None)
        outputs = {"status": ExecutionStatus.completed.value, "outputs": state.outputs, "steps": self._step_views()}
        return self._masked(outputs)

    def _versions(self) -> None:
        """Which of the interpreter's changes this run has: older runs replay as they ran.

        A new run pays one marker, `CURRENT`, for every change so far. It is asked first, before any local
        activity: on replay, code that follows a local activity can run in the workflow task before the one it
        ran in, whose patch lookahead does not yet see a marker recorded after it (the inbox memo's lazy patch
        made replays nondeterministic so). Add a change as a new `CURRENT`, asked here, with the others behind it.
        """
        if workflow.patched(CURRENT):
            self.local_bookkeeping = self.named_activities = True
            self.inbox_memo = True
            return
        self.local_bookkeeping = workflow.patched("local-bookkeeping")
        self.named_activities = self.local_bookkeeping or workflow.patched("activity-ids-name-steps")

    async def _run_steps(self) -> None:
        """The playbook's steps, until done — or until the history is long enough to hand over."""
        main = asyncio.create_task(self.run_list(self.playbook.steps, Scope()))
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
        state = self.state
        try:
            state.prepared = await self._bookkeeping(
                "prepare_execution",
                PrepareRequest(
                    execution_id=workflow.info().workflow_id,
                    organization=input.organization_id,
                    playbook_id=input.playbook_id,
                    inline=input.playbook,
                    requested_by=input.requested_by,
                ),
                result_type=Prepared,
                activity_id="prepare" if self.named_activities else None,
            )
        except (ActivityError, ApplicationError) as exc:  # a local activity's failure arrives as its own error
            if not is_cancelled_exception(exc):
                # an unknown id or organization: `status` says how it ended; state only, no command, so every
                # recorded run (before this too) replays as it ran and answers queries after the ending
                state.status, state.error = ExecutionStatus.failed, self._masked(cause(exc))
            raise
        playbook = state.prepared.playbook
        state.add_views(playbook.steps)
        self.changed()
        checked = validate_values(playbook.inputs, input.initial_data)
        sensitive = playbook.sensitive_inputs()
        state.secrets = sorted(set().union(*(secret_forms(input.initial_data.get(n)) for n in sensitive)))
        if checked.errors:
            raise ExecutionFailed("invalid inputs: " + "; ".join(str(e) for e in checked.errors))
        state.inputs = checked.values

    def _finish(self, playbook: Playbook) -> None:
        state = self.state
        context = self.context(Scope())
        try:
            state.outputs = {k: expressions.render(v, context) for k, v in playbook.outputs.items()}
            # every criterion is evaluated, so `status` lists each one met or unmet (pure: no command changes)
            state.criteria = [
                Criterion(criterion=c, met=bool(expressions.condition(c, context))) for c in playbook.success_criteria
            ]
        except expressions.ExpressionError as exc:
            raise ExecutionFailed(f"outputs: {exc.message}") from None
        if unmet := [c.criterion for c in state.criteria if not c.met]:
            raise ExecutionFailed(f"success criterion is false: {'; '.join(unmet)}")

    async def _end(self, status: ExecutionStatus, error: str | None) -> None:
        """Compensate if needed, then record the final status and the pending audit lines."""
        state = self.state
        state.status = status
        state.error = self._masked(error) if error else None
        if status != ExecutionStatus.completed:
            await self._compensate()
        self.changed()
        self._refresh_details()
        await workflow.wait_condition(workflow.all_handlers_finished)
        if state.prepared is not None:
            await self.update_execution()

    async def update_execution(self) -> None:
        state = self.state
        lines, state.unrecorded = state.unrecorded, []
        await self._bookkeeping(
            "update_execution",
            ExecutionUpdate(
                organization_uuid=self.prepared.organization_uuid,
                execution_id=workflow.info().workflow_id,
                playbook_id=self.playbook.id,
                smart_code=self.playbook.smart_code,
                status=state.status,
                error=state.error,
                outputs=self._masked(state.outputs) if state.status == ExecutionStatus.completed else None,
                lines=lines,
            ),
        )

    async def _bookkeeping(self, name: str, arg: Any, *, result_type: type | None = None,
                           activity_id: str | None = None) -> Any:  # fmt: skip
        """The engine's own short database calls: local activities (one marker, no task round trip)."""
        if self.local_bookkeeping:
            return await workflow.execute_local_activity(
                name, arg, result_type=result_type, start_to_close_timeout=ENGINE_TIMEOUT,
                retry_policy=ENGINE_RETRY, activity_id=activity_id,
            )  # fmt: skip
        return await workflow.execute_activity(
            name, arg, result_type=result_type, start_to_close_timeout=ENGINE_TIMEOUT,
            retry_policy=ENGINE_RETRY, activity_id=activity_id,
        )  # fmt: skip

    async def _compensate(self) -> None:
        """Saga: compensation bodies of completed steps, in reverse completion order, each failure reported."""
        state = self.state
        failures: list[str] = []
        while state.completion_order:
            view_id = state.completion_order.pop()
            step = self.playbook.step(view_id.rsplit(".", 1)[-1])
            if not step.compensate:
                continue
            scope = Scope(prefix=view_id[: -len(step.id)])
            state.add_views(step.compensate, scope.prefix)
            try:
                await self.run_list(step.compensate, scope)
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
        self.handing_over = True
        main.cancel()
        await workflow.wait([main])
        state = self.state
        if state.unrecorded:
            await self.update_execution()
        state.started_at = state.started_at or workflow.now()
        workflow.continue_as_new(state.input.model_copy(update={"carried": state.model_dump(mode="json")}))

    async def may_start(self) -> None:
        """No new step starts while paused or while a hand-over is due (it waits for in-flight work to drain)."""
        if self.state.paused or self._handover_due():
            await workflow.wait_condition(lambda: not self.state.paused and not self._handover_due())

    # ------------------------------------------------------------------ scheduling
    async def run_list(self, steps: list[Step], scope: Scope, *, parallel: bool = False) -> dict[str, Any]:
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
                    self.set_status(scope.prefix + step_id, StepStatus.skipped, reason="a dependency did not complete")
                if running:
                    await reap(running)
        except GeneratorExit:
            raise  # the worker evicts this run from its cache: no workflow calls now
        except BaseException:
            await cancel_all(running)
            if not self.handing_over:
                for step_id in pending:
                    self.set_status(scope.prefix + step_id, StepStatus.cancelled)
            raise
        return {s.id: self.state.steps[scope.id(s)].output for s in steps}

    def _met(self, view_id: str) -> bool:
        view = self.state.steps[view_id]
        return view.status in PASSED or (view.status == StepStatus.failed and self._continues(view_id))

    def _dead(self, view_id: str) -> bool:
        return self.state.steps[view_id].status == StepStatus.cancelled

    def _continues(self, view_id: str) -> bool:
        return self.playbook.step(view_id.rsplit(".", 1)[-1]).on_error == OnError.continue_

    async def _run_step(self, step: Step, scope: Scope) -> None:
        state = self.state
        view = state.steps[scope.id(step)]
        if view.status in DONE:
            return  # done in an earlier run: a resumed run never repeats a step
        if view.status == StepStatus.pending:
            await self.may_start()
        try:
            if view.status == StepStatus.pending:
                if step.when is not None and not expressions.condition(step.when, self.context(scope)):
                    self.set_status(view.id, StepStatus.skipped)
                    return
                view.status, view.started_at = StepStatus.running, workflow.now()
                self.changed()
            view.output = await HANDLERS.get(type(step), run_activity)(self, step, scope)
            if view.status not in DONE:
                self.set_status(view.id, StepStatus.completed)
            if view.status == StepStatus.completed:
                state.completion_order.append(view.id)
        except expressions.ExpressionError as exc:
            self._fail(step, view.id, exc.message)
        except StepFailed as failure:
            self._fail(step, view.id, failure.reason)
        except (ActivityError, ChildWorkflowError) as exc:
            if is_cancelled_exception(exc):
                self.set_status(view.id, StepStatus.cancelled)
                raise
            self._fail(step, view.id, cause(exc))
        except asyncio.CancelledError:
            if not self.handing_over:
                self.set_status(view.id, StepStatus.cancelled)
            raise
        if len(state.unrecorded) >= FLUSH_LINES:
            await self.update_execution()

    def _fail(self, step: Step, view_id: str, reason: str) -> None:
        """Mark a step failed; it fails the execution unless the step says on_error: continue."""
        self.set_status(view_id, StepStatus.failed, reason=reason)
        if step.on_error != OnError.continue_:
            raise StepFailed(view_id, reason)

    def set_status(self, view_id: str, status: StepStatus, *, reason: str | None = None, record: bool = True) -> None:
        self.state.set_status(view_id, status, now=workflow.now(), reason=reason, record=record)
        self.changed()

    async def busy_with(self, work: Awaitable[Any]) -> Any:
        """Await an activity or child workflow, counted so a hand-over waits for it."""
        self._busy += 1
        try:
            return await work
        finally:
            self._busy -= 1

    # ------------------------------------------------------------------ people's messages
    @workflow.signal(dynamic=True, description="complete_step, pause, resume, cancel, add_note")
    async def signal(self, name: str, args: Sequence[RawValue]) -> None:
        """Every signal arrives here raw, so none is dropped unseen: one the converter cannot read, one with
        extra arguments or one of no known name lands in status.rejected instead (a message is untrusted)."""
        handler = self._signals.get(name)
        if handler is None:
            self.state.reject(None, f"unknown signal {quote(name)!r} (known: {', '.join(self._signals)})",
                              now=workflow.now())  # fmt: skip
            return
        try:
            values = [workflow.payload_converter().from_payload(arg.payload) for arg in args]
        except Exception as exc:  # any decoding failure: invalid JSON, lone surrogates, nesting, an unknown encoding
            self.state.reject(None, f"{name}: the argument cannot be read ({exc})", now=workflow.now())
            return
        if len(values) > 1:
            self.state.reject(values[0], f"{name}: takes one argument, {len(values)} given", now=workflow.now())
            return
        await handler(values[0] if values else None)

    async def complete_step(self, raw: Any) -> None:
        """Complete a waiting human/approval step; a completion that can't apply lands in status.rejected."""
        try:
            completion, data = self.state.check_completion(raw)
        except Rejected as exc:
            self.state.reject(raw, str(exc), now=workflow.now())
            return
        self.state.apply_completion(completion, data, now=workflow.now())

    @workflow.update(name="submit_step")
    def submit_step(self, raw: Any) -> dict[str, Any]:
        """Like complete_step, but an invalid completion is rejected to the caller with the reason."""
        try:  # checked again: two completions validated in one workflow task are applied one after the other
            completion, data = self.state.check_completion(raw)
        except Rejected as exc:
            raise _refusal(exc) from None
        self.state.apply_completion(completion, data, now=workflow.now())
        return {"step_id": completion.step_id, "accepted": True}

    @submit_step.validator
    def _validate_submit(self, raw: Any) -> None:
        try:
            self.state.check_completion(raw)
        except Rejected as exc:
            raise _refusal(exc) from None

    @workflow.update(name="claim_step")
    async def claim_step(self, raw: Any) -> dict[str, Any]:
        """Take a waiting step for yourself: then only you (or an administrator) may complete it."""
        return await self._claim(raw, release=False)

    @claim_step.validator
    def _validate_claim(self, raw: Any) -> None:
        try:
            check_claim(self.state, raw, release=False)
        except Rejected as exc:
            raise _refusal(exc) from None

    @workflow.update(name="release_step")
    async def release_step(self, raw: Any) -> dict[str, Any]:
        """Give a claimed step back to everyone who holds its role."""
        return await self._claim(raw, release=True)

    @release_step.validator
    def _validate_release(self, raw: Any) -> None:
        try:
            check_claim(self.state, raw, release=True)
        except Rejected as exc:
            raise _refusal(exc) from None

    async def _claim(self, raw: Any, *, release: bool) -> dict[str, Any]:
        # checked again here: two claims validated in one workflow task are applied one after the other
        try:
            claim, waiting = check_claim(self.state, raw, release=release)
        except Rejected as exc:
            raise _refusal(exc) from None
        if apply_claim(self.state, claim, waiting, release=release, now=workflow.now()):
            self.changed()
            await self.update_execution()  # the claim is on record at once
        return {"step_id": claim.step_id, "claimed_by": waiting.claimed_by}

    async def pause(self, args: Any = None) -> None:
        """No new step starts while paused; running steps finish."""
        await self._set_paused(True)

    async def resume(self, args: Any = None) -> None:
        await self._set_paused(False)

    async def _set_paused(self, paused: bool) -> None:
        state = self.state
        if state.status not in (ExecutionStatus.running, ExecutionStatus.paused) or state.paused == paused:
            return
        state.paused = paused
        state.status = ExecutionStatus.paused if paused else ExecutionStatus.running
        self.changed()
        if state.prepared is not None:
            await self.update_execution()

    async def cancel(self, args: Any = None) -> None:
        """Stop, compensate, end cancelled — through Temporal's own cancellation, so the UI shows it."""
        state = self.state
        if state.status in ENDED:
            return
        reason = quote(args.get("reason"), MAX_TEXT) if isinstance(args, dict) else None
        state.error = f"cancelled: {reason}" if reason else "cancelled"
        await workflow.execute_activity(
            "request_cancellation",
            workflow.info().workflow_id,
            start_to_close_timeout=ENGINE_TIMEOUT,
            retry_policy=ENGINE_RETRY,
        )

    async def add_note(self, raw: Any) -> None:
        """A note ("lessons learned"), in `status.notes` and the audit trail; a closed execution gets its
        notes through the `PlaybookNote` workflow instead (a closed workflow takes no signal)."""
        state = self.state
        note = state.add_note(raw, now=workflow.now(), new_id=str(workflow.uuid4()))
        if note is None:
            return
        await workflow.wait_condition(lambda: state.prepared is not None or state.status in ENDED)
        if state.prepared is None:
            return  # never started (no execution row): the note stays in status only
        await workflow.execute_activity(
            "record_note",
            NoteRequest(organization=self.prepared.organization_uuid, execution_id=workflow.info().workflow_id,
                        note=note),
            start_to_close_timeout=ENGINE_TIMEOUT,
            retry_policy=ENGINE_RETRY,
        )

    # ------------------------------------------------------------------ queries
    @workflow.query(name="status")
    def status(self) -> dict[str, Any]:
        return self.state.status_view(workflow.info().workflow_id)

    @workflow.query(name="definition")
    def definition(self) -> dict[str, Any] | None:
        state = self.state
        return (
            state.prepared.playbook.model_dump(mode="json", by_alias=True, exclude_none=True)
            if state.prepared
            else None
        )

    # ------------------------------------------------------------------ helpers
    @property
    def prepared(self) -> Prepared:
        assert self.state.prepared is not None
        return self.state.prepared

    @property
    def playbook(self) -> Playbook:
        return self.state.playbook

    def context(self, scope: Scope) -> dict[str, Any]:
        return self.state.context(workflow.info().workflow_id, prefix=scope.prefix, local=scope.local)

    def _step_views(self) -> list[dict[str, Any]]:
        return [v.model_dump(mode="json") for v in self.state.steps.values()]

    def _masked(self, value: Any) -> Any:
        return self.state.masked(value)

    def changed(self) -> None:
        """Keep what operators see current: search attributes (only those that changed) and the details view."""
        state = self.state
        wanted: list[Any] = [
            (sa.PLAYBOOK_ID, state.input.playbook_id),
            (sa.ORGANIZATION_ID, state.input.organization_id),
            (sa.PLAYBOOK_STATUS, state.status.value),
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
        if state.prepared and (state.waiting or self._inbox_sent != []):
            inbox = self._masked([w.model_dump(mode="json", exclude={"example"}) for w in
                                  state.waiting_views(workflow.info().workflow_id)])
            if inbox != self._inbox_sent:
                if self.inbox_memo is None:  # a run from before `CURRENT` asked it where first needed
                    self.inbox_memo = workflow.patched("inbox-memo")
                if self.inbox_memo:
                    workflow.upsert_memo({"inbox": inbox})
                self._inbox_sent = inbox
        self._details_due = True

    async def _keep_details(self) -> None:
        """The Web UI's current details, rebuilt once whenever the run is idle rather than on every change
        (a foreach of 1,000 quick steps made it quadratic); no commands, so replay is unaffected."""
        while True:
            await workflow.wait_condition(lambda: self._details_due)
            self._refresh_details()

    def _refresh_details(self) -> None:
        self._details_due = False
        if self.state.prepared:
            workflow.set_current_details(markdown(self.state, workflow.info().workflow_id))


def _refusal(exc: Rejected) -> ApplicationError:
    """A refused message for the caller: `Conflict` (not waiting, claimed by another) or `Rejected`."""
    message = clip(str(exc), MAX_REASON_BYTES)
    return ApplicationError(message, type="Conflict" if isinstance(exc, Conflict) else "Rejected", non_retryable=True)
