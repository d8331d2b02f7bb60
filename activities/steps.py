"""Automated step handlers, one small async verb per type, registered by type name.

Each handler turns a rendered ``with:`` into one store write; the store commits the business rows
and the step's audit line together, idempotently keyed by (execution, step, iteration).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from pydantic import BaseModel
from temporalio import activity

from model.execution import StepRequest
from model.masking import mask
from model.status import StepStatus
from model.steps import EntityWith, RelationshipWith, TransactionWith
from store import EntityWrite, RelationshipWrite, StepAudit, StepKey, Store, TransactionWrite

from .errors import fail, masked_errors, user_facing
from .secrets import resolve

StepHandler = Callable[[Store, StepRequest], Awaitable[dict[str, Any]]]
MAX_OUTPUT_BYTES = 32 * 1024
"""A step output larger than this stays in Postgres only: workflow history (and its state) stays small."""
STEP_HANDLERS: dict[str, StepHandler] = {}


def step_handler(name: str, with_model: type[BaseModel] | None = None) -> Callable[[StepHandler], StepHandler]:
    """Register the activity of a step type; with a `with_model` a new type is added to the language."""

    def register(fn: StepHandler) -> StepHandler:
        if with_model is not None:
            from model import register_step_type

            register_step_type(name, with_model)
        STEP_HANDLERS[name] = fn
        return fn

    return register


def step_key(req: StepRequest) -> StepKey:
    return StepKey(execution_id=req.execution_id, step_id=req.step_id, iteration=req.iteration)


def step_audit(
    req: StepRequest, *, status: StepStatus = StepStatus.completed, output: dict[str, Any] | None = None
) -> StepAudit:
    return StepAudit(
        step_type=req.step_type,
        status=status,
        smart_code=req.smart_code,
        output=mask(output, req.secrets) if output else None,
        attempts=activity.info().attempt,
        started_at=req.started_at,
        finished_at=datetime.now(UTC),
    )


def _business_metadata(req: StepRequest, metadata: dict[str, Any]) -> dict[str, Any]:
    extra = {"iteration": req.iteration} if req.iteration else {}
    return {**metadata, "execution_id": req.execution_id, "step_id": req.step_id, **extra}


@step_handler("entity")
async def entity(store: Store, req: StepRequest) -> dict[str, Any]:
    spec = EntityWith.model_validate(req.with_)
    write = EntityWrite(
        entity_type=spec.entity_type,
        entity_name=spec.entity_name,
        entity_code=spec.entity_code,
        entity_id=spec.entity_id,
        status=spec.status,
        smart_code=req.smart_code,
        fields={k: v for k, v in spec.fields.items() if v is not None},
        metadata=_business_metadata(req, spec.metadata),
    )
    result = await store.write_entity(_org(req), step_key(req), write, step_audit(req))
    return result.model_dump(mode="json")


@step_handler("transaction")
async def transaction(store: Store, req: StepRequest) -> dict[str, Any]:
    spec = TransactionWith.model_validate(req.with_)
    write = TransactionWrite.model_validate(
        {
            **spec.model_dump(exclude={"lines", "metadata"}),
            "smart_code": req.smart_code,
            "lines": [line.model_dump() for line in spec.lines] if isinstance(spec.lines, list) else spec.lines,
            "metadata": _business_metadata(req, spec.metadata),
        }
    )
    result = await store.write_transaction(_org(req), step_key(req), write, step_audit(req))
    return {**result.model_dump(mode="json"), "total_amount": money(result.total_amount)}


@step_handler("relationship")
async def relationship(store: Store, req: StepRequest) -> dict[str, Any]:
    spec = RelationshipWith.model_validate(req.with_)
    write = RelationshipWrite(
        from_entity_id=spec.from_entity_id,
        to_entity_id=spec.to_entity_id,
        relationship_type=spec.relationship_type,
        smart_code=req.smart_code,
        metadata=_business_metadata(req, spec.metadata),
    )
    result = await store.write_relationship(_org(req), step_key(req), write, step_audit(req))
    return result.model_dump(mode="json")


class _RuleOutcome(BaseModel):
    passed: bool
    message: str


class _CheckedValidation(BaseModel):
    """A validation step's ``with:`` after the workflow evaluated its rules."""

    rules: list[_RuleOutcome] = []
    unique: list[dict[str, Any]] = []
    exists: list[dict[str, Any]] = []


@step_handler("validation")
async def validation(store: Store, req: StepRequest) -> dict[str, Any]:
    spec = _CheckedValidation.model_validate(req.with_)
    org = _org(req)
    failures = [rule.message for rule in spec.rules if not rule.passed]
    for rule in spec.unique:
        taken = await store.field_value_taken(
            org, entity_type=rule["entity_type"], field_name=rule["field"], value=rule["value"]
        )
        if taken:
            failures.append(rule["message"])
    for rule in spec.exists:
        if not await store.entity_exists(org, rule["entity_id"]):
            failures.append(rule["message"])
    output = {"passed": not failures, "failures": failures}
    status = StepStatus.failed if failures else StepStatus.completed
    await store.record_step(org, step_key(req), step_audit(req, status=status, output=output))
    if failures:
        raise fail(
            "ValidationFailed",
            mask("validation failed: " + "; ".join(failures), req.secrets),
            failures=failures,
        )
    return output


def money(amount: Decimal) -> str:
    """An amount as people write it: at least two decimals (``34500.00``), never fewer than stored."""
    return str(amount.quantize(Decimal("0.01")) if amount.as_tuple().exponent > -2 else amount)  # type: ignore[operator]


def _org(req: StepRequest) -> UUID:
    return UUID(req.organization_uuid)


class StepActivities:
    """The step activities of one worker, bound to its store."""

    def __init__(
        self, store: Store, *, after_write: Callable[[StepRequest], Awaitable[None] | None] | None = None
    ) -> None:
        self.store = store
        self.after_write = after_write
        """Test hook: called after a step's write committed (to simulate a crash before the result)."""

    def activities(self, *, only: Callable[[str], bool] = lambda name: True) -> list[Callable[..., Any]]:
        """The activities of the registered step types that `only` keeps."""
        return [self._activity(name, handler) for name, handler in STEP_HANDLERS.items() if only(name)]

    def _activity(self, name: str, handler: StepHandler) -> Callable[..., Any]:
        async def run(req: StepRequest) -> dict[str, Any]:
            req = resolve(req)
            async with masked_errors(req.secrets), user_facing():
                output = await handler(self.store, req)
            if self.after_write is not None and inspect.isawaitable(hooked := self.after_write(req)):
                await hooked
            masked: dict[str, Any] = mask(output, req.secrets)
            size = len(json.dumps(masked, default=str))
            if size > MAX_OUTPUT_BYTES:  # the full output is on the step's audit line; history gets a pointer
                where = {"execution_id": req.execution_id, "step_id": req.step_id, "iteration": req.iteration}
                return {"truncated": True, "bytes": size, "stored_in": "universal_transaction_lines", **where}
            return masked

        run.__name__ = f"step_{name}"
        return activity.defn(name=name)(run)
