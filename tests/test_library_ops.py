"""The ops library: two runbooks at least per ops category, each proven by a success and a failure path."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

import model

LIBRARY = model.load_library([Path(__file__).resolve().parent.parent / "playbooks"])
CATEGORIES = [
    "incident_response", "troubleshooting", "deployment", "maintenance", "security", "code_review", "testing",
    "release", "onboarding", "monitoring", "backup", "disaster_recovery", "capacity_planning",
]  # fmt: skip
OPS = [p for p in LIBRARY.playbooks.values() if p.module == "ops"]


def test_every_ops_category_has_two_runbooks() -> None:
    counts = Counter(p.category for p in OPS)
    assert {c: counts[c] for c in CATEGORIES if counts[c] < 2} == {}
    assert set(counts) <= set(CATEGORIES)  # a typo'd category would hide a runbook from its shelf


@pytest.mark.parametrize("playbook", OPS, ids=lambda p: p.id)
def test_a_runbook_shows_a_good_and_a_failure_or_rejection_path(playbook: model.Playbook) -> None:
    def refuses(example: model.Example) -> bool:
        rejected = any(c.data.get("approved") is False for c in example.complete)
        return example.expect.status == "failed" or rejected

    assert len(playbook.examples) >= 2
    assert any(example.expect.status == "completed" for example in playbook.examples)
    assert any(refuses(example) for example in playbook.examples)
