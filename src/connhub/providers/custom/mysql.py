"""MySQL / MariaDB adapter (PyMySQL) for the SQL kind.

Pinning: we open the TCP socket to the checked address ourselves and hand it to PyMySQL
(``defer_connect`` + ``connect(sock)``), so the driver never resolves the name; ``host`` stays
the name, so TLS SNI and ``verify_identity`` check the certificate against it.

``LOAD DATA LOCAL INFILE`` is never enabled (a hostile server can ask the client for any
file it can read); a config that tries to enable it is refused, and the client never
advertises ``CLIENT.LOCAL_FILES``. Options that read local files (``read_default_file``,
``ssl_ca``...) or run statements (``init_command``) are refused too.

``ssl`` (config; the catalogue declares it as a boolean "require TLS"): absent/false/
``preferred`` (TLS when the server offers it), true/``required`` (TLS, no certificate check),
``disabled``, ``verify_ca``, ``verify_identity``.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Mapping
from typing import Any

from connhub.providers.kinds.sql import (
    invalid_option,
    refuse_options,
    require_host,
    require_port,
    require_text,
)
from connhub.providers.kinds.sql_driver import ConnectRequest, ConnectTarget
from connhub.verification.codes import ErrorCode

DEFAULT_PORT = 3306
SSL_MODES = ("disabled", "preferred", "required", "verify_ca", "verify_identity")
_LOCAL_INFILE = ("local_infile", "localInfile", "allow_local_infile", "allowLoadLocalInfile")
_DENIED = (
    "read_default_file",
    "read_default_group",
    "init_command",
    "unix_socket",
    "named_pipe",
    "bind_address",
    "auth_plugin_map",
    "server_public_key",
    "ssl_ca",
    "ssl_capath",
    "ssl_cert",
    "ssl_key",
    "ssl_key_password",
    "client_flag",
    "defer_connect",
    "conv",
    "cursorclass",
    "sql_mode",
    "program_name",
    "max_allowed_packet",
    "password",
    "passwd",
)
_ERRNO = {
    1045: ErrorCode.INVALID_CREDENTIALS,  # access denied (bad user/password)
    1698: ErrorCode.INVALID_CREDENTIALS,  # access denied (no password / socket auth)
    1044: ErrorCode.PERMISSION_DENIED,  # no access to the database
    1142: ErrorCode.PERMISSION_DENIED,  # table privilege
    1143: ErrorCode.PERMISSION_DENIED,  # column privilege
    1227: ErrorCode.PERMISSION_DENIED,  # needs a privilege (SUPER, ...)
    1130: ErrorCode.PERMISSION_DENIED,  # this host may not connect
    1049: ErrorCode.INVALID_CONFIG,  # unknown database
    1251: ErrorCode.INVALID_CONFIG,  # auth plugin the client lacks
    2026: ErrorCode.INVALID_CONFIG,  # TLS required but refused / failed
    3159: ErrorCode.INVALID_CONFIG,  # server requires TLS
    2002: ErrorCode.NETWORK_UNREACHABLE,
    2003: ErrorCode.NETWORK_UNREACHABLE,  # can't connect
    2005: ErrorCode.NETWORK_UNREACHABLE,  # unknown host
    2006: ErrorCode.NETWORK_UNREACHABLE,  # server has gone away
    2013: ErrorCode.TIMEOUT,  # lost connection (read timed out)
    3024: ErrorCode.TIMEOUT,  # max_execution_time exceeded
    1969: ErrorCode.TIMEOUT,  # MariaDB max_statement_time exceeded
}


def ssl_mode(config: Mapping[str, Any]) -> str:
    value = config.get("ssl")
    if value is None or value == "":
        return "preferred"
    if value is True:
        return "required"
    if value is False:
        return "preferred"  # the catalogue's ``ssl`` is "require TLS": false only relaxes it
    if isinstance(value, str) and value.lower() in SSL_MODES:
        return value.lower()
    raise invalid_option(f"config.ssl must be true, false or one of {', '.join(SSL_MODES)}", "ssl")


def _ssl_context(mode: str) -> ssl.SSLContext:
    context = ssl.create_default_context()  # system trust store
    if mode == "required":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif mode == "verify_ca":
        context.check_hostname = False
    return context


def _open_socket(address: str, port: int, timeout: float) -> socket.socket:
    """TCP to the checked address, failing the way PyMySQL reports connect errors."""
    import pymysql

    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except OSError as exc:
        raise pymysql.err.OperationalError(
            2013 if isinstance(exc, TimeoutError) else 2003,
            f"Can't connect to MySQL server on {address!r} ({exc})",
        ) from exc
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    return sock


def _uses_tls(conn: Any) -> bool:
    return isinstance(getattr(conn, "_sock", None), ssl.SSLSocket)


class MySqlAdapter:
    name = "mysql"
    display_name = "MySQL"
    dialect = "mysql"
    driver_module = "pymysql"

    def target(self, config: Mapping[str, Any]) -> ConnectTarget:
        return ConnectTarget(require_host(config), require_port(config, DEFAULT_PORT))

    def validate_options(self, config: Mapping[str, Any]) -> None:
        refuse_options(
            config,
            _LOCAL_INFILE,
            why="LOAD DATA LOCAL INFILE lets the database server read files from this service",
        )
        refuse_options(
            config, _DENIED, why="it would read server files or change the driver's behaviour"
        )
        require_host(config)
        require_port(config, DEFAULT_PORT)
        require_text(config, "database", max_len=64)
        require_text(config, "username", max_len=80)
        ssl_mode(config)

    def connect(self, request: ConnectRequest) -> Any:
        import pymysql
        from pymysql.constants import CLIENT

        config = request.config
        self.validate_options(config)  # local_infile is refused here too, whoever calls
        if request.address is None:
            # Without a checked address PyMySQL would resolve the name itself (egress bypass).
            raise ValueError("mysql needs the address checked by the egress policy")
        mode = ssl_mode(config)
        timeout = max(0.001, request.timeout_s)
        tls: dict[str, Any] = {}
        if mode == "disabled":
            tls["ssl_disabled"] = True
        elif mode != "preferred":
            tls["ssl"] = _ssl_context(mode)
        conn = pymysql.connections.Connection(
            host=require_host(config),  # the name: SNI and certificate checks use it
            port=require_port(config, DEFAULT_PORT),
            user=config["username"],
            password=request.credentials.get("password", ""),
            database=config["database"],
            connect_timeout=timeout,
            read_timeout=timeout,
            write_timeout=timeout,
            local_infile=False,
            client_flag=0,
            autocommit=True,
            charset="utf8mb4",
            defer_connect=True,
            **tls,
        )
        if conn.client_flag & CLIENT.LOCAL_FILES:  # belt and braces: never advertise it
            raise RuntimeError("refusing a MySQL session that allows LOCAL INFILE")
        sock = _open_socket(request.address, conn.port, timeout)
        try:
            conn.connect(sock)
        except BaseException:
            sock.close()
            raise
        try:
            if mode not in ("disabled", "preferred") and not _uses_tls(conn):
                raise invalid_option("the server did not negotiate TLS", "ssl")
            if request.read_only:
                self._restrict(conn, request.timeout_s)
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _restrict(conn: Any, timeout_s: float) -> None:
        """Read-only session with a statement time limit (MariaDB and MySQL spell it apart)."""
        with conn.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION READ ONLY")
            if "mariadb" in conn.get_server_info().lower():
                cur.execute("SET SESSION max_statement_time = %s", (max(0.001, timeout_s),))
            else:
                cur.execute(
                    "SET SESSION max_execution_time = %s", (max(1, round(timeout_s * 1000)),)
                )

    def permission_checks(self, conn: Any, config: Mapping[str, Any]) -> str:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()
        return f"Required permissions confirmed (SELECT 1 in database {config['database']})"

    def identity(self, conn: Any, config: Mapping[str, Any]) -> dict[str, Any]:
        """From the handshake and the login: no extra round trip."""
        return {
            "user": config["username"],
            "database": config["database"],
            "serverVersion": conn.get_server_info(),
            "tls": _uses_tls(conn),
        }

    def classify(self, exc: BaseException) -> str:
        import pymysql

        if isinstance(exc, pymysql.err.MySQLError) and exc.args and isinstance(exc.args[0], int):
            return _ERRNO.get(exc.args[0], ErrorCode.PROVIDER_ERROR)
        if isinstance(exc, TimeoutError):
            return ErrorCode.TIMEOUT
        if isinstance(exc, OSError):
            return ErrorCode.NETWORK_UNREACHABLE
        return ErrorCode.PROVIDER_ERROR


ADAPTER = MySqlAdapter()
