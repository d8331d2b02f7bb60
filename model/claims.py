"""Claiming a waiting step: one person takes it so two people never work on the same task.

A claim is advisory for signals sent straight to Temporal but binding for completions: a claimed step
is completed only by its holder (or with `override_claim`, which the gateway grants administrators).
Each claim and release becomes an audit line of the step (iteration ``claim-<n>`` / ``release-<n>``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .audit import AuditLine
from .messages import StepClaim
from .run import Conflict, RunState, WaitState, parse_message, split_view_id
from .status import StepStatus


def check_claim(state: RunState, raw: Any, *, release: bool) -> tuple[StepClaim, WaitState]:
    """The claim (or release) and the step it is for; raise Rejected/Conflict with the reason."""
    claim = parse_message(StepClaim, raw)
    waiting = state.waiting_step(claim.step_id, role=claim.role, check_role=not release)
    holder = waiting.claimed_by
    if holder and holder != claim.by and not (release and claim.override):
        raise Conflict(f"step {claim.step_id} is claimed by {holder}")
    return claim, waiting


def apply_claim(state: RunState, claim: StepClaim, waiting: WaitState, *, release: bool, now: datetime) -> bool:
    """Take or give back the step; False when nothing changes (claiming twice, releasing a free step)."""
    if waiting.claimed_by == (None if release else claim.by):
        return False
    waiting.claimed_by, waiting.claimed_at = (None, None) if release else (claim.by, now)
    waiting.claim_events += 1
    step_id, iteration = split_view_id(claim.step_id)
    prefix = f"{iteration}." if iteration else ""
    state.unrecorded.append(
        AuditLine(
            step_id=step_id,
            iteration=f"{prefix}{'release' if release else 'claim'}-{waiting.claim_events}",
            step_type="release" if release else "claim",
            status=StepStatus.waiting,
            completed_by=claim.by,
            attempts=0,
            started_at=now,
            finished_at=now,
            output={"claimed_by": waiting.claimed_by},
            data=None,
        )
    )
    return True
