"""The README's "run it" command: `playbook dev` starts everything, runs a playbook, and Ctrl-C stops it all."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Output:
    """Collects a process's output on a thread, so waiting for a line never blocks on a pipe."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.text = ""
        threading.Thread(target=self._pump, args=(process,), daemon=True).start()

    def _pump(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.put(line)

    def until(self, marker: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while marker not in self.text:
            try:
                self.text += self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{marker!r} not seen; output so far:\n{self.text}") from None
        return self.text


def _gateway_get(url: str, token: str) -> dict[str, Any]:
    """GET through the dev gateway with its printed token, once the gateway process listens."""
    for _ in range(100):
        try:
            response = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        except httpx.ConnectError:
            time.sleep(0.2)
            continue
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer
    raise AssertionError(f"the gateway never answered at {url}")


SCRIPT_PLAYBOOK = """\
id: echo.demo.v1
name: Echo
version: 1
module: ops
smart_code: HERA.OPS.DEMO.PLAYBOOK.ECHO.v1
steps:
  - {id: echo, type: script, timeout: 30s, with: {command: [printf, "%s", hello]}}
outputs:
  said: "{{ steps.echo.output.stdout }}"
examples:
  - name: the script worker runs it
    expect: {outputs: {said: hello}}
"""


def test_playbook_dev_runs_the_demo_and_stops_cleanly(tmp_path: Path) -> None:
    port, ui_port, http_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PLAYBOOK_HTTP_ADDR"] = f"127.0.0.1:{http_port}"
    dev = subprocess.Popen(
        [str(BIN / "playbook"), "dev", "--state-dir", str(tmp_path / "state"), "--port", str(port),
         "--ui-port", str(ui_port)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    try:
        output = Output(dev)
        banner = output.until("Ctrl-C stops everything", timeout=120)
        assert f"Temporal Web UI:  http://localhost:{ui_port}" in banner
        demo = next(line for line in banner.splitlines() if " run customer.create.v1 " in line)
        data = demo.split("--data '")[1].split("'")[0]
        keys = tmp_path / "state" / "encryption.keys"
        assert f"export PLAYBOOK_ENCRYPTION_KEYS_FILE={keys}" in banner
        client_env = {**env, "TEMPORAL_ADDRESS": f"localhost:{port}", "PLAYBOOK_ENCRYPTION_KEYS_FILE": str(keys)}
        run = subprocess.run(
            [str(BIN / "playbook"), "run", "customer.create.v1", "--org", "org_demo", "--data", data, "--wait"],
            cwd=ROOT, capture_output=True, text=True, timeout=120, env=client_env,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout + run.stderr
        assert "waiting for set_credit_terms (role credit_controller)" in run.stdout
        execution_id = run.stdout.split()[1]
        status = subprocess.run(
            [str(BIN / "playbook"), "status", execution_id, "--json"],
            cwd=ROOT, capture_output=True, text=True, timeout=60, env=client_env,
        )  # fmt: skip
        assert json.loads(status.stdout)["waiting_for"][0]["step_id"] == "set_credit_terms"
        assert f"HTTP gateway:     http://127.0.0.1:{http_port}" in banner
        token = banner.split("export TOKEN=")[1].split()[0]
        answer = _gateway_get(f"http://127.0.0.1:{http_port}/api/v1/executions/{execution_id}", token)
        assert answer["waiting_for"][0]["step_id"] == "set_credit_terms"
        assert f"Task inbox:       http://127.0.0.1:{http_port}/" in banner
        signin = httpx.get(f"http://127.0.0.1:{http_port}/", follow_redirects=True, timeout=30)
        assert signin.status_code == 200 and 'action="/signin/dev"' in signin.text  # the dev sign-in is on
        assert "Script worker:    task queue playbooks-scripts" in banner
        script = tmp_path / "echo.demo.v1.yaml"
        script.write_text(SCRIPT_PLAYBOOK)
        tested = subprocess.run(
            [str(BIN / "playbook"), "test", str(script)],
            cwd=ROOT, capture_output=True, text=True, timeout=120, env=client_env,
        )  # fmt: skip
        assert tested.returncode == 0, tested.stdout + tested.stderr  # the dev script worker ran the program
    finally:
        dev.send_signal(signal.SIGINT)
        code = dev.wait(timeout=60)
    assert code == 0
    assert "shutting down" in output.until("shutting down", timeout=5)
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", "a server started by playbook dev is still running"
