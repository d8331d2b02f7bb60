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
    signin = await chromium.new_page(base_url=inbox_url)
    await signin.goto("/signin")
    await signin.get_by_label("User").fill("alice")
    await accessible(signin)
    await shoot(signin, SHOTS, "0-sign-in")
    await signin.close()
    async with person(chromium, inbox_url, "alice", org, "credit_controller") as alice:
        await accessible(alice)
        await alice.get_by_role("navigation").get_by_role("link", name="Start a playbook").click()
        await alice.get_by_label("Module").select_option("crm")
        await alice.get_by_role("button", name="Filter").click()
        await expect(alice.get_by_role("link", name="Customer onboarding")).to_be_visible()
        await expect(alice.get_by_role("link", name="Salon appointment booking")).to_have_count(0)
        await accessible(alice)
        await shoot(alice, SHOTS, "1-playbooks", full_page=False)
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
        await expect(alice.get_by_role("heading", name="Customer onboarding")).to_be_visible()

        await open_task(alice, "Set credit terms")
        await expect(alice.get_by_text("Set credit terms for Acme Corp.")).to_be_visible()
        await alice.get_by_label("Credit limit").fill("-5")
        await alice.get_by_label("Payment terms").select_option("NET30")
        assert await alice.get_by_label("Credit limit").evaluate("input => input.validity.rangeUnderflow")
        await submit_unchecked(alice, "Complete")
        await expect(alice.locator("#e-credit_limit")).to_contain_text("must be >= 0")
        limit = alice.get_by_label("Credit limit")
        await expect(limit).to_have_attribute("aria-describedby", re.compile("e-credit_limit"))
        await expect(limit).to_have_attribute("aria-invalid", "true")
        await expect(limit).to_have_value("-5")
        await expect(alice.get_by_label("Payment terms")).to_have_value("NET30")
        await expect(alice.get_by_role("alert")).to_contain_text("Credit limit")
        await accessible(alice)
        await shoot(alice, SHOTS, "4-task-rejected")
        await alice.get_by_label("Credit limit").fill("60000")
        await alice.get_by_role("button", name="Complete").click()
        await expect(alice.get_by_role("link", name="Manager approval", exact=True)).to_be_visible()
        await expect(alice.locator("body")).not_to_contain_text("DE123456789")
        link = alice.get_by_role("link", name="Open in the Temporal Web UI (new tab)")
        web_ui = f"{WEB_UI}/namespaces/default/workflows/{org}%2Fcustomer.create.v1%2F"
        await expect(link).to_have_attribute("href", re.compile(re.escape(web_ui)))
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



SERVICES = ('[{"line_type": "service", "quantity": 1, "unit_price": 45.0,'
            ' "metadata": {"service_code": "CUT", "service_name": "Haircut", "duration_minutes": 45}}]')  # fmt: skip


async def test_salon_booking_confirmed_by_the_front_desk(chromium: Browser, inbox_url: str, org: str) -> None:
    async with person(chromium, inbox_url, "rita", org, "salon_manager") as rita:
        await start_from_catalog(rita, "appointment", "Salon appointment booking")
        for label, value in (("Customer name", "Maria Lopez"), ("Customer phone", "+44 20 7946 0018"),
                             ("Customer email", "maria@example.com"), ("Stylist code", "STY-007"),
                             ("Stylist name", "Hannah Reid"), ("Appointment date", "2035-06-14"),
                             ("Start time", "10:00"), ("Services", SERVICES[:-1])):  # fmt: skip
            await rita.get_by_label(label).fill(value)
        await rita.get_by_label("Currency").select_option("GBP")
        await rita.get_by_role("button", name="Start").click()
        await expect(rita.locator("#e-services")).to_contain_text("not valid JSON")
        await expect(rita.get_by_label("Stylist name")).to_have_value("Hannah Reid")
        await expect(rita.get_by_label("Currency")).to_have_value("GBP")
        await expect(rita.get_by_label("Customer email")).to_have_value("")  # sensitive
        await rita.get_by_label("Customer email").fill("maria@example.com")
        await rita.get_by_label("Services").fill(SERVICES)
        await rita.get_by_role("button", name="Start").click()
        await expect(rita.get_by_role("heading", name="Salon appointment booking")).to_be_visible()

        async with person(chromium, inbox_url, "sam", org, "front_desk") as sam:
            name = "Front desk confirms the booking"
            await sam.get_by_role("button", name=f"Claim {name}").click()
            await open_task(sam, name)
            await expect(sam.get_by_text("Confirm Maria Lopez's booking with Hannah Reid")).to_be_visible()
            await sam.get_by_label("Confirmed").check()
            await sam.get_by_label("Reminder channel").select_option("email")
            await sam.get_by_label("Deposit taken").fill("-20")
            await submit_unchecked(sam, "Complete")
            await expect(sam.locator("#e-deposit_taken")).to_contain_text("must be >= 0")
            await expect(sam.get_by_label("Confirmed")).to_be_checked()
            await expect(sam.get_by_label("Reminder channel")).to_have_value("email")
            await accessible(sam)
            await sam.get_by_label("Deposit taken").fill("20")
            await sam.get_by_role("button", name="Complete").click()
            await expect_status(sam, "completed")

        await expect_status(rita, "completed")
        await expect(rita.locator(".outputs")).to_contain_text("confirmed")
        await expect(rita.locator("body")).not_to_contain_text("maria@example.com")


async def test_rush_work_order_scheduled_and_approved(chromium: Browser, inbox_url: str, org: str) -> None:
    async with person(chromium, inbox_url, "pat", org, "production_planner", viewport=PHONE) as pat:
        await start_from_catalog(pat, "work order", "Work order creation and scheduling")
        for label, value in (("Product code", "PMP-HSG-07"), ("Product name", "Pump housing"), ("Quantity", "0"),
                             ("Standard unit cost", "18.2"), ("Due date", "2035-07-04"),
                             ("Drawing", "s3://drawings/PMP-HSG-07/rev-B.pdf")):  # fmt: skip
            await pat.get_by_label(label).fill(value)
        await pat.get_by_label("Priority").select_option("rush")
        await pat.get_by_label("Production line").select_option("LINE-A")
        await pat.get_by_label("Certificate required").check()
        await submit_unchecked(pat, "Start")
        await expect(pat.locator("#e-quantity")).to_contain_text("must be >= 1")
        await expect(pat.get_by_label("Drawing")).to_have_value("s3://drawings/PMP-HSG-07/rev-B.pdf")
        await expect(pat.get_by_label("Certificate required")).to_be_checked()
        await accessible(pat)  # on a phone
        await pat.get_by_label("Quantity").fill("300")
        await pat.get_by_role("button", name="Start").click()
        await expect(pat.get_by_role("heading", name="Work order creation and scheduling")).to_be_visible()

        await open_task(pat, "Production planner schedules the order")
        await pat.get_by_label("Planned start").fill("2035-06-28")
        await pat.get_by_label("Planned end").fill("2035-07-01")
        await pat.get_by_label("Shift").select_option("night")
        await pat.get_by_label("Machine hours").fill("5000")
        await pat.get_by_label("Setup sheet").fill("s3://setups/line-a/pmp.pdf")
        await submit_unchecked(pat, "Complete")
        await expect(pat.locator("#e-machine_hours")).to_contain_text("must be <= 2000")
        await expect(pat.get_by_label("Planned end")).to_have_value("2035-07-01")
        await expect(pat.get_by_label("Setup sheet")).to_have_value("s3://setups/line-a/pmp.pdf")
        await shoot(pat, SHOTS, "8-task-phone")
        await pat.get_by_label("Machine hours").fill("40")
        await pat.get_by_role("button", name="Complete").click()
        await expect(pat.get_by_role("link", name="Plant manager approves a high-priority order")).to_be_visible()

        async with person(chromium, inbox_url, "mia", org, "plant_manager") as mia:
            name = "Plant manager approves a high-priority order"
            await mia.get_by_label("Role").select_option("plant_manager")
            await mia.get_by_role("button", name="Filter").click()
            await mia.get_by_role("button", name=f"Claim {name}").click()
            await open_task(mia, name)
            await mia.get_by_label("Comment").fill("Bump the LINE-A maintenance window.")
            await mia.get_by_role("button", name="Approve").click()
            await expect_status(mia, "completed")

        await expect_status(pat, "completed")
        await expect(pat.locator(".outputs")).to_contain_text("WO-PMP-HSG-07-20350704")


async def test_a_form_with_every_variable_type(chromium: Browser, inbox_url: str, org: str, catalog: Any) -> None:
    playbook = load_playbook(EVERY_TYPE)
    await catalog.publish_definition(await catalog.resolve_organization(org), playbook_id=playbook.id,
                                     definition=playbook.model_dump(mode="json", by_alias=True, exclude_none=True),
                                     smart_code=playbook.smart_code, by="test")  # fmt: skip
    async with person(chromium, inbox_url, "fay", org, "field_agent") as fay:
        await start_from_catalog(fay, "every field", "Every field type")
        await fay.get_by_label("Reference").fill("SITE-42")
        await fay.get_by_role("button", name="Start").click()
        await open_task(fay, "Fill in every field")
        await expect(fay.get_by_text("The access code is never shown back.")).to_be_visible()
        shown = await fay.locator("form.form [data-kind]").evaluate_all("fields => fields.map(f => f.dataset.kind)")
        assert shown == ["text", "integer", "number", "checkbox", "select", "multi_select", "date", "datetime",
                         "json", "file", "text"]  # every type, in the author's order  # fmt: skip
        site = fay.get_by_label("Site name")
        await expect(site).to_have_attribute("pattern", re.compile(re.escape("(?:^[A-Z])")))
        await expect(site).to_have_attribute("required", "")
        await expect(fay.get_by_label("Visitors")).to_have_attribute("max", "500")
        await expect(fay.get_by_label("Access code")).to_have_attribute("type", "password")
        await site.fill("north yard")
        assert await site.evaluate("input => input.validity.patternMismatch")
        await fay.get_by_label("Visitors").fill("0")
        await fay.get_by_label("Weight (kg)").fill("12.5")
        await fay.get_by_label("Safety check passed").check()
        await fay.get_by_label("Priority").select_option("high")
        await fay.get_by_role("group", name="Equipment").get_by_label("drill").check()
        await fay.get_by_role("group", name="Equipment").get_by_label("meter").check()
        await fay.get_by_label("Visit date").fill("2035-03-01")
        await fay.get_by_label("Arrived at").fill("2035-03-01T08:15")
        await fay.get_by_label("Readings").fill('{"kwh": 1234')
        await fay.get_by_label("Photo of the meter").fill("s3://photos/site-42/meter.jpg")
        await fay.get_by_label("Access code").fill("7391")
        await shoot(fay, SHOTS, "9-every-type-form")
        await submit_unchecked(fay, "Complete")
        # bad JSON is caught before the engine is asked; the engine's own rules come next time
        await expect(fay.locator("#e-readings")).to_contain_text("not valid JSON")
        await expect(fay.get_by_label("Readings")).to_have_value('{"kwh": 1234')
        for label, value in (("Site name", "north yard"), ("Visitors", "0"), ("Weight (kg)", "12.5"),
                             ("Priority", "high"), ("Visit date", "2035-03-01"), ("Arrived at", "2035-03-01T08:15"),
                             ("Photo of the meter", "s3://photos/site-42/meter.jpg"), ("Access code", "")):  # fmt: skip
            await expect(fay.get_by_label(label)).to_have_value(value)
        await expect(fay.get_by_label("Safety check passed")).to_be_checked()
        await expect(fay.get_by_role("group", name="Equipment").get_by_label("meter")).to_be_checked()
        await expect(fay.get_by_role("group", name="Equipment").get_by_label("van")).not_to_be_checked()
        await fay.get_by_label("Readings").fill('{"kwh": 1234}')
        await fay.get_by_label("Access code").fill("7391")
        await submit_unchecked(fay, "Complete")
        await expect(fay.locator("#e-site_name")).to_contain_text("pattern")
        await expect(fay.locator("#e-visitors")).to_contain_text("must be >= 1")
        await expect(fay.get_by_label("Readings")).to_have_value('{"kwh": 1234}')
        await accessible(fay)
        await site.fill("North yard")
        await fay.get_by_label("Visitors").fill("3")
        await fay.get_by_label("Access code").fill("7391")
        assert await fay.locator("form.form").evaluate("form => form.checkValidity()")  # the browser agrees
        await fay.get_by_role("button", name="Complete").click()
        await expect_status(fay, "completed")
        outputs = fay.locator(".outputs")
        await expect(outputs).to_contain_text("North yard")
        await expect(outputs).to_contain_text('["drill", "meter"]')
        await expect(outputs).to_contain_text("***")
        await expect(fay.locator("body")).not_to_contain_text("7391")
