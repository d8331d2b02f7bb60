"""Real-browser check of the Temporal Web UI: an execution waiting for a person is found by search attribute.

Starts `playbook dev` (free ports, a throw-away state directory), runs customer.create.v1 up to its first
human step, then loads the UI's workflow list filtered by
``PlaybookId = 'customer.create.v1' AND WaitingFor = 'set_credit_terms'`` in headless Chromium and checks
the execution is listed there (and not under ``WaitingFor = 'manager_approval'``), and that its history shows
the input decoded through the codec server (payloads are encrypted). Optionally saves screenshots of the
list, the decoded history and the execution's current details.

Chromium is driven by Playwright (Debian's binary through ``executable_path``: nothing is downloaded), which
waits until the rendered page shows the answer, with a real deadline.

    .venv/bin/python scripts/ui_check.py --screenshots docs/    # refreshes docs/web-ui*.png for the README

Needs Debian's ``chromium`` (``apt-get install -y chromium``); exits 0 when the check passes.
"""

from __future__ import annotations

import argparse
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
from urllib.parse import quote, urlsplit

from playwright.sync_api import Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PLAYBOOK = "customer.create.v1"
DATA = '{"customer_name": "Acme Corp", "email": "ops@acme.example", "tax_id": "DE123456789"}'


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


# The page's rendered text with that of its same-origin frames (the UI renders Markdown in frames): the
# first of `markers` it holds, else null, so Playwright waits until the UI has rendered after its API calls.
_FIRST_MARKER = """markers => {
  const text = [document, ...Array.from(document.querySelectorAll('iframe'), f => f.contentDocument)]
    .map(d => d && d.body ? d.body.innerText : '').join('\\n');
  return markers.find(m => text.includes(m)) || null;
}"""


def wait_for(page: Page, *markers: str, timeout: float = 30) -> str:
    """Wait until one of `markers` shows on the page (or in its frames); that one."""
    try:
        found = page.wait_for_function(_FIRST_MARKER, arg=list(markers), timeout=timeout * 1000)
    except PlaywrightTimeoutError:
        raise AssertionError(f"none of {markers} shown within {timeout:.0f} s at {page.url}") from None
    return str(found.json_value())


_TEXT = """() => [document, ...Array.from(document.querySelectorAll('iframe'), f => f.contentDocument)]
  .map(d => d && d.body ? d.body.innerText : '').join('\\n')"""
# what of the current details a reader cannot see: code (or a table) wider than its box, in any frame
_CUT = """() => [document, ...Array.from(document.querySelectorAll('iframe'), f => f.contentDocument)]
  .flatMap(d => d ? Array.from(d.querySelectorAll('pre, code, table')) : [])
  .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.innerText.slice(0, 80))"""


def check_readable(page: Page) -> None:
    """The current details read cleanly at this width: step, type and status apart, no code cut at the edge."""
    text = page.evaluate(_TEXT)
    if "approval · pending" not in text or "approvalpending" in text:
        raise AssertionError(f"the step list runs its columns together:\n{text}")
    if cut := page.evaluate(_CUT):
        raise AssertionError(f"cut at the right edge of the current details: {cut}")


def workflows_url(ui_port: int, query: str) -> str:
    """The Web UI's workflow list filtered by a visibility query (its `query` URL parameter)."""
    return f"http://localhost:{ui_port}/namespaces/default/workflows?query={quote(query)}"


def check_web_ui(binary: str, screenshots: Path | None = None) -> str:
    """Run the check (see the module docstring); return the execution id it found."""
    with tempfile.TemporaryDirectory(prefix="ui-check-") as tmp:
        work = Path(tmp)
        dev = DevServer(work / "state")
        try:
            dev.until("Ctrl-C stops everything", timeout=120)
            out = dev.playbook("run", PLAYBOOK, "--org", "org_demo", "--data", DATA, "--requested-by", "svc-crm",
                               "--wait")  # fmt: skip
            execution_id = out.split()[1]
            if "waiting for set_credit_terms" not in out:
                raise AssertionError(f"the execution is not waiting for set_credit_terms:\n{out}")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=binary)
                try:
                    page = browser.new_page(viewport={"width": 1400, "height": 1000})
                    _check(page, dev, execution_id, screenshots)
                finally:
                    browser.close()
            return execution_id
        finally:
            dev.stop()


def _check(page: Page, dev: DevServer, execution_id: str, screenshots: Path | None) -> None:
    # Visibility is eventually consistent: the list may come up empty at first, so reload until listed.
    waiting = workflows_url(dev.ui_port, f"PlaybookId = '{PLAYBOOK}' AND WaitingFor = 'set_credit_terms'")
    for _ in range(10):
        page.goto(waiting)
        if wait_for(page, execution_id, "No Workflows Found") == execution_id:
            break
    else:
        raise AssertionError(f"{execution_id} is not listed at {waiting}")
    if screenshots is not None:
        screenshots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshots / "web-ui.png"))
    other = workflows_url(dev.ui_port, f"PlaybookId = '{PLAYBOOK}' AND WaitingFor = 'manager_approval'")
    page.goto(other)
    if wait_for(page, execution_id, "No Workflows Found") == execution_id:
        raise AssertionError(f"{execution_id} is listed at {other}, where nothing waits")
    # The execution's page opens on its latest run; its history shows the start input, which is ciphertext in
    # Temporal and readable here only because the UI decodes it through the codec server of `playbook dev`.
    page.goto(f"http://localhost:{dev.ui_port}/namespaces/default/workflows/{quote(execution_id, safe='')}")
    wait_for(page, "Event History")
    run_page = urlsplit(page.url).path.rsplit("/", 1)[0]
    page.goto(f"http://localhost:{dev.ui_port}{run_page}/history")
    if wait_for(page, "ops@acme.example", "binary/encrypted") != "ops@acme.example":
        raise AssertionError("the Web UI shows the input encrypted: it did not decode through the codec server")
    if screenshots is not None:
        page.screenshot(path=str(screenshots / "web-ui-decoded.png"))
    # The User Metadata tab shows the current details.
    page.goto(f"http://localhost:{dev.ui_port}{run_page}/user-metadata")
    wait_for(page, "complete_step")
    check_readable(page)
    if screenshots is not None:
        page.screenshot(path=str(screenshots / "web-ui-execution.png"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--screenshots", type=Path, metavar="DIR", help="save the web-ui*.png screenshots")
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
