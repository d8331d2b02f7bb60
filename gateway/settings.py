"""The gateway's settings from the environment (SPEC §6)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class GatewaySettings:
    addr: str = "127.0.0.1:8088"
    """host:port to listen on (PLAYBOOK_HTTP_ADDR)."""
    jwt_jwks_url: str | None = None
    """An OIDC provider's JWKS (PLAYBOOK_JWT_JWKS_URL): RS256/ES256 tokens."""
    jwt_secret: str | None = None
    """The dev secret (PLAYBOOK_JWT_SECRET): HS256 tokens, for development and tests."""
    jwt_issuer: str | None = None
    """Required `iss` when set (PLAYBOOK_JWT_ISSUER)."""
    jwt_audience: str | None = None
    """Required `aud` when set (PLAYBOOK_JWT_AUDIENCE)."""
    rate_limit: str = "60/minute"
    """Writes allowed per token subject (PLAYBOOK_RATE_LIMIT, `limits` notation: 60/minute, 10/second)."""
    rate_limit_storage: str = "memory://"
    """Where the counters live (PLAYBOOK_RATE_LIMIT_STORAGE): `redis://…` shares them across copies."""
    tasks_max_age: float = 10.0
    """Seconds an inbox snapshot of an organization may be served (PLAYBOOK_TASKS_MAX_AGE): the most `GET
    /api/v1/tasks` lags behind what another gateway or the workflows changed; usually it is one second plus
    one visibility scan (gateway.snapshots)."""
    admin_role: str = "platform_admin"
    """The role that manages organizations and may override someone else's claim."""

    @property
    def host(self) -> str:
        return self.addr.rpartition(":")[0] or "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self.addr.rpartition(":")[2])

    @classmethod
    def from_env(cls, **overrides: object) -> GatewaySettings:
        env = os.environ
        values: dict[str, object] = {
            "addr": env.get("PLAYBOOK_HTTP_ADDR", cls.addr),
            "jwt_jwks_url": env.get("PLAYBOOK_JWT_JWKS_URL") or None,
            "jwt_secret": env.get("PLAYBOOK_JWT_SECRET") or None,
            "jwt_issuer": env.get("PLAYBOOK_JWT_ISSUER") or None,
            "jwt_audience": env.get("PLAYBOOK_JWT_AUDIENCE") or None,
            "rate_limit": env.get("PLAYBOOK_RATE_LIMIT", cls.rate_limit),
            "rate_limit_storage": env.get("PLAYBOOK_RATE_LIMIT_STORAGE", cls.rate_limit_storage),
            "tasks_max_age": _seconds(env.get("PLAYBOOK_TASKS_MAX_AGE"), cls.tasks_max_age),
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def _seconds(text: str | None, default: float) -> float:
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"PLAYBOOK_TASKS_MAX_AGE: {text!r} is not a number of seconds") from None
    if not value > 0:
        raise ValueError(f"PLAYBOOK_TASKS_MAX_AGE: must be more than 0 (got {text})")
    return value
