"""docs/api.md: its curl examples run, in order, against a live gateway, and every one succeeds."""

from __future__ import annotations

import asyncio
import os
import re
import socket
from pathlib import Path
from typing import Any

import uvicorn

from config import Settings
from gateway.app import create_app
from gateway.settings import GatewaySettings
from starter.tokens import mint
from tests.fixtures_temporal import running_worker

DOC = Path(__file__).resolve().parent.parent / "docs" / "api.md"
SECRET = "api-docs-secret-of-at-least-32-bytes!"


def examples() -> str:
    return "\n".join(re.findall(r"```bash\n(.*?)```", DOC.read_text(), flags=re.S))


async def test_the_curl_examples_run(temporal: Any, catalog: Any) -> None:
    script = examples()
    assert script.count("curl") >= 15
    token = mint(SECRET, sub="carol", orgs=["org_demo"], roles=["credit_controller", "finance_manager"],
                 ttl_seconds=600)  # fmt: skip
    admin = mint(SECRET, sub="root", orgs=["org_demo"], roles=["platform_admin"], ttl_seconds=600)
    async with running_worker(temporal.client, catalog) as client:
        app = create_app(Settings.from_env(), GatewaySettings(jwt_secret=SECRET), client=client, store=catalog)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        try:
            shell = await asyncio.create_subprocess_exec(
                "bash", "-euo", "pipefail", "-c", script, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, "BASE": f"http://127.0.0.1:{port}", "TOKEN": token, "ADMIN": admin},
            )  # fmt: skip
            output, _ = await asyncio.wait_for(shell.communicate(), timeout=120)
        finally:
            server.should_exit = True
            await serving
    text = output.decode()
    assert shell.returncode == 0, text
    assert "started org_demo/customer.create.v1/" in text and "one execution: " in text
    assert "carol" in text and "event: status" in text and "org_acme" in text
