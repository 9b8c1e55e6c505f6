"""PostgreSQL adapter (psycopg 3) for the SQL kind.

Pinning: libpq gets ``host=<name>`` *and* ``hostaddr=<checked IP>``; it dials the address
without a lookup of its own while TLS (SNI, ``verify-full``) still uses the name.

What a tenant may not steer: everything that makes libpq read a local file or reach another
host (``sslrootcert``, ``sslcert``, ``sslkey``, ``passfile``, ``service``, ``options``,
``hostaddr``, ...). The server's own ``~/.pgpass`` is switched off (``passfile`` names a path
that cannot exist), so a blank password can never borrow the operator's stored one.

libpq reports login failures without a SQLSTATE (there is no result to carry one), so
``classify`` uses the SQLSTATE when there is one and the server's message otherwise.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

from connhub.providers.kinds.sql import (
    invalid_option,
    optional_text,
    refuse_options,
    require_host,
    require_port,
    require_text,
)
from connhub.providers.kinds.sql_driver import ConnectRequest, ConnectTarget
from connhub.verification.codes import ErrorCode
from connhub.verification.result import StepFailed

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
DEFAULT_PORT = 5432
# A path that cannot exist (/dev/null is not a directory): libpq skips a missing passfile
# silently, whereas passfile=/dev/null itself prints a warning on every blank password.
NO_PASSFILE = os.path.join(os.devnull, "connhub-no-passfile")
# libpq keywords that read local files, pick other hosts or inject server settings.
_DENIED = (
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcrl",
    "sslcrldir",
    "sslkeylogfile",
    "passfile",
    "service",
    "servicefile",
    "options",
    "hostaddr",
    "requirepeer",
    "krbsrvname",
    "gsslib",
    "gssencmode",
    "connect_timeout",
    "target_session_attrs",
    "load_balance_hosts",
    "replication",
    "dbname",
    "user",
    "password",
)
_SQLSTATE = {
    "28P01": ErrorCode.INVALID_CREDENTIALS,
    "28000": ErrorCode.INVALID_CREDENTIALS,
    "3D000": ErrorCode.INVALID_CONFIG,  # unknown database
    "3F000": ErrorCode.INVALID_CONFIG,  # unknown schema
    "42501": ErrorCode.PERMISSION_DENIED,
    "57014": ErrorCode.TIMEOUT,  # statement_timeout
    "57P03": ErrorCode.NETWORK_UNREACHABLE,  # server starting up / shutting down
}
# Server messages of login failures, most specific first (English server messages).
_PATTERNS: tuple[tuple[re.Pattern[str], ErrorCode], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), code)
    for pattern, code in (
        (
            r"password authentication failed|authentication failed for user",
            ErrorCode.INVALID_CREDENTIALS,
        ),
        (r'role "[^"]*" does not exist|no pg_hba\.conf entry', ErrorCode.INVALID_CREDENTIALS),
        (r"no password supplied|password is required|fe_sendauth", ErrorCode.INVALID_CREDENTIALS),
        (r'database "[^"]*" does not exist', ErrorCode.INVALID_CONFIG),
        (r"permission denied", ErrorCode.PERMISSION_DENIED),
        (r"timeout expired|timed out", ErrorCode.TIMEOUT),
        (
            r"server does not support SSL|certificate verify failed|root certificate"
            r"|SSL error: (?:certificate|unsupported protocol)",
            ErrorCode.INVALID_CONFIG,
        ),
        (
            r"connection refused|no route to host|network is unreachable|host is down"
            r"|could not translate host name|server closed the connection unexpectedly"
            r"|connection reset",
            ErrorCode.NETWORK_UNREACHABLE,
        ),
    )
)
_FATAL = re.compile(r"(?:FATAL|ERROR):\s+(.+)")
_PREFIX = re.compile(r"^(?:connection failed: )?(?:connection to server at [^:]+ failed: )?")


def _check_statement(schema: str | None) -> tuple[str, tuple[str, ...] | None]:
    """One round trip: ``SELECT 1``, and ``USAGE`` on the schema when one is configured."""
    if schema is None:
        return "SELECT 1", None
    return "SELECT 1, has_schema_privilege(%s, 'USAGE')", (schema,)


def _checked(conn: Any, schema: str | None, row: tuple[Any, ...] | None) -> str:
    """The permissions step's message from the check's row, or ``permission_denied``."""
    if schema is None:
        return "Required permissions confirmed (SELECT 1)"
    if row is None or not row[1]:
        raise StepFailed(
            ErrorCode.PERMISSION_DENIED,
            f"Permission denied: role {conn.info.user} has no USAGE privilege on schema {schema}",
        )
    return f"Required permissions confirmed (SELECT 1; USAGE on schema {schema})"


class PostgresAdapter:
    name = "postgres"
    display_name = "PostgreSQL"
    dialect = "postgres"
    driver_module = "psycopg"

    def target(self, config: Mapping[str, Any]) -> ConnectTarget:
        return ConnectTarget(require_host(config), require_port(config, DEFAULT_PORT))

    def validate_options(self, config: Mapping[str, Any]) -> None:
        refuse_options(
            config, _DENIED, why="it would let the connection read server files or go elsewhere"
        )
        require_host(config)
        require_port(config, DEFAULT_PORT)
        database = require_text(config, "database", max_len=63)
        # libpq expands a dbname holding "=" or a URI into a whole connection string.
        if "=" in database or "://" in database:
            raise invalid_option("config.database must be a database name", "database")
        require_text(config, "username", max_len=63)
        mode = config.get("sslMode")
        if mode not in (None, "", *SSL_MODES):
            raise invalid_option(f"config.sslMode must be one of {', '.join(SSL_MODES)}", "sslMode")
        optional_text(config, "schema", max_len=63)

    def _params(self, request: ConnectRequest) -> dict[str, Any]:
        config = request.config
        if request.address is None:
            # Without a checked address libpq would resolve the name itself (egress bypass).
            raise ValueError("postgres needs the address checked by the egress policy")
        mode = config.get("sslMode") or "prefer"
        statement_ms = max(1, round(request.timeout_s * 1000))
        options = f"-c statement_timeout={statement_ms}"
        if request.read_only:
            options += " -c default_transaction_read_only=on"
        params: dict[str, Any] = {
            "host": require_host(config),
            "hostaddr": request.address,
            "port": require_port(config, DEFAULT_PORT),
            "dbname": config["database"],
            "user": config["username"],
            "password": request.credentials.get("password", ""),
            # libpq waits whole seconds and at least 2; the runner's budget cuts in earlier.
            "connect_timeout": max(2, math.ceil(request.timeout_s)),
            "sslmode": mode,
            "passfile": NO_PASSFILE,
            "gssencmode": "disable",
            "application_name": "connhub",
            "options": options,
        }
        if mode == "verify-full":
            params["sslrootcert"] = "system"  # the OS trust store, not a file on this server
        return params

    def connect(self, request: ConnectRequest) -> Any:
        import psycopg

        return psycopg.connect(autocommit=True, **self._params(request))

    def permission_checks(self, conn: Any, config: Mapping[str, Any]) -> str:
        """``SELECT 1``; with a configured schema, ``USAGE`` on it, in the same round trip.

        Nothing more on a fresh session: each catalog function a statement calls
        (``current_schema()``, ``has_schema_privilege``...) costs a fresh backend its own
        catalog lookups, about as much as the ``SELECT 1`` itself. Without a configured
        schema there is nothing more to check: the default schema is whichever schema of the
        search path the role may use.
        """
        schema = optional_text(config, "schema")
        with conn.cursor() as cur:
            cur.execute(*_check_statement(schema))
            return _checked(conn, schema, cur.fetchone())

    # --- the login on the event loop (LoopLogin) ------------------------------------------

    def login_on_loop(self, config: Mapping[str, Any]) -> bool:
        """Every mode but ``verify-full``, whose ``sslrootcert=system`` reads the OS trust store."""
        return config.get("sslMode") != "verify-full"

    async def connect_async(self, request: ConnectRequest) -> Any:
        import psycopg

        try:
            return await psycopg.AsyncConnection.connect(autocommit=True, **self._params(request))
        except BaseException as exc:
            # Its traceback holds psycopg's connect frame and with it a half-open login (and its
            # socket) for as long as anyone keeps the exception; without it they go at once.
            raise exc.with_traceback(None) from None

    async def permission_checks_async(self, conn: Any, config: Mapping[str, Any]) -> str:
        schema = optional_text(config, "schema")
        async with conn.cursor() as cur:
            await cur.execute(*_check_statement(schema))
            return _checked(conn, schema, await cur.fetchone())

    async def close_async(self, conn: Any) -> None:
        with suppress(Exception):
            await conn.close()

    def identity(self, conn: Any, config: Mapping[str, Any]) -> dict[str, Any]:
        """From what the login already told us: no extra round trip."""
        info = conn.info
        version = info.server_version  # e.g. 150020 -> "15.20" (10+), 90624 -> "9.6.24"
        major = version // 10000
        minor = version % 100 if major >= 10 else (version // 100) % 100
        return {
            "user": info.user,
            "database": info.dbname,
            "serverVersion": f"{major}.{minor}"
            if major >= 10
            else f"{major}.{minor}.{version % 100}",
            "tls": bool(conn.pgconn.ssl_in_use),
        }

    def error_message(self, exc: BaseException) -> str:
        """The server's words without libpq's "connection to server at ... failed:" prefix."""
        text = str(exc).strip()
        fatal = _FATAL.search(text)
        if fatal:
            return fatal.group(1).strip()
        return _PREFIX.sub("", text.splitlines()[0] if text else "").strip()

    def classify(self, exc: BaseException) -> str:
        import psycopg

        if isinstance(exc, psycopg.errors.ConnectionTimeout | TimeoutError):
            return ErrorCode.TIMEOUT
        sqlstate = getattr(exc, "sqlstate", None)
        if isinstance(sqlstate, str):
            if sqlstate in _SQLSTATE:
                return _SQLSTATE[sqlstate]
            if sqlstate.startswith("08"):
                return ErrorCode.NETWORK_UNREACHABLE
            if sqlstate.startswith("28"):
                return ErrorCode.INVALID_CREDENTIALS
            if sqlstate.startswith("42"):
                return ErrorCode.INVALID_CONFIG
        text = str(exc)
        for pattern, code in _PATTERNS:
            if pattern.search(text):
                return code
        if isinstance(exc, ConnectionError):
            return ErrorCode.NETWORK_UNREACHABLE
        return ErrorCode.PROVIDER_ERROR


ADAPTER = PostgresAdapter()
