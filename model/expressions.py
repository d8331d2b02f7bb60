"""Expressions: Jinja2 in one immutable sandbox, with native types for single-expression values.

Results depend only on the context (no clock, no randomness, no I/O, no internals), so the
workflow can evaluate them deterministically. Every failure is an `ExpressionError` with a kind
(``syntax``, ``security``, ``undefined``, ``type``, ``runtime``) and a one-line message.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_STRING = 100_000
"""Longest string or list an expression may build with ``*`` (guards the workflow task's CPU)."""
MAX_EXPONENT = 100
MAX_OUTPUT = 1_000_000
"""Longest text a template may render."""


class ExpressionError(Exception):
    """A template or condition that cannot be compiled or evaluated."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-+ #0]*(\d+|\*)?(?:\.(\d+|\*))?")
_PADDING_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs"})


def _bounded(*sizes: Any) -> None:
    """Refuse a width, padding or count that would build a value longer than MAX_STRING."""
    for size in sizes:
        if size == "*" or (isinstance(size, int | str) and str(size).isdigit() and int(size) > MAX_STRING):
            raise SecurityError(f"a width or size above {MAX_STRING} is not allowed")


def _bounded_format(text: str) -> None:
    for spec in re.findall(r"\{[^{}]*:([^{}]*)\}", text):
        _bounded(*re.findall(r"\d+", spec))
    if re.search(r"\{[^{}]*:[^{}]*\{", text):
        raise SecurityError("nested format widths are not allowed")


def _bounded_filter(name: str, filter_fn: Any) -> Any:
    passes = getattr(filter_fn, "jinja_pass_arg", None)  # truncate and wordwrap take the environment first
    skip = 0 if passes is None else 1

    def bounded(*args: Any, **kwargs: Any) -> Any:
        value, params = args[skip], args[skip + 1 :]
        _bounded(*params, *kwargs.values())
        if name == "format" and isinstance(value, str):
            _bounded(*(n for match in _PERCENT_SPEC.findall(value) for n in match if n))
        return filter_fn(*args, **kwargs)

    if passes is not None:
        bounded.jinja_pass_arg = passes  # type: ignore[attr-defined]
    return bounded


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, refusing internals loudly and bounding everything that can build huge values."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise SecurityError(f"access to internal attribute {attribute!r} is not allowed")

    def getattr(self, obj: Any, attribute: str) -> Any:
        # data first: `inputs.items` is the input named items, not the dict method
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        # the sandbox hands str.format out wrapped; the string it formats is on the wrapped method
        owner = getattr(getattr(__obj, "__wrapped__", __obj), "__self__", None)
        if isinstance(owner, str):
            if __obj.__name__ in _PADDING_METHODS:
                _bounded(*args, *kwargs.values())
            elif __obj.__name__ in ("format", "format_map"):
                _bounded_format(owner)
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "%":
            if isinstance(left, str):
                _bounded(*(n for match in _PERCENT_SPEC.findall(left) for n in match if n))
            return operator.mod(left, right)
        if operator_name == "**":
            if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponent {right} is larger than {MAX_EXPONENT}")
            return operator.pow(left, right)
        sized, count = (left, right) if isinstance(left, str | list | tuple) else (right, left)
        if isinstance(sized, str | list | tuple) and isinstance(count, int) and len(sized) * count > MAX_STRING:
            raise SecurityError(f"a repeated value longer than {MAX_STRING} is not allowed")
        return operator.mul(left, right)


def _moment(value: Any) -> date | datetime:
    """A date or a time from a value or an ISO 8601 string (``2026-03-01``, ``2026-03-01T09:30:00Z``)."""
    if isinstance(value, date):
        return value
    text = str(value)
    try:
        return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 date or time") from None


def _aligned(start: Any, end: Any) -> tuple[datetime, datetime]:
    a, b = _moment(start), _moment(end)
    as_time = [m if isinstance(m, datetime) else datetime.combine(m, time(), tzinfo=UTC) for m in (a, b)]
    return tuple(m if m.tzinfo else m.replace(tzinfo=UTC) for m in as_time)  # type: ignore[return-value]


def days_between(start: Any, end: Any) -> float:
    """Days from start to end (negative if end is earlier); dates count from midnight UTC."""
    a, b = _aligned(start, end)
    return (b - a).total_seconds() / 86400


def minutes_between(start: Any, end: Any) -> float:
    a, b = _aligned(start, end)
    return (b - a).total_seconds() / 60


def add_time(value: Any, *, days: float = 0, hours: float = 0, minutes: float = 0) -> str:
    """An ISO 8601 date or time moved by some days, hours or minutes (a date stays a date when whole days)."""
    moment = _moment(value)
    shifted = moment + timedelta(days=days, hours=hours, minutes=minutes)
    return shifted.isoformat()


DATE_FILTERS = {"days_between": days_between, "minutes_between": minutes_between, "add_time": add_time}
"""Deterministic date arithmetic: the clock is never read, only the values given."""


def _make_env() -> _Sandbox:
    env = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    # lipsum, cycler and joiner are stateful or random: not part of a deterministic language
    for name in ("lipsum", "cycler", "joiner"):
        env.globals.pop(name, None)
    env.filters.pop("random", None)
    for name in ("center", "indent", "wordwrap", "format", "truncate"):
        env.filters[name] = _bounded_filter(name, env.filters[name])
    env.filters.update(DATE_FILTERS)
    return env


ENV = _make_env()
"""The one expression environment: every template and condition of every playbook uses it."""

_SINGLE = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.DOTALL)
_LOADERS = (nodes.Import, nodes.FromImport, nodes.Include, nodes.Extends)


def is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


@lru_cache(maxsize=4096)
def single_expression(text: str) -> str | None:
    """The expression of a string that is exactly one ``{{ expr }}`` (dict literals included), else None."""
    match = _SINGLE.match(text)
    if not match or "{%" in text:
        return None
    try:
        body = ENV.parse(text.strip()).body
    except TemplateSyntaxError:
        return None
    output = body[0] if len(body) == 1 and isinstance(body[0], nodes.Output) else None
    single = output is not None and len(output.nodes) == 1 and not isinstance(output.nodes[0], nodes.TemplateData)
    return match["expr"] if single else None


@dataclass
class References:
    """What an expression reads: top-level names and ``steps.<id>.<field>`` / ``ns.<name>`` uses."""

    names: set[str] = field(default_factory=set)
    attributes: list[tuple[str, str, str | None]] = field(default_factory=list)
    """(namespace, key, sub-key): ``steps.x.output`` → ("steps", "x", "output"); ``inputs.a`` → (…, None)."""


def _const_key(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        return node.arg.value
    return None


def _check_security(ast: nodes.Template) -> None:
    for loop in ast.find_all(nodes.For):
        if any(True for _ in loop.find_all(nodes.For)):
            raise ExpressionError("security", "nested loops are not allowed (their cost multiplies)")
    for node in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter, nodes.Name, *_LOADERS)):
        if isinstance(node, _LOADERS):
            raise ExpressionError("security", "templates cannot import, include or extend other templates")
        if isinstance(node, nodes.Name) and node.name == "self":
            raise ExpressionError("security", "unknown name 'self' (Jinja's template object is not available)")
        if isinstance(node, nodes.Filter):
            key = node.args[0].value if node.args and isinstance(node.args[0], nodes.Const) else None
            if node.name == "attr" and not (isinstance(key, str) and not key.startswith("_")):
                raise ExpressionError("security", "the attr filter may only read plain public attributes")
            continue
        key = node.name if isinstance(node, nodes.Name) else _const_key(node)
        if key is not None and key.startswith("_"):
            raise ExpressionError("security", f"access to internal attribute {key!r} is not allowed")


def _parse(source: str) -> nodes.Template:
    try:
        ast = ENV.parse(source)
    except TemplateSyntaxError as exc:
        raise ExpressionError("syntax", f"syntax error: {exc.message}") from None
    _check_security(ast)
    return ast


def _references(ast: nodes.Template) -> References:
    from jinja2 import meta

    # names a template assigns itself ({% set %} in any block, loop targets) are its own, not the context's
    assigned = {n.name for n in ast.find_all(nodes.Name) if n.ctx in ("store", "param")}
    refs = References(names=set(meta.find_undeclared_variables(ast)) - assigned)
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, nodes.Getattr | nodes.Getitem)
        inner = node.node
        key = _const_key(node)
        if key is None:
            continue
        if isinstance(inner, nodes.Name):
            refs.attributes.append((inner.name, key, None))
        elif isinstance(inner, nodes.Getattr | nodes.Getitem) and isinstance(inner.node, nodes.Name):
            outer_key = _const_key(inner)
            if outer_key is not None:
                refs.attributes.append((inner.node.name, outer_key, key))
    # ``steps.x.output`` also appears as the bare ``steps.x``: keep only the most specific use
    specific = {(ns, key) for ns, key, sub in refs.attributes if sub is not None}
    refs.attributes = [a for a in refs.attributes if a[2] is not None or (a[0], a[1]) not in specific]
    return refs


def template_source(value: str, *, condition: bool = False) -> str:
    """The Jinja source of a value or a bare condition."""
    return "{{ (" + value + ") }}" if condition else value


@lru_cache(maxsize=4096)
def check(value: str, *, condition: bool = False) -> References:
    """Compile a template (or a bare condition) and return what it reads; raise ExpressionError."""
    ast = _parse(template_source(value, condition=condition))
    # what Jinja's compiler would refuse, found on the tree (compiling every template is slow)
    for node in ast.find_all((nodes.Filter, nodes.Test)):
        known = ENV.filters if isinstance(node, nodes.Filter) else ENV.tests
        if node.name not in known:
            kind = "filter" if isinstance(node, nodes.Filter) else "test"
            raise ExpressionError("syntax", f"syntax error: No {kind} named {node.name!r}.")
    refs = _references(ast)
    if not refs.names - set(ENV.globals):
        _fold_constant(value, condition)
    return refs


def _fold_constant(value: str, condition: bool) -> None:
    """Evaluate an expression that reads no data now, so its bombs are found by validation (safely bounded)."""
    try:
        if condition:
            evaluate(value, {})
        else:
            render(value, {})
    except ExpressionError as exc:
        if exc.kind == "security":
            raise


@lru_cache(maxsize=4096)
def _compile_expression(expr: str) -> Any:
    _parse("{{ (" + expr + ") }}")
    try:
        return ENV.compile_expression(expr, undefined_to_none=False)
    except TemplateSyntaxError as exc:
        raise ExpressionError("syntax", f"syntax error: {exc.message}") from None


@lru_cache(maxsize=4096)
def _compile_template(text: str) -> Any:
    _parse(text)
    return ENV.from_string(text)


def _jsonable(value: Any, where: str) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v, where) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v, where) for k, v in value.items()}
    if isinstance(value, StrictUndefined):
        value._fail_with_undefined_error()
    raise ExpressionError("type", f"{where}: gives a {type(value).__name__}, which is not a JSON value")


def _run(fn: Any, where: str) -> Any:
    try:
        return fn()
    except ExpressionError:
        raise
    except (SecurityError, OverflowError, MemoryError) as exc:
        raise ExpressionError("security", f"{where}: {exc}") from None
    except UndefinedError as exc:
        raise ExpressionError("undefined", f"{where}: {exc.message}") from None
    except Exception as exc:  # a user's expression may raise anything (1/0, int('x')); report it, never crash
        raise ExpressionError("runtime", f"{where}: {type(exc).__name__}: {exc}") from None


def evaluate(expr: str, context: dict[str, Any]) -> Any:
    """The native value of a bare expression."""
    compiled = _compile_expression(expr)
    return _run(lambda: _jsonable(compiled(**context), expr.strip()), expr.strip())


def condition(expr: str | bool, context: dict[str, Any]) -> bool:
    """A condition's truth (``when``, ``success_criteria``, ``assert``)."""
    if isinstance(expr, bool):
        return expr
    return bool(evaluate(expr, context))


def render(value: Any, context: dict[str, Any]) -> Any:
    """Render a value: templates inside strings, recursively through lists and dicts."""
    if isinstance(value, dict):
        return {k: render(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, context) for v in value]
    if not is_template(value):
        return value
    expr = single_expression(value)
    if expr is not None:
        return evaluate(expr, context)
    template = _compile_template(value)
    return _run(lambda: _bounded_render(template, context), value.strip())


def _bounded_render(template: Any, context: dict[str, Any]) -> str:
    """Render chunk by chunk, refusing output longer than MAX_OUTPUT (loops can multiply it)."""
    parts: list[str] = []
    size = 0
    for chunk in template.generate(**context):
        size += len(chunk)
        if size > MAX_OUTPUT:
            raise SecurityError(f"the rendered text is longer than {MAX_OUTPUT} characters")
        parts.append(chunk)
    return "".join(parts)


def templates_in(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every template string inside a value, with its path."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from templates_in(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from templates_in(v, (*path, i))
    elif is_template(value):
        yield path, value
