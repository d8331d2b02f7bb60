"""A step-type plugin: a package installed with pip adds `echo`; `validate`, `schema` and a worker all see it."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from activities.plugins import load_step_types
from activities.steps import STEP_HANDLERS
from model import steps
from tests.fixtures_temporal import running_worker

PACKAGE = Path(__file__).resolve().parent / "plugin_pkg"
ROOT = PACKAGE.parent.parent
PLAYBOOK = """\
id: demo.echo.v1
name: Echo
version: 1
module: ops
smart_code: HERA.OPS.DEMO.ECHO.v1
steps:
  - id: say
    type: echo
    with: {words: "{{ 'all ' ~ 'clear' }}", shout: true}
outputs:
  said: "{{ steps.say.output.said }}"
"""


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "-q", *args], check=True, capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def echo_plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    source = tmp_path_factory.mktemp("plugin") / "plugin_pkg"
    shutil.copytree(PACKAGE, source)  # the build writes beside the sources: keep tests/ clean
    pip("install", str(source))
    importlib.invalidate_caches()
    yield "echo"
    pip("uninstall", "-y", "playbook-echo-step")
    STEP_HANDLERS.pop("echo", None)
    steps._REGISTRY.pop("echo", None)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from starter.cli import main; main()", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_validate_checks_a_plugin_step_like_a_built_in_one(echo_plugin: str, tmp_path: Path) -> None:
    good = tmp_path / "good" / "demo.echo.v1.yaml"
    good.parent.mkdir()
    good.write_text(PLAYBOOK, encoding="utf-8")
    assert cli("validate", str(good)).returncode == 0
    bad = tmp_path / "bad" / "demo.echo.v1.yaml"
    bad.parent.mkdir()
    bad.write_text(PLAYBOOK.replace("words:", "wrds:"), encoding="utf-8")
    done = cli("validate", str(bad))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"{bad}:9: step say: with.wrds:" in done.stdout
    assert f"{bad}:9: step say: with.words: is required" in done.stdout


def test_schema_documents_the_plugin_step(echo_plugin: str) -> None:
    schema = json.loads(cli("schema").stdout)
    step = schema["$defs"]["EchoStep"]
    assert step["properties"]["type"] == {"const": "echo", "title": "Type", "type": "string"}
    assert set(schema["$defs"]["EchoWith"]["properties"]) == {"words", "shout"}


async def test_a_worker_runs_the_plugin_step(echo_plugin: str, temporal: WorkflowEnvironment, store: Any) -> None:
    assert "echo" in load_step_types()
    definition = yaml.safe_load(textwrap.dedent(PLAYBOOK))
    async with running_worker(temporal.client, store) as client:
        org = f"org_echo_{uuid.uuid4().hex[:6]}"
        handle = await client.start("demo.echo.v1", organization=org, playbook=definition)
        result = await handle.result()
    assert result["outputs"] == {"said": "ALL CLEAR"}
