"""Snapshots of a slow listing, shared by the requests of one process: fresh enough, loaded once at a time.

A listing of a scope (an organization's waiting steps) costs a visibility scan; an inbox asks for it on every
page view. So each scope keeps its last listing and the time its load *began* (what it shows is at least that
fresh). A request gets the snapshot as it is while it is younger than `refresh_after`; older, the request still
gets it but starts one load in the background; at `max_age` or more it waits for that load. One load per scope
runs at a time (single flight), however many requests ask. So a snapshot is usually `refresh_after` plus one
scan old, and never older than `max_age`: the gap between the two absorbs scans that a loaded visibility store
makes slow, without making anyone wait for them.

Writes made through this process are applied at once (`put`) and *pinned*: a load that began less than
`settle` seconds after the write may still show the old value (visibility lags behind the workflow), so the
pinned value wins over it until then. Nothing is shared between processes: N gateways each keep their own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass
class _Snapshot(Generic[K, V]):
    began: float
    items: dict[K, V]


@dataclass
class _Scope(Generic[K, V]):
    current: _Snapshot[K, V] | None = None
    loading: asyncio.Task[_Snapshot[K, V]] | None = None
    pins: dict[K, tuple[float, V | None]] = field(default_factory=dict)


class Snapshots(Generic[K, V]):
    def __init__(self, load: Callable[[str], Awaitable[dict[K, V]]], *, max_age: float, refresh_after: float = 1.0,
                 settle: float = 5.0) -> None:  # fmt: skip
        if max_age <= 0:
            raise ValueError("max_age must be positive")
        self._load, self.max_age, self.settle = load, max_age, settle
        self.refresh_after = min(refresh_after, max_age)
        self._scopes: dict[str, _Scope[K, V]] = {}

    async def get(self, scope: str) -> Mapping[K, V]:
        """The scope's items, never older than `max_age` (plus the listing's own lag)."""
        state = self._scopes.setdefault(scope, _Scope())
        current = state.current
        age = time.monotonic() - current.began if current else float("inf")
        if age >= self.refresh_after:
            loading = self._refresh(scope, state)
            if current is None or age >= self.max_age:
                # shielded: a caller that goes away does not cancel the load the others wait for
                current = await asyncio.shield(loading)
        assert current is not None
        return current.items

    def put(self, scope: str, key: K, value: V | None) -> None:
        """A write made here: `value` (None: gone) from now on, even over loads that cannot have seen it yet."""
        state = self._scopes.setdefault(scope, _Scope())
        state.pins[key] = (time.monotonic(), value)
        if state.current is not None:
            _apply(state.current.items, key, value)

    def keys(self, scope: str) -> list[K]:
        state = self._scopes.get(scope)
        return list(state.current.items) if state and state.current else []

    def _refresh(self, scope: str, state: _Scope[K, V]) -> asyncio.Task[_Snapshot[K, V]]:
        if state.loading is None:
            state.loading = asyncio.create_task(self._reload(scope, state))
            state.loading.add_done_callback(lambda task: self._loaded(scope, state, task))
        return state.loading

    async def _reload(self, scope: str, state: _Scope[K, V]) -> _Snapshot[K, V]:
        began = time.monotonic()
        items = await self._load(scope)
        for key, (at, value) in list(state.pins.items()):
            if at < began - self.settle:
                del state.pins[key]  # this load began long enough after the write to show it
            else:
                _apply(items, key, value)
        state.current = _Snapshot(began, items)
        return state.current

    @staticmethod
    def _loaded(scope: str, state: _Scope[K, V], task: asyncio.Task[_Snapshot[K, V]]) -> None:
        state.loading = None
        if not task.cancelled() and (exc := task.exception()) is not None:
            # a waiting request reports it; a background load's failure only means the next request tries again
            log.warning("loading the snapshot of %s failed: %s", scope, exc)


def _apply(items: dict[K, V], key: K, value: V | None) -> None:
    if value is None:
        items.pop(key, None)
    else:
        items[key] = value
