"""The HTTP gateway against a real Temporal and Postgres: auth, tenancy, problems, HERA payloads, claims, tasks."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from config import Settings
from gateway.app import create_app
from gateway.settings import GatewaySettings
from model import load_playbook
from starter.tokens import mint
from tests.conftest import LIBRARY
from tests.fixtures_temporal import running_worker

SECRET = "gateway-test-secret-of-at-least-32-bytes"
PROBLEM = "application/problem+json"


def token(sub: str, org: str | list[str], *roles: str, secret: str = SECRET) -> dict[str, str]:
    orgs = [org] if isinstance(org, str) else org
    return {"Authorization": f"Bearer {mint(secret, sub=sub, orgs=orgs, roles=list(roles), ttl_seconds=600)}"}


def example(playbook_id: str) -> dict[str, Any]:
    (path,) = LIBRARY.rglob(f"{playbook_id}.yaml")
    return dict(load_playbook(path).examples[0].initial_data)


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["type"]
    return body


@pytest.fixture
async def api(temporal: Any, catalog: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with running_worker(temporal.client, catalog) as client:
        gateway = GatewaySettings(jwt_secret=SECRET, rate_limit="5/minute")
        app = create_app(Settings.from_env(), gateway, client=client, store=catalog)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
            yield http


@pytest.fixture
def org() -> str:
    return f"org_{uuid.uuid4().hex[:10]}"


async def start(api: httpx.AsyncClient, org: str, playbook_id: str = "customer.create.v1",
                data: dict[str, Any] | None = None, sub: str = "svc-crm") -> str:  # fmt: skip
    body = {"action": "execute", "playbook_id": playbook_id, "organization_id": org,
            "initial_data": data if data is not None else example(playbook_id)}  # fmt: skip
    response = await api.post("/api/v1/playbooks", json=body, headers=token(sub, org))
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "running"
    execution_id: str = response.json()["execution_id"]
    return execution_id


async def waiting(api: httpx.AsyncClient, org: str, execution_id: str, step_id: str) -> dict[str, Any]:
    """The status once `step_id` waits for a person."""
    for _ in range(200):
        status: dict[str, Any] = (await api.get(f"/api/v1/executions/{execution_id}", headers=token("x", org))).json()
        if any(w["step_id"] == step_id for w in status.get("waiting_for", [])):
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"{step_id} never waited: {status}")


async def test_seed_payloads_run_through_the_hera_endpoint(api: httpx.AsyncClient, org: str,
                                                           pg_admin: Any) -> None:  # fmt: skip
    for playbook_id in ("customer.create.v1", "appointment.book.v1", "workorder.create.v1"):
        await start(api, org, playbook_id)
    execution_id = await start(api, org, data={"customer_name": "Acme Corp", "email": "ops@acme.example"})
    await waiting(api, org, execution_id, "set_credit_terms")
    body = {"action": "complete_step", "execution_id": execution_id, "step_id": "set_credit_terms",
            "data": {"credit_limit": 1000, "payment_terms": "NET30"}, "completed_by": "mallory"}  # fmt: skip
    response = await api.post("/api/v1/playbooks", json=body, headers=token("carol", org, "credit_controller"))
    assert response.status_code == 200, response.text
    step = next(s for s in response.json()["steps"] if s["id"] == "set_credit_terms")
    assert step["completed_by"] == "carol"
    line = await pg_admin.fetchrow(
        "SELECT l.metadata FROM universal_transaction_lines l JOIN universal_transactions t ON t.id = l.transaction_id"
        " WHERE t.transaction_code = $1 AND l.metadata->>'step_id' = 'set_credit_terms'", execution_id)  # fmt: skip
    assert json.loads(line["metadata"])["completed_by"] == "carol"
    listed = await api.get("/api/v1/playbooks", headers=token("x", org))
    assert "customer.create.v1" in {p["id"] for p in listed.json()}
    one = await api.get("/api/v1/playbooks", params={"playbookId": "customer.create.v1"}, headers=token("x", org))
    assert one.json()["id"] == "customer.create.v1"
    status = await api.get("/api/v1/playbooks", params={"executionId": execution_id}, headers=token("x", org))
    assert status.json()["execution_id"] == execution_id


async def test_every_problem_status(api: httpx.AsyncClient, org: str) -> None:
    assert "missing bearer" in problem(await api.get("/api/v1/tasks"), 401)["detail"]
    forged = token("x", org, secret="another-secret-of-at-least-32-bytes!")
    assert "invalid token" in problem(await api.get("/api/v1/tasks", headers=forged), 401)["detail"]
    body = {"action": "execute", "playbook_id": "customer.create.v1", "organization_id": "org_elsewhere"}
    assert "org_elsewhere" in problem(await api.post("/api/v1/playbooks", json=body, headers=token("x", org)),
                                      403)["detail"]  # fmt: skip
    assert "platform_admin" in problem(await api.get("/api/v1/organizations", headers=token("x", org)), 403)["detail"]
    assert "no execution" in problem(await api.get(f"/api/v1/executions/{org}/nope", headers=token("x", org)),
                                     404)["detail"]  # fmt: skip
    missing = {"action": "execute", "playbook_id": "no.such.v1", "organization_id": org}
    assert "no.such.v1" in problem(await api.post("/api/v1/playbooks", json=missing, headers=token("x", org)),
                                   404)["detail"]  # fmt: skip
    bad = {"action": "execute", "playbook_id": "customer.create.v1", "organization_id": org,
           "initial_data": {"email": "not-an-email", "colour": "red"}}  # fmt: skip
    errors = problem(await api.post("/api/v1/playbooks", json=bad, headers=token("y", org)), 422)["errors"]
    assert {e["field"] for e in errors} == {"initial_data.customer_name", "initial_data.email", "initial_data.colour"}
    execution_id = await start(api, org, data={"customer_name": "Acme", "email": "a@b.example"}, sub="z")
    await waiting(api, org, execution_id, "set_credit_terms")
    path = f"/api/v1/executions/{execution_id}/steps/set_credit_terms/complete"
    wrong = {"data": {"credit_limit": -1, "payment_terms": "NET99"}}
    errors = problem(await api.post(path, json=wrong, headers=token("w", org, "credit_controller")), 422)["errors"]
    assert {e["field"] for e in errors} == {"data.credit_limit", "data.payment_terms"}
    not_waiting = f"/api/v1/executions/{execution_id}/steps/create_customer/complete"
    assert "not waiting" in problem(await api.post(not_waiting, json={}, headers=token("v", org)), 409)["detail"]
    for _ in range(5):
        await api.post("/api/v1/playbooks", json=missing, headers=token("flood", org))
    limited = await api.post("/api/v1/playbooks", json=missing, headers=token("flood", org))
    assert "rate limit" in problem(limited, 429)["detail"] and limited.headers["Retry-After"]


async def test_another_tenant_sees_nothing(api: httpx.AsyncClient, org: str) -> None:
    other = f"org_b_{uuid.uuid4().hex[:8]}"
    execution_id = await start(api, org, data={"customer_name": "Acme", "email": "a@b.example"})
    await waiting(api, org, execution_id, "set_credit_terms")
    them = token("eve", other, "credit_controller")
    problem(await api.get(f"/api/v1/executions/{execution_id}", headers=them), 404)
    problem(await api.get("/api/v1/playbooks", params={"executionId": execution_id}, headers=them), 404)
    complete = {"data": {"credit_limit": 1, "payment_terms": "NET30"}}
    problem(await api.post(f"/api/v1/executions/{execution_id}/steps/set_credit_terms/complete", json=complete,
                           headers=them), 404)  # fmt: skip
    problem(await api.post(f"/api/v1/executions/{execution_id}/cancel", headers=them), 404)
    problem(await api.post(f"/api/v1/executions/{execution_id}/steps/set_credit_terms/claim", headers=them), 404)
    listed = await api.get("/api/v1/executions", headers=them)
    assert execution_id not in {e["execution_id"] for e in listed.json()["items"]}
    assert (await api.get("/api/v1/tasks", headers=them)).json()["items"] == []
    problem(await api.get("/api/v1/tasks", params={"organization_id": org}, headers=them), 403)
    encoded = execution_id.replace("/", "%2F")
    assert (await api.get(f"/api/v1/executions/{encoded}", headers=token("x", org))).status_code == 200
    cancelled = await api.post(f"/api/v1/executions/{execution_id}/cancel", json={"reason": "test"},
                               headers=token("x", org))  # fmt: skip
    assert cancelled.status_code == 202


async def test_a_role_step_needs_the_role(api: httpx.AsyncClient, org: str) -> None:
    execution_id = await start(api, org, data={"customer_name": "Acme", "email": "a@b.example"})
    await waiting(api, org, execution_id, "set_credit_terms")
    body = {"data": {"credit_limit": 10, "payment_terms": "NET30"}}
    path = f"/api/v1/executions/{execution_id}/steps/set_credit_terms/complete"
    assert "credit_controller" in problem(await api.post(path, json=body, headers=token("bob", org, "sales")),
                                          403)["detail"]  # fmt: skip


async def test_two_people_racing_to_claim_one_step(api: httpx.AsyncClient, org: str, pg_admin: Any) -> None:
    execution_id = await start(api, org, data={"customer_name": "Acme", "email": "a@b.example"})
    await waiting(api, org, execution_id, "set_credit_terms")
    claim = f"/api/v1/executions/{execution_id}/steps/set_credit_terms/claim"
    first, second = await asyncio.gather(
        api.post(claim, headers=token("ann", org, "credit_controller")),
        api.post(claim, headers=token("ben", org, "credit_controller")),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    winner, loser = ("ann", "ben") if first.status_code == 200 else ("ben", "ann")
    status = (first if first.status_code == 200 else second).json()
    assert status["waiting_for"][0]["claimed_by"] == winner
    complete = f"/api/v1/executions/{execution_id}/steps/set_credit_terms/complete"
    body = {"data": {"credit_limit": 10, "payment_terms": "NET30"}}
    assert winner in problem(await api.post(complete, json=body, headers=token(loser, org, "credit_controller")),
                             409)["detail"]  # fmt: skip
    release = f"/api/v1/executions/{execution_id}/steps/set_credit_terms/release"
    assert (await api.post(release, headers=token(winner, org, "credit_controller"))).status_code == 200
    assert (await api.post(claim, headers=token(loser, org, "credit_controller"))).status_code == 200
    done = await api.post(complete, json=body, headers=token(loser, org, "credit_controller"))
    assert done.status_code == 200, done.text
    kinds = [json.loads(row["metadata"])["step_type"] for row in await pg_admin.fetch(
        "SELECT l.metadata FROM universal_transaction_lines l JOIN universal_transactions t ON t.id = l.transaction_id"
        " WHERE t.transaction_code = $1 AND l.metadata->>'step_id' = 'set_credit_terms' ORDER BY l.line_number",
        execution_id)]  # fmt: skip
    assert kinds == ["claim", "release", "claim", "human"]


async def test_idempotent_start(api: httpx.AsyncClient, org: str) -> None:
    body = {"playbook_id": "customer.create.v1", "organization_id": org,
            "initial_data": {"customer_name": "Acme", "email": "a@b.example"}}  # fmt: skip
    headers = {**token("svc", org), "Idempotency-Key": "order-42"}
    first = await api.post("/api/v1/executions", json=body, headers=headers)
    again = await api.post("/api/v1/executions", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["execution_id"] == again.json()["execution_id"]
    other = {**body, "initial_data": {"customer_name": "Other", "email": "a@b.example"}}
    assert problem(await api.post("/api/v1/executions", json=other, headers=headers), 422)["errors"][0]["field"] \
        == "Idempotency-Key"


async def test_tasks_lists_what_the_caller_may_complete(api: httpx.AsyncClient, org: str) -> None:
    execution_id = await start(api, org, data={"customer_name": "Acme", "email": "a@b.example"})
    await waiting(api, org, execution_id, "set_credit_terms")
    for _ in range(200):  # visibility is eventually consistent
        tasks = (await api.get("/api/v1/tasks", headers=token("carol", org, "credit_controller"))).json()["items"]
        if tasks:
            break
        await asyncio.sleep(0.05)
    (task,) = tasks
    assert task["execution_id"] == execution_id and task["step_id"] == "set_credit_terms"
    assert task["assignee_role"] == "credit_controller" and "credit_limit" in task["form"]["properties"]
    assert task["claimed_by"] is None and task["overdue"] is False
    assert (await api.get("/api/v1/tasks", headers=token("sam", org, "sales"))).json()["items"] == []
    carol = token("carol", org, "credit_controller")
    # what is done through this gateway shows at once, though visibility has not caught up yet
    step = f"/api/v1/executions/{execution_id}/steps/set_credit_terms"
    assert (await api.post(f"{step}/claim", headers=carol)).status_code == 200
    (task,) = (await api.get("/api/v1/tasks", headers=carol)).json()["items"]
    assert task["claimed_by"] == "carol"
    done = await api.post(f"{step}/complete", json={"data": {"credit_limit": 10, "payment_terms": "NET30"}},
                          headers=carol)  # fmt: skip
    assert done.status_code == 200, done.text
    assert (await api.get("/api/v1/tasks", headers=carol)).json()["items"] == []


async def test_tasks_filters_and_pages(api: httpx.AsyncClient, org: str) -> None:
    ids = [await start(api, org, data={"customer_name": f"Acme {i}", "email": "a@b.example"}) for i in range(3)]
    carol = token("carol", org, "credit_controller")
    for _ in range(200):  # visibility is eventually consistent, and the inbox a snapshot of it
        listed = (await api.get("/api/v1/tasks", headers=carol)).json()["items"]
        if len(listed) == 3:
            break
        await asyncio.sleep(0.1)
    assert {t["execution_id"] for t in listed} == set(ids)
    first = (await api.get("/api/v1/tasks", params={"limit": 2}, headers=carol)).json()
    assert len(first["items"]) == 2 and first["next_page_token"]
    rest = (await api.get("/api/v1/tasks", params={"limit": 2, "page_token": first["next_page_token"]},
                          headers=carol)).json()  # fmt: skip
    assert [t["execution_id"] for t in first["items"] + rest["items"]] == [t["execution_id"] for t in listed]
    assert rest["next_page_token"] is None
    assert (await api.get("/api/v1/tasks", params={"playbook_id": "appointment.book.v1"}, headers=carol)).json()[
        "items"] == []  # fmt: skip
    assert len((await api.get("/api/v1/tasks", params={"overdue": "false"}, headers=carol)).json()["items"]) == 3
    assert (await api.get("/api/v1/tasks", params={"overdue": "true"}, headers=carol)).json()["items"] == []
    assert "sales" in problem(await api.get("/api/v1/tasks", params={"role": "sales"}, headers=carol), 403)["detail"]
    bad = problem(await api.get("/api/v1/tasks", params={"page_token": "x"}, headers=carol), 422)
    assert "page_token" in bad["detail"]


async def test_status_events_stream_until_the_end(api: httpx.AsyncClient, org: str) -> None:
    execution_id = await start(api, org, data={"customer_name": "Acme", "email": "a@b.example"})
    await waiting(api, org, execution_id, "set_credit_terms")
    await api.post(f"/api/v1/executions/{execution_id}/cancel", headers=token("x", org))
    events = []
    async with api.stream("GET", f"/api/v1/executions/{execution_id}/events", headers=token("x", org)) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        async for line in stream.aiter_lines():
            if line.startswith("event:"):
                events.append(line.split(":", 1)[1].strip())
    assert events and set(events) == {"status"}


async def test_organizations_are_registered_by_an_admin(api: httpx.AsyncClient, org: str) -> None:
    admin = token("root", org, "platform_admin")
    code = f"org_new_{uuid.uuid4().hex[:6]}"
    created = await api.post("/api/v1/organizations", json={"code": code, "name": "New Co"}, headers=admin)
    assert created.status_code == 201 and created.json()["code"] == code
    assert code in {o["code"] for o in (await api.get("/api/v1/organizations", headers=admin)).json()}
    problem(await api.post("/api/v1/organizations", json={"code": "bad code!", "name": "x"}, headers=admin), 422)
