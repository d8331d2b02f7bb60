"""Expressions (SPEC 2.1): native types for single expressions, strings otherwise, bare conditions, errors."""

from __future__ import annotations

from typing import Any

import pytest

from model import expressions
from model.expressions import ExpressionError

CONTEXT: dict[str, Any] = {
    "inputs": {"name": "Acme", "amount": 1200, "rate": 0.2, "tags": ["a", "b"], "flag": False, "none": None},
    "steps": {
        "ask": {"status": "completed", "data": {"credit_limit": 60000.0, "terms": "NET30"}, "completed_by": "ann"},
        "make": {"status": "skipped", "output": None},
    },
    "vars": {"lines": [{"qty": 2, "price": 2.5}, {"qty": 1, "price": 10.0}]},
    "execution": {"id": "org_1/x/1", "organization_id": "org_1", "started_at": "2035-01-02T03:04:05Z"},
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ 42 }}", 42),
        ("{{ 4.5 }}", 4.5),
        ("{{ inputs.amount }}", 1200),
        ("{{ inputs.amount * 2 }}", 2400),
        ("{{ inputs.amount * inputs.rate }}", 240.0),
        ("{{ true }}", True),
        ("{{ inputs.flag }}", False),
        ("{{ inputs.amount > 1000 }}", True),
        ("{{ none }}", None),
        ("{{ inputs.none }}", None),
        ("{{ [1, 'two', 3.0] }}", [1, "two", 3.0]),
        ("{{ inputs.tags }}", ["a", "b"]),
        ("{{ {'a': 1, 'b': [true, none]} }}", {"a": 1, "b": [True, None]}),
        ("{{ vars.lines }}", [{"qty": 2, "price": 2.5}, {"qty": 1, "price": 10.0}]),
        ("{{ vars.lines | sum(attribute='price') }}", 12.5),
        ("{{ inputs.tags | length }}", 2),
        ("{{ '42' }}", "42"),
        ("{{ inputs.name | upper }}", "ACME"),
        ("  {{ inputs.amount }}  ", 1200),
        ("{{ dict(a=1) }}", {"a": 1}),
        ("{{ range(3) | list }}", [0, 1, 2]),
        ("{{ (inputs.amount / 7) | round(2) }}", 171.43),
    ],
)
def test_single_expression_keeps_its_native_type(template: str, expected: Any) -> None:
    result = expressions.render(template, CONTEXT)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Customer {{ inputs.name }}", "Customer Acme"),
        ("{{ inputs.amount }} EUR", "1200 EUR"),
        ("{{ 1 }}{{ 2 }}", "12"),
        ("n={{ 42 }}", "n=42"),
        ("{{ inputs.flag }}!", "False!"),
        ("{% if inputs.amount > 1000 %}large{% else %}small{% endif %}", "large"),
        ("{% for t in inputs.tags %}{{ t }}{{ loop.index }}{% endfor %}", "a1b2"),
        ("no template at all", "no template at all"),
        ("braces { } alone", "braces { } alone"),
    ],
)
def test_mixed_strings_render_to_str(template: str, expected: str) -> None:
    assert expressions.render(template, CONTEXT) == expected


def test_render_walks_lists_and_dicts() -> None:
    value = {
        "entity_name": "{{ inputs.name }}",
        "fields": {"limit": "{{ steps.ask.data.credit_limit }}", "note": "by {{ steps.ask.completed_by }}"},
        "lines": [{"quantity": "{{ vars.lines[0].qty }}", "unit_price": 3}, 7, None, True],
    }
    assert expressions.render(value, CONTEXT) == {
        "entity_name": "Acme",
        "fields": {"limit": 60000.0, "note": "by ann"},
        "lines": [{"quantity": 2, "unit_price": 3}, 7, None, True],
    }


def test_non_strings_are_returned_as_they_are() -> None:
    for value in (3, 2.5, True, None, [], {}):
        assert expressions.render(value, CONTEXT) == value


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("steps.ask.data.credit_limit > 50000", True),
        ("steps.ask.data.terms in ['NET15', 'NET30']", True),
        ("steps.make.status == 'completed'", False),
        ("inputs.amount > 1000 and not inputs.flag", True),
        ("inputs.none is none", True),
        ("inputs.tags | length == 2", True),
        ("execution.organization_id.startswith('org_')", True),
        ("inputs.name", True),  # truthiness
        ("inputs.flag", False),
        ("0", False),
        ("''", False),
        ("[]", False),
        (True, True),
        (False, False),
    ],
)
def test_conditions(condition: str | bool, expected: bool) -> None:
    result = expressions.condition(condition, CONTEXT)
    assert result is expected


def test_evaluate_is_a_bare_expression() -> None:
    assert expressions.evaluate("inputs.amount + 1", CONTEXT) == 1201
    assert expressions.evaluate("vars.lines | map(attribute='qty') | list", CONTEXT) == [2, 1]


@pytest.mark.parametrize(
    ("template", "names"),
    [
        ("{{ steps.ask.data.nope }}", ("nope",)),
        ("{{ inputs.missing }}", ("missing",)),
        ("{{ vars.lines[0].discount }}", ("discount",)),
        ("Hello {{ inputs.surname }}", ("surname",)),
        ("{{ steps.make.output.entity_id }}", ("entity_id",)),
        ("{{ nothing }}", ("nothing",)),
    ],
)
def test_strict_undefined_names_what_is_missing(template: str, names: tuple[str, ...]) -> None:
    with pytest.raises(ExpressionError) as caught:
        expressions.render(template, CONTEXT)
    assert caught.value.kind == "undefined"
    for name in names:
        assert name in caught.value.message
    assert "\n" not in caught.value.message


def test_undefined_in_a_condition_is_an_error_not_false() -> None:
    with pytest.raises(ExpressionError) as caught:
        expressions.condition("steps.ask.data.approved", CONTEXT)
    assert caught.value.kind == "undefined"
    assert "approved" in caught.value.message


@pytest.mark.parametrize(
    ("expr", "kind", "text"),
    [
        ("1 / 0", "runtime", "ZeroDivisionError"),
        ("inputs.amount // 0", "runtime", "ZeroDivisionError"),
        ("inputs.name + 1", "runtime", "TypeError"),
        ("inputs.tags[5]", "undefined", ""),
        ("inputs.name | int + 'x'", "runtime", "TypeError"),
        ("'x' | float / 0", "runtime", "ZeroDivisionError"),
        ("inputs.amount(1)", "runtime", "not callable"),
        ("namespace()", "type", "not a JSON value"),
        ("inputs.name.upper", "type", "not a JSON value"),
    ],
)
def test_runtime_errors_become_expression_errors(expr: str, kind: str, text: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        expressions.evaluate(expr, CONTEXT)
    assert caught.value.kind == kind, caught.value.message
    assert text in caught.value.message
    assert expr.strip() in caught.value.message  # names the expression that failed


def test_runtime_error_inside_a_mixed_template() -> None:
    with pytest.raises(ExpressionError) as caught:
        expressions.render("Total: {{ inputs.amount / 0 }}", CONTEXT)
    assert caught.value.kind == "runtime"
    assert "ZeroDivisionError" in caught.value.message


@pytest.mark.parametrize(
    "text",
    ["{{ inputs.amount + }}", "{{ inputs.name | }}", "{% if x %}unclosed", "{{ 'unterminated }}", "{{ a b }}"],
)
def test_syntax_errors(text: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        expressions.render(text, CONTEXT)
    assert caught.value.kind == "syntax"
    assert caught.value.message.startswith("syntax error")


def test_syntax_error_in_a_condition() -> None:
    with pytest.raises(ExpressionError) as caught:
        expressions.condition("inputs.amount >> 1", CONTEXT)
    assert caught.value.kind == "syntax"


def test_check_reports_what_an_expression_reads() -> None:
    refs = expressions.check("{{ steps.ask.data.credit_limit + inputs.amount + vars.x }}")
    assert refs.names == {"steps", "inputs", "vars"}
    assert ("steps", "ask", "data") in refs.attributes
    assert ("inputs", "amount", None) in refs.attributes
    assert ("vars", "x", None) in refs.attributes
    condition_refs = expressions.check("execution.id and loop_var.x", condition=True)
    assert condition_refs.names == {"execution", "loop_var"}


def test_single_expression_detection() -> None:
    assert expressions.single_expression("{{ a }}") == " a "
    assert expressions.single_expression("  {{ a + b }}\n") == " a + b "
    assert expressions.single_expression("x {{ a }}") is None
    assert expressions.single_expression("{{ a }} {{ b }}") is None
    assert expressions.single_expression("{% if a %}{{ a }}{% endif %}") is None


def test_evaluation_is_deterministic() -> None:
    template = "{{ inputs.tags | join(',') }}-{{ vars.lines | map(attribute='qty') | sum }}-{{ execution.id }}"
    results = {expressions.render(template, CONTEXT) for _ in range(5)}
    assert results == {"a,b-3-org_1/x/1"}
