"""The wire models of an execution: workflow input, messages, step requests and the status view.

Shared by the workflow, the activities and the starter; plain JSON on the wire, so services in any
language start and signal playbooks without this package.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .audit import AuditLine
from .limits import MAX_NAME, MAX_TEXT
from .playbook import Playbook
from .status import ExecutionStatus, StepStatus

WORKFLOW_NAME = "PlaybookWorkflow"
NOTE_WORKFLOW_NAME = "PlaybookNote"
"""Records a note on an execution whose workflow has closed (a closed workflow takes no signal)."""


class Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ExecutionInput(Wire):
    """The workflow's one argument."""

    playbook_id: str = Field(description="The playbook to run, e.g. customer.create.v1.")
    organization_id: str = Field(description="The organization's code (org_123) or uuid.")
    initial_data: dict[str, Any] = Field(default_factory=dict, description="Values of the playbook's inputs.")
    requested_by: str | None = Field(default=None, description="Who or what started it.")
    carried: dict[str, Any] | None = Field(
        default=None, description="Internal: the state a previous run handed over (continue-as-new)."
    )
    playbook: dict[str, Any] | None = Field(
        default=None, description="An inline definition instead of the catalog's."
    )


class Rejection(Wire):
    """A completion that was not applied, and why."""

    step_id: str | None
    reason: str
    completed_by: str | None = None
    at: datetime


class Approval(Wire):
    approved: bool
    completed_by: str | None = None
    comment: str | None = None
    at: datetime


class StepView(Wire):
    id: str
    name: str
    type: str
    status: StepStatus = StepStatus.pending
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    error: str | None = None
    completed_by: str | None = None
    output: Any = None
    data: dict[str, Any] | None = None
    child_workflow_id: str | None = None


class Waiting(Wire):
    step_id: str
    name: str
    type: str
    assignee_role: str | None
    instructions: str | None
    form: dict[str, Any]
    deadline: datetime | None
    approvals: list[Approval] = Field(default_factory=list)
    approvals_required: int = 1
    escalations: int = 0
    claimed_by: str | None = Field(default=None, description="Who has claimed the step (claim/release).")
    claimed_at: datetime | None = None
    example: dict[str, Any] = Field(
        default_factory=dict, description="The complete_step argument, filled with example values."
    )


class Criterion(Wire):
    """A success criterion of the playbook and whether it held when the execution ended."""

    criterion: str
    met: bool


class Note(Wire):
    """A note on an execution (the seed's "lessons learned"), kept in its audit trail."""

    note_id: str = Field(min_length=1, max_length=100, description="Makes a retried note count once.")
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    by: str | None = Field(default=None, max_length=MAX_NAME)
    at: datetime | None = None


class NoteRequest(Wire):
    """What the `record_note` activity writes: a note on the execution of an organization."""

    organization: str = Field(description="The organization's code or uuid.")
    execution_id: str
    note: Note


class Progress(Wire):
    completed: int
    total: int
    percent: int


class StatusView(Wire):
    """The `status` query's answer (sensitive values masked)."""

    execution_id: str
    playbook_id: str
    version: int | None
    organization_id: str
    status: ExecutionStatus
    progress: Progress
    steps: list[StepView]
    waiting_for: list[Waiting]
    vars: dict[str, Any]
    outputs: dict[str, Any]
    error: str | None
    rejected: list[Rejection] = Field(description="The latest refused messages, each value clipped.")
    rejected_count: int = Field(default=0, description="Every refused message so far, kept or not.")
    runs: int = Field(default=1, description="Workflow runs so far: each continue-as-new hand-over adds one.")
    definition_sha: str | None = Field(default=None, description="sha256 of the definition this execution runs.")
    deprecated: bool = Field(default=False, description="Started from a deprecated catalog entry.")
    superseded_by: str | None = Field(default=None, description="The deprecated playbook's replacement.")
    success_criteria: list[Criterion] = Field(
        default_factory=list, description="Each success criterion, met or not, once the execution has ended."
    )
    notes: list[Note] = Field(default_factory=list, description="Notes received while the workflow was open.")


class PrepareRequest(Wire):
    execution_id: str
    organization: str
    playbook_id: str
    inline: dict[str, Any] | None = None
    requested_by: str | None = None


class Prepared(Wire):
    """The pinned definition and the organization's uuid, resolved once per execution."""

    organization_uuid: str
    playbook: Playbook
    definition_sha: str | None = None
    deprecated: bool = False
    superseded_by: str | None = None
    script_task_queue: str = Field(
        default="playbooks-scripts", description="Where `script` steps run (workers started with --scripts)."
    )


class StepRequest(Wire):
    """What an automated step's activity receives: the step with its ``with:`` already rendered."""

    organization_uuid: str
    execution_id: str
    step_id: str
    step_type: str
    iteration: str = ""
    playbook_id: str = Field(default="", description="The playbook the step belongs to (for metrics and logs).")
    smart_code: str | None = None
    with_: dict[str, Any] = Field(alias="with")
    secrets: list[str] = Field(default_factory=list, description="Values to mask in results and audit rows.")
    started_at: datetime | None = None


class StepResult(Wire):
    output: dict[str, Any] = Field(default_factory=dict)


class ExecutionUpdate(Wire):
    """The execution row's status, plus audit lines to write with it (all idempotent)."""

    organization_uuid: str
    execution_id: str
    playbook_id: str
    smart_code: str
    status: ExecutionStatus
    error: str | None = None
    outputs: dict[str, Any] | None = None
    lines: list[AuditLine] = Field(default_factory=list)
