"""Pinned addresses against a real HTTPS server on loopback, through the real HTTP clients.

The server listens on 127.0.0.2 only, with a certificate for ``localhost``. ``localhost``
resolves (``/etc/hosts``) to 127.0.0.1 and ::1, where nothing listens: a request that
looks the name up itself is refused, one that takes the pinned address gets through, and
both check the certificate against the name.
"""

from __future__ import annotations

import asyncio
import http.server
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import requests
import trustme

from connhub.kit import egress_pins
from connhub.kit.egress import ResolvedTarget
from connhub.kit.threads import run_blocking
from connhub.query import pool

PINNED = "127.0.0.2"  # loopback, but not what localhost resolves to


@dataclass
class TlsServer:
    port: int
    ca_file: str
    server_names: list[str]

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}/"

    def target(self) -> ResolvedTarget:
        return ResolvedTarget("localhost", self.port, PINNED, (PINNED,))


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = f"host={self.headers['Host']}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    ca = trustme.CA()
    ca_file = tmp_path_factory.mktemp("pins") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    names: list[str] = []
    context.sni_callback = lambda _sock, name, _ctx: names.append(name or "")
    server = http.server.ThreadingHTTPServer((PINNED, 0), _Hello)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield TlsServer(server.server_address[1], str(Path(ca_file)), names)
    finally:
        server.shutdown()
        server.server_close()


def test_without_a_pin_the_client_looks_the_name_up_itself(tls_server: TlsServer) -> None:
    with pytest.raises(requests.ConnectionError):
        requests.get(tls_server.url, verify=tls_server.ca_file, timeout=5)


def test_a_pinned_name_goes_to_the_checked_address_and_tls_still_checks_the_name(
    tls_server: TlsServer,
) -> None:
    token = egress_pins.pin([tls_server.target()])
    try:
        answer = requests.get(tls_server.url, verify=tls_server.ca_file, timeout=5)
        assert answer.text == f"host=localhost:{tls_server.port}"
        assert tls_server.server_names[-1] == "localhost"  # SNI carries the name
        # The certificate is still checked against the name: without our CA it fails.
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(tls_server.url, timeout=5)
    finally:
        egress_pins.unpin(token)
    with pytest.raises(requests.ConnectionError):
        requests.get(tls_server.url, verify=tls_server.ca_file, timeout=5)


def test_only_the_pinned_port_is_redirected(tls_server: TlsServer) -> None:
    other = ResolvedTarget("localhost", tls_server.port + 1, PINNED, (PINNED,))
    token = egress_pins.pin([other])
    try:
        with pytest.raises(requests.ConnectionError):
            requests.get(tls_server.url, verify=tls_server.ca_file, timeout=5)
    finally:
        egress_pins.unpin(token)


async def test_pins_follow_the_caller_into_worker_threads_and_nowhere_else(
    tls_server: TlsServer,
) -> None:
    def fetch() -> str:
        return requests.get(tls_server.url, verify=tls_server.ca_file, timeout=5).text

    async def sibling() -> None:
        with pytest.raises(requests.ConnectionError):
            await run_blocking(fetch)

    started_before = asyncio.create_task(sibling())  # its context was copied before the pin
    token = egress_pins.pin([tls_server.target()])
    try:
        assert await run_blocking(fetch) == f"host=localhost:{tls_server.port}"
        await started_before
        # A thread started without the caller's context sees no pins.
        outcome: list[BaseException] = []

        def bare_thread() -> None:
            try:
                fetch()
            except BaseException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=bare_thread)
        thread.start()
        thread.join(10)
        assert len(outcome) == 1 and isinstance(outcome[0], requests.ConnectionError)
    finally:
        egress_pins.unpin(token)


def test_the_snowflake_connectors_vendored_urllib3_is_pinned_too(tls_server: TlsServer) -> None:
    from snowflake.connector.vendored import requests as vendored_requests

    egress_pins.install()
    token = egress_pins.pin([tls_server.target()])
    try:
        answer = vendored_requests.get(tls_server.url, verify=tls_server.ca_file, timeout=5)
        assert answer.text == f"host=localhost:{tls_server.port}"
    finally:
        egress_pins.unpin(token)


class _HttpsDriverSession:
    """A stand-in DB-API connection for an HTTPS driver: every call and its close reach the
    server by name, as Snowflake's and Databricks' connectors do."""

    def __init__(self, server: TlsServer) -> None:
        self.server = server
        self.closed_with: str | None = None
        self.closed = threading.Event()

    def call(self) -> str:
        return requests.get(self.server.url, verify=self.server.ca_file, timeout=5).text

    def close(self) -> None:
        try:
            self.closed_with = self.call()
        finally:
            self.closed.set()


async def test_a_pooled_session_keeps_the_pins_it_was_opened_with(tls_server: TlsServer) -> None:
    """The next request leasing the session has no pins of its own (it did not open it)."""
    token = egress_pins.pin([tls_server.target()])
    try:
        conn = _HttpsDriverSession(tls_server)
        session = pool.Session(conn, executor=cast(Any, None))  # opened under the pins
    finally:
        egress_pins.unpin(token)

    async def next_request() -> str:
        return await session.run(lambda c: c.call(), timeout=10)

    expected = f"host=localhost:{tls_server.port}"
    assert await asyncio.create_task(next_request()) == expected
    session.close_soon()  # from a context without pins, like the idle reaper's
    assert await asyncio.to_thread(conn.closed.wait, 10)
    assert conn.closed_with == expected
