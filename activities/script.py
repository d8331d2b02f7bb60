"""The `script` step: run a program with an argument list (never a shell) on the script workers' own queue.

Only workers started with ``--scripts`` register this activity, and the workflow schedules it on their
task queue, so business workers never run programs. Each run gets a fresh temporary directory, an
environment built from an allow-list, the step's timeout (the whole process group is killed) and
capped output. A program is at-least-once: ``PLAYBOOK_IDEMPOTENCY_KEY`` lets it make its effect once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import tempfile
from datetime import timedelta
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from temporalio import activity

from model.execution import StepRequest
from model.masking import mask
from store import Store

from .errors import fail
from .outside import already_done, idempotency_key
from .steps import step_audit, step_handler, step_key

MAX_OUTPUT = 64 * 1024
"""Bytes of stdout and of stderr kept (each); the rest is read and dropped so the program never blocks."""
DEFAULT_ENV = ("PATH", "LANG", "LC_ALL", "TZ")
"""Worker variables a program sees, unless PLAYBOOK_SCRIPT_ENV lists others (comma-separated)."""
HEARTBEAT = timedelta(seconds=5)
"""How often a running program reports that its worker is alive (a killed worker's step is retried soon)."""


def _argument(value: Any) -> Any:
    """A rendered number or boolean becomes its JSON text (a count in an argument is what a user means)."""
    return json.dumps(value) if isinstance(value, bool | int | float) else value


class ScriptWith(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command: list[Annotated[str, BeforeValidator(_argument)]] = Field(
        min_length=1,
        description="The program and its arguments, each a value or a template (numbers and booleans are passed "
        "as written in JSON); never run by a shell.",
    )
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment variables for the program.")
    expect_exit: list[int] = Field(default=[0], min_length=1, description="Exit codes that count as success.")


def _environment(spec: ScriptWith, req: StepRequest, workdir: str) -> dict[str, str]:
    allowed = os.environ.get("PLAYBOOK_SCRIPT_ENV")
    names = [n.strip() for n in allowed.split(",") if n.strip()] if allowed else DEFAULT_ENV
    env = {name: os.environ[name] for name in names if name in os.environ}
    if path := os.environ.get("PLAYBOOK_SCRIPT_PATH"):  # the programs script workers offer, if not the worker's PATH
        env["PATH"] = path
    return {
        **env,
        "HOME": workdir,
        "TMPDIR": workdir,
        **spec.env,
        "PLAYBOOK_IDEMPOTENCY_KEY": idempotency_key(req),
        "PLAYBOOK_EXECUTION_ID": req.execution_id,
        "PLAYBOOK_STEP_ID": req.step_id,
    }


async def _capture(stream: asyncio.StreamReader) -> tuple[str, bool]:
    """The first MAX_OUTPUT bytes of a stream (drained to its end), and whether more was dropped."""
    kept = bytearray()
    dropped = False
    while chunk := await stream.read(65536):
        room = MAX_OUTPUT - len(kept)
        kept += chunk[:room]
        dropped = dropped or len(chunk) > room
    return kept.decode("utf-8", errors="replace"), dropped


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


async def _heartbeat() -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(HEARTBEAT.total_seconds())


async def run_program(spec: ScriptWith, req: StepRequest, timeout: float) -> dict[str, Any]:
    """Run the program to its end or its timeout; its own process group, so children die with it."""
    # stop a little before Temporal's own timeout, so the step's error says what happened
    limit = timeout - min(1.0, timeout / 10)
    with tempfile.TemporaryDirectory(prefix="playbook-script-") as workdir:
        try:
            proc = await asyncio.create_subprocess_exec(
                *spec.command,
                cwd=workdir,
                env=_environment(spec, req, workdir),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except (FileNotFoundError, PermissionError) as exc:
            message = f"with.command[0]: cannot run {spec.command[0]!r}: {exc.strerror}"
            raise fail("ScriptNotRunnable", message) from None
        assert proc.stdout is not None and proc.stderr is not None
        beating = asyncio.create_task(_heartbeat())
        try:
            async with asyncio.timeout(limit):
                (stdout, out_cut), (stderr, err_cut) = await asyncio.gather(
                    _capture(proc.stdout), _capture(proc.stderr)
                )
                exit_code = await proc.wait()
        except TimeoutError:
            _kill_group(proc)
            await proc.wait()
            raise RuntimeError(
                f"{spec.command[0]}: timed out (step timeout {timeout:g}s); its process group was killed"
            ) from None
        finally:
            beating.cancel()
            if proc.returncode is None:  # cancelled (worker shutting down, step cancelled): take the program down too
                _kill_group(proc)
    truncated = [name for name, cut in (("stdout", out_cut), ("stderr", err_cut)) if cut]
    return {
        "exit_code": exit_code,
        "stdout": stdout,
        "stderr": stderr,
        **({"truncated": truncated} if truncated else {}),
    }


@step_handler("script", ScriptWith)
async def script(store: Store, req: StepRequest) -> dict[str, Any]:
    if (done := await already_done(store, req)) is not None:
        return done
    spec = ScriptWith.model_validate(req.with_)
    info = activity.info()
    deadline = (info.start_to_close_timeout or timedelta(minutes=5)).total_seconds()
    output = await run_program(spec, req, deadline)
    if output["exit_code"] not in spec.expect_exit:
        last = (output["stderr"] or output["stdout"]).strip().splitlines()[-1:] or [""]
        message = f"{spec.command[0]} exited {output['exit_code']} (expected {spec.expect_exit}): {last[0][:300]}"
        raise fail("ScriptFailed", mask(message, req.secrets), exit_code=output["exit_code"])
    await store.record_step(UUID(req.organization_uuid), step_key(req), step_audit(req, output=output))
    return output
