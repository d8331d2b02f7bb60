"""The playbook lifecycle (SPEC §8) on real Temporal and Postgres: status at start, versions, rollback,
per-organization catalogs and sharing, templates, and a library with a broken file."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from activities.catalog import sync_catalog
from config import Settings
from model import load_library, load_playbook
from runtime.worker import run_worker
from starter.client import PlaybookClient
from starter.examples import Case, run_examples
from starter.templates import derive
from store import Store, catalog
from tests.fixtures_temporal import running_worker

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = load_library([ROOT / "playbooks" / "templates"]).templates


def definition(playbook_id: str, *, status: str = "published", note: str = "first") -> dict[str, Any]:
    """A playbook that waits for one person, so a run stays open; `note` tells versions apart."""
    return {
        "id": playbook_id, "name": "Lifecycle probe", "version": 1, "module": "crm", "status": status,
        "smart_code": "HERA.CRM.LIFE.PLAYBOOK.v1",
        "steps": [{"id": "ask", "type": "human", "with": {"instructions": note,
                                                         "form": {"ok": {"type": "boolean", "required": True}}}}],
        "outputs": {"note": note},
        "success_criteria": ["steps.ask.data.ok", "steps.ask.status == 'completed'"],
    }  # fmt: skip


def new_id() -> str:
    return f"life_{uuid.uuid4().hex[:10]}.v1"


async def publish(store: Store, org: uuid.UUID | None, body: dict[str, Any], by: str = "tester") -> str:
    return await store.publish_definition(org, playbook_id=body["id"], definition=body,
                                          smart_code=body["smart_code"], by=by)  # fmt: skip


def reason(exc: BaseException) -> str:
    """Every message down an error's cause chain."""
    parts = []
    cause: BaseException | None = exc
    while cause is not None:
        parts.append(str(cause))
        cause = cause.__cause__
    return " | ".join(parts)


async def waiting(client: PlaybookClient, execution_id: str) -> str:
    """Once the definition is pinned and the run waits for its person."""
    for _ in range(400):
        status = await client.status(execution_id)
        if status.waiting_for:
            return execution_id
        await asyncio.sleep(0.05)
    raise AssertionError(f"{execution_id} never waited: {status}")


async def started(client: PlaybookClient, playbook_id: str, org: uuid.UUID) -> str:
    return await waiting(client, (await client.start(playbook_id, organization=str(org))).id)


async def refused(client: PlaybookClient, playbook_id: str, org: uuid.UUID) -> str:
    handle = await client.start(playbook_id, organization=str(org))
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    return reason(failure.value)


async def test_status_decides_what_starts_by_id(temporal: WorkflowEnvironment, store: Store,
                                                org_a: uuid.UUID) -> None:  # fmt: skip
    draft, archived, deprecated, replacement = new_id(), new_id(), new_id(), new_id()
    await publish(store, org_a, definition(draft, status="draft"))
    await publish(store, org_a, definition(archived))
    await publish(store, org_a, definition(deprecated))
    await publish(store, org_a, definition(replacement))
    async with store.catalog(org_a) as conn:
        await catalog.set_status(conn, org_a, archived, "archived", by="tester")
        await catalog.set_status(conn, org_a, deprecated, "deprecated", by="tester", superseded_by=replacement)
    async with running_worker(temporal.client, store) as client:
        assert f"playbook {draft} is draft" in await refused(client, draft, org_a)
        assert f"playbook {archived} is archived" in await refused(client, archived, org_a)
        running = await client.status(await started(client, deprecated, org_a))
        assert (running.deprecated, running.superseded_by) == (True, replacement)
        plain = await client.status(await started(client, replacement, org_a))
        assert (plain.deprecated, plain.superseded_by) == (False, None)
        # an inline definition may be a draft (playbook test runs drafts this way)
        inline = await client.start(draft, organization=str(org_a), playbook=definition(draft, status="draft"))
        await waiting(client, inline.id)
        await client.complete(inline.id, "ask", data={"ok": True})
        assert (await inline.result())["outputs"] == {"note": "first"}
        done = await client.status(inline.id)
        assert [(c.criterion, c.met) for c in done.success_criteria] == [
            ("steps.ask.data.ok", True), ("steps.ask.status == 'completed'", True)]  # fmt: skip


async def test_unmet_success_criteria_are_listed(temporal: WorkflowEnvironment, store: Store,
                                                 org_a: uuid.UUID) -> None:  # fmt: skip
    playbook_id = new_id()
    async with running_worker(temporal.client, store) as client:
        handle = await client.start(playbook_id, organization=str(org_a), playbook=definition(playbook_id))
        await waiting(client, handle.id)
        await client.complete(handle.id, "ask", data={"ok": False})
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        status = await client.status(handle.id)
    assert status.error == "success criterion is false: steps.ask.data.ok"
    assert [c.met for c in status.success_criteria] == [False, True]


async def test_publish_versions_rollback(temporal: WorkflowEnvironment, store: Store, org_a: uuid.UUID) -> None:
    playbook_id = new_id()
    first = await publish(store, org_a, definition(playbook_id, note="first"), by="ana")
    assert await publish(store, org_a, definition(playbook_id, note="first"), by="ana") == first  # no new version
    async with running_worker(temporal.client, store) as client:
        on_first = await started(client, playbook_id, org_a)
        second = await publish(store, org_a, definition(playbook_id, note="second"), by="bob")
        on_second = await started(client, playbook_id, org_a)
        async with store.catalog(org_a) as conn:
            assert await catalog.rollback(conn, org_a, playbook_id, first[:10], by="carla") == first
            versions, changes = await catalog.versions(conn, org_a, playbook_id)
        after = await started(client, playbook_id, org_a)
        shas = {run: (await client.status(run)).definition_sha for run in (on_first, on_second, after)}
        assert shas == {on_first: first, on_second: second, after: first}
        # the running execution keeps the definition it started with
        assert (await client.handle(on_second).query("definition"))["outputs"] == {"note": "second"}
        for run in (on_second, after):
            await client.complete(run, "ask", data={"ok": True})
        assert (await client.handle(on_second).result())["outputs"] == {"note": "second"}
        assert (await client.handle(after).result())["outputs"] == {"note": "first"}
    assert [(v.sha256, v.published_by, v.current) for v in versions] == [(first, "ana", True), (second, "bob", False)]
    assert [(c.action, c.by, c.sha256) for c in changes] == [
        ("publish", "ana", first), ("publish", "bob", second), ("rollback", "carla", first)]  # fmt: skip
    async with store.catalog(org_a) as conn:
        with pytest.raises(catalog.CatalogNotFound, match="no published version"):
            await catalog.rollback(conn, org_a, playbook_id, "ffff", by="carla")


async def test_organization_override_and_sharing(store: Store, org_a: uuid.UUID, org_b: uuid.UUID) -> None:
    org_c = await store.resolve_organization(f"org_c_{uuid.uuid4().hex[:10]}")
    playbook_id, private = new_id(), new_id()
    platform_sha = await publish(store, None, definition(playbook_id, note="platform"))
    own_sha = await publish(store, org_a, definition(playbook_id, note="org a"))
    await publish(store, org_a, definition(private, note="a's own"))
    assert (await store.resolve_definition(org_a, playbook_id)).sha256 == own_sha  # type: ignore[union-attr]
    assert (await store.resolve_definition(org_b, playbook_id)).sha256 == platform_sha  # type: ignore[union-attr]
    assert await store.resolve_definition(org_b, private) is None
    async with store.catalog(org_a) as conn:
        await catalog.share(conn, org_a, private, [org_b], by="ana")
    shared = await store.resolve_definition(org_b, private)
    assert shared is not None and (shared.source, shared.owner) == ("shared", org_a)
    assert await store.resolve_definition(org_c, private) is None  # only the named organizations see it
    async with store.catalog(org_b) as conn:
        listed = {e.playbook_id: e.source for e in await catalog.entries(conn, org_b)}
        with pytest.raises(catalog.CatalogNotFound):  # a share is read only
            await catalog.set_status(conn, org_b, private, "archived", by="bob")
    assert (listed[playbook_id], listed[private]) == ("platform", "shared")
    async with store.catalog(org_a) as conn:
        await catalog.share(conn, org_a, private, [org_b], by="ana", revoke=True)
    assert await store.resolve_definition(org_b, private) is None


@pytest.mark.parametrize("template_id", sorted(TEMPLATES))
def test_new_playbook_from_each_template_validates(template_id: str, tmp_path: Path) -> None:
    from model.loader import read_document

    source = read_document(ROOT / "playbooks" / "templates" / f"{template_id}.yaml").data
    data = derive(source, "made.from_template.v2", module="finance")
    made = load_playbook(data)
    assert (made.status, made.version, made.module, made.derived_from) == ("draft", 2, "finance", template_id)
    assert made.smart_code == "HERA.FINANCE.MADE.FROMTEMPLATE.PLAYBOOK.v2" and not made.template
    assert all(step.smart_code is None or step.smart_code.startswith("HERA.FINANCE.") for _, step in made.walk())
    assert made.examples


async def test_examples_of_playbooks_made_from_templates_pass(temporal: WorkflowEnvironment, store: Store) -> None:
    cases = []
    for template_id, template in sorted(TEMPLATES.items()):
        data = derive(template.model_dump(mode="json", by_alias=True, exclude_none=True),
                      f"made.{template_id.split('.')[1]}.v1")  # fmt: skip
        made = load_playbook(data)
        cases += [Case(made, example, inline=True) for example in made.examples]
    async with running_worker(temporal.client, store) as client:
        outcomes = await run_examples(client, cases, timeout=60)
    assert [(o.playbook_id, o.example) for o in outcomes if not o.passed] == [], [o.differences for o in outcomes]


async def test_a_broken_library_file_is_skipped(tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture) -> None:
    shutil.copy(ROOT / "playbooks" / "crm" / "customer.create.v1.yaml", tmp_path)
    shutil.copytree(ROOT / "playbooks" / "templates", tmp_path / "templates")
    (tmp_path / "broken.v1.yaml").write_text("id: broken.v1\nname: Broken\nversion: 1\nsteps: [\n")
    with caplog.at_level(logging.ERROR, logger="playbook.catalog"):
        report = await sync_catalog(store, tmp_path)
    assert report.published == 1  # templates are never published
    [problem] = report.skipped
    assert (problem.file, problem.line) == (str(tmp_path / "broken.v1.yaml"), 5)
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith(f"catalog: skipped {tmp_path / 'broken.v1.yaml'}:5: YAML syntax")


async def test_a_worker_serves_a_library_with_a_broken_file(temporal: WorkflowEnvironment, pg_dsn: str,
                                                            tmp_path: Path) -> None:  # fmt: skip
    playbook_id = new_id()
    (tmp_path / f"{playbook_id}.yaml").write_text(json.dumps(definition(playbook_id)))  # JSON is YAML
    (tmp_path / "broken.v1.yaml").write_text("id: broken.v1\nsteps: {{\n")
    queue = f"tq-{uuid.uuid4()}"
    settings = Settings(temporal_address=temporal.client.service_client.config.target_host,
                        temporal_namespace=temporal.client.namespace, task_queue=queue, database_url=pg_dsn,
                        playbooks_dir=tmp_path, auto_register_orgs=True)  # fmt: skip
    ready = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, ready=ready.set))
    try:
        await asyncio.wait_for(ready.wait(), 30)
        client = PlaybookClient(temporal.client, task_queue=queue)
        handle = await client.start(playbook_id, organization="org_broken_library")
        await waiting(client, handle.id)
        await client.complete(handle.id, "ask", data={"ok": True})
        assert (await handle.result())["status"] == "completed"
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)


async def test_notes_before_and_after_the_ending(temporal: WorkflowEnvironment, store: Store,
                                                 org_a: uuid.UUID) -> None:  # fmt: skip
    playbook_id = new_id()
    async with running_worker(temporal.client, store) as client:
        handle = await client.start(playbook_id, organization=str(org_a), playbook=definition(playbook_id))
        await waiting(client, handle.id)
        assert await client.add_note(handle.id, "the form was unclear", by="ana") == "signalled"
        await client.handle(handle.id).signal("add_note", {"text": 42, "step_id": ["not", "a", "string"]})
        await client.handle(handle.id).signal("add_note", {"text": "plain JSON, no id", "by": "svc"})
        await client.complete(handle.id, "ask", data={"ok": True})
        await handle.result()
        assert await client.add_note(handle.id, "lesson: ask earlier", by="bob") == "recorded"
        status = await client.status(handle.id)
    assert [(n.by, n.text) for n in status.notes] == [("ana", "the form was unclear"), ("svc", "plain JSON, no id")]
    assert [r.reason for r in status.rejected] == [
        "add_note: text: Input should be a valid string; step_id: Extra inputs are not permitted"]  # fmt: skip
    trail = await store.notes(org_a, handle.id)
    # the two open-time notes are written by concurrent activities; the one after the ending comes last
    early = sorted((n["by"], n["text"]) for n in trail[:2])
    assert early == [("ana", "the form was unclear"), ("svc", "plain JSON, no id")]
    assert (trail[2]["by"], trail[2]["text"]) == ("bob", "lesson: ask earlier")
