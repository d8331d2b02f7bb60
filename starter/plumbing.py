"""CLI plumbing shared by every command module: the user's-mistake error, async commands, argument helpers."""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import shutil
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.service import RPCError

from config import Settings
from config.codec import KeysInvalid


class UserError(Exception):
    """A mistake the user can fix; printed as one line."""


Add = Callable[..., argparse.ArgumentParser]


def me() -> str:
    """This command as the user can run it again, for hints they paste: `playbook` when that name on PATH is
    this very program, else the path they typed (`.venv/bin/playbook`), or `python -m gateway`."""
    invoked = sys.argv[0]
    name = Path(invoked).name
    if name == "__main__.py":
        return f"{shlex.quote(sys.executable)} -m gateway"
    if name != "playbook":
        return "playbook"  # called from Python (`python -c`, a test runner): the console script's name
    found = shutil.which(name)
    if found and Path(found).resolve() == Path(invoked).resolve():
        return name
    return shlex.quote(invoked)


def json_arg(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"--data: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(value, dict):
        raise UserError('--data: must be a JSON object, e.g. \'{"name": "Acme"}\'')
    return value


def run_async(fn: Callable[..., Any]) -> Callable[[argparse.Namespace, Settings], int]:
    """Run an async command; Temporal's connection errors become one line."""

    def command(args: argparse.Namespace, settings: Settings) -> int:
        try:
            code: int = asyncio.run(fn(args, settings))
        except RPCError as exc:
            raise UserError(f"Temporal: {exc.message}") from None
        except KeysInvalid as exc:
            raise UserError(str(exc)) from None
        except RuntimeError as exc:
            if "connect" in str(exc).lower():
                raise UserError(
                    f"cannot reach Temporal at {settings.temporal_address} (is `playbook dev` running?)"
                ) from None
            raise
        return code

    return command


def format_duration(seconds: float | None) -> str:
    """A short duration for tables: ``0.05s``, ``12.5s``, ``3m07s``, ``2h05m``, ``3d04h``; ``-`` for none."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    for unit, size, sub, sub_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60)):
        if whole >= size:
            return f"{whole // size}{unit}{(whole % size) // sub_size:02d}{sub}"
    return f"{whole // 60}m{whole % 60:02d}s"


def format_time(moment: datetime) -> str:
    """A moment for tables, in UTC to the second."""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
