"""Language behaviours found while writing the library (each once broke a real playbook)."""

from __future__ import annotations

from pathlib import Path

import pytest

from model import load_library, validate_values
from model.expressions import ExpressionError, check, render
from model.variables import Variable


def test_a_dict_literal_keeps_its_native_type() -> None:
    assert render("{{ {'a': {'b': 1}} }}", {}) == {"a": {"b": 1}}
    assert render("{{ [{'x': 1}] }}", {}) == [{"x": 1}]
    assert render("{{ a }} and {{ b }}", {"a": 1, "b": 2}) == "1 and 2"


def test_data_keys_win_over_dict_methods() -> None:
    context = {"inputs": {"items": [1, 2, 3], "keys": "k"}}
    assert render("{{ inputs.items | length }}", context) == 3
    assert render("{{ inputs.keys }}", context) == "k"


def test_names_a_template_sets_in_a_block_are_its_own() -> None:
    refs = check("{% if inputs.d %}{% set s = inputs.d | string %}{{ s }}{% else %}0{% endif %}")
    assert refs.names == {"inputs"}


def test_date_arithmetic_is_deterministic() -> None:
    assert render("{{ '2026-03-01' | days_between('2026-03-31') }}", {}) == 30.0
    assert render("{{ '2026-03-01T09:00:00Z' | minutes_between('2026-03-01T10:30:00Z') }}", {}) == 90.0
    assert render("{{ '2026-02-27' | add_time(days=2) }}", {}) == "2026-03-01"
    assert render("{{ '2026-03-01T23:00:00Z' | add_time(hours=2) }}", {}) == "2026-03-02T01:00:00+00:00"
    with pytest.raises(ExpressionError, match="not an ISO 8601 date"):
        render("{{ 'soon' | days_between('2026-03-01') }}", {})


def test_an_unknown_field_is_refused_even_when_null() -> None:
    errors = validate_values({"comment": Variable(type="string")}, {"comment": "ok", "seasonal peak.": None}).errors
    assert [(e.field, e.rule) for e in errors] == [("seasonal peak.", "unknown_field")]


def test_a_wait_duration_may_be_a_template(tmp_path: Path) -> None:
    (tmp_path / "bake.wait.v1.yaml").write_text(
        "id: bake.wait.v1\nname: Bake\nversion: 1\nmodule: ops\nsmart_code: HERA.OPS.BAKE.WAIT.v1\n"
        "inputs: {minutes: {type: integer, default: 5}}\n"
        "steps:\n  - {id: bake, type: wait, with: {duration: '{{ inputs.minutes }}m'}}\n"
        "  - {id: never, type: wait, with: {duration: 5 minutes}}\n"
    )
    problems = load_library([tmp_path]).problems
    assert [(p.step, p.line) for p in problems] == [("never", 9)]
