"""Masking of sensitive values: replaced by ``***`` wherever they appear, inside other strings too."""

from __future__ import annotations

from typing import Any

MASK = "***"


def secret_forms(value: Any) -> set[str]:
    """The spellings of a sensitive value worth hiding (as given, and the usual case/space variants)."""
    if value is None or isinstance(value, bool) or value == "":
        return set()
    if isinstance(value, dict):
        return set().union(*(secret_forms(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(secret_forms(v) for v in value)) if value else set()
    text = str(value)
    return {text, text.strip(), text.lower(), text.upper()} - {""}


def mask(value: Any, secrets: list[str] | set[str]) -> Any:
    """A copy of value with every secret spelling replaced by ``***`` (longest first)."""
    if not secrets:
        return value
    ordered = sorted(secrets, key=len, reverse=True)
    return _mask(value, ordered)


def _mask(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: _mask(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, secrets) for v in value]
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, MASK)
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and str(value) in secrets:
        return MASK
    return value
