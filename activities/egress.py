"""The outbound policy of `http` and webhook steps: no internal addresses (checked on every hop), capped responses."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from collections.abc import Mapping

import httpx

from .errors import fail

ALLOW_ENV = "PLAYBOOK_HTTP_ALLOW"
MAX_BYTES_ENV = "PLAYBOOK_HTTP_MAX_BYTES"
DEFAULT_MAX_BYTES = 1024 * 1024
MAX_REDIRECTS = 10
_RULES = (("loopback", "is_loopback"), ("link-local", "is_link_local"), ("unspecified", "is_unspecified"),
          ("private", "is_private"))  # fmt: skip
"""Checked in this order, so 127.0.0.1 is refused as loopback rather than as private."""


def allowed_hosts(env: Mapping[str, str] = os.environ) -> set[str]:
    return {h.strip().lower().strip("[]") for h in env.get(ALLOW_ENV, "").split(",") if h.strip()}


def max_bytes(env: Mapping[str, str] = os.environ) -> int:
    value = env.get(MAX_BYTES_ENV, "").strip()
    if not value:
        return DEFAULT_MAX_BYTES
    if not value.isdigit() or int(value) <= 0:
        raise fail("NotConfigured", f"{MAX_BYTES_ENV}: {value!r} is not a positive number of bytes")
    return int(value)


def refusal(address: str) -> str | None:
    """The rule an address breaks, if any (an IPv4 address mapped into IPv6 is judged as IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return next((rule for rule, test in _RULES if getattr(ip, test)), None)


async def check_url(url: httpx.URL) -> None:
    """Refuse a URL whose host is, or resolves to, an internal address — unless PLAYBOOK_HTTP_ALLOW lists it."""
    host = url.host.lower()
    if url.scheme not in ("http", "https"):
        raise fail("EgressRefused", f"{url}: refused by the scheme rule (only http and https)")
    if host in allowed_hosts():
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, url.port or 443, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise RuntimeError(f"{url}: cannot resolve {host}: {exc}") from None  # DNS may recover: retried
    for info in infos:
        address = str(info[4][0])
        if rule := refusal(address):
            raise fail(
                "EgressRefused",
                f"{url}: refused by the {rule}-address rule ({host} is {address}); "
                f"list the host in {ALLOW_ENV} to allow it",
                rule=rule,
            )


async def request(client: httpx.AsyncClient, method: str, url: str, **kwargs: object) -> tuple[httpx.Response, bytes]:
    """Send with redirects followed by hand, each hop checked; the body read up to the cap."""
    cap = max_bytes()
    next_request: httpx.Request | None = client.build_request(method, url, **kwargs)  # type: ignore[arg-type]
    for _ in range(MAX_REDIRECTS + 1):
        assert next_request is not None
        await check_url(next_request.url)
        response = await client.send(next_request, stream=True)
        try:
            if response.is_redirect and response.next_request is not None:
                next_request = response.next_request
                continue
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) >= cap:
                    del body[cap:]
                    break
            return response, bytes(body)
        finally:
            await response.aclose()
    raise fail("EgressRefused", f"{url}: refused by the redirect rule (more than {MAX_REDIRECTS} redirects)")
