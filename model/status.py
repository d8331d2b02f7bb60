"""The one vocabulary of statuses: of an execution, and of a step (SPEC §3)."""

from __future__ import annotations

from enum import StrEnum


class ExecutionStatus(StrEnum):
    """Where an execution stands; also the `PlaybookStatus` search attribute."""

    pending = "pending"
    running = "running"
    paused = "paused"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


class StepStatus(StrEnum):
    """Where one step (or one foreach iteration's sub-step) stands."""

    pending = "pending"
    running = "running"
    waiting = "waiting"
    completed = "completed"
    failed = "failed"
    skipped = "skipped"
    cancelled = "cancelled"


DONE = frozenset({StepStatus.completed, StepStatus.failed, StepStatus.skipped, StepStatus.cancelled})
"""Step statuses that never change again (a resumed run never repeats such a step)."""
PASSED = frozenset({StepStatus.completed, StepStatus.skipped})
"""Step statuses that meet a dependency and count as done in progress."""
ENDED = frozenset({ExecutionStatus.completed, ExecutionStatus.failed, ExecutionStatus.cancelled})
"""Execution statuses after which nothing runs."""
