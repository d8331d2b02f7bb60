"""Replay recorded histories of the library playbooks with the current interpreter (determinism guard)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from runtime.worker import workflow_runner
from workflows import PlaybookWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").rglob("*.json"))
"""Current recordings, plus older ones in sub-folders: runs from before a `workflow.patched` change."""


def test_every_library_playbook_has_a_recorded_history() -> None:
    recorded = {p.stem for p in HISTORIES if p.parent.name == "histories"}
    from model import load_library

    library = load_library([Path(__file__).parent.parent / "playbooks"])
    assert {pid for pid, pb in library.playbooks.items() if pb.examples} <= recorded


@pytest.mark.parametrize("path", HISTORIES, ids=[str(p.relative_to(p.parents[1])) for p in HISTORIES])
async def test_replay(path: Path) -> None:
    replayer = Replayer(workflows=[PlaybookWorkflow], data_converter=pydantic_data_converter)  # as the worker runs it
    await replayer.replay_workflow(WorkflowHistory.from_json(path.stem, path.read_text()))


async def test_every_recording_replays_in_the_sandbox() -> None:
    """The engine's workflows run outside the SDK sandbox; inside it, a clock, randomness or I/O the interpreter
    reached for on any recorded path would fail its replay, so the determinism the sandbox checked is kept."""
    replayer = Replayer(
        workflows=[PlaybookWorkflow],
        data_converter=pydantic_data_converter,
        unsandboxed_workflow_runner=workflow_runner(),  # the runner for `sandboxed=False` workflows: the sandbox
    )

    recorded = {path: WorkflowHistory.from_json(path.stem, path.read_text()) for path in HISTORIES}

    async def histories() -> AsyncIterator[WorkflowHistory]:
        for history in recorded.values():
            yield history

    results = await replayer.replay_workflows(histories(), raise_on_replay_failure=False)
    failed = {str(p.relative_to(p.parents[1])): results.replay_failures[h.run_id] for p, h in recorded.items()
              if h.run_id in results.replay_failures}  # fmt: skip
    assert not failed


def test_the_split_recording_has_its_shape() -> None:
    """`splits/` holds a run whose prepare marker ends one workflow task while the code after it ran in the next,
    as a loaded worker records it; a patch asked after that local activity (the inbox memo's, once) did not
    replay. Every patch is now asked before it, so this recording replays above."""
    path = next(p for p in HISTORIES if p.parent.name == "splits")
    kinds = [e.event_type for e in WorkflowHistory.from_json(path.stem, path.read_text()).events]
    local = kinds.index(EventType.EVENT_TYPE_MARKER_RECORDED, kinds.index(EventType.EVENT_TYPE_MARKER_RECORDED) + 1)
    memo = kinds.index(EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED)
    assert kinds[local + 1] == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED in kinds[local:memo]
