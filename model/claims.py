"""Claiming a waiting step: one person takes it so two people never work on the same task.

A claim is advisory for signals sent straight to Temporal but binding for completions: a claimed step
is completed only by its holder (or with `override_claim`, which the gateway grants administrators).
Each claim and release becomes an audit line of the step (iteration ``claim-<n>`` / ``release-<n>``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from .audit import AuditLine
from .messages import StepClaim
from .run import Conflict, Rejected, RunState, WaitState, split_view_id
from .status import StepStatus


def check_claim(state: RunState, raw: Any, *, release: bool) -> tuple[StepClaim, WaitState]:
    """The claim (or release) and the step it is for; raise Rejected/Conflict with the reason."""
    try:
        claim = StepClaim.model_validate(raw)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'argument'}: {e['msg']}" for e in exc.errors())
        raise Rejected(f"invalid argument: {reasons}") from None
    waiting = state.waiting.get(claim.step_id)
    if waiting is None or waiting.decided:
        view = state.steps.get(claim.step_id)
        if view is None:
            raise Rejected(f"unknown step {claim.step_id!r}")
        raise Conflict(f"step {claim.step_id} is {view.status}, not waiting for a person")
    if not release and waiting.role and claim.role != waiting.role:
        given = f"role {claim.role!r}" if claim.role else "no role"
        raise Rejected(f"step {claim.step_id} needs role {waiting.role!r} ({given} given)")
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
