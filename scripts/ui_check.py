"""Real-browser check of the Temporal Web UI: an execution waiting for a person is found by search attribute.

Starts `playbook dev` (free ports, a throw-away state directory), runs customer.create.v1 up to its first
human step, then loads the UI's workflow list filtered by
``PlaybookId = 'customer.create.v1' AND WaitingFor = 'set_credit_terms'`` in headless Chromium and checks
the execution is listed there (and not under ``WaitingFor = 'manager_approval'``). Optionally saves
screenshots of the list and of the execution's page.

Chromium is driven through the DevTools protocol on a pipe (``--remote-debugging-pipe``: no extra package),
reading the rendered page until the answer shows, with a real deadline. (``--dump-dom`` after a virtual-time
budget works for the list, but never returns on an execution's page, whose history is long-polled.)

    .venv/bin/python scripts/ui_check.py --screenshots docs/    # refreshes docs/web-ui*.png for the README

Needs Debian's ``chromium`` (``apt-get install -y chromium``); exits 0 when the check passes.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PLAYBOOK = "customer.create.v1"
DATA = '{"customer_name": "Acme Corp", "email": "ops@acme.example", "tax_id": "DE123456789"}'
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
]  # fmt: skip
# fds the browser reads commands from and writes replies to, under --remote-debugging-pipe
_CDP_IN, _CDP_OUT = 3, 4


def find_chromium() -> str | None:
    """The Chromium (or Chrome) binary on PATH, if any."""
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DevServer:
    """`playbook dev` in the background, its output collected on a thread so reading never blocks."""

    def __init__(self, state_dir: Path) -> None:
        self.port, self.ui_port, self.state_dir = free_port(), free_port(), state_dir
        self.env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        self.process = subprocess.Popen(
            [str(BIN / "playbook"), "dev", "--state-dir", str(state_dir), "--port", str(self.port),
             "--ui-port", str(self.ui_port)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env,
        )  # fmt: skip
        self.text = ""
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)

    def until(self, marker: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while marker not in self.text:
            try:
                self.text += self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"playbook dev: {marker!r} not seen; output:\n{self.text}") from None

    def playbook(self, *args: str) -> str:
        """Run a `playbook` command against this server; its output."""
        done = subprocess.run(
            [str(BIN / "playbook"), *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
            # as the dev banner says: clients in another terminal use the state folder's encryption key
            env={**self.env, "TEMPORAL_ADDRESS": f"localhost:{self.port}",
                 "PLAYBOOK_ENCRYPTION_KEYS_FILE": str(self.state_dir / "encryption.keys")},
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"playbook {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Browser:
    """Headless Chromium and one page, driven by DevTools protocol commands (NUL-separated JSON on a pipe)."""

    def __init__(self, binary: str, profile: Path, *, width: int = 1400, height: int = 1000) -> None:
        commands_r, self._commands = os.pipe()
        self._replies, replies_w = os.pipe()

        def wire() -> None:  # in the child, before exec: the pipe ends become fds 3 and 4
            ends = os.dup(commands_r), os.dup(replies_w)  # dups first: an end may already be fd 3 or 4
            os.dup2(ends[0], _CDP_IN)
            os.dup2(ends[1], _CDP_OUT)

        self.process = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            preexec_fn=wire, pass_fds=(_CDP_IN, _CDP_OUT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(commands_r)
        os.close(replies_w)
        self._pending = b""
        self._last_id = 0
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False, page=True)  # fmt: skip

    def send(self, method: str, *, page: bool = False, **params: Any) -> dict[str, Any]:
        """Run one command (on the page when `page`) and return its result; events in between are skipped."""
        self._last_id += 1
        message: dict[str, Any] = {"id": self._last_id, "method": method, "params": params}
        if page:
            message["sessionId"] = self._session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._pending:
                chunk = os.read(self._replies, 1 << 16)
                if not chunk:
                    raise RuntimeError(f"chromium exited (code {self.process.poll()})")
                self._pending += chunk
            raw, self._pending = self._pending.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._last_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply["result"]
                return result

    def open(self, url: str) -> None:
        self.send("Page.navigate", url=url, page=True)

    def evaluate(self, expression: str) -> str:
        """A JavaScript expression's value in the page, as text."""
        found = self.send("Runtime.evaluate", expression=expression, returnByValue=True, page=True)
        return str(found["result"].get("value", ""))

    def text(self) -> str:
        """The page's rendered text, with that of its same-origin frames (the UI renders Markdown in frames)."""
        return self.evaluate(
            "[document, ...Array.from(document.querySelectorAll('iframe'), f => f.contentDocument)]"
            ".map(d => d && d.body ? d.body.innerText : '').join('\\n')"
        )

    def wait_for(self, *markers: str, timeout: float = 30) -> str:
        """Poll the rendered text until one of `markers` shows (the UI renders after its API calls); that one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text()
            for marker in markers:
                if marker in text:
                    return marker
            time.sleep(0.25)
        raise AssertionError(f"none of {markers} shown within {timeout:.0f} s; the page says:\n{self.text()}")

    def screenshot(self, path: Path) -> None:
        shot = self.send("Page.captureScreenshot", format="png", page=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, OSError):
            self.send("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._commands)
        os.close(self._replies)


def check_readable(browser: Browser) -> None:
    """The current details read cleanly at this width: step, type and status apart, no code cut at the edge."""
    text = browser.text()
    if "approval · pending" not in text or "approvalpending" in text:
        raise AssertionError(f"the step list runs its columns together:\n{text}")
    cut = browser.evaluate(
        "[document, ...Array.from(document.querySelectorAll('iframe'), f => f.contentDocument)]"
        ".flatMap(d => d ? Array.from(d.querySelectorAll('pre, code, table')) : [])"
        ".filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.innerText.slice(0, 80)).join('\\n')"
    )
    if cut:
        raise AssertionError(f"cut at the right edge of the current details:\n{cut}")


def workflows_url(ui_port: int, query: str) -> str:
    """The Web UI's workflow list filtered by a visibility query (its `query` URL parameter)."""
    return f"http://localhost:{ui_port}/namespaces/default/workflows?query={quote(query)}"


def check_web_ui(binary: str, screenshots: Path | None = None) -> str:
    """Run the check (see the module docstring); return the execution id it found."""
    with tempfile.TemporaryDirectory(prefix="ui-check-") as tmp:
        work = Path(tmp)
        dev = DevServer(work / "state")
        browser: Browser | None = None
        try:
            dev.until("Ctrl-C stops everything", timeout=120)
            out = dev.playbook("run", PLAYBOOK, "--org", "org_demo", "--data", DATA, "--requested-by", "svc-crm",
                               "--wait")  # fmt: skip
            execution_id = out.split()[1]
            if "waiting for set_credit_terms" not in out:
                raise AssertionError(f"the execution is not waiting for set_credit_terms:\n{out}")
            browser = Browser(binary, work / "profile")
            # Visibility is eventually consistent: the list may come up empty at first, so reload until listed.
            waiting = workflows_url(dev.ui_port, f"PlaybookId = '{PLAYBOOK}' AND WaitingFor = 'set_credit_terms'")
            for _ in range(10):
                browser.open(waiting)
                if browser.wait_for(execution_id, "No Workflows Found") == execution_id:
                    break
            else:
                raise AssertionError(f"{execution_id} is not listed at {waiting}")
            if screenshots is not None:
                screenshots.mkdir(parents=True, exist_ok=True)
                browser.screenshot(screenshots / "web-ui.png")
            other = workflows_url(dev.ui_port, f"PlaybookId = '{PLAYBOOK}' AND WaitingFor = 'manager_approval'")
            browser.open(other)
            if browser.wait_for(execution_id, "No Workflows Found") == execution_id:
                raise AssertionError(f"{execution_id} is listed at {other}, where nothing waits")
            if screenshots is not None:
                # The execution's page opens on its latest run; its User Metadata tab shows the current details.
                browser.open(f"http://localhost:{dev.ui_port}/namespaces/default/workflows/"
                             f"{quote(execution_id, safe='')}")  # fmt: skip
                browser.wait_for("Event History")
                run_page = browser.evaluate("location.pathname").rsplit("/", 1)[0]
                browser.open(f"http://localhost:{dev.ui_port}{run_page}/user-metadata")
                browser.wait_for("complete_step")
                check_readable(browser)
                browser.screenshot(screenshots / "web-ui-execution.png")
            return execution_id
        finally:
            if browser is not None:
                browser.close()
            dev.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--screenshots", type=Path, metavar="DIR", help="save web-ui.png and web-ui-execution.png")
    args = parser.parse_args()
    binary = find_chromium()
    if binary is None:
        print("ui_check: chromium is not installed (apt-get install -y chromium)", file=sys.stderr)
        return 2
    execution_id = check_web_ui(binary, args.screenshots)
    print(f"ok: {execution_id} is listed under its search-attribute filter in the Web UI")
    return 0


if __name__ == "__main__":
    sys.exit(main())
