"""PlaybookNote: records a note on an execution whose workflow has closed.

A closed workflow takes no signal, yet notes ("lessons learned") mostly come after an ending. This one-activity
workflow writes such a note to the execution's audit trail with the engine's retries; its id,
``<execution id>/note/<note id>``, makes a repeated request one note.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from model.execution import NOTE_WORKFLOW_NAME, NoteRequest


@workflow.defn(name=NOTE_WORKFLOW_NAME, sandboxed=False)  # as PlaybookWorkflow
class PlaybookNoteWorkflow:
    @workflow.run
    async def run(self, req: NoteRequest) -> None:
        await workflow.execute_activity(
            "record_note",
            req,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
        )
