"""The outbound http policy: internal addresses refused by name of the rule, allowed hosts reached, bodies capped."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from temporalio.exceptions import ApplicationError

from activities import egress

BIG = 20 * 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path in ("/who", "/rel"):  # the Host the client asked for; /rel redirects there relatively
            body = self.headers["Host"].encode()
            self.send_response(200 if self.path == "/who" else 302)
            if self.path == "/rel":
                self.send_header("Location", "/who")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path == "/hop":  # a redirect to the cloud metadata address
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(BIG))
        self.end_headers()
        chunk = b"x" * 65536
        try:
            for _ in range(BIG // len(chunk)):
                self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading at its cap

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://127.0.0.1/", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.0.0.1/", "private"),
        ("http://[::1]/", "loopback"),
        ("http://localhost/", "loopback"),  # a name resolving to loopback
        ("http://0.0.0.0/", "unspecified"),
    ],
)
async def test_internal_addresses_are_refused_naming_the_rule(url: str, rule: str) -> None:
    async with httpx.AsyncClient() as client:
        with pytest.raises(ApplicationError) as refused:
            await egress.request(client, "GET", url)
    assert f"refused by the {rule}-address rule" in refused.value.message
    assert refused.value.non_retryable


async def test_an_allowed_host_is_reached_and_a_20_mib_body_is_cut_at_the_cap(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAYBOOK_HTTP_ALLOW", "127.0.0.1")
    async with httpx.AsyncClient() as client:
        response, body = await egress.request(client, "GET", f"{server}/big")
    assert response.status_code == 200
    assert len(body) == egress.DEFAULT_MAX_BYTES
    monkeypatch.setenv("PLAYBOOK_HTTP_MAX_BYTES", "1000")
    async with httpx.AsyncClient() as client:
        _, body = await egress.request(client, "GET", f"{server}/big")
    assert len(body) == 1000


async def test_every_redirect_is_checked_again(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYBOOK_HTTP_ALLOW", "127.0.0.1")
    async with httpx.AsyncClient() as client:
        with pytest.raises(ApplicationError, match="link-local-address rule"):
            await egress.request(client, "GET", f"{server}/hop")


async def test_the_connection_goes_to_the_checked_address_not_a_second_dns_answer(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: a name that passed the check is never resolved again on connect. `service.example`
    resolves only in the policy's own lookup (to the test server, judged public here), so reaching the
    server at all means the request went to the checked address, with the name kept in Host."""
    port = httpx.URL(server).port
    lookups: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    monkeypatch.setattr(egress, "resolve", resolve)
    monkeypatch.setattr(egress, "refusal", lambda address: None)
    async with httpx.AsyncClient() as client:
        response, body = await egress.request(client, "GET", f"http://service.example:{port}/rel")
    assert (response.status_code, body) == (200, f"service.example:{port}".encode())
    assert lookups == ["service.example", "service.example"]  # each hop checked once, then pinned
