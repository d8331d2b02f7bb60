"""Secrets by reference: ``{{ secrets.NAME }}`` stays a reference in the workflow and is resolved in the activity.

The workflow renders a step's ``with:`` with `REFERENCES` in the context, so a secret renders back as its own
reference; only the activity (`activities.secrets`) swaps references for values, so no value enters history.
"""

from __future__ import annotations

import re
from typing import Any

from .steps import BUILTIN_TYPES, HTTP_ALIASES

NAMESPACE = "secrets"
REFERENCE = re.compile(r"\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
"""A secret reference as the workflow leaves it in a rendered ``with:``."""
STEP_TYPES = (*HTTP_ALIASES, "notification")
"""Built-in types whose ``with:`` may hold secrets; registered types may too."""


class _References(dict[str, str]):
    """Every name renders as its own reference (Jinja reads ``secrets.NAME`` as an item lookup)."""

    def __missing__(self, name: str) -> str:
        return "{{ secrets." + name + " }}"


REFERENCES: dict[str, str] = _References()


def allowed_in(step_type: str) -> bool:
    """Whether a step type's ``with:`` may refer to secrets (never `set`, conditions or outputs)."""
    return step_type in STEP_TYPES or step_type not in BUILTIN_TYPES


def referenced(value: Any) -> set[str]:
    """The secret names a rendered value refers to."""
    if isinstance(value, dict):
        return set().union(*(referenced(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(referenced(v) for v in value)) if value else set()
    return set(REFERENCE.findall(value)) if isinstance(value, str) else set()


def substitute(value: Any, values: dict[str, str]) -> Any:
    """A copy of value with every reference replaced by the secret's value."""
    if isinstance(value, dict):
        return {k: substitute(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, values) for v in value]
    if isinstance(value, str):
        return REFERENCE.sub(lambda m: values[m.group(1)], value)
    return value
