"""Rate limiting of writes per token subject (PLAYBOOK_RATE_LIMIT), with the `limits` library."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request
from limits import parse, storage, strategies

from .auth import Principal, principal
from .problems import Problem
from .settings import GatewaySettings


class WriteLimiter:
    """A moving window per subject; the storage URI decides whether copies share counters (redis://)."""

    def __init__(self, settings: GatewaySettings) -> None:
        try:
            self.limit = parse(settings.rate_limit)
        except ValueError:
            raise ValueError(f"PLAYBOOK_RATE_LIMIT: {settings.rate_limit!r} is not a rate like 60/minute") from None
        self.strategy = strategies.MovingWindowRateLimiter(storage.storage_from_string(settings.rate_limit_storage))

    def hit(self, subject: str) -> None:
        if not self.strategy.hit(self.limit, "writes", subject):
            reset = self.strategy.get_window_stats(self.limit, "writes", subject).reset_time
            raise Problem(429, f"over the rate limit of {self.limit} for writes; retry later",
                          headers={"Retry-After": str(max(1, int(reset - time.time())))})


async def writer(request: Request, caller: Annotated[Principal, Depends(principal)]) -> Principal:
    """The caller of a write, counted against the rate limit (a FastAPI dependency)."""
    limiter: WriteLimiter = request.app.state.limiter
    limiter.hit(caller.sub)
    return caller
