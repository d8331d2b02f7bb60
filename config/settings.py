"""Settings from the environment (SPEC §5), read once by the CLI, the worker, the gateway and `playbook dev`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, kw_only=True)
class Settings:
    temporal_address: str = "localhost:7233"
    """Temporal frontend, host:port (TEMPORAL_ADDRESS)."""
    temporal_namespace: str = "default"
    """Temporal namespace (TEMPORAL_NAMESPACE)."""
    task_queue: str = "playbooks"
    """Task queue of PlaybookWorkflow and its activities (PLAYBOOK_TASK_QUEUE)."""
    script_task_queue: str = "playbooks-scripts"
    """Task queue of `script` steps, served only by workers started with --scripts (PLAYBOOK_SCRIPT_TASK_QUEUE)."""
    database_url: str | None = None
    """Postgres DSN (DATABASE_URL); unset: `playbook dev` starts an embedded Postgres."""
    playbooks_dir: Path = Path("playbooks")
    """The playbook library synced to the catalog (PLAYBOOKS_DIR)."""
    auto_register_orgs: bool = False
    """Register unknown organization codes on first use (PLAYBOOK_AUTO_REGISTER_ORGS; on in dev)."""
    workflow_cache: int = 1000
    """Executions a worker keeps in memory between tasks (PLAYBOOK_WORKFLOW_CACHE): more means fewer replays
    and more memory (see docs/operations.md, Performance and sizing)."""
    activity_concurrency: int = 100
    """Step activities a worker runs at once (PLAYBOOK_ACTIVITY_CONCURRENCY)."""
    db_pool: int = 10
    """Postgres connections per worker (PLAYBOOK_DB_POOL); keep it near the activity concurrency that writes."""

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        values: dict[str, object] = {
            "temporal_address": env.get("TEMPORAL_ADDRESS", cls.temporal_address),
            "temporal_namespace": env.get("TEMPORAL_NAMESPACE", cls.temporal_namespace),
            "task_queue": env.get("PLAYBOOK_TASK_QUEUE", cls.task_queue),
            "script_task_queue": env.get("PLAYBOOK_SCRIPT_TASK_QUEUE", cls.script_task_queue),
            "database_url": env.get("DATABASE_URL") or None,
            "playbooks_dir": Path(env.get("PLAYBOOKS_DIR", str(cls.playbooks_dir))),
            "auto_register_orgs": env.get("PLAYBOOK_AUTO_REGISTER_ORGS", "").lower() in ("1", "true", "yes"),
            "workflow_cache": _count(env, "PLAYBOOK_WORKFLOW_CACHE", cls.workflow_cache),
            "activity_concurrency": _count(env, "PLAYBOOK_ACTIVITY_CONCURRENCY", cls.activity_concurrency),
            "db_pool": _count(env, "PLAYBOOK_DB_POOL", cls.db_pool),
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def _count(env: os._Environ[str], name: str, default: int) -> int:
    text = env.get(name)
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise SystemExit(f"{name}: {text!r} is not a whole number") from None
    if value < 1:
        raise SystemExit(f"{name}: must be at least 1 (got {value})")
    return value
