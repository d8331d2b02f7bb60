"""`script`, `database` and `file` steps with real processes, a real Postgres and real files."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

import model
from starter.client import PlaybookClient
from tests.fixtures_temporal import running_worker

ROOT = Path(__file__).resolve().parent.parent


def playbook(*steps: dict[str, Any], outputs: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": "inline.ops.v1", "name": "Ops steps", "version": 1, "module": "ops",
        "smart_code": "HERA.OPS.TEST.STEPS.v1", "steps": list(steps), "outputs": outputs or {},
    }  # fmt: skip


async def run(client: PlaybookClient, definition: dict[str, Any]) -> dict[str, Any]:
    handle = await client.start("inline.ops.v1", organization=f"org_ops_{uuid.uuid4().hex[:6]}", playbook=definition)
    result: dict[str, Any] = await handle.result()
    return result


async def failure(client: PlaybookClient, definition: dict[str, Any]) -> str:
    with pytest.raises(WorkflowFailureError) as failed:
        await run(client, definition)
    return str(failed.value.cause)


# ---------------------------------------------------------------- script
async def test_a_script_gets_its_arguments_literally_and_an_allow_listed_environment(
    ops_workers: PlaybookClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKER_ONLY_SECRET", "s3cret")
    code = "import os, sys; print(sys.argv[1:]); print(os.getcwd()); print(sorted(os.environ))"
    step = {
        "id": "probe",
        "type": "script",
        "with": {
            "command": ["python3", "-c", code, "a; rm -rf / #", "$(whoami)", "{{ 'x' * 3 }}"],
            "env": {"REGION": "eu"},
        },
    }
    result = await run(ops_workers, playbook(step, outputs={"out": "{{ steps.probe.output }}"}))
    out = result["outputs"]["out"]
    argv, cwd, names = out["stdout"].splitlines()
    assert argv == "['a; rm -rf / #', '$(whoami)', 'xxx']"  # metacharacters passed as they are: no shell
    assert out["exit_code"] == 0 and out["stderr"] == ""
    assert "playbook-script-" in cwd and not Path(cwd).exists()  # a fresh directory, removed afterwards
    assert "WORKER_ONLY_SECRET" not in names
    assert {"PLAYBOOK_IDEMPOTENCY_KEY", "REGION", "HOME", "PATH"} <= set(eval(names))


async def test_an_unexpected_exit_code_fails_the_step_with_what_the_program_said(ops_workers: PlaybookClient) -> None:
    step = {"id": "deploy", "type": "script", "with": {"command": ["sh", "-c", "echo rollout blocked >&2; exit 3"]}}
    message = await failure(ops_workers, playbook(step))
    assert "step deploy: sh exited 3 (expected [0]): rollout blocked" in message
    ok = {**step, "with": {**step["with"], "expect_exit": [0, 3]}}
    assert (await run(ops_workers, playbook(ok, outputs={"code": "{{ steps.deploy.output.exit_code }}"})))[
        "outputs"
    ] == {"code": 3}


async def test_output_is_capped_at_64_kib(ops_workers: PlaybookClient) -> None:
    step = {"id": "loud", "type": "script", "with": {"command": ["python3", "-c", "print('x' * 200_000)"]}}
    result = await run(ops_workers, playbook(step, outputs={"out": "{{ steps.loud.output }}"}))
    assert result["outputs"]["out"]["truncated"] is True  # the whole output is over the history budget


async def test_a_timeout_kills_the_process_group_and_is_retried(ops_workers: PlaybookClient, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    step = {"id": "hang", "type": "script", "timeout": "2s", "retry": {"max_attempts": 2, "initial_interval": "100ms"},
            "with": {"command": ["sh", "-c", f"sleep 60 & echo $! >> {pids}; wait"]}}  # fmt: skip
    message = await failure(ops_workers, playbook(step))
    assert "timed out (step timeout 2s); its process group was killed" in message
    children = [int(p) for p in pids.read_text().split()]
    assert len(children) == 2  # tried twice
    assert not [pid for pid in children if alive(pid)]  # the background child died with its group


def alive(pid: int) -> bool:
    """Running (a killed child that nobody reaped yet is a zombie: dead)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


async def test_a_missing_program_is_named(ops_workers: PlaybookClient) -> None:
    step = {"id": "run", "type": "script", "with": {"command": ["no-such-tool-here", "--help"]}}
    assert "with.command[0]: cannot run 'no-such-tool-here'" in await failure(ops_workers, playbook(step))


async def test_business_workers_never_run_scripts(temporal: WorkflowEnvironment, store: Any, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    scripts = f"scripts-{uuid.uuid4()}"
    step = {"id": "touch", "type": "script", "with": {"command": ["touch", str(marker)]}}
    async with running_worker(temporal.client, store, script_task_queue=scripts) as client:
        handle = await client.start("inline.ops.v1", organization="org_ops_queue", playbook=playbook(step))
        while not [a for a in (await handle.describe()).raw_description.pending_activities
                   if a.activity_type.name == "script"]:  # fmt: skip
            await asyncio.sleep(0.05)
        scheduled = [e async for e in handle.fetch_history_events()
                     if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]  # fmt: skip
        queues = {e.activity_task_scheduled_event_attributes.activity_type.name:
                  e.activity_task_scheduled_event_attributes.task_queue.name for e in scheduled}  # fmt: skip
        assert queues["script"] == scripts
        await handle.terminate("test over")
    assert not marker.exists()


def test_a_script_step_is_checked_before_it_runs(tmp_path: Path) -> None:
    text = """\
        id: bad.script.v1
        name: Bad script
        version: 1
        module: ops
        smart_code: HERA.OPS.BAD.SCRIPT.v1
        steps:
          - id: deploy
            type: script
            with:
              command: kubectl rollout restart
              shell: true
          - id: query
            type: database
            with: {connection: App-DB, sql: select 1, mode: delete}
          - id: fetch
            type: file
            with: {operation: copy, url: memory://a}
        """
    (tmp_path / "bad.script.v1.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    found = {(p.step, p.field, p.line) for p in model.load_library([tmp_path]).problems}
    assert found == {
        ("deploy", "with.command", 10),
        ("deploy", "with.shell", 11),
        ("query", "with.connection", 14),
        ("query", "with.mode", 14),
        ("fetch", "with", 17),
    }


# ---------------------------------------------------------------- database
async def test_a_read_binds_its_parameters(ops_workers: PlaybookClient, app_db: str) -> None:
    step = {"id": "recent", "type": "database", "with": {
        "connection": "app", "params": ["checkout", "x' OR '1'='1"],
        "sql": "SELECT message, count(*) AS n FROM app_errors WHERE service = $1 OR message = $2 "
               "GROUP BY message ORDER BY n DESC"}}  # fmt: skip
    result = await run(ops_workers, playbook(step, outputs={"out": "{{ steps.recent.output }}"}))
    assert result["outputs"]["out"] == {
        "rows": [{"message": "payment provider timeout", "n": 2}, {"message": "pool exhausted", "n": 1}],
        "row_count": 2,
    }


async def test_a_write_in_read_mode_is_refused_and_write_mode_commits(ops_workers: PlaybookClient, app_db: str) -> None:
    sql = "DELETE FROM app_errors WHERE service = $1"
    step = {"id": "purge", "type": "database", "with": {"connection": "app", "sql": sql, "params": ["search"]}}
    message = await failure(ops_workers, playbook(step))
    assert "with.mode: the statement writes but the step is mode: read (set mode: write)" in message
    write = {**step, "with": {**step["with"], "mode": "write"}}
    result = await run(ops_workers, playbook(write, outputs={"n": "{{ steps.purge.output.row_count }}"}))
    assert result["outputs"] == {"n": 1}


async def test_sql_errors_name_the_position_and_connection_errors_the_connection(
    ops_workers: PlaybookClient, app_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad_sql = {
        "id": "q",
        "type": "database",
        "with": {"connection": "app", "sql": "SELECT id\nFROM app_errors\nWHER 1"},
    }
    assert "at line 3, column 6 (near '1')" in await failure(ops_workers, playbook(bad_sql))
    monkeypatch.setenv("PLAYBOOK_DB_BROKEN", "postgresql://[::1")
    broken = {"id": "q", "type": "database", "with": {"connection": "broken", "sql": "SELECT 1"}}
    assert "with.connection 'broken': invalid DSN" in await failure(ops_workers, playbook(broken))
    unknown = {"id": "q", "type": "database", "with": {"connection": "nowhere", "sql": "SELECT 1"}}
    assert "no connection 'nowhere' (set PLAYBOOK_DB_NOWHERE on the worker)" in await failure(
        ops_workers, playbook(unknown)
    )


async def test_a_slow_statement_times_out_with_its_own_message(ops_workers: PlaybookClient, app_db: str) -> None:
    step = {"id": "slow", "type": "database", "timeout": "2s", "retry": {"max_attempts": 1},
            "with": {"connection": "app", "sql": "SELECT pg_sleep(30)"}}  # fmt: skip
    assert "step slow: with.sql: timed out (step timeout 2s)" in await failure(ops_workers, playbook(step))


async def test_rows_are_capped_and_still_counted(ops_workers: PlaybookClient, app_db: str) -> None:
    step = {
        "id": "many",
        "type": "database",
        "with": {"connection": "app", "sql": "SELECT n FROM generate_series(1, 2500) n"},
    }
    outputs = {"count": "{{ steps.many.output.row_count }}", "kept": "{{ steps.many.output.rows | length }}"}
    result = await run(ops_workers, playbook(step, outputs=outputs))
    assert result["outputs"] == {"count": 2500, "kept": 1000}


# ---------------------------------------------------------------- file
async def test_files_are_written_read_copied_listed_and_deleted(ops_workers: PlaybookClient, files_root: Path) -> None:
    steps = [
        {"id": "write", "type": "file",
         "with": {"operation": "write", "url": "reports/today.txt", "content": "all green\n"}},
        {"id": "copy", "type": "file",
         "with": {"operation": "copy", "url": "reports/today.txt", "to": "memory://archive/today.txt"}},
        {"id": "read", "type": "file", "with": {"operation": "read", "url": "memory://archive/today.txt"}},
        {"id": "list", "type": "file", "with": {"operation": "list", "url": "reports"}},
        {"id": "delete", "type": "file", "with": {"operation": "delete", "url": "memory://archive/today.txt"}},
    ]  # fmt: skip
    outputs = {name: f"{{{{ steps.{name}.output }}}}" for name in ("write", "copy", "read", "list")}
    result = (await run(ops_workers, playbook(*steps, outputs=outputs)))["outputs"]
    sha = hashlib.sha256(b"all green\n").hexdigest()
    local = f"file://{files_root.resolve()}/reports/today.txt"
    assert result["write"] == {"uri": local, "size": 10, "sha256": sha}
    assert result["copy"] == {"uri": "memory:///archive/today.txt", "size": 10, "sha256": sha}
    assert result["read"] == {**result["copy"], "content": "all green\n"}
    assert result["list"]["files"] == [{"uri": local, "size": 10, "type": "file"}]
    assert (files_root / "reports" / "today.txt").read_text() == "all green\n"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("../outside.txt", "'..' is not allowed"),
        ("/etc/passwd", "is outside PLAYBOOK_FILES_ROOT"),
        ("link/passwd", "is outside PLAYBOOK_FILES_ROOT"),
        ("simplecache::file:///etc/passwd", "chained URLs (::) are not allowed"),
    ],
)
async def test_paths_escaping_the_root_are_refused(
    ops_workers: PlaybookClient, files_root: Path, url: str, reason: str
) -> None:
    (files_root / "link").symlink_to("/etc")
    step = {"id": "peek", "type": "file", "with": {"operation": "read", "url": url}}
    assert "step peek: with.url: " in (message := await failure(ops_workers, playbook(step)))
    assert reason in message


# ---------------------------------------------------------------- a script worker killed mid-run
ONCE = """
import os, pathlib, sys, time
folder = pathlib.Path(sys.argv[1])
marker = folder / os.environ["PLAYBOOK_IDEMPOTENCY_KEY"].replace("/", "_")
if not marker.exists():
    with open(folder / "effects", "a") as effects:
        effects.write("deployed\\n")
    marker.touch()
    parent = os.getppid()
    while os.getppid() == parent:  # hold the first attempt until its worker dies
        time.sleep(0.05)
print("done")
"""


def script_worker(temporal: WorkflowEnvironment, pg_dsn: str, queue: str) -> subprocess.Popen[str]:
    """`python worker.py --scripts` as operators run it; returns once it serves the queue."""
    env = {**os.environ, "TEMPORAL_ADDRESS": temporal.client.service_client.config.target_host,
           "DATABASE_URL": pg_dsn, "PLAYBOOK_SCRIPT_TASK_QUEUE": queue}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "worker.py", "--scripts"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "script worker on task queue" in line:
            return proc
    raise AssertionError(f"the script worker exited with {proc.wait()}")


async def test_a_script_whose_worker_is_killed_is_retried_and_does_its_effect_once(
    temporal: WorkflowEnvironment, store: Any, pg_dsn: str, tmp_path: Path
) -> None:
    queue = f"scripts-{uuid.uuid4()}"
    command = ["python3", "-c", ONCE, str(tmp_path)]
    step = {"id": "deploy", "type": "script", "timeout": "8s", "with": {"command": command}}
    first = await asyncio.to_thread(script_worker, temporal, pg_dsn, queue)
    second = None
    try:
        async with running_worker(temporal.client, store, script_task_queue=queue) as client:
            handle = await client.start("inline.ops.v1", organization="org_ops_kill", playbook=playbook(
                step, outputs={"said": "{{ steps.deploy.output.stdout }}"}))  # fmt: skip
            while not (tmp_path / "effects").exists():
                await asyncio.sleep(0.05)
            first.send_signal(signal.SIGKILL)
            first.wait()
            second = await asyncio.to_thread(script_worker, temporal, pg_dsn, queue)
            result = await handle.result()
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait()
    assert result["outputs"] == {"said": "done\n"}
    assert (tmp_path / "effects").read_text() == "deployed\n"  # retried, and the effect happened once


def test_aliases_are_shown_as_written(tmp_path: Path) -> None:
    text = """\
        id: alias.demo.v1
        name: Aliases
        version: 1
        module: ops
        smart_code: HERA.OPS.ALIAS.DEMO.v1
        steps:
          - id: ask
            type: manual
            with: {instructions: Go?, form: {go: {type: boolean, required: true}}}
          - id: branch
            type: conditional
            with:
              cases: [{when: steps.ask.data.go, steps: [{id: call, type: api_call, with: {url: "https://x.example"}}]}]
        """
    path = tmp_path / "alias.demo.v1.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", "from starter.cli import main; main()", "show", str(path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "ask [manual]" in done.stdout and "branch [conditional]" in done.stdout and "call [api_call]" in done.stdout
    step = model.load_playbook(path).step("ask")
    assert (step.type, step.kind) == ("manual", "human")
