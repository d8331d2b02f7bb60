"""The inbox's settings from the environment: how people sign in, and where the Temporal Web UI is."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class InboxSettings:
    oidc_issuer: str | None = None
    """The OIDC provider (PLAYBOOK_OIDC_ISSUER); its `/.well-known/openid-configuration` names the endpoints."""
    oidc_client_id: str | None = None
    """This inbox's client at the provider (PLAYBOOK_OIDC_CLIENT_ID)."""
    oidc_client_secret: str | None = None
    """A confidential client's secret (PLAYBOOK_OIDC_CLIENT_SECRET); public clients rely on PKCE alone."""
    oidc_scopes: str = "openid profile email"
    """Scopes asked for (PLAYBOOK_OIDC_SCOPES); the access token must carry `org`/`orgs` and `roles`."""
    public_url: str | None = None
    """The inbox's address as browsers see it (PLAYBOOK_INBOX_URL), for the OIDC redirect; default: the request's."""
    dev_signin: bool = False
    """Offer the dev sign-in (PLAYBOOK_DEV_SIGNIN, on in `playbook dev`): anyone may pick any user and roles."""
    temporal_ui_url: str | None = None
    """The Temporal Web UI (PLAYBOOK_TEMPORAL_UI_URL), linked from each execution's page."""
    temporal_namespace: str = "default"
    secure_cookies: bool = False
    """Mark the session cookie Secure (PLAYBOOK_INBOX_SECURE_COOKIES); always behind https in production."""

    @property
    def oidc(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)

    @classmethod
    def from_env(cls, **overrides: object) -> InboxSettings:
        env = os.environ

        def flag(name: str) -> bool:
            return env.get(name, "").lower() in ("1", "true", "yes")

        values: dict[str, object] = {
            "oidc_issuer": env.get("PLAYBOOK_OIDC_ISSUER") or None,
            "oidc_client_id": env.get("PLAYBOOK_OIDC_CLIENT_ID") or None,
            "oidc_client_secret": env.get("PLAYBOOK_OIDC_CLIENT_SECRET") or None,
            "oidc_scopes": env.get("PLAYBOOK_OIDC_SCOPES", cls.oidc_scopes),
            "public_url": (env.get("PLAYBOOK_INBOX_URL") or "").rstrip("/") or None,
            "dev_signin": flag("PLAYBOOK_DEV_SIGNIN"),
            "temporal_ui_url": (env.get("PLAYBOOK_TEMPORAL_UI_URL") or "").rstrip("/") or None,
            "temporal_namespace": env.get("TEMPORAL_NAMESPACE", cls.temporal_namespace),
            "secure_cookies": flag("PLAYBOOK_INBOX_SECURE_COOKIES"),
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
