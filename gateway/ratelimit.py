"""Rate limiting of writes per token subject (PLAYBOOK_RATE_LIMIT), with the `limits` library.

Its asyncio flavour and a sliding-window counter (the current and the previous window's counts, weighted):
the threaded memory storage starts a timer thread on most hits, and the asyncio moving window hands each
subject's list of hits to a thread to expire it — each cost a start milliseconds on a busy host."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request
from limits import parse, storage
from limits.aio import strategies

from .auth import Principal, principal
from .problems import Problem
from .settings import GatewaySettings


class WriteLimiter:
    """A sliding window per subject; the storage URI decides whether copies share counters (redis://)."""

    def __init__(self, settings: GatewaySettings) -> None:
        try:
            self.limit = parse(settings.rate_limit)
        except ValueError:
            raise ValueError(f"PLAYBOOK_RATE_LIMIT: {settings.rate_limit!r} is not a rate like 60/minute") from None
        uri = settings.rate_limit_storage
        self.strategy = strategies.SlidingWindowCounterRateLimiter(
            storage.storage_from_string(uri if uri.startswith("async+") else f"async+{uri}")
        )

    async def hit(self, subject: str) -> None:
        if not await self.strategy.hit(self.limit, "writes", subject):
            reset = (await self.strategy.get_window_stats(self.limit, "writes", subject)).reset_time
            raise Problem(429, f"over the rate limit of {self.limit} for writes; retry later",
                          headers={"Retry-After": str(max(1, int(reset - time.time())))})


async def writer(request: Request, caller: Annotated[Principal, Depends(principal)]) -> Principal:
    """The caller of a write, counted against the rate limit (a FastAPI dependency)."""
    limiter: WriteLimiter = request.app.state.limiter
    await limiter.hit(caller.sub)
    return caller
