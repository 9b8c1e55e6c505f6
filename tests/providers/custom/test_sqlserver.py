"""SQL Server adapter: tested at the driver seam, plus real network failures on loopback.

There is no SQL Server here, so most tests replace ``pytds.connect`` with a recorder
(monkeypatch) that checks the exact parameters — the pre-connected socket to the checked
address, the host name kept for TLS, budget-derived timeouts, one attempt — and raises pytds's
*real* exceptions, built by pytds's own factory from server messages, for ``classify``. The
permission checks run against a recording DB-API cursor. Closed-port and silent-server tests
use the real pytds (and our socket) against 127.0.0.1.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import certifi
import pytds
import pytest
from pytds import tds_base

from connhub.providers.custom import sqlserver
from connhub.providers.custom.sqlserver import ADAPTER, RedirectRefused
from connhub.providers.kinds.sql_driver import ConnectRequest, ConnectTarget
from connhub.verification.codes import ErrorCode
from connhub.verification.result import StepFailed
from support.fakesnow_server import closed_port, silent_server

from .driver_seam import Recorder, RecordingConnection, RecordingCursor, assert_option_refused

CONFIG = {"host": "sql.example.com", "port": 1433, "database": "analytics", "username": "reader"}


def request(config: dict[str, Any], port: int, timeout_s: float = 4.0) -> ConnectRequest:
    config = {**config, "port": port}
    return ConnectRequest(
        config=config,
        credentials={"password": "S3cret!pw"},
        target=ADAPTER.target(config),
        address="127.0.0.1",  # what the egress policy resolved sql.example.com to
        timeout_s=timeout_s,
    )


class SocketRecorder(Recorder):
    """Also keeps where the pre-connected socket goes, read before the adapter closes it."""

    def record(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {**kwargs, "sock_peer": kwargs["sock"].getpeername()}


def test_connect_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = SocketRecorder()
    monkeypatch.setattr(pytds, "connect", recorder)
    with silent_server() as port:
        ADAPTER.connect(request(CONFIG, port))
    call = recorder.calls[0]
    assert isinstance(call.pop("sock"), socket.socket)
    assert call == {
        "dsn": "sql.example.com",  # TLS checks the name ...
        "sock_peer": ("127.0.0.1", port),  # ... while TCP went to the checked address
        "port": port,
        "database": "analytics",
        "user": "reader",
        "password": "S3cret!pw",
        "login_timeout": 4.0,
        "timeout": 4.0,
        "autocommit": True,
        "appname": "connhub",
        "disable_connect_retry": True,
        "cafile": certifi.where(),
        "validate_host": True,
    }


def test_encrypt_false_sends_no_tls_options(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = SocketRecorder()
    monkeypatch.setattr(pytds, "connect", recorder)
    with silent_server() as port:
        ADAPTER.connect(request({**CONFIG, "encrypt": False}, port))
    assert "cafile" not in recorder.calls[0] and "validate_host" not in recorder.calls[0]


def test_no_checked_address_no_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = SocketRecorder()
    monkeypatch.setattr(pytds, "connect", recorder)
    with pytest.raises(ValueError, match="egress"):
        ADAPTER.connect(ConnectRequest(CONFIG, {"password": "x"}, ADAPTER.target(CONFIG), None, 3))
    assert recorder.calls == []


def server_error(msgno: int, text: str) -> tds_base.Error:
    """An exception exactly as pytds builds it from a server ERROR token."""
    message: tds_base.Message = {
        "marker": 0xAA,
        "msgno": msgno,
        "state": 1,
        "severity": 14,
        "sql_state": None,
        "priv_msg_type": 0,
        "message": text,
        "server": "sql01",
        "proc_name": "",
        "line_number": 1,
    }
    return tds_base._create_exception_by_message(message)


def retried_then_timed_out(cause: BaseException) -> TimeoutError:
    """pytds's backoff gives up with ``TimeoutError() from <last error>``."""
    try:
        raise TimeoutError() from cause
    except TimeoutError as exc:
        return exc


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (server_error(18456, "Login failed for user 'reader'."), ErrorCode.INVALID_CREDENTIALS),
        (
            server_error(18486, "Login failed for user 'reader' because the account is locked."),
            ErrorCode.INVALID_CREDENTIALS,
        ),
        # 4060 then 18456: pytds raises the last number with both texts joined
        (
            server_error(
                18456,
                'Cannot open database "analytics" requested by the login. The '
                "login failed. Login failed for user 'reader'.",
            ),
            ErrorCode.PERMISSION_DENIED,
        ),
        (
            server_error(4060, 'Cannot open database "analytics" requested by the login.'),
            ErrorCode.PERMISSION_DENIED,
        ),
        (
            server_error(
                40615,
                "Cannot open server 'x' requested by the login. Client with IP "
                "address '203.0.113.1' is not allowed to access the server.",
            ),
            ErrorCode.PERMISSION_DENIED,
        ),
        (
            server_error(229, "The SELECT permission was denied on the object 't'."),
            ErrorCode.PERMISSION_DENIED,
        ),
        (server_error(102, "Incorrect syntax near 'x'."), ErrorCode.PROVIDER_ERROR),
        (
            tds_base.Error(
                "Client does not have encryption enabled but it is required by server, "
                "enable encryption and try connecting again"
            ),
            ErrorCode.INVALID_CONFIG,
        ),
        (
            tds_base.Error("Certificate does not match host name 'sql.example.com'"),
            ErrorCode.INVALID_CONFIG,
        ),
        (tds_base.ClosedConnectionError(), ErrorCode.NETWORK_UNREACHABLE),
        (
            retried_then_timed_out(server_error(4060, "Cannot open database")),
            ErrorCode.PERMISSION_DENIED,
        ),
        (retried_then_timed_out(TimeoutError("timed out")), ErrorCode.TIMEOUT),
        (RedirectRefused("redirected"), ErrorCode.NETWORK_UNREACHABLE),
    ],
)
def test_driver_errors_are_classified(
    monkeypatch: pytest.MonkeyPatch, error: BaseException, code: ErrorCode
) -> None:
    monkeypatch.setattr(pytds, "connect", SocketRecorder(raises=error))
    with silent_server() as port, pytest.raises(type(error)) as info:
        ADAPTER.connect(request(CONFIG, port))
    assert ADAPTER.classify(info.value) == code


def test_server_redirects_are_refused() -> None:
    """A routing token makes pytds dial the named host itself; the guard refuses it."""
    sqlserver._guard_pytds()
    with pytest.raises(RedirectRefused, match="169.254.169.254:80"):
        pytds.socket.create_connection(("169.254.169.254", 80), 1)  # type: ignore[attr-defined]
    assert pytds.socket.gethostname() == socket.gethostname()  # type: ignore[attr-defined]


class PermsCursor(RecordingCursor):
    """Answers ``HAS_PERMS_BY_NAME`` with ``perms``."""

    def __init__(self, perms: int | None) -> None:
        super().__init__()
        self.perms = perms

    def fetchone(self) -> tuple[int | None]:
        return (self.perms,) if "HAS_PERMS" in self.statements[-1] else (1,)


def test_permission_checks() -> None:
    cursor = PermsCursor(perms=1)
    message = ADAPTER.permission_checks(RecordingConnection(cursor), CONFIG)
    assert cursor.statements == [
        "SELECT 1",
        "SELECT HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'SELECT')",
    ]
    assert message == "SELECT 1 succeeded in database analytics; SELECT permission on it confirmed"


def test_missing_select_permission_is_permission_denied() -> None:
    with pytest.raises(StepFailed) as info:
        ADAPTER.permission_checks(RecordingConnection(PermsCursor(perms=0)), CONFIG)
    assert info.value.code == ErrorCode.PERMISSION_DENIED
    assert "db_datareader" in info.value.message


# --- real pytds, loopback ---------------------------------------------------------------------


def test_closed_port_is_network_unreachable() -> None:
    started = time.monotonic()
    with pytest.raises(OSError) as info:
        ADAPTER.connect(request(CONFIG, closed_port(), timeout_s=3))
    assert time.monotonic() - started < 1
    assert ADAPTER.classify(info.value) == ErrorCode.NETWORK_UNREACHABLE


def test_silent_server_times_out_within_the_budget() -> None:
    with silent_server() as port:
        started = time.monotonic()
        with pytest.raises(TimeoutError) as info:
            ADAPTER.connect(request({**CONFIG, "encrypt": False}, port, timeout_s=2.0))
        elapsed = time.monotonic() - started
    assert elapsed < 2.0 + 1, elapsed
    assert ADAPTER.classify(info.value) == ErrorCode.TIMEOUT


def test_silent_server_with_tls_times_out_too() -> None:
    with silent_server() as port:
        started = time.monotonic()
        with pytest.raises(TimeoutError) as info:
            ADAPTER.connect(request(CONFIG, port, timeout_s=2.0))
        elapsed = time.monotonic() - started
    assert elapsed < 2.0 + 1, elapsed
    assert ADAPTER.classify(info.value) == ErrorCode.TIMEOUT


# --- options ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"host": "sql.example.com\\SQLEXPRESS"}, "config.host"),
        ({"host": "a.example.com,b.example.com"}, "config.host"),
        ({"host": "tcp:sql.example.com"}, "config.host"),
        ({"port": 70000}, "config.port"),
        ({"encrypt": "maybe"}, "config.encrypt"),
        ({"cafile": "/etc/ssl/evil.pem"}, "config.cafile"),
        ({"validate_host": False}, "config.validate_host"),
        ({"failoverPartner": "other.example.com"}, "config.failoverPartner"),
        ({"trustServerCertificate": True}, "config.trustServerCertificate"),
    ],
)
def test_dangerous_options_are_refused(extra: dict[str, Any], field: str) -> None:
    assert_option_refused(ADAPTER, {**CONFIG, **extra}, field)


def test_target() -> None:
    assert ADAPTER.target(CONFIG) == ConnectTarget("sql.example.com", 1433)
    assert ADAPTER.target({**CONFIG, "port": None}) == ConnectTarget("sql.example.com", 1433)
