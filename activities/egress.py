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


async def resolve(host: str, port: int) -> list[str]:
    """The addresses a name resolves to (DNS failures may recover, so they are retried, not refused)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise RuntimeError(f"cannot resolve {host}: {exc}") from None
    return [str(info[4][0]) for info in infos]


async def check_url(url: httpx.URL) -> str | None:
    """The checked address to connect to, refusing internal ones; None for a host PLAYBOOK_HTTP_ALLOW lists."""
    host = url.host.lower()
    if url.scheme not in ("http", "https"):
        raise fail("EgressRefused", f"{url}: refused by the scheme rule (only http and https)")
    if host in allowed_hosts():
        return None
    try:
        addresses = await resolve(host, url.port or 443)
    except RuntimeError as exc:
        raise RuntimeError(f"{url}: {exc}") from None
    for address in addresses:
        if rule := refusal(address):
            raise fail(
                "EgressRefused",
                f"{url}: refused by the {rule}-address rule ({host} is {address}); "
                f"list the host in {ALLOW_ENV} to allow it",
                rule=rule,
            )
    return addresses[0]


def _pinned(request: httpx.Request, address: str) -> httpx.Request:
    """The request sent to the checked address, so a second DNS answer (rebinding) is never used.

    The Host header stays the name's, and TLS sends and verifies the name (httpcore's `sni_hostname`).
    """
    return httpx.Request(
        request.method, request.url.copy_with(host=address), headers=request.headers, stream=request.stream,
        extensions={**request.extensions, "sni_hostname": request.url.host},
    )  # fmt: skip


async def request(client: httpx.AsyncClient, method: str, url: str, **kwargs: object) -> tuple[httpx.Response, bytes]:
    """Send with redirects followed by hand, each hop checked and pinned; the body read up to the cap."""
    cap = max_bytes()
    next_request: httpx.Request | None = client.build_request(method, url, **kwargs)  # type: ignore[arg-type]
    for _ in range(MAX_REDIRECTS + 1):
        assert next_request is not None
        wanted = next_request
        address = await check_url(wanted.url)
        response = await client.send(_pinned(wanted, address) if address else wanted, stream=True)
        try:
            if response.is_redirect and response.next_request is not None:
                next_request = response.next_request
                if address and next_request.url.host == address:  # a relative Location: back to the name
                    next_request.url = next_request.url.copy_with(host=wanted.url.host)
                    next_request.extensions.pop("sni_hostname", None)
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
