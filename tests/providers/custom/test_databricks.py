"""Databricks adapter: tested at the driver seam, plus real network failures on loopback.

There is no local Databricks SQL warehouse, so most tests replace ``databricks.sql.connect``
with a recorder (pytest's monkeypatch) that checks the exact parameters the adapter passes and
raises the connector's *real* exception classes, which is what ``classify`` has to judge. The
permission checks run against a recording DB-API cursor for the same reason. The unreachable and
silent-server tests use the real connector against 127.0.0.1 (it speaks HTTPS, so a closed port
or a server that never answers produces the connector's genuine errors).
"""

from __future__ import annotations

import time
from typing import Any

import databricks.sql
import pytest
from databricks.sql import exc as dbexc

from connhub.providers.custom.databricks import ADAPTER
from connhub.providers.kinds.sql_driver import ConnectRequest, ConnectTarget
from connhub.verification.codes import ErrorCode
from connhub.verification.result import StepFailed
from support.fakesnow_server import closed_port, non_loopback_traffic, silent_server

from .driver_seam import Recorder, RecordingConnection, RecordingCursor, assert_option_refused

CONFIG = {
    "host": "adb-1234567890123456.7.azuredatabricks.net",
    "httpPath": "/sql/1.0/warehouses/abc123def456",
    "catalog": "main",
    "schema": "analytics",
}
TOKEN = "dapi0123456789abcdef0123456789abcdef"


def request(
    config: dict[str, Any] = CONFIG,
    timeout_s: float = 7.5,
    target: ConnectTarget | None = None,
) -> ConnectRequest:
    return ConnectRequest(
        config=config,
        credentials={"token": TOKEN},
        target=target or ADAPTER.target(config),
        address="203.0.113.10",  # what the egress check resolved; unused over HTTPS
        timeout_s=timeout_s,
    )


def test_connect_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    """Budget-derived timeouts, one attempt, no telemetry/cloud fetch, nothing that weakens TLS."""
    recorder = Recorder()
    monkeypatch.setattr(databricks.sql, "connect", recorder)
    ADAPTER.connect(request())
    assert recorder.calls == [
        {
            "server_hostname": "adb-1234567890123456.7.azuredatabricks.net",
            "http_path": "/sql/1.0/warehouses/abc123def456",
            "access_token": TOKEN,
            "catalog": "main",
            "schema": "analytics",
            "_port": 443,
            "_socket_timeout": 7.5,
            "_retry_stop_after_attempts_count": 1,
            "_retry_stop_after_attempts_duration": 7.5,
            "_retry_delay_min": 0.1,
            "_retry_delay_default": 1.0,
            "_retry_delay_max": 5.0,
            "enable_telemetry": False,
            "use_cloud_fetch": False,
            "user_agent_entry": "connhub",
        }
    ]


def test_tiny_budget_stays_within_the_connector_minimums(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    monkeypatch.setattr(databricks.sql, "connect", recorder)
    ADAPTER.connect(request(timeout_s=0.2))
    assert recorder.calls[0]["_socket_timeout"] == 0.5
    assert recorder.calls[0]["_retry_stop_after_attempts_duration"] == 1.0


def test_missing_token_fails_before_the_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    monkeypatch.setattr(databricks.sql, "connect", recorder)
    bare = ConnectRequest(CONFIG, {}, ADAPTER.target(CONFIG), None, 5.0)
    with pytest.raises(StepFailed) as info:
        ADAPTER.connect(bare)
    assert info.value.code == ErrorCode.INVALID_CREDENTIALS
    assert recorder.calls == []


def _request_error(status: int | None, message: str = "") -> dbexc.RequestError:
    """A RequestError shaped like the one ThriftBackend raises for an HTTP failure."""
    context = {
        "method": "OpenSession",
        "http-code": status,
        "error-message": message,
        "original-exception": "",
    }
    return dbexc.RequestError("Error during request to server. " + message, context)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (_request_error(401, "Invalid access token."), ErrorCode.INVALID_CREDENTIALS),
        (_request_error(403, "Invalid access token."), ErrorCode.INVALID_CREDENTIALS),
        (_request_error(403, "Token is expired."), ErrorCode.TOKEN_EXPIRED),
        (
            _request_error(403, "User is not authorized to use this SQL warehouse"),
            ErrorCode.PERMISSION_DENIED,
        ),
        (_request_error(404, "RESOURCE_DOES_NOT_EXIST"), ErrorCode.INVALID_CONFIG),
        (_request_error(503, "warehouse is starting"), ErrorCode.PROVIDER_ERROR),
        (
            dbexc.MaxRetryDurationError(
                "Retry request would exceed Retry policy max retry duration"
            ),
            ErrorCode.TIMEOUT,
        ),
        (
            dbexc.ServerOperationError(
                "[INSUFFICIENT_PERMISSIONS] Insufficient privileges: User "
                "does not have USE CATALOG on Catalog 'main'."
            ),
            ErrorCode.PERMISSION_DENIED,
        ),
        (
            dbexc.ServerOperationError("[NO_SUCH_CATALOG_EXCEPTION] Catalog 'nope' was not found."),
            ErrorCode.INVALID_CONFIG,
        ),
        (dbexc.ServerOperationError("[PARSE_SYNTAX_ERROR] Syntax error"), ErrorCode.PROVIDER_ERROR),
    ],
)
def test_driver_errors_are_classified(
    monkeypatch: pytest.MonkeyPatch, error: BaseException, code: ErrorCode
) -> None:
    monkeypatch.setattr(databricks.sql, "connect", Recorder(raises=error))
    with pytest.raises(type(error)) as info:
        ADAPTER.connect(request())
    assert ADAPTER.classify(info.value) == code


class FailingCursor(RecordingCursor):
    """Fails the first statement starting with ``fail_on`` as a missing catalog would."""

    def __init__(self, fail_on: str | None = None) -> None:
        super().__init__()
        self.fail_on = fail_on

    def execute(self, sql: str) -> None:
        super().execute(sql)
        if self.fail_on and sql.startswith(self.fail_on):
            raise dbexc.ServerOperationError(f"[NO_SUCH_CATALOG_EXCEPTION] {sql}")


def test_permission_checks_quote_identifiers() -> None:
    cursor = FailingCursor()
    config = {**CONFIG, "catalog": "odd`name", "schema": "sales data"}
    message = ADAPTER.permission_checks(RecordingConnection(cursor), config)
    assert cursor.statements == ["USE CATALOG `odd``name`", "USE SCHEMA `sales data`", "SELECT 1"]
    assert message == "SELECT 1 succeeded in odd`name.sales data"


def test_permission_checks_surface_the_server_error() -> None:
    cursor = FailingCursor(fail_on="USE CATALOG")
    with pytest.raises(dbexc.ServerOperationError) as info:
        ADAPTER.permission_checks(RecordingConnection(cursor), CONFIG)
    assert ADAPTER.classify(info.value) == ErrorCode.INVALID_CONFIG
    assert cursor.statements == ["USE CATALOG `main`"]


# --- real connector, loopback ---------------------------------------------------------------


def _loopback(port: int) -> tuple[dict[str, Any], ConnectTarget]:
    return {**CONFIG, "host": "127.0.0.1"}, ConnectTarget("127.0.0.1", port)


def test_closed_port_is_network_unreachable() -> None:
    config, target = _loopback(closed_port())
    started = time.monotonic()
    with pytest.raises(Exception) as info:  # noqa: B017 - urllib3's MaxRetryError, as raised
        ADAPTER.connect(request(config, timeout_s=3.0, target=target))
    assert time.monotonic() - started < 3.0 + 1
    assert ADAPTER.classify(info.value) == ErrorCode.NETWORK_UNREACHABLE


def test_silent_server_times_out_within_the_budget() -> None:
    """Also: no telemetry, feature-flag or other side traffic leaves loopback."""
    with silent_server() as port, non_loopback_traffic() as seen:
        config, target = _loopback(port)
        started = time.monotonic()
        with pytest.raises(dbexc.RequestError) as info:
            ADAPTER.connect(request(config, timeout_s=2.0, target=target))
        elapsed = time.monotonic() - started
    assert seen == []
    assert elapsed < 2.0 + 1, elapsed
    assert ADAPTER.classify(info.value) == ErrorCode.TIMEOUT


# --- options ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"host": "https://adb-1.azuredatabricks.net"}, "config.host"),
        ({"host": "adb-1.azuredatabricks.net:8443"}, "config.host"),
        ({"host": "a.net/evil"}, "config.host"),
        ({"httpPath": "../../admin"}, "config.httpPath"),
        ({"httpPath": "/sql/1.0/warehouses/x?redirect=http://evil"}, "config.httpPath"),
        ({"_tls_no_verify": True}, "config._tls_no_verify"),
        ({"tlsTrustedCaFile": "/etc/ssl/ca.pem"}, "config.tlsTrustedCaFile"),
        ({"staging_allowed_local_path": "/"}, "config.staging_allowed_local_path"),
        ({"authType": "databricks-oauth"}, "config.authType"),
        ({"catalog": "bad\nname"}, "config.catalog"),
    ],
)
def test_dangerous_options_are_refused(extra: dict[str, Any], field: str) -> None:
    assert_option_refused(ADAPTER, {**CONFIG, **extra}, field)


def test_target_and_accepted_paths() -> None:
    assert ADAPTER.target(CONFIG) == ConnectTarget(CONFIG["host"], 443)
    for path in ("sql/protocolv1/o/1234567890/0123-456789-abcdefgh", "/sql/1.0/warehouses/a?o=123"):
        ADAPTER.validate_options({**CONFIG, "httpPath": path})
