"""Turning store and input failures into the Temporal errors operators and callers see."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from model.masking import mask
from store import StoreError, StoreUnavailable

_TEMPLATE_BRANCH = "constrained-str"  # the "{{ template }}" member of unions such as `lines: list | template`


def field_errors(exc: ValidationError, prefix: str = "with") -> str:
    """Pydantic errors as one line: ``with.lines[1].quantity: must be ...; ...`` (union members left out)."""
    errors = exc.errors()
    if any(_TEMPLATE_BRANCH not in err["loc"] for err in errors):  # a rendered value is never a template
        errors = [err for err in errors if _TEMPLATE_BRANCH not in err["loc"]]
    parts = []
    for err in errors:
        path = prefix
        for part in err["loc"]:
            if isinstance(part, str) and ("[" in part or part == _TEMPLATE_BRANCH):
                continue
            path += f"[{part}]" if isinstance(part, int) else f".{part}"
        parts.append(f"{path}: {err['msg']}")
    return "; ".join(parts)


@asynccontextmanager
async def user_facing() -> AsyncIterator[None]:
    """Store calls inside: a user's mistake fails the step at once with its message, an outage is retried."""
    try:
        yield
    except StoreUnavailable as exc:
        raise ApplicationError(f"database unavailable: {exc}", type="StoreUnavailable") from exc
    except StoreError as exc:
        raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True) from None
    except ValidationError as exc:
        raise ApplicationError(field_errors(exc), type="InvalidStepInput", non_retryable=True) from None


def fail(kind: str, message: str, **details: Any) -> ApplicationError:
    return ApplicationError(message, details or None, type=kind, non_retryable=True)


@asynccontextmanager
async def masked_errors(secrets: list[str]) -> AsyncIterator[None]:
    """A step's failure leaves the activity masked: its message and details reach history, logs and the UI."""
    try:
        yield
    except ApplicationError as exc:
        if not secrets:
            raise
        raise ApplicationError(
            mask(exc.message, secrets), *mask(list(exc.details), secrets), type=exc.type,
            non_retryable=exc.non_retryable, next_retry_delay=exc.next_retry_delay,
        ) from None  # fmt: skip
    except Exception as exc:  # an unexpected error is retried, as before, but says nothing in clear
        if not secrets:
            raise
        raise ApplicationError(mask(f"{exc}", secrets), type=type(exc).__name__) from None
