"""Signing in and out: the OIDC provider when configured, the dev sign-in in `playbook dev`."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from starter.tokens import mint

from ..auth import Verifier
from ..problems import Problem
from . import session
from .oidc import FLOW_COOKIE, Provider
from .render import HtmlRoute, page
from .session import inbox_settings, local_path
from .settings import InboxSettings

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)
DEV_TTL = 8 * 3600
DEV_ROLES = ("credit_controller", "finance_manager", "front_desk", "salon_manager", "production_planner",
             "plant_manager", "platform_admin")  # fmt: skip
"""Roles the dev sign-in offers as checkboxes (more can be typed): those the library's demo steps ask for."""
_NAME = re.compile(r"^[A-Za-z0-9_.:@\-]{1,100}$")


def _redirect_uri(request: Request, inbox: InboxSettings) -> str:
    return f"{inbox.public_url or str(request.base_url).rstrip('/')}/signin/callback"


def _provider(request: Request) -> Provider:
    found: Provider | None = getattr(request.app.state, "oidc", None)
    if found is None:
        raise Problem(404, "sign-in with an OIDC provider is not configured (PLAYBOOK_OIDC_ISSUER)")
    return found


@router.get("/signin")
async def signin_page(request: Request, inbox: Annotated[InboxSettings, Depends(inbox_settings)],
                      next: str = "/") -> Response:  # fmt: skip
    nonce = session.signin_nonce(request) if inbox.dev_signin else ""
    response = page(request, "signin.html", next=local_path(next), roles=DEV_ROLES, values={}, errors={},
                    nonce=nonce)  # fmt: skip
    if nonce:
        session.keep_signin_nonce(response, nonce, inbox)
    return response


@router.post("/signin/dev")
async def dev_signin(
    request: Request, inbox: Annotated[InboxSettings, Depends(inbox_settings)],
    nonce: Annotated[str, Form()] = "", user: Annotated[str, Form()] = "",
    organization: Annotated[str, Form()] = "", roles: Annotated[list[str] | None, Form()] = None,
    more_roles: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/",
) -> Response:  # fmt: skip
    """Mint a dev token (the dev secret) for whoever the person says they are: only where dev sign-in is on."""
    gateway = request.app.state.verifier.settings
    if not inbox.dev_signin or not gateway.jwt_secret:
        raise Problem(404, "the dev sign-in is off (it is on in `playbook dev`)")
    session.check_signin_nonce(request, nonce)
    chosen = [*(roles or []), *re.split(r"[\s,]+", more_roles.strip())]
    chosen = list(dict.fromkeys(r for r in chosen if r))
    errors = {}
    if not _NAME.fullmatch(user):
        errors["user"] = "a user name: letters, digits and _ . : @ - (at most 100)"
    if not _NAME.fullmatch(organization):
        errors["organization"] = "an organization code: letters, digits and _ . : @ - (at most 100)"
    if bad := [r for r in chosen if not _NAME.fullmatch(r)]:
        errors["more_roles"] = f"not a role name: {', '.join(bad)}"
    if errors:
        values = {"user": user, "organization": organization, "roles": chosen, "more_roles": more_roles}
        return page(request, "signin.html", status=422, next=local_path(next), roles=DEV_ROLES, values=values,
                    errors=errors, nonce=nonce)  # fmt: skip
    token = mint(gateway.jwt_secret, sub=user, orgs=[organization], roles=chosen, ttl_seconds=DEV_TTL,
                 issuer=gateway.jwt_issuer, audience=gateway.jwt_audience)  # fmt: skip
    verifier: Verifier = request.app.state.verifier
    await verifier.verify(token)  # what every request will check: a misconfiguration shows here, not later
    response = RedirectResponse(local_path(next), status_code=303)
    session.open_session(response, token, inbox)
    return response


@router.get("/signin/oidc")
async def oidc_start(request: Request, inbox: Annotated[InboxSettings, Depends(inbox_settings)],
                     next: str = "/") -> Response:  # fmt: skip
    url, flow = await _provider(request).start(_redirect_uri(request, inbox), local_path(next))
    response = RedirectResponse(url, status_code=303)
    # Lax: the provider's redirect back is a top-level navigation from its site, which must carry this cookie
    response.set_cookie(FLOW_COOKIE, flow, max_age=600, httponly=True, samesite="lax", secure=inbox.secure_cookies,
                        path="/signin")  # fmt: skip
    return response


@router.get("/signin/callback")
async def oidc_callback(request: Request, inbox: Annotated[InboxSettings, Depends(inbox_settings)],
                        code: str = "", state: str = "", error: str = "",
                        error_description: str = "") -> Response:  # fmt: skip
    if error:
        raise Problem(401, f"the sign-in provider said {error}: {error_description or 'no reason given'}")
    token, after = await _provider(request).finish(code=code, state=state, flow_cookie=request.cookies.get(FLOW_COOKIE),
                                                   redirect_uri=_redirect_uri(request, inbox))  # fmt: skip
    verifier: Verifier = request.app.state.verifier
    await verifier.verify(token)
    response = RedirectResponse(local_path(after), status_code=303)
    response.delete_cookie(FLOW_COOKIE, path="/signin")
    session.open_session(response, token, inbox)
    return response


@router.post("/signout", dependencies=[Depends(session.poster)])
async def signout() -> Response:
    response = RedirectResponse("/signin", status_code=303)
    session.close_session(response)
    return response
