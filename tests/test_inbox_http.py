"""The inbox over plain HTTP: sessions verified on every request, CSRF, safe redirects, the dev sign-in only
where it is on, and the OIDC authorization-code flow (with PKCE) against a small provider served here."""

from __future__ import annotations

import base64
import hashlib
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Form, Request
from fastapi.responses import RedirectResponse

from config import Settings
from gateway.app import create_app
from gateway.inbox.session import COOKIE, SIGNIN_COOKIE
from gateway.inbox.settings import InboxSettings
from gateway.settings import GatewaySettings
from starter.tokens import mint
from tests.fixtures_temporal import running_worker
from tests.inbox_browser import serve

SECRET = "inbox-http-test-secret-of-32-bytes!!"
Client = Callable[..., Any]


@asynccontextmanager
async def inbox(temporal: Any, catalog: Any, gateway: GatewaySettings,
                settings: InboxSettings) -> AsyncIterator[httpx.AsyncClient]:  # fmt: skip
    async with running_worker(temporal.client, catalog) as client:
        app = create_app(Settings.from_env(), gateway, client=client, store=catalog, inbox_settings=settings)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://inbox.test") as http:
            yield http


@pytest.fixture
async def dev(temporal: Any, catalog: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with inbox(temporal, catalog, GatewaySettings(jwt_secret=SECRET), InboxSettings(dev_signin=True)) as http:
        yield http


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found, page
    return found.group(1)


async def dev_signin(http: httpx.AsyncClient, **fields: str) -> httpx.Response:
    form = await http.get("/signin")
    nonce = re.search(r'name="nonce" value="([^"]+)"', form.text)
    assert nonce and form.cookies.get(SIGNIN_COOKIE)
    return await http.post("/signin/dev", data={"nonce": nonce.group(1), **fields})


async def test_every_page_needs_a_verified_session(dev: httpx.AsyncClient) -> None:
    for path in ("/", "/playbooks", "/playbooks/customer.create.v1", "/executions/org_x/a.v1/1"):
        answer = await dev.get(path)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/signin?next=%2F"), path
    forged = mint("another-secret-of-at-least-32-bytes!!", sub="eve", orgs=["org_demo"], roles=[], ttl_seconds=60)
    dev.cookies.set(COOKIE, forged)
    answer = await dev.get("/")
    assert answer.status_code == 303 and answer.headers["location"] == "/signin?next=%2F"
    dev.cookies.set(COOKIE, mint(SECRET, sub="eve", orgs=["org_demo"], roles=[], ttl_seconds=-60))
    assert (await dev.get("/playbooks")).status_code == 303


async def test_dev_signin_sets_a_strict_cookie_and_posts_need_the_csrf_token(dev: httpx.AsyncClient) -> None:
    org = f"org_{uuid.uuid4().hex[:8]}"
    refused = await dev.post("/signin/dev", data={"nonce": "made-up", "user": "carol", "organization": org})
    assert refused.status_code == 403 and "sign-in form is stale" in refused.text
    bad = await dev_signin(dev, user="carol smith", organization=org, more_roles="credit_controller")
    assert bad.status_code == 422 and 'id="e-user"' in bad.text and 'value="credit_controller"' in bad.text
    answer = await dev_signin(dev, user="carol", organization=org, roles="credit_controller", next="//evil.example")
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = answer.headers["set-cookie"]
    assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    claims = jwt.decode(answer.cookies[COOKIE], SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["org"], claims["roles"]) == ("carol", org, ["credit_controller"])
    form = await dev.get("/playbooks/customer.create.v1")
    assert form.status_code == 200 and "default-src 'self'" in form.headers["content-security-policy"]
    data = {"v.customer_name": "Acme", "v.email": "a@acme.example"}
    for csrf in ("", "0" * 64):
        answer = await dev.post("/playbooks/customer.create.v1", data={**data, "csrf": csrf})
        assert answer.status_code == 403 and "did not come from the inbox" in answer.text
        assert answer.headers["content-type"].startswith("text/html")
    started = await dev.post("/playbooks/customer.create.v1", data={**data, "csrf": csrf_of(form.text)})
    assert started.status_code == 303
    assert started.headers["location"].startswith(f"/executions/{org}/customer.create.v1/")
    again = await dev.post("/playbooks/customer.create.v1", data={**data, "csrf": csrf_of(form.text),
                                                                  "key": parse_key(form.text)})  # fmt: skip
    twice = await dev.post("/playbooks/customer.create.v1", data={**data, "csrf": csrf_of(form.text),
                                                                  "key": parse_key(form.text)})  # fmt: skip
    assert again.headers["location"] == twice.headers["location"]  # a resubmitted form starts once
    other = await dev.get(again.headers["location"].replace(org, "org_someone_else"))
    assert other.status_code == 404 and "no execution" in other.text
    signed_out = await dev.post("/signout", data={"csrf": csrf_of(form.text)})
    assert signed_out.status_code == 303 and f'{COOKIE}=""' in signed_out.headers["set-cookie"]


def parse_key(page: str) -> str:
    found = re.search(r'name="key" value="([^"]+)"', page)
    assert found
    return found.group(1)


async def test_no_dev_signin_outside_dev(temporal: Any, catalog: Any) -> None:
    async with inbox(temporal, catalog, GatewaySettings(jwt_secret=SECRET), InboxSettings()) as http:
        page = await http.get("/signin")
        assert page.status_code == 200 and "/signin/dev" not in page.text and "No sign-in is configured" in page.text
        answer = await http.post("/signin/dev", data={"user": "mallory", "organization": "org_demo"})
        assert answer.status_code == 404 and COOKIE not in answer.headers.get("set-cookie", "")


class Provider:
    """An OIDC provider small enough to read: discovery, authorize (signs the user in at once), token, JWKS."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.codes: dict[str, tuple[str, str]] = {}
        self.url = ""
        app = FastAPI()

        @app.get("/.well-known/openid-configuration")
        async def discovery() -> dict[str, str]:
            return {"issuer": self.url, "authorization_endpoint": f"{self.url}/authorize",
                    "token_endpoint": f"{self.url}/token", "jwks_uri": f"{self.url}/jwks"}  # fmt: skip

        @app.get("/authorize")
        async def authorize(request: Request) -> RedirectResponse:
            q = request.query_params
            assert q["response_type"] == "code" and q["client_id"] == "inbox" and q["code_challenge_method"] == "S256"
            code = uuid.uuid4().hex
            self.codes[code] = (q["code_challenge"], q["redirect_uri"])
            return RedirectResponse(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}")

        @app.post("/token")
        async def token(code: str = Form(), code_verifier: str = Form(), redirect_uri: str = Form()) -> Any:
            challenge, redirect = self.codes.pop(code, ("", ""))
            digest = base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest()).rstrip(b"=").decode()
            if digest != challenge or redirect != redirect_uri:
                return {"error": "invalid_grant"}
            claims = {"sub": "olivia", "org": "org_oidc", "roles": ["credit_controller"], "iss": self.url,
                      "aud": "playbooks", "exp": int(time.time()) + 600}  # fmt: skip
            return {"access_token": jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "k1"}),
                    "token_type": "Bearer"}  # fmt: skip

        @app.get("/jwks")
        async def jwks() -> dict[str, Any]:
            public = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
            return {"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}

        self.app = app


async def test_oidc_authorization_code_flow(temporal: Any, catalog: Any) -> None:
    provider = Provider()
    async with serve(provider.app) as url:
        provider.url = url
        gateway = GatewaySettings(jwt_jwks_url=f"{url}/jwks", jwt_issuer=url, jwt_audience="playbooks")
        settings = InboxSettings(oidc_issuer=url, oidc_client_id="inbox", public_url="http://inbox.test")
        async with inbox(temporal, catalog, gateway, settings) as http, httpx.AsyncClient() as browser:
            assert "/signin/oidc" in (await http.get("/signin")).text
            go = await http.get("/signin/oidc", params={"next": "/playbooks"})
            assert go.status_code == 303 and go.headers["location"].startswith(f"{url}/authorize?")
            back = await browser.get(go.headers["location"])
            callback = urlsplit(back.headers["location"])
            assert callback.path == "/signin/callback"
            query = {k: v[0] for k, v in parse_qs(callback.query).items()}
            forged = await http.get("/signin/callback", params={**query, "state": "not-ours"})
            assert forged.status_code == 400 and COOKIE not in forged.headers.get("set-cookie", "")
            done = await http.get("/signin/callback", params=query)
            assert done.status_code == 303 and done.headers["location"] == "/playbooks", done.text
            assert jwt.decode(done.cookies[COOKIE], options={"verify_signature": False})["sub"] == "olivia"
            page = await http.get("/playbooks")
            assert page.status_code == 200 and "olivia · org_oidc" in page.text
            replayed = await http.get("/signin/callback", params=query)
            assert replayed.status_code == 400  # the flow's cookie is spent: the answer is taken once
