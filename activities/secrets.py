"""Resolving ``{{ secrets.NAME }}`` inside the activity, from the worker's environment or a secrets folder."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from model import secrets
from model.execution import StepRequest
from model.masking import secret_forms

from .errors import fail

ENV_PREFIX = "PLAYBOOK_SECRET_"
DIR_ENV = "PLAYBOOK_SECRETS_DIR"


def lookup(name: str, env: Mapping[str, str] = os.environ) -> str | None:
    """``PLAYBOOK_SECRET_<NAME>``, else the file ``<PLAYBOOK_SECRETS_DIR>/<name>`` (as written, or lower-case)."""
    if (value := env.get(ENV_PREFIX + name)) is not None:
        return value
    folder = env.get(DIR_ENV)
    if folder:
        for candidate in (Path(folder) / name, Path(folder) / name.lower()):
            if candidate.is_file():
                return candidate.read_text().rstrip("\r\n")
    return None


def resolve(req: StepRequest) -> StepRequest:
    """The request with its secret references swapped for values, and those values added to what is masked."""
    names = secrets.referenced(req.with_)
    if not names:
        return req
    values = {name: lookup(name) for name in sorted(names)}
    if missing := [name for name, value in values.items() if value is None]:
        where = f"{ENV_PREFIX}<NAME> or {DIR_ENV}"
        raise fail("UnknownSecret", f"unknown secret {', '.join(missing)} (set {where} on the worker)")
    found = {name: value for name, value in values.items() if value is not None}
    masks = set(req.secrets).union(*(secret_forms(v) for v in found.values()))
    return req.model_copy(update={"with_": secrets.substitute(req.with_, found), "secrets": sorted(masks)})
