"""Databricks SQL adapter (databricks-sql-connector, Thrift over HTTPS) for the SQL kind.

Where we connect: the workspace ``host`` over HTTPS, by name. The connector verifies the
certificate against ``server_hostname`` and offers no "connect to this IP, verify that name"
option (only turning verification off, which we never do). Its urllib3 looks the name up
again, and ``kit.egress_pins`` answers with the address the egress check passed: no second
lookup. The port is the one the egress check opened (``request.target.port``, 443
for every real workspace), which is also how tests point it at a closed loopback port.

Timeouts and retries: the connector retries for up to 900 s by default and its urllib3 layer
retries timed-out reads inside one "attempt", so a silent server could hold a login far past
the budget. We allow one attempt (``_retry_stop_after_attempts_count=1``), cap its duration and
the socket timeout at the budget, and shorten the retry delays. Measured against a server that
accepts TCP and never answers: 2.1 s for a 2 s budget; a closed port fails in under 1 s. The
cost: a warehouse that answers 503 while it starts is reported at once instead of waited for.

Also off: telemetry (extra HTTPS calls), cloud fetch (results downloaded from cloud-storage URLs
the egress policy never saw). Options that disable TLS checks, read local files (CA/cert files,
``staging_allowed_local_path``) or swap the auth flow (OAuth, credential providers) are refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import closing
from typing import Any

from connhub.providers.kinds.driver_errors import MessagePatterns, first_match, network_code
from connhub.providers.kinds.sql import invalid_option, refuse_options, require_host, require_text
from connhub.providers.kinds.sql_driver import ConnectRequest, ConnectTarget
from connhub.verification.codes import ErrorCode
from connhub.verification.result import StepFailed

DEFAULT_PORT = 443
# /sql/1.0/warehouses/<id>, sql/protocolv1/o/<org>/<cluster>, optionally ?o=<workspace> (SPOG)
_HTTP_PATH = re.compile(r"/?[A-Za-z0-9._~-]+(?:/[A-Za-z0-9._~-]+)*(?:\?o=[0-9]+)?")
_DENIED = (
    "_tls_no_verify",
    "tls_no_verify",
    "_tls_verify_hostname",
    "_tls_trusted_ca_file",
    "_tls_client_cert_file",
    "_tls_client_cert_key_file",
    "_tls_client_cert_key_password",
    "staging_allowed_local_path",
    "_connection_uri",
    "http_headers",
    "session_configuration",
    "auth_type",
    "credentials_provider",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_redirect_port",
    "oauth_jwt_key_file",
    "token_url",
    "experimental_oauth_persistence",
    "azure_client_secret",
    "_proxy_auth_method",
    "use_kernel",
    "use_sea",
    "_port",
    "access_token",
    "token",
)
_PATTERNS: MessagePatterns = (
    (re.compile(r"token.*expired|expired.*token", re.I), ErrorCode.TOKEN_EXPIRED),
    (
        re.compile(r"invalid access token|invalid token|unauthori[sz]ed", re.I),
        ErrorCode.INVALID_CREDENTIALS,
    ),
    (
        re.compile(
            r"INSUFFICIENT_PERMISSIONS|PERMISSION_DENIED|does not have \w+ (privilege|on)|"
            r"not authori[sz]ed",
            re.I,
        ),
        ErrorCode.PERMISSION_DENIED,
    ),
    (
        re.compile(
            r"NO_SUCH_CATALOG|CATALOG_NOT_FOUND|SCHEMA_NOT_FOUND|NO_SUCH_SCHEMA|"
            r"RESOURCE_DOES_NOT_EXIST",
            re.I,
        ),
        ErrorCode.INVALID_CONFIG,
    ),
)
_HTTP_CODES = {
    401: ErrorCode.INVALID_CREDENTIALS,
    403: ErrorCode.PERMISSION_DENIED,  # but see the message: a bad token is a 403 too
    404: ErrorCode.INVALID_CONFIG,  # no such warehouse / cluster: httpPath is wrong
}
# Besides OSError: urllib3's names for a host it could not reach, or a connection it lost.
_UNREACHABLE = ("NewConnectionError", "MaxRetryError", "ProtocolError")


def host(config: Mapping[str, Any]) -> str:
    name = require_host(config)
    if ":" in name:
        raise invalid_option(
            "config.host must be the workspace host name, e.g. adb-123.4.azuredatabricks.net "
            "(no https:// and no port)",
            "host",
        )
    return name


def http_path(config: Mapping[str, Any]) -> str:
    value = require_text(config, "httpPath", max_len=512)
    if ".." in value or not _HTTP_PATH.fullmatch(value):
        raise invalid_option(
            "config.httpPath must be the HTTP path of a SQL warehouse or cluster, e.g. "
            "/sql/1.0/warehouses/abc123",
            "httpPath",
        )
    return value


def quote(name: str) -> str:
    """A Databricks identifier in backticks (embedded backticks doubled)."""
    return "`" + name.replace("`", "``") + "`"


def _names(config: Mapping[str, Any]) -> tuple[str, str]:
    names = []
    for key in ("catalog", "schema"):
        value = require_text(config, key)
        if any(ord(ch) < 32 for ch in value):
            raise invalid_option(f"config.{key} must not contain control characters", key)
        names.append(value)
    return names[0], names[1]


def _network_code(exc: BaseException) -> ErrorCode | None:
    """Timeout or unreachable from anywhere in the chain, with this connector's class names."""
    return network_code(exc, unreachable_names=_UNREACHABLE)


class DatabricksAdapter:
    name = "databricks"
    display_name = "Databricks"
    dialect = "databricks"
    driver_module = "databricks.sql"

    def target(self, config: Mapping[str, Any]) -> ConnectTarget:
        return ConnectTarget(host(config), DEFAULT_PORT)

    def validate_options(self, config: Mapping[str, Any]) -> None:
        refuse_options(
            config,
            _DENIED,
            why="it would weaken TLS, read local files or bypass the token",
        )
        host(config)
        http_path(config)
        _names(config)

    def connect(self, request: ConnectRequest) -> Any:
        from databricks import sql as dbsql

        config = request.config
        self.validate_options(config)
        token = request.credentials.get("token")
        if not token:
            raise StepFailed(ErrorCode.INVALID_CREDENTIALS, "credentials.token is required")
        catalog, schema = _names(config)
        seconds = max(0.5, request.timeout_s)
        port = request.target.port if request.target is not None else DEFAULT_PORT
        return dbsql.connect(
            server_hostname=host(config),
            http_path=http_path(config),
            access_token=token,
            catalog=catalog,
            schema=schema,
            _port=port,
            _socket_timeout=seconds,
            _retry_stop_after_attempts_count=1,
            _retry_stop_after_attempts_duration=max(1.0, seconds),  # the connector's minimum
            _retry_delay_min=0.1,
            _retry_delay_default=1.0,
            _retry_delay_max=5.0,
            enable_telemetry=False,
            use_cloud_fetch=False,
            user_agent_entry="connhub",
        )

    def permission_checks(self, conn: Any, config: Mapping[str, Any]) -> str:
        catalog, schema = _names(config)
        with closing(conn.cursor()) as cur:
            cur.execute(f"USE CATALOG {quote(catalog)}")
            cur.execute(f"USE SCHEMA {quote(schema)}")
            cur.execute("SELECT 1")
            cur.fetchone()
        return f"SELECT 1 succeeded in {catalog}.{schema}"

    def classify(self, exc: BaseException) -> str:
        if isinstance(exc, StepFailed):
            return exc.code
        from databricks.sql import exc as dbexc

        if isinstance(exc, dbexc.MaxRetryDurationError):
            return ErrorCode.TIMEOUT
        if isinstance(exc, dbexc.RequestError):
            context = exc.context if isinstance(exc.context, dict) else {}
            text = f"{exc.message or ''} {context.get('error-message') or ''}"
            status = context.get("http-code")
            by_text = first_match(_PATTERNS, text) if text.strip() else None
            if isinstance(status, int) and status in _HTTP_CODES:
                if by_text in (ErrorCode.TOKEN_EXPIRED, ErrorCode.INVALID_CREDENTIALS):
                    return by_text
                return _HTTP_CODES[status]
            if "would exceed" in text and "duration" in text:
                return ErrorCode.TIMEOUT
            return _network_code(exc) or by_text or ErrorCode.PROVIDER_ERROR
        if isinstance(exc, dbexc.Error):
            return (
                first_match(_PATTERNS, str(exc.message or exc))
                or _network_code(exc)
                or (ErrorCode.PROVIDER_ERROR)
            )
        return _network_code(exc) or ErrorCode.PROVIDER_ERROR


ADAPTER = DatabricksAdapter()
