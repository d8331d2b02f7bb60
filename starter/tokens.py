"""`playbook token`: dev tokens signed with the dev secret (HS256), for the gateway in development and tests."""

from __future__ import annotations

import argparse
import os
import secrets
import time
from pathlib import Path

import jwt

from config import Settings
from model.durations import parse_duration

from .plumbing import Add, UserError

SECRET_FILE = "jwt-secret"


def dev_secret(state_dir: Path) -> str:
    """PLAYBOOK_JWT_SECRET, else the secret `playbook dev` keeps in its state folder (made on first use)."""
    if from_env := os.environ.get("PLAYBOOK_JWT_SECRET"):
        return from_env
    path = state_dir / SECRET_FILE
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def mint(secret: str, *, sub: str, orgs: list[str], roles: list[str], ttl_seconds: float,
         issuer: str | None = None, audience: str | None = None) -> str:  # fmt: skip
    now = int(time.time())
    claims: dict[str, object] = {"sub": sub, "roles": roles, "iat": now, "exp": now + int(ttl_seconds)}
    claims.update({"org": orgs[0]} if len(orgs) == 1 else {"orgs": orgs})
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm="HS256")


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    try:
        ttl = parse_duration(args.ttl).total_seconds()
    except ValueError as exc:
        raise UserError(f"--ttl: {exc}") from None
    state_dir = Path(args.state_dir)
    if not os.environ.get("PLAYBOOK_JWT_SECRET") and not (state_dir / SECRET_FILE).exists():
        raise UserError(f"no dev secret: set PLAYBOOK_JWT_SECRET, or run `playbook dev` (it keeps one in {state_dir})")
    roles = [r for part in args.roles for r in part.split(",") if r]
    issuer, audience = os.environ.get("PLAYBOOK_JWT_ISSUER"), os.environ.get("PLAYBOOK_JWT_AUDIENCE")
    print(mint(dev_secret(state_dir), sub=args.sub, orgs=args.org, roles=roles, ttl_seconds=ttl, issuer=issuer,
               audience=audience))  # fmt: skip
    return 0


def register(add: Add) -> None:
    p = add("token", cmd_token, "mint a dev token for the HTTP gateway (signed with the dev secret)")
    p.add_argument("--sub", required=True, help="who the token speaks for")
    p.add_argument("--org", required=True, action="append", help="an organization code (repeat for several)")
    p.add_argument("--roles", action="append", default=[], help="roles, comma-separated (repeatable)")
    p.add_argument("--ttl", default="8h", help="lifetime, e.g. 30m, 8h, 2d (default 8h)")
    p.add_argument("--state-dir", default=".local", help="the `playbook dev` state folder holding the dev secret")
