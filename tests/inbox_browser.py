"""The inbox in a real browser: the gateway served by uvicorn on the test's event loop, Debian's Chromium
driven by Playwright, a person per browser context, and axe-core's accessibility check.

Serving on the test's own loop lets the app share the session's Temporal client and Postgres store with
the fixtures; Playwright's async API waits on that loop, so the server answers while the browser waits.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from config import Settings
from gateway.app import create_app
from gateway.inbox.settings import InboxSettings
from gateway.settings import GatewaySettings
from tests.fixtures_temporal import running_worker

CHROMIUM = Path("/usr/bin/chromium")
SECRET = "inbox-test-secret-of-at-least-32-bytes!"
WEB_UI = "http://localhost:8233"
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 800}
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed "
                                    "(apt-get install -y chromium): the inbox's browser tests need it")  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """The app on a free local port, on this event loop; its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning",
                                           lifespan="off", timeout_graceful_shutdown=2))  # fmt: skip
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield browser
        await browser.close()


@pytest.fixture
async def inbox_url(temporal: Any, catalog: Any) -> AsyncIterator[str]:
    """A worker and the gateway (API and inbox) with the dev sign-in on, served over HTTP for the browser."""
    async with running_worker(temporal.client, catalog) as client:
        app = create_app(Settings.from_env(), GatewaySettings(jwt_secret=SECRET, rate_limit="1000/minute"),
                         client=client, store=catalog,
                         inbox_settings=InboxSettings(dev_signin=True, temporal_ui_url=WEB_UI))  # fmt: skip
        async with serve(app) as url:
            yield url


@pytest.fixture
def org() -> str:
    return f"org_{uuid.uuid4().hex[:10]}"


@asynccontextmanager
async def person(browser: Browser, base: str, user: str, org: str, *roles: str,
                 viewport: dict[str, int] = LAPTOP) -> AsyncIterator[Page]:  # fmt: skip
    """A signed-in person (the dev sign-in, as a user would: the form), in a browser context of their own."""
    context: BrowserContext = await browser.new_context(base_url=base, viewport=viewport)  # type: ignore[arg-type]
    try:
        page = await context.new_page()
        await page.goto("/")
        await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        await page.get_by_label("User").fill(user)
        await page.get_by_label("Organization").fill(org)
        await page.get_by_label("More roles").fill(" ".join(roles))
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("heading", name="My tasks")).to_be_visible()
        yield page
    finally:
        await context.close()


async def accessible(page: Page) -> None:
    """axe-core on the page as it is: no serious or critical violation."""
    results = await Axe().run(page)
    bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    report = "\n".join(f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}" for v in bad)
    assert not bad, f"{page.url}:\n{report}"


async def shoot(page: Page, folder: Path | None, name: str, *, full_page: bool = True) -> None:
    if folder is not None:
        await page.screenshot(path=str(folder / f"{name}.png"), full_page=full_page)
