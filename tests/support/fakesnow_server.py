"""A local Snowflake for tests: fakesnow's HTTP server, driven by the real connector.

``fakesnow -s`` serves the Snowflake REST protocol (login, query) from DuckDB, so the
unpatched ``snowflake-connector-python`` talks to it over plain HTTP on 127.0.0.1. It needs
connector 4.8.x (5.x changed the wire format fakesnow answers) and it does **not** check
credentials: any user, password or key pair logs in. Tests that need a rejected login therefore
exercise ``classify`` with the connector's real exception classes instead.

The server runs in a subprocess (its uvicorn loop and DuckDB stay out of the test process) on
a free loopback port; all sessions share one in-memory catalogue, so each test creates its own
uniquely named database with :func:`create_objects`.

Also here, for every driver's tests: :func:`silent_server` (accepts TCP, never answers),
:func:`closed_port`, and :func:`non_loopback_traffic`, which records any attempt to resolve or
reach a host outside 127.0.0.0/8 and ::1 (drivers like to phone home from background threads).

Use from a test module::

    from support.fakesnow_server import fakesnow_server_fixture  # noqa: F401 (registers it)

    def test_x(fakesnow_server: FakesnowServer) -> None: ...
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import pytest

HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0


class FakesnowServer(NamedTuple):
    """Where fakesnow listens; unpacks as ``(host, port)``."""

    host: str
    port: int

    def config(self, database: str, schema: str = "PUBLIC", **extra: Any) -> dict[str, Any]:
        """Adapter config (API.md section 4 names) pointing at this server over http."""
        return {
            "account": "fakeacct",
            "warehouse": "COMPUTE_WH",
            "database": database,
            "schema": schema,
            "username": "FLAGSMITH_SERVICE",
            "host": self.host,
            "port": self.port,
            "protocol": "http",
            **extra,
        }

    def connect(self, **kwargs: Any) -> Any:
        """A real connector session for fixture set-up, not for the code under test."""
        import snowflake.connector

        return snowflake.connector.connect(
            account="fakeacct",
            user="fixture",
            password="fixture",  # fakesnow accepts anything
            host=self.host,
            port=self.port,
            protocol="http",
            login_timeout=10,
            network_timeout=10,
            socket_timeout=10,
            disable_ocsp_checks=True,
            platform_detection_timeout_seconds=0.0,  # no cloud-metadata probes (non-loopback)
            **kwargs,
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_listening(proc: subprocess.Popen[bytes], port: int, log_path: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with open(log_path, encoding="utf-8", errors="replace") as log:
                raise RuntimeError(f"fakesnow exited with {proc.returncode}:\n{log.read()[-2000:]}")
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"fakesnow did not listen on {HOST}:{port} within {START_TIMEOUT_S}s")


@contextmanager
def running_fakesnow() -> Iterator[FakesnowServer]:
    """Start ``python -m fakesnow -s`` on a free loopback port; stop it on exit."""
    port = free_port()
    with tempfile.NamedTemporaryFile(prefix="fakesnow-", suffix=".log", delete=False) as log:
        log_path = log.name
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv, our own interpreter
            [sys.executable, "-m", "fakesnow", "-s", "--host", HOST, "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        _wait_until_listening(proc, port, log_path)
        yield FakesnowServer(HOST, port)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # fakesnow's CLI waits for SIGINT to stop uvicorn
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        os.unlink(log_path)


@pytest.fixture(scope="session", name="fakesnow_server")
def fakesnow_server_fixture() -> Iterator[FakesnowServer]:
    with running_fakesnow() as server:
        yield server


def unique_name(prefix: str = "DB") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10].upper()}"


def create_objects(
    server: FakesnowServer, database: str, schema: str = "PUBLIC", stages: Sequence[str] = ()
) -> None:
    """Create a database, a schema and stages in fakesnow through the real connector."""
    conn = server.connect()
    try:
        cur = conn.cursor()
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {database}.{schema}")
        for stage in stages:
            cur.execute(f"CREATE STAGE IF NOT EXISTS {database}.{schema}.{stage}")
    finally:
        conn.close()


@contextmanager
def silent_server() -> Iterator[int]:
    """A loopback port that accepts TCP connections and never sends a byte.

    The worst case for a driver's timeouts: connect succeeds at once, then every read blocks.
    Accepted sockets are held open until the context exits.
    """
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen(64)
    listener.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_forever() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(conn)

    thread = threading.Thread(target=accept_forever, name="silent-server", daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=2)
        listener.close()
        for conn in accepted:
            conn.close()


def closed_port() -> int:
    """A loopback port with nothing listening (connection refused, at once)."""
    return free_port()


_recorders: list[list[str]] = []
_hook_lock = threading.Lock()
_hook_installed = False


def _is_loopback(host: object) -> bool:
    text = host.decode() if isinstance(host, bytes) else str(host)
    if text == "localhost":
        return True
    try:
        return ipaddress.ip_address(text.split("%")[0]).is_loopback
    except ValueError:
        return False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _recorders:
        return
    if event == "socket.getaddrinfo" and args[0] is not None and not _is_loopback(args[0]):
        seen = f"resolve {args[0]!r}"
    elif (
        event in ("socket.connect", "socket.sendto")
        and isinstance(args[1], tuple)
        and not _is_loopback(args[1][0])
    ):
        seen = f"{event.split('.')[1]} {args[1]!r}"
    else:
        return
    for recorder in list(_recorders):
        recorder.append(seen)


@contextmanager
def non_loopback_traffic(settle_s: float = 0.5) -> Iterator[list[str]]:
    """Record (from every thread) DNS lookups and connects to anything but loopback.

    Uses a ``sys.addaudithook`` hook (installed once; hooks cannot be removed, so it is inert
    while no recorder is active). ``settle_s`` keeps recording after the block, for background
    threads a driver starts on its way out.
    """
    global _hook_installed
    with _hook_lock:
        if not _hook_installed:
            sys.addaudithook(_audit)
            _hook_installed = True
    seen: list[str] = []
    _recorders.append(seen)
    try:
        yield seen
        time.sleep(settle_s)
    finally:
        _recorders.remove(seen)
