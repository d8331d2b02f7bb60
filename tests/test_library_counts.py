"""The business library holds at least the seed's 117 playbooks, module by module, each with a failure path."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

import model

LIBRARY = model.load_library([Path(__file__).resolve().parent.parent / "playbooks"])
HERA = {
    "crm": 18, "finance": 13, "hr": 11, "inventory": 9, "manufacturing": 10,
    "projects": 8, "purchasing": 9, "sales": 11, "salon": 20, "service": 8,
}  # fmt: skip
BUSINESS = [p for p in LIBRARY.playbooks.values() if p.module != "ops"]


def test_every_module_has_at_least_the_seeds_count() -> None:
    counts = Counter(p.module.value for p in BUSINESS)
    assert {m: counts[m] for m, wanted in HERA.items() if counts[m] < wanted} == {}
    assert sum(counts.values()) >= sum(HERA.values())


@pytest.mark.parametrize("playbook", BUSINESS, ids=lambda p: p.id)
def test_a_playbook_has_two_examples_one_of_them_a_failure_or_rejection(playbook: model.Playbook) -> None:
    def refuses(example: model.Example) -> bool:
        return example.expect.status == "failed" or any(c.data.get("approved") is False for c in example.complete)

    assert len(playbook.examples) >= 2
    assert any(refuses(e) for e in playbook.examples), "no example shows a failure or a rejection"
