"""SQL Server / Azure SQL adapter (python-tds, pure Python TDS) for the SQL kind.

Why pytds over pymssql: no FreeTDS C library to build or ship, TLS through pyOpenSSL with host
name validation, and a ``sock=`` parameter that lets us hand it an already connected socket.

Where we connect: we open TCP to the address the egress policy checked and give pytds that
socket; ``dsn`` stays the host name, so TLS SNI and the certificate check use the name. pytds
never resolves the name itself. One hole remains in pytds: a server may answer the login with a
*routing* token (Azure SQL "redirect" policy, availability-group read-only routing) and pytds
then dials the named host itself. That host was never checked, so we refuse to dial: while this
module is loaded, pytds's ``socket.create_connection`` is replaced by one that raises
:class:`RedirectRefused` (connhub always passes a socket; nothing else in the process uses
pytds). Azure SQL's default policy for connections from outside Azure is "proxy", which does not
redirect.

``encrypt`` (config, boolean): defaults to **true**, like Microsoft's ODBC Driver 18; the
server's certificate is checked against the host name with the CA bundle that requests uses
(certifi). ``false`` sends the login unencrypted (TDS only obfuscates the password).

Timeouts: ``login_timeout`` and the query ``timeout`` are the budget; connect retries are
disabled (one attempt: pytds's own backoff would otherwise retry a pre-connected socket), so a
server that never answers fails as ``timeout`` after the budget.
"""

from __future__ import annotations

import re
import socket
import types
from collections.abc import Mapping
from contextlib import closing
from typing import Any

from connhub.providers.kinds.driver_errors import MessagePatterns, exception_chain, first_match
from connhub.providers.kinds.sql import (
    invalid_option,
    refuse_options,
    require_host,
    require_port,
    require_text,
)
from connhub.providers.kinds.sql_driver import ConnectRequest, ConnectTarget, is_ipv6
from connhub.verification.codes import ErrorCode
from connhub.verification.result import StepFailed

DEFAULT_PORT = 1433
_DENIED = (
    "cafile",
    "validate_host",
    "enc_login_only",
    "failover_partner",
    "load_balancer",
    "use_sso",
    "auth",
    "access_token_callable",
    "server",
    "dsn",
    "instance",
    "pooling",
    "password",
    "trust_server_certificate",
)
_MSG_NO: dict[int, ErrorCode] = {
    18456: ErrorCode.INVALID_CREDENTIALS,  # login failed
    18452: ErrorCode.INVALID_CREDENTIALS,  # untrusted domain
    18470: ErrorCode.INVALID_CREDENTIALS,  # login disabled
    18486: ErrorCode.INVALID_CREDENTIALS,  # account locked out
    18487: ErrorCode.INVALID_CREDENTIALS,  # password expired
    18488: ErrorCode.INVALID_CREDENTIALS,  # password must be changed
    4060: ErrorCode.PERMISSION_DENIED,  # cannot open database (missing, or no access)
    916: ErrorCode.PERMISSION_DENIED,  # principal cannot access the database
    229: ErrorCode.PERMISSION_DENIED,  # permission denied on object
    230: ErrorCode.PERMISSION_DENIED,  # permission denied on column
    262: ErrorCode.PERMISSION_DENIED,  # permission denied in database
    297: ErrorCode.PERMISSION_DENIED,  # user does not have permission
    300: ErrorCode.PERMISSION_DENIED,  # VIEW SERVER STATE etc.
    40615: ErrorCode.PERMISSION_DENIED,  # Azure firewall: client IP not allowed
    40532: ErrorCode.INVALID_CONFIG,  # Azure: cannot open server (wrong server name in login)
    208: ErrorCode.INVALID_CONFIG,  # invalid object name
    911: ErrorCode.INVALID_CONFIG,  # database does not exist (USE)
}
_PATTERNS: MessagePatterns = (
    (re.compile(r"Cannot open database", re.I), ErrorCode.PERMISSION_DENIED),
    (re.compile(r"Login failed for user", re.I), ErrorCode.INVALID_CREDENTIALS),
    (re.compile(r"encryption|certificate|TLS|SSL", re.I), ErrorCode.INVALID_CONFIG),
    (re.compile(r"Server closed connection", re.I), ErrorCode.NETWORK_UNREACHABLE),
)


class RedirectRefused(Exception):
    """The server routed the login to another host, which the egress policy never checked."""


def _refuse_dialing(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
    host, port = address
    raise RedirectRefused(
        f"SQL Server redirected the login to {host}:{port}; connhub does not follow "
        "redirects to hosts its egress policy has not checked (use the proxy connection policy)"
    )


def _guard_pytds() -> None:
    """Give pytds a ``socket`` module whose ``create_connection`` refuses to dial (see above)."""
    import pytds

    if getattr(pytds.socket, "_connhub_guard", False):
        return
    facade = types.ModuleType("socket")
    facade.__dict__.update(socket.__dict__)
    facade.create_connection = _refuse_dialing  # type: ignore[attr-defined]
    facade._connhub_guard = True  # type: ignore[attr-defined]
    pytds.socket = facade


def encrypt(config: Mapping[str, Any]) -> bool:
    value = config.get("encrypt")
    if value is None or value == "":
        return True
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
        return value.lower() in ("true", "yes", "1")
    raise invalid_option("config.encrypt must be true or false", "encrypt")


def host(config: Mapping[str, Any]) -> str:
    name = require_host(config)  # also refuses "host\\instance" (SQL Browser lookups)
    if ":" in name and not is_ipv6(name):
        raise invalid_option(
            "config.host must be a host name or IP (put the port in config.port)", "host"
        )
    return name


def _ca_file() -> str:
    import certifi

    path: str = certifi.where()
    return path


def _open_socket(address: str, port: int, timeout: float) -> socket.socket:
    sock = socket.create_connection((address, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class SqlServerAdapter:
    name = "sqlserver"
    display_name = "SQL Server"
    dialect = "tsql"
    driver_module = "pytds"

    def target(self, config: Mapping[str, Any]) -> ConnectTarget:
        return ConnectTarget(host(config), require_port(config, DEFAULT_PORT))

    def validate_options(self, config: Mapping[str, Any]) -> None:
        refuse_options(
            config, _DENIED, why="it would read local files, weaken TLS or dial other hosts"
        )
        host(config)
        require_port(config, DEFAULT_PORT)
        require_text(config, "database", max_len=128)
        require_text(config, "username", max_len=128)
        encrypt(config)

    def connect(self, request: ConnectRequest) -> Any:
        import pytds

        config = request.config
        self.validate_options(config)
        if request.address is None:
            # Without a checked address pytds would resolve the name itself (egress bypass).
            raise ValueError("sqlserver needs the address checked by the egress policy")
        _guard_pytds()
        seconds = max(0.5, request.timeout_s)
        port = require_port(config, DEFAULT_PORT)
        tls: dict[str, Any] = (
            {"cafile": _ca_file(), "validate_host": True} if encrypt(config) else {}
        )
        sock = _open_socket(request.address, port, seconds)
        try:
            return pytds.connect(
                dsn=host(config),  # the name: SNI and the certificate check use it
                port=port,
                sock=sock,
                database=config["database"],
                user=config["username"],
                password=request.credentials.get("password", ""),
                login_timeout=seconds,
                timeout=seconds,
                autocommit=True,
                appname="connhub",
                disable_connect_retry=True,
                **tls,
            )
        except BaseException:
            sock.close()
            raise

    def permission_checks(self, conn: Any, config: Mapping[str, Any]) -> str:
        database = config["database"]
        with closing(conn.cursor()) as cur:
            cur.execute("SELECT 1")
            cur.fetchone()
            cur.execute("SELECT HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'SELECT')")
            row = cur.fetchone()
        if not row or row[0] != 1:
            raise StepFailed(
                ErrorCode.PERMISSION_DENIED,
                f"The login can connect to {database} but has no SELECT permission on it "
                "(HAS_PERMS_BY_NAME returned "
                f"{row[0] if row else None}); grant db_datareader or SELECT on the database",
            )
        return f"SELECT 1 succeeded in database {database}; SELECT permission on it confirmed"

    def identity(self, conn: Any, config: Mapping[str, Any]) -> dict[str, Any]:
        with closing(conn.cursor()) as cur:
            cur.execute("SELECT SUSER_SNAME(), DB_NAME(), @@VERSION")
            user, database, version = cur.fetchone()
        return {"user": user, "database": database, "serverVersion": str(version).splitlines()[0]}

    def classify(self, exc: BaseException) -> str:
        if isinstance(exc, StepFailed):
            return exc.code
        if isinstance(exc, RedirectRefused):
            return ErrorCode.NETWORK_UNREACHABLE
        import pytds

        causes = exception_chain(exc)
        # pytds wraps a retried failure in TimeoutError: judge the server's answer first.
        for cause in causes:
            if isinstance(cause, pytds.Error):
                number = getattr(cause, "msg_no", 0) or getattr(cause, "number", 0)
                text = str(cause)
                if number == 18456 and re.search(r"Cannot open database", text, re.I):
                    return ErrorCode.PERMISSION_DENIED  # the login worked, the database did not
                if number in _MSG_NO:
                    return _MSG_NO[number]
                by_text = first_match(_PATTERNS, text)
                if by_text is not None:
                    return by_text
                if isinstance(cause, pytds.OperationalError) and number == 0:
                    break
                return ErrorCode.PROVIDER_ERROR
            if isinstance(cause, RedirectRefused):
                return ErrorCode.NETWORK_UNREACHABLE
        if any(isinstance(c, TimeoutError) for c in causes):
            return ErrorCode.TIMEOUT
        if any(isinstance(c, OSError) for c in causes):
            return ErrorCode.NETWORK_UNREACHABLE
        if any(type(c).__module__.startswith("OpenSSL") for c in causes):
            return ErrorCode.INVALID_CONFIG  # TLS handshake failed (certificate, protocol)
        return ErrorCode.PROVIDER_ERROR


ADAPTER = SqlServerAdapter()
