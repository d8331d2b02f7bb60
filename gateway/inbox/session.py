"""The signed-in person: a JWT in an HttpOnly cookie, verified on every request exactly as the API's bearer.

Nothing is kept on the server: the cookie holds the token, and a form post proves it comes from our own page
with a CSRF token derived from that token (an HMAC keyed by it), which another site can neither read nor make.
Before sign-in there is no token yet: the sign-in form carries a random value that must equal its cookie's.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Annotated

import jwt
from fastapi import Depends, Form, Request, Response

from ..auth import Principal, Verifier
from ..problems import Problem
from ..ratelimit import WriteLimiter
from .settings import InboxSettings

COOKIE = "playbook_session"
SIGNIN_COOKIE = "playbook_signin"


class SignInNeeded(Problem):
    """No valid session: the page sends the person to sign in, and back here afterwards."""

    def __init__(self, detail: str) -> None:
        super().__init__(401, detail)


def inbox_settings(request: Request) -> InboxSettings:
    found: InboxSettings = request.app.state.inbox
    return found


def csrf_token(token: str) -> str:
    return hmac.new(token.encode(), b"playbook-inbox-csrf", hashlib.sha256).hexdigest()


async def viewer(request: Request) -> Principal:
    """The person whose cookie this is (a FastAPI dependency); SignInNeeded without a valid one."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise SignInNeeded("sign in to continue")
    verifier: Verifier = request.app.state.verifier
    try:
        caller = await verifier.verify(token)
    except Problem as exc:
        if exc.status != 401:
            raise
        raise SignInNeeded(f"your session has ended: {exc.detail}") from None
    request.state.viewer = caller
    request.state.csrf = csrf_token(token)
    return caller


async def poster(request: Request, caller: Annotated[Principal, Depends(viewer)],
                 csrf: Annotated[str, Form()] = "") -> Principal:  # fmt: skip
    """The person behind a form post: a valid session, our page's CSRF token, within the write rate limit."""
    if not hmac.compare_digest(csrf, request.state.csrf):
        raise Problem(403, "this form is stale or did not come from the inbox: reload the page and try again")
    limiter: WriteLimiter = request.app.state.limiter
    await limiter.hit(caller.sub)
    return caller


def open_session(response: Response, token: str, inbox: InboxSettings) -> None:
    """Keep the verified token in the session cookie for as long as the token lives."""
    expires = jwt.decode(token, options={"verify_signature": False}).get("exp")
    max_age = max(0, int(expires - time.time())) if isinstance(expires, int | float) else None
    response.set_cookie(COOKIE, token, max_age=max_age, httponly=True, samesite="lax", secure=inbox.secure_cookies,
                        path="/")  # fmt: skip


def close_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/")


def signin_nonce(request: Request) -> str:
    """The sign-in form's anti-forgery value: its cookie's, or a new one."""
    return request.cookies.get(SIGNIN_COOKIE) or secrets.token_urlsafe(24)


def keep_signin_nonce(response: Response, nonce: str, inbox: InboxSettings) -> None:
    response.set_cookie(SIGNIN_COOKIE, nonce, max_age=3600, httponly=True, samesite="strict",
                        secure=inbox.secure_cookies, path="/signin")  # fmt: skip


def check_signin_nonce(request: Request, given: str) -> None:
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    if not expected or not hmac.compare_digest(given, expected):
        raise Problem(403, "this sign-in form is stale or did not come from the inbox: reload it and try again")


def local_path(target: str | None) -> str:
    """Where to go after an action: a path on this site only (never `//elsewhere` or a URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
