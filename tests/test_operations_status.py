"""`playbook status`: the readable view of an execution (its --json is the status query itself)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from model.execution import StatusView
from starter.commands import format_duration, render_status

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def status() -> StatusView:
    return StatusView.model_validate(
        {
            "execution_id": "org_1/customer.create.v1/abc",
            "playbook_id": "customer.create.v1",
            "version": 1,
            "organization_id": "org_1",
            "status": "running",
            "progress": {"completed": 2, "total": 4, "percent": 50},
            "steps": [
                {"id": "create_customer", "name": "Create", "type": "entity", "status": "completed",
                 "started_at": T0, "finished_at": T0 + timedelta(seconds=0.25), "attempts": 3},
                {"id": "set_credit_terms", "name": "Terms", "type": "human", "status": "completed",
                 "started_at": T0, "finished_at": T0 + timedelta(minutes=3, seconds=7), "completed_by": "carol"},
                {"id": "manager_approval", "name": "Approval", "type": "approval", "status": "waiting",
                 "started_at": T0 + timedelta(minutes=4)},
                {"id": "notify", "name": "Notify", "type": "notification", "status": "pending"},
            ],
            "waiting_for": [
                {"step_id": "manager_approval", "name": "Approval", "type": "approval",
                 "assignee_role": "finance_manager", "instructions": "Approve 60000.", "form": {},
                 "deadline": T0 + timedelta(days=2), "example": {"data": {"approved": True}}},
            ],
            "vars": {},
            "outputs": {},
            "error": None,
            "rejected": [],
        }
    )  # fmt: skip


def test_status_table_with_durations_people_and_the_completion_command() -> None:
    text = render_status(status(), now=T0 + timedelta(minutes=6))
    assert text.splitlines() == [
        "org_1/customer.create.v1/abc  customer.create.v1  RUNNING  2/4 steps (50%)",
        "  step              type         status        took",
        "  create_customer   entity       completed    0.25s  3 attempts",
        "  set_credit_terms  human        completed    3m07s  by carol",
        "  manager_approval  approval     waiting      2m00s",  # so far
        "  notify            notification pending",
        "waiting for manager_approval (role finance_manager), due 2026-03-03 09:00 UTC: Approve 60000.",
        "  complete it: playbook complete org_1/customer.create.v1/abc manager_approval"
        ' --data \'{"approved": true}\' --role finance_manager --by YOUR_NAME',
    ]


def test_durations_read_well() -> None:
    assert [format_duration(s) for s in (None, 0.0166, 3.5, 12.25, 552, 7380, 273600)] == [
        "-", "0.02s", "3.50s", "12.2s", "9m12s", "2h03m", "3d04h",
    ]  # fmt: skip
