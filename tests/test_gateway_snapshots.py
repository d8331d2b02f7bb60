"""gateway.snapshots: one load at a time, served while fresh, waited for when too old, local writes win over
loads that cannot have seen them. A hand-driven clock: no test depends on how fast this machine is."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway import snapshots
from gateway.snapshots import Snapshots


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


class Listing:
    """What visibility would say; each load records itself and may be held until released."""

    def __init__(self) -> None:
        self.items: dict[str, int] = {"a": 1}
        self.loads = 0
        self.gate: asyncio.Event | None = None

    async def __call__(self, scope: str) -> dict[str, int]:
        self.loads += 1
        seen = dict(self.items)
        if self.gate is not None:
            await self.gate.wait()
        return seen


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(snapshots, "time", fake)
    return fake


async def settle_tasks() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_many_requests_one_load(clock: Clock) -> None:
    listing = Listing()
    listing.gate = asyncio.Event()
    kept: Snapshots[str, int] = Snapshots(listing, max_age=3)
    waiting = [asyncio.create_task(kept.get("org")) for _ in range(20)]
    await settle_tasks()
    listing.gate.set()
    assert [dict(found) for found in await asyncio.gather(*waiting)] == [{"a": 1}] * 20
    assert listing.loads == 1


async def test_fresh_is_served_stale_refreshes_behind_too_old_waits(clock: Clock) -> None:
    listing = Listing()
    kept: Snapshots[str, int] = Snapshots(listing, max_age=3)
    assert dict(await kept.get("org")) == {"a": 1}
    listing.items = {"b": 2}
    clock.now += 0.5  # younger than refresh_after (1 s): no load
    assert dict(await kept.get("org")) == {"a": 1} and listing.loads == 1
    clock.now += 1  # older: served as it is, one load behind
    assert dict(await kept.get("org")) == {"a": 1}
    await settle_tasks()
    assert listing.loads == 2 and dict(await kept.get("org")) == {"b": 2}
    listing.items = {"c": 3}
    clock.now += 3  # max_age: the request waits for the load
    assert dict(await kept.get("org")) == {"c": 3}


async def test_a_local_write_wins_over_loads_that_began_too_soon_after_it(clock: Clock) -> None:
    listing = Listing()
    kept: Snapshots[str, int] = Snapshots(listing, max_age=3, settle=5)
    await kept.get("org")
    kept.put("org", "a", None)  # completed here: gone at once
    kept.put("org", "n", 9)  # claimed here: shown at once
    assert dict(await kept.get("org")) == {"n": 9}
    clock.now += 3  # the listing still shows the old state (visibility lags)
    assert dict(await kept.get("org")) == {"n": 9}
    clock.now += 6  # a load that began long enough after the writes: the listing is the truth again
    assert dict(await kept.get("org")) == {"a": 1}


async def test_a_failed_background_load_keeps_the_snapshot_and_the_next_request_retries(clock: Clock) -> None:
    calls: list[Any] = []

    async def flaky(scope: str) -> dict[str, int]:
        calls.append(scope)
        if len(calls) == 2:
            raise RuntimeError("visibility unavailable")
        return {"x": len(calls)}

    kept: Snapshots[str, int] = Snapshots(flaky, max_age=3)
    assert dict(await kept.get("org")) == {"x": 1}
    clock.now += 1.5
    assert dict(await kept.get("org")) == {"x": 1}
    await settle_tasks()
    assert dict(await kept.get("org")) == {"x": 1}  # the failure left the last snapshot in place
    await settle_tasks()
    assert dict(await kept.get("org")) == {"x": 3}


async def test_a_load_that_fails_while_a_request_waits_is_reported_to_it(clock: Clock) -> None:
    async def down(scope: str) -> dict[str, int]:
        raise RuntimeError("visibility unavailable")

    kept: Snapshots[str, int] = Snapshots(down, max_age=3)
    with pytest.raises(RuntimeError, match="unavailable"):
        await kept.get("org")
