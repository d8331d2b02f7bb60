"""The OIDC authorization-code flow with PKCE: to the provider and back with an access token.

The access token is what the inbox keeps and what every request is verified with — the same token, and the
same checks (JWKS, issuer, audience), as an API caller's bearer; so the provider must put `org`/`orgs` and
`roles` into it (docs/api.md names the mappers). The state, nonce and PKCE verifier ride in a short-lived
cookie of their own, so any copy of the gateway can finish a sign-in another copy started.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any
from urllib.parse import urlencode

import httpx

from ..problems import Problem
from .settings import InboxSettings

FLOW_COOKIE = "playbook_oidc"


class Provider:
    """One OIDC provider: its endpoints (discovered once), the authorization URL, the code exchange."""

    def __init__(self, settings: InboxSettings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        assert settings.oidc_issuer and settings.oidc_client_id
        self.settings, self.transport = settings, transport
        self._endpoints: dict[str, Any] | None = None

    async def _discover(self) -> dict[str, Any]:
        if self._endpoints is None:
            url = f"{str(self.settings.oidc_issuer).rstrip('/')}/.well-known/openid-configuration"
            async with httpx.AsyncClient(transport=self.transport, timeout=10) as http:
                try:
                    answer = await http.get(url)
                    answer.raise_for_status()
                    self._endpoints = answer.json()
                except (httpx.HTTPError, ValueError) as exc:
                    raise Problem(503, f"the sign-in provider cannot be reached ({url}): {exc}") from None
        return self._endpoints

    async def start(self, redirect_uri: str, after: str) -> tuple[str, str]:
        """The provider's authorization URL, and the flow cookie's value that proves the answer is ours."""
        verifier = secrets.token_urlsafe(48)
        flow = {"state": secrets.token_urlsafe(24), "verifier": verifier, "next": after}
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = {"response_type": "code", "client_id": self.settings.oidc_client_id, "redirect_uri": redirect_uri,
                 "scope": self.settings.oidc_scopes, "state": flow["state"], "code_challenge": challenge,
                 "code_challenge_method": "S256"}  # fmt: skip
        endpoint = (await self._discover())["authorization_endpoint"]
        return f"{endpoint}?{urlencode(query)}", json.dumps(flow)

    async def finish(self, *, code: str, state: str, flow_cookie: str | None, redirect_uri: str) -> tuple[str, str]:
        """The access token for the code the provider sent back, and where the person was going."""
        try:
            flow = json.loads(flow_cookie or "")
        except json.JSONDecodeError:
            flow = None
        if not isinstance(flow, dict) or not secrets.compare_digest(str(flow.get("state")), state):
            raise Problem(400, "this sign-in answer does not belong to a sign-in started here: start again")
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "client_id": self.settings.oidc_client_id, "code_verifier": flow["verifier"]}  # fmt: skip
        secret = self.settings.oidc_client_secret
        auth = httpx.BasicAuth(str(self.settings.oidc_client_id), secret) if secret else None
        endpoint = (await self._discover())["token_endpoint"]
        async with httpx.AsyncClient(transport=self.transport, timeout=10, auth=auth) as http:
            try:
                answer = await http.post(endpoint, data=form)
            except httpx.HTTPError as exc:
                raise Problem(503, f"the sign-in provider cannot be reached: {exc}") from None
        try:
            token = answer.json().get("access_token") if answer.is_success else None
        except ValueError:
            token = None
        if not isinstance(token, str):
            raise Problem(401, f"the sign-in provider refused the code ({answer.status_code}): {answer.text[:200]}")
        return token, str(flow.get("next") or "/")
