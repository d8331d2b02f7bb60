"""Who is calling: a bearer JWT verified against an OIDC provider's JWKS or the dev secret (SPEC §6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from .problems import Problem
from .settings import GatewaySettings

ASYMMETRIC = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


@dataclass(frozen=True)
class Principal:
    """The verified caller: the person or service, its organizations and roles."""

    sub: str
    orgs: tuple[str, ...]
    roles: frozenset[str]

    def org(self, requested: str | None) -> str:
        """The organization a request acts in: the one asked for (if the token holds it), else the token's first."""
        if requested is None:
            return self.orgs[0]
        if requested not in self.orgs:
            raise Problem(403, f"the token does not grant organization {requested!r}")
        return requested

    def orgs_for(self, requested: str | None) -> tuple[str, ...]:
        return self.orgs if requested is None else (self.org(requested),)

    def require_role(self, role: str) -> None:
        if role not in self.roles:
            raise Problem(403, f"this needs role {role!r}, which the token does not hold")


class Verifier:
    """Checks signature, expiry, issuer and audience; reads `sub`, `org`/`orgs` and `roles`."""

    def __init__(self, settings: GatewaySettings) -> None:
        if not (settings.jwt_jwks_url or settings.jwt_secret):
            raise ValueError("set PLAYBOOK_JWT_JWKS_URL (OIDC) or PLAYBOOK_JWT_SECRET (dev) for the gateway")
        self.settings = settings
        self.jwks = jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True) if settings.jwt_jwks_url else None

    async def verify(self, token: str) -> Principal:
        settings = self.settings
        try:
            if self.jwks is not None and jwt.get_unverified_header(token).get("alg") != "HS256":
                key: Any = (await run_in_threadpool(self.jwks.get_signing_key_from_jwt, token)).key
                algorithms = ASYMMETRIC
            elif settings.jwt_secret:
                key, algorithms = settings.jwt_secret, ["HS256"]
            else:
                raise jwt.InvalidAlgorithmError("HS256 tokens are not accepted (no dev secret configured)")
            claims = jwt.decode(
                token, key, algorithms=algorithms, issuer=settings.jwt_issuer, audience=settings.jwt_audience,
                options={"require": ["sub", "exp"], "verify_aud": settings.jwt_audience is not None},
            )  # fmt: skip
        except jwt.PyJWKClientError as exc:
            raise Problem(401, f"the token's signing key cannot be fetched: {exc}") from None
        except jwt.PyJWTError as exc:
            raise Problem(401, f"invalid token: {exc}", headers={"WWW-Authenticate": "Bearer"}) from None
        return _principal(claims)


def _principal(claims: dict[str, Any]) -> Principal:
    sub, org, orgs, roles = claims.get("sub"), claims.get("org"), claims.get("orgs", []), claims.get("roles", [])
    if not isinstance(sub, str) or not sub:
        raise Problem(401, "invalid token: `sub` must be a non-empty string")
    if not (isinstance(orgs, list) and all(isinstance(o, str) for o in orgs)) or not isinstance(org, str | None):
        raise Problem(401, "invalid token: `org` must be a string and `orgs` a list of strings")
    if not (isinstance(roles, list) and all(isinstance(r, str) for r in roles)):
        raise Problem(401, "invalid token: `roles` must be a list of strings")
    every = tuple(dict.fromkeys([*([org] if org else []), *orgs]))
    if not every:
        raise Problem(403, "the token names no organization (claim `org` or `orgs`)")
    return Principal(sub=sub, orgs=every, roles=frozenset(roles))


_bearer = HTTPBearer(auto_error=False, description="A JWT from your OIDC provider, or `playbook token` in dev.")


async def principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The caller of this request (a FastAPI dependency); 401 without a valid bearer token."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Problem(401, "missing bearer token (Authorization: Bearer <JWT>)", headers={"WWW-Authenticate": "Bearer"})
    verifier: Verifier = request.app.state.verifier
    return await verifier.verify(credentials.credentials)
