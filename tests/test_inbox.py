"""The inbox in a real browser against a real stack: people sign in, start playbooks from their forms, find
their tasks, are told what is wrong beside the field, claim, approve, and watch executions end live.

Every page is checked with axe-core. With INBOX_SCREENSHOTS=DIR the pages are saved there (docs/inbox/ for
the tour: `INBOX_SCREENSHOTS=docs/inbox .venv/bin/pytest tests/test_inbox.py`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from model import load_playbook
from tests.inbox_browser import PHONE, WEB_UI, accessible, needs_chromium, person, shoot

pytestmark = needs_chromium
SHOTS = Path(os.environ["INBOX_SCREENSHOTS"]) if os.environ.get("INBOX_SCREENSHOTS") else None
EVERY_TYPE = Path(__file__).parent / "inbox" / "form.every_type.v1.yaml"


async def start_from_catalog(page: Page, search: str, name: str) -> None:
    await page.get_by_role("navigation").get_by_role("link", name="Start a playbook").click()
    await page.get_by_label("Search").fill(search)
    await page.get_by_role("button", name="Filter").click()
    await page.get_by_role("link", name=name, exact=True).click()
    await expect(page.get_by_role("heading", name=name)).to_be_visible()


async def open_task(page: Page, name: str) -> None:
    """My tasks lists the step (live: the list updates itself while visibility catches up); open it."""
    await page.get_by_role("navigation").get_by_role("link", name="My tasks").click()
    await page.get_by_role("link", name=f"Open {name}").first.click()
    await expect(page.get_by_role("heading", name=name)).to_be_visible()


async def submit_unchecked(page: Page, button: str) -> None:
    """Submit as a browser without constraint validation would: the server's check is the one that counts."""
    await page.locator("form.form").evaluate("form => { form.noValidate = true; }")
    await page.get_by_role("button", name=button).click()


async def expect_status(page: Page, status: str) -> None:
    await expect(page.locator(".status-line")).to_contain_text(status)


async def test_customer_onboarding_end_to_end(chromium: Browser, inbox_url: str, org: str) -> None:
    async with person(chromium, inbox_url, "alice", org, "credit_controller") as alice:
        await accessible(alice)
        await shoot(alice, SHOTS, "1-my-tasks-empty")
        await start_from_catalog(alice, "customer", "Customer onboarding")
        await alice.get_by_label("Customer name").fill("Acme Corp")
        await alice.get_by_label("Email").fill("not-an-email")
        await alice.get_by_label("Tax id").fill("DE123456789")
        await submit_unchecked(alice, "Start")
        await expect(alice.locator("#e-email")).to_contain_text("pattern")
        await expect(alice.get_by_label("Customer name")).to_have_value("Acme Corp")
        await expect(alice.get_by_label("Tax id")).to_have_value("")  # sensitive: never sent back
        await accessible(alice)
        await alice.get_by_label("Email").fill("ops@acme.example")
        await alice.get_by_label("Tax id").fill("DE123456789")
        await shoot(alice, SHOTS, "2-start-form")
        await alice.get_by_role("button", name="Start").click()
        await expect(alice.get_by_role("heading", name="customer.create.v1")).to_be_visible()

        await open_task(alice, "Set credit terms")
        await expect(alice.get_by_text("Set credit terms for Acme Corp.")).to_be_visible()
        await alice.get_by_label("Credit limit").fill("-5")
        await alice.get_by_label("Payment terms").select_option("NET30")
        assert await alice.get_by_label("Credit limit").evaluate("input => input.validity.rangeUnderflow")
        await submit_unchecked(alice, "Complete")
        error = alice.locator("#e-credit_limit")
        await expect(error).to_contain_text("must be >= 0")
        await expect(alice.get_by_label("Credit limit")).to_have_attribute("aria-describedby", re.compile("e-credit_limit"))
        await expect(alice.get_by_label("Credit limit")).to_have_value("-5")
        await expect(alice.get_by_label("Payment terms")).to_have_value("NET30")
        await expect(alice.get_by_role("alert")).to_contain_text("Credit limit")
        await accessible(alice)
        await shoot(alice, SHOTS, "4-task-rejected")
        await alice.get_by_label("Credit limit").fill("60000")
        await alice.get_by_role("button", name="Complete").click()
        await expect(alice.get_by_role("link", name="Manager approval", exact=True)).to_be_visible()
        await expect(alice.locator("body")).not_to_contain_text("DE123456789")
        link = alice.get_by_role("link", name="Open in the Temporal Web UI (new tab)")
        await expect(link).to_have_attribute("href", re.compile(re.escape(f"{WEB_UI}/namespaces/default/workflows/{org}%2F")))
        await accessible(alice)

        async with person(chromium, inbox_url, "bob", org, "finance_manager") as bob:
            await expect(bob.get_by_role("link", name="Manager approval", exact=True)).to_be_visible()
            await expect(bob.locator(".tasks")).not_to_contain_text("Set credit terms")
            await shoot(bob, SHOTS, "3-my-tasks")
            await bob.get_by_role("button", name="Claim Manager approval").click()
            await expect(bob.get_by_role("button", name="Release Manager approval")).to_be_visible()
            await accessible(bob)
            await open_task(bob, "Manager approval")
            await expect(bob.get_by_text("You have claimed this step.")).to_be_visible()
            await expect(bob.get_by_text("Approve a credit limit of 60000.0.")).to_be_visible()
            await bob.get_by_label("Comment").fill("Two years of accounts checked.")
            await accessible(bob)
            await shoot(bob, SHOTS, "5-approval")
            await bob.get_by_role("button", name="Approve").click()
            await expect_status(bob, "completed")

        # alice never reloaded: the page followed the execution by its event stream
        await expect_status(alice, "completed")
        timeline = alice.locator("table.timeline")
        await expect(timeline.get_by_role("row", name=re.compile("Manager approval"))).to_contain_text("bob")
        await expect(timeline.get_by_role("row", name=re.compile("Set credit terms"))).to_contain_text("alice")
        await expect(alice.locator(".outputs")).to_contain_text("customer_id")
        await accessible(alice)
        await shoot(alice, SHOTS, "6-execution-completed")
        await alice.set_viewport_size(PHONE)
        await shoot(alice, SHOTS, "7-execution-phone")

