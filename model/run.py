"""The state of one execution and everything that can be said about it without Temporal.

`RunState` is the one serializable object the workflow keeps (ready for continue-as-new); the
pure parts of interpretation live here — the expression context, checking and applying a
person's completion, the status view — so the workflow module stays a small scheduler.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError, model_validator

from . import expressions
from .audit import AuditLine
from .execution import (
    Approval,
    Criterion,
    ExecutionInput,
    Note,
    Prepared,
    Progress,
    Rejection,
    StatusView,
    StepView,
    Waiting,
    Wire,
)
from .forms import completion_signal
from .limits import MAX_NOTES_BYTES, MAX_REASON_BYTES, MAX_REJECTED, clip, json_size, quote
from .masking import mask, secret_forms
from .messages import StepCompletion
from .playbook import Playbook
from .status import PASSED, ExecutionStatus, StepStatus
from .steps import ApprovalStep, HumanStep, Step
from .variables import json_schema, validate_values

MAX_NOTES = 50
"""Notes kept in the state (and so in `status`); older ones stay in the audit trail only."""


class Rejected(Exception):
    """A completion that must not be applied; the message says why."""


M = TypeVar("M", bound=BaseModel)


def parse_message(model: type[M], raw: Any) -> M:
    """A message's argument as its model; Rejected naming each bad field (a message is untrusted JSON)."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise Rejected(f"invalid argument: {field_errors(exc, 'argument')}") from None


def field_errors(exc: ValidationError, whole: str) -> str:
    """Each bad field and its rule, capped: the field names themselves come from the sender."""
    reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or whole}: {e['msg']}" for e in exc.errors()[:10])
    return clip(reasons, MAX_REASON_BYTES)


class Conflict(Rejected):
    """The step is not waiting, or someone else holds it: the request is right, the moment is not."""


def definition_id(view_id: str) -> str:
    """The playbook step behind a status entry: ``lines[3].reserve`` → ``reserve``."""
    return view_id.rsplit(".", 1)[-1]


def split_view_id(view_id: str) -> tuple[str, str]:
    """(step id, iteration) of a status entry, as audit lines key it: ``lines[3].reserve`` → (reserve, lines[3])."""
    iteration, _, step_id = view_id.rpartition(".")
    return step_id, iteration


class LoopState(Wire):
    """A foreach's items and results, kept compact so 10,000 iterations fit in one carried-over state."""

    items: list[Any]
    outputs: list[Any] = Field(default_factory=list)
    done: list[bool] = Field(default_factory=list)

    @property
    def finished(self) -> int:
        return sum(self.done)


class WaitState(Wire):
    """A human or approval step waiting for people."""

    step_id: str
    role: str | None
    deadline: datetime | None = None
    escalations: int = 0
    approvals: list[Approval] = Field(default_factory=list)
    data: dict[str, Any] | None = None
    completed_by: str | None = None
    decided: bool = False
    escalated_at: list[datetime] = Field(default_factory=list)
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    claim_events: int = 0
    """Claims and releases so far: each one's audit line is keyed by its number."""


class RunState(Wire):
    """Everything an execution knows; one object, ready to be carried over by continue-as-new."""

    input: ExecutionInput
    prepared: Prepared | None = None
    started_at: datetime | None = None
    status: ExecutionStatus = ExecutionStatus.pending
    inputs: dict[str, Any] = Field(default_factory=dict)
    steps: dict[str, StepView] = Field(default_factory=dict)
    vars: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    rejected: list[Rejection] = Field(default_factory=list)
    """The latest refused messages (`MAX_REJECTED`), each value clipped."""
    rejected_count: int = 0
    """Every refused message so far, kept ones or not."""
    paused: bool = False
    waiting: dict[str, WaitState] = Field(default_factory=dict)
    secrets: list[str] = Field(default_factory=list)
    completion_order: list[str] = Field(default_factory=list)
    unrecorded: list[AuditLine] = Field(default_factory=list)
    """Audit lines of steps without an activity of their own, written with the next execution update."""
    loops: dict[str, LoopState] = Field(default_factory=dict)
    """Foreach progress by status id."""
    choices: dict[str, int] = Field(default_factory=dict)
    """The branch each switch took (-1: default), so a resumed run takes the same one."""
    runs: int = 1
    """Runs of this execution so far (continue-as-new hands over to the next)."""
    criteria: list[Criterion] = Field(default_factory=list)
    """The success criteria's results, evaluated when the steps are done."""
    notes: list[Note] = Field(default_factory=list)
    """The latest notes (`MAX_NOTES`); every one is also written to the audit trail."""

    @model_validator(mode="after")
    def _count_rejections(self) -> RunState:
        # a state carried over from before the count existed: its kept list is what is known
        self.rejected_count = max(self.rejected_count, len(self.rejected))
        return self

    # ------------------------------------------------------------------ reading
    @property
    def playbook(self) -> Playbook:
        assert self.prepared is not None, "the definition is resolved before any step runs"
        return self.prepared.playbook

    def people_step(self, view_id: str) -> HumanStep | ApprovalStep:
        """The human or approval step behind a waiting entry (only those ever wait for people)."""
        step = self.playbook.step(definition_id(view_id))
        assert isinstance(step, HumanStep | ApprovalStep), f"{view_id} is a {step.type} step"
        return step

    def masked(self, value: Any) -> Any:
        """A copy of value with every sensitive value replaced by ***."""
        return mask(value, self.secrets)

    def add_views(self, steps: Iterable[Step], prefix: str = "") -> None:
        """Status entries for steps about to be scheduled (foreach bodies get theirs per iteration)."""
        for step in steps:
            self.steps.setdefault(prefix + step.id, StepView(id=prefix + step.id, name=step.title, type=step.type))
            if step.type != "foreach":
                for body in step.children():
                    self.add_views(body, prefix)

    def context(self, execution_id: str, *, prefix: str = "", local: dict[str, Any] | None = None) -> dict[str, Any]:
        """What expressions see (SPEC §2.1); inside an iteration, ``steps.<id>`` is that iteration's own step."""
        context = self._context(execution_id)
        if prefix:
            steps = dict(context["steps"])
            steps.update({key[len(prefix) :]: value for key, value in steps.items() if key.startswith(prefix)})
            context["steps"] = steps
        return {**context, **(local or {})}

    def _context(self, execution_id: str) -> dict[str, Any]:
        return {
            "inputs": self.inputs,
            "vars": self.vars,
            "steps": {
                sid: {
                    "status": v.status,
                    "output": v.output,
                    "data": v.data,
                    "completed_by": v.completed_by,
                    "error": v.error,
                }
                for sid, v in self.steps.items()
            },
            "execution": {
                "id": execution_id,
                "organization_id": self.input.organization_id,
                "playbook_id": self.input.playbook_id,
                "requested_by": self.input.requested_by,
                "started_at": self.started_at.isoformat() if self.started_at else None,
            },
        }

    def waiting_for(self) -> list[str]:
        return sorted(w.step_id for w in self.waiting.values() if not w.decided)

    def status_view(self, execution_id: str) -> dict[str, Any]:
        """The `status` query's answer, masked."""
        playbook = self.prepared.playbook if self.prepared else None
        views = list(self.steps.values())
        done = sum(v.status in PASSED for v in views)
        view = StatusView(
            execution_id=execution_id,
            playbook_id=playbook.id if playbook else self.input.playbook_id,
            version=playbook.version if playbook else None,
            organization_id=self.input.organization_id,
            status=self.status,
            progress=Progress(completed=done, total=len(views), percent=round(100 * done / len(views)) if views else 0),
            steps=views,
            waiting_for=self.waiting_views(execution_id),
            vars=self.vars,
            outputs=self.outputs,
            error=self.error,
            rejected=self.rejected,
            rejected_count=self.rejected_count,
            runs=self.runs,
            definition_sha=self.prepared.definition_sha if self.prepared else None,
            deprecated=self.prepared.deprecated if self.prepared else False,
            superseded_by=self.prepared.superseded_by if self.prepared else None,
            success_criteria=self.criteria,
            notes=self.notes,
        )
        masked: dict[str, Any] = self.masked(view.model_dump(mode="json"))
        return masked

    def waiting_views(self, execution_id: str) -> list[Waiting]:
        """The steps waiting for a person, with rendered instructions and the signal that completes each."""
        return [self._waiting_view(w, execution_id) for w in self.waiting.values() if not w.decided]

    def _waiting_view(self, waiting: WaitState, execution_id: str) -> Waiting:
        step = self.people_step(waiting.step_id)
        spec = step.with_
        instructions = spec.instructions
        if instructions:
            prefix = waiting.step_id[: -len(step.id)]
            try:
                instructions = expressions.render(instructions, self.context(execution_id, prefix=prefix))
            except expressions.ExpressionError as exc:
                instructions = f"{instructions} ({exc.message})"
        return Waiting(
            step_id=step.id,
            name=step.title,
            type=step.type,
            assignee_role=waiting.role,
            instructions=instructions,
            form=json_schema(spec.form),
            deadline=waiting.deadline,
            approvals=waiting.approvals,
            approvals_required=step.with_.approvals_required if isinstance(step, ApprovalStep) else 1,
            escalations=waiting.escalations,
            claimed_by=waiting.claimed_by,
            claimed_at=waiting.claimed_at,
            example=completion_signal(waiting.step_id, waiting.role, spec.form),
        )

    # ------------------------------------------------------------------ changing
    def set_status(self, step_id: str, status: StepStatus, *, now: datetime, reason: str | None = None,
                   record: bool = True) -> None:  # fmt: skip
        """Move a step to a status; unless its own activity wrote it, queue its audit line."""
        view = self.steps[step_id]
        view.status = status
        view.finished_at = now
        if reason and status in (StepStatus.failed, StepStatus.skipped, StepStatus.cancelled):
            view.error = self.masked(reason)
        if record:
            definition, iteration = split_view_id(step_id)
            output = view.output if isinstance(view.output, dict | None) else {"value": view.output}
            self.unrecorded.append(  # masked as it is made: the line is what the audit row will hold
                AuditLine(
                    step_id=definition,
                    iteration=iteration, step_type=view.type, status=status, data=self.masked(view.data),
                    output=self.masked(output), error=view.error, completed_by=view.completed_by,
                    attempts=view.attempts, started_at=view.started_at, finished_at=view.finished_at,
                )
            )  # fmt: skip

    def waiting_step(self, step_id: str, *, role: str | None, check_role: bool = True) -> WaitState:
        """The step a message is for, still waiting for a person, in the role given; else Rejected/Conflict."""
        waiting = self.waiting.get(step_id)
        if waiting is None or waiting.decided:
            view = self.steps.get(step_id)
            if view is None:
                raise Rejected(f"unknown step {step_id!r}")
            raise Conflict(f"step {step_id} is {view.status}, not waiting for a person")
        if check_role and waiting.role and role != waiting.role:
            given = f"role {role!r}" if role else "no role"
            raise Rejected(f"step {step_id} needs role {waiting.role!r} ({given} given)")
        return waiting

    def check_completion(self, raw: Any) -> tuple[StepCompletion, dict[str, Any]]:
        """Validate a person's completion against the waiting step; raise Rejected with the reason."""
        completion = parse_message(StepCompletion, raw)
        waiting = self.waiting_step(completion.step_id, role=completion.role)
        if waiting.claimed_by and completion.completed_by != waiting.claimed_by and not completion.override_claim:
            raise Conflict(f"step {completion.step_id} is claimed by {waiting.claimed_by}")
        step = self.people_step(completion.step_id)
        checked = validate_values(step.with_.form, completion.data)
        if checked.errors:
            raise Rejected("invalid data: " + "; ".join(str(e) for e in checked.errors))
        if isinstance(step, ApprovalStep):
            required = step.with_.approvals_required
            if required > 1 and not completion.completed_by:
                raise Rejected(f"step {step.id} needs {required} distinct approvers: completed_by is required")
            if completion.completed_by and any(a.completed_by == completion.completed_by for a in waiting.approvals):
                raise Rejected(f"{completion.completed_by} has already approved step {step.id}")
        return completion, checked.values

    def apply_completion(self, completion: StepCompletion, data: dict[str, Any], *, now: datetime) -> None:
        """Record a checked completion; the step is decided when its approvals are in (or one rejects)."""
        waiting = self.waiting[completion.step_id]
        step = self.people_step(completion.step_id)
        sensitive = {n for n, spec in step.with_.form.items() if spec.sensitive}
        self.secrets = sorted(set(self.secrets).union(*(secret_forms(data.get(n)) for n in sensitive)))
        waiting.data, waiting.completed_by = data, completion.completed_by
        if not isinstance(step, ApprovalStep):
            waiting.decided = True
            return
        approval = Approval(
            approved=data["approved"], completed_by=completion.completed_by, comment=data.get("comment"), at=now
        )
        waiting.approvals.append(approval)
        required = step.with_.approvals_required
        waiting.decided = not approval.approved or len(waiting.approvals) >= required

    def reject(self, raw: Any, reason: str, *, now: datetime) -> None:
        """Keep a refused message in status.rejected: the latest ones, each value from it clipped."""
        step_id = raw.get("step_id") if isinstance(raw, dict) else None
        who = raw.get("completed_by") if isinstance(raw, dict) else None
        rejection = Rejection(step_id=quote(step_id), reason=clip(reason, MAX_REASON_BYTES), completed_by=quote(who),
                              at=now)  # fmt: skip
        self.rejected = [*self.rejected, rejection][-MAX_REJECTED:]
        self.rejected_count += 1

    def add_note(self, raw: Any, *, now: datetime, new_id: str) -> Note | None:
        """Keep a note from an `add_note` signal (any JSON; `new_id` names one sent without a note_id);
        a malformed one lands in `rejected` instead."""
        try:
            note = Note.model_validate({"note_id": new_id, **raw, "at": now} if isinstance(raw, dict) else raw)
        except ValidationError as exc:
            self.reject({}, f"add_note: {field_errors(exc, 'note')}", now=now)  # nothing of the raw JSON
            return None
        if any(kept.note_id == note.note_id for kept in self.notes):
            return None  # the same note again (a retried signal)
        notes = [*self.notes, note][-MAX_NOTES:]
        while len(notes) > 1 and json_size([n.model_dump(mode="json") for n in notes]) > MAX_NOTES_BYTES:
            notes = notes[1:]
        self.notes = notes
        return note
