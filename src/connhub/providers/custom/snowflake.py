"""Snowflake adapter (snowflake-connector-python 4.8.x) for the SQL kind.

Where we connect: the connector speaks HTTPS to ``<account>.snowflakecomputing.com`` (or the
``host`` a private-link deployment gives). Over HTTPS we must connect *by name*: TLS checks
the certificate against the URL's host and the connector has no "connect to this IP, verify
that name" option. Its (vendored) urllib3 looks the name up again, and ``kit.egress_pins``
answers that lookup with the address the egress check passed, so there is no second lookup
and no DNS rebinding window. Over plain ``http`` (local emulators, tests) there is no
certificate, so we hand the connector the checked address itself.

Credentials: ``password``, or ``privateKey`` (PEM; PKCS#8, PKCS#1 or encrypted PKCS#8) with an
optional ``privateKeyPassphrase``. The key is decrypted here, before any network traffic, so a
wrong passphrase is reported as ``invalid_credentials`` without a login attempt, and the
connector only ever sees unencrypted DER bytes in memory (never a file path).

Timeouts: the connector takes whole seconds. ``login_timeout`` alone does not bound a server
that accepts TCP and never answers (measured: 60 s with ``login_timeout=3``); with
``network_timeout`` and ``socket_timeout`` set too, such a login fails after the budget
(measured 3.0 s for 3 s). We round the budget *down* (minimum 1 s) so we stay inside it.

Side traffic turned off: at every login the 4.x connector probes cloud metadata endpoints
(169.254.169.254, metadata.google.internal) to report its platform;
``platform_detection_timeout_seconds=0`` skips those probes. Session keep-alive heartbeats are
off. OCSP checks are off by default in 4.8 (and explicitly for http). Caveat for queries: large
results are fetched as chunks from cloud-storage URLs the egress policy never saw; verification's
``SELECT 1`` and small capped results come back inline.

Options that read local files or redirect traffic (``private_key_file``, ``token_file_path``,
proxies, connection files, OCSP cache paths...) are refused, as is any ``authenticator`` other
than the two we implement (browser SSO or OAuth flows would contact other hosts).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import closing
from typing import Any

from connhub.kit import egress_pins
from connhub.providers.kinds.driver_errors import (
    REQUESTS_UNREACHABLE,
    MessagePatterns,
    first_match,
    network_code,
)
from connhub.providers.kinds.sql import (
    invalid_option,
    optional_text,
    refuse_options,
    require_host,
    require_port,
    require_text,
)
from connhub.providers.kinds.sql_driver import ConnectRequest, ConnectTarget, is_ipv6, url_host
from connhub.verification.codes import ErrorCode
from connhub.verification.result import StepFailed

DEFAULT_PORT = 443
PROTOCOLS = ("https", "http")
AUTHENTICATORS = ("snowflake", "snowflake_jwt")
# Unquoted Snowflake identifier: we splice these into USE/LIST, so nothing else gets through.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,254}")
# Account identifiers: ``orgname-account``, legacy ``xy12345`` or ``xy12345.us-east-1.aws``.
_ACCOUNT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")
_DENIED = (
    "private_key_file",
    "private_key_file_pwd",
    "private_key",
    "private_key_passphrase",
    "password",
    "passcode",
    "token",
    "token_file_path",
    "connection_name",
    "connections_file_path",
    "proxy_host",
    "proxy_port",
    "proxy_user",
    "proxy_password",
    "ocsp_response_cache_filename",
    "connection_diag_log_path",
    "connection_diag_allowlist_path",
    "connection_diag_whitelist_path",
    "unsafe_file_write",
    "insecure_mode",
    "disable_ocsp_checks",
    "session_parameters",
    "client_store_temporary_credential",
    "oauth_token_request_url",
    "oauth_authorization_url",
    "oauth_redirect_uri",
    "workload_identity_provider",
)
_ERRNO: dict[int, ErrorCode] = {
    390100: ErrorCode.INVALID_CREDENTIALS,  # incorrect username or password
    390144: ErrorCode.INVALID_CREDENTIALS,  # JWT token invalid (key pair not registered)
    394300: ErrorCode.INVALID_CREDENTIALS,  # JWT token invalid
    394301: ErrorCode.INVALID_CREDENTIALS,  # JWT expired (clock skew: the key itself is ours)
    394302: ErrorCode.INVALID_CREDENTIALS,  # JWT not yet valid
    394303: ErrorCode.INVALID_CREDENTIALS,
    394304: ErrorCode.INVALID_CREDENTIALS,  # public key fingerprint mismatch
    394305: ErrorCode.INVALID_CREDENTIALS,
    394306: ErrorCode.INVALID_CREDENTIALS,
    390303: ErrorCode.INVALID_CREDENTIALS,  # OAuth access token invalid
    251008: ErrorCode.INVALID_CREDENTIALS,  # connector could not use the private key
    251006: ErrorCode.INVALID_CREDENTIALS,  # no password
    390110: ErrorCode.TOKEN_EXPIRED,  # ID token expired
    390112: ErrorCode.TOKEN_EXPIRED,  # session expired
    390114: ErrorCode.TOKEN_EXPIRED,  # master token expired
    390318: ErrorCode.TOKEN_EXPIRED,  # OAuth access token expired
    390189: ErrorCode.PERMISSION_DENIED,  # role in the connect string is not granted
    390201: ErrorCode.PERMISSION_DENIED,  # requested object does not exist or not authorized
    2003: ErrorCode.PERMISSION_DENIED,  # "does not exist or not authorized" (ambiguous on purpose)
    2043: ErrorCode.PERMISSION_DENIED,  # object does not exist, or operation cannot be performed
    3001: ErrorCode.PERMISSION_DENIED,  # insufficient privileges
    606: ErrorCode.PERMISSION_DENIED,  # no active warehouse (missing USAGE or wrong name)
    251001: ErrorCode.INVALID_CONFIG,  # no account name
    251005: ErrorCode.INVALID_CONFIG,  # no user
    390400: ErrorCode.INVALID_CONFIG,  # bad request: usually a wrong account identifier
    251011: ErrorCode.TIMEOUT,  # connection timeout during login
    604: ErrorCode.TIMEOUT,  # statement cancelled
    630: ErrorCode.TIMEOUT,  # statement reached its statement or warehouse timeout
}
# Message patterns for errors without a useful number (Superset's custom_errors approach).
# Login verdicts first: they beat the generic "could not connect" reading of errno 250001.
_LOGIN_PATTERNS: MessagePatterns = (
    (re.compile(r"incorrect username or password", re.I), ErrorCode.INVALID_CREDENTIALS),
    (re.compile(r"JWT token is invalid", re.I), ErrorCode.INVALID_CREDENTIALS),
    (re.compile(r"verify the account name", re.I), ErrorCode.INVALID_CONFIG),
)
_QUERY_PATTERNS: MessagePatterns = (
    (re.compile(r"does not exist or not authorized", re.I), ErrorCode.PERMISSION_DENIED),
    (re.compile(r"insufficient privileges", re.I), ErrorCode.PERMISSION_DENIED),
    (re.compile(r"timed? ?out|timeout", re.I), ErrorCode.TIMEOUT),
)


def identifier(config: Mapping[str, Any], key: str) -> str:
    """A config value we put into SQL: an unquoted Snowflake identifier or nothing."""
    value = require_text(config, key)
    if not _IDENTIFIER.fullmatch(value):
        raise invalid_option(
            f"config.{key} must be a Snowflake identifier (letters, digits, _ and $, "
            "not starting with a digit)",
            key,
        )
    return value


def stage_parts(config: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """``stage`` as (database, schema, name): ``NAME``, ``@NAME`` or ``DB.SCHEMA.NAME``."""
    raw = optional_text(config, "stage")
    if raw is None:
        return None
    parts = raw.removeprefix("@").split(".")
    if len(parts) == 1:
        parts = [identifier(config, "database"), identifier(config, "schema"), parts[0]]
    if len(parts) != 3 or not all(_IDENTIFIER.fullmatch(part) for part in parts):
        raise invalid_option(
            "config.stage must be a stage name (NAME, @NAME or DATABASE.SCHEMA.NAME)", "stage"
        )
    return parts[0], parts[1], parts[2]


def protocol(config: Mapping[str, Any]) -> str:
    value = config.get("protocol") or "https"
    if not isinstance(value, str) or value.lower() not in PROTOCOLS:
        raise invalid_option("config.protocol must be https or http", "protocol")
    return value.lower()


def account(config: Mapping[str, Any]) -> str:
    value = require_text(config, "account")
    if not _ACCOUNT.fullmatch(value):
        raise invalid_option(
            "config.account must be an account identifier such as ORGNAME-ACCOUNT or "
            "xy12345.us-east-1 (not a URL)",
            "account",
        )
    return value


def host(config: Mapping[str, Any]) -> str:
    """The configured host (no scheme, path or port), or ``<account>.snowflakecomputing.com``."""
    if config.get("host") in (None, ""):
        return f"{account(config)}.snowflakecomputing.com"
    name = require_host(config)
    if ":" in name and not is_ipv6(name):  # "https:" or "host:443": both have their own keys
        raise invalid_option(
            "config.host must be a bare host name (put the port in config.port and the "
            "scheme in config.protocol)",
            "host",
        )
    return name


def _whole_seconds(timeout_s: float) -> int:
    """The connector wants ints; rounding down keeps us inside the budget (minimum 1 s)."""
    return max(1, int(timeout_s))


def _normalise_pem(text: str) -> bytes:
    """Undo the usual copy-paste damage: escaped newlines, or a bare base64 body."""
    text = text.strip()
    if "\\n" in text and "\n" not in text:
        text = text.replace("\\n", "\n")
    if "-----BEGIN" not in text:
        body = "".join(text.split())
        text = f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----"
    return text.encode()


def private_key_der(pem: str, passphrase: str | None) -> bytes:
    """Decrypt the PEM key locally and return unencrypted PKCS#8 DER for the connector.

    Failures raise ``StepFailed(invalid_credentials)`` naming the field, never the key; the
    cryptography exception is dropped because its text may quote the input.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    data = _normalise_pem(pem)
    password = passphrase.encode() if passphrase else None
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except TypeError:
        if password is None:
            raise StepFailed(
                ErrorCode.INVALID_CREDENTIALS,
                "credentials.privateKey is encrypted: credentials.privateKeyPassphrase is required",
            ) from None
        try:  # a passphrase for an unencrypted key is harmless; use the key as it is
            key = serialization.load_pem_private_key(data, password=None)
        except (TypeError, ValueError):
            raise StepFailed(
                ErrorCode.INVALID_CREDENTIALS, "credentials.privateKey is not a PEM private key"
            ) from None
    except ValueError:
        what = "wrong credentials.privateKeyPassphrase, or " if password else ""
        raise StepFailed(
            ErrorCode.INVALID_CREDENTIALS,
            f"credentials.privateKey could not be loaded ({what}not a PEM private key)",
        ) from None
    except Exception:
        raise StepFailed(
            ErrorCode.INVALID_CREDENTIALS, "credentials.privateKey uses an unsupported format"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise StepFailed(
            ErrorCode.INVALID_CREDENTIALS, "credentials.privateKey must be an RSA (or EC) key"
        )
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _network_code(exc: BaseException) -> ErrorCode | None:
    """Timeout or unreachable from anywhere in the chain, with this connector's class names."""
    return network_code(exc, unreachable_names=REQUESTS_UNREACHABLE)


class SnowflakeAdapter:
    name = "snowflake"
    display_name = "Snowflake"
    dialect = "snowflake"
    driver_module = "snowflake.connector"

    def target(self, config: Mapping[str, Any]) -> ConnectTarget:
        return ConnectTarget(host(config), require_port(config, DEFAULT_PORT))

    def validate_options(self, config: Mapping[str, Any]) -> None:
        refuse_options(
            config,
            _DENIED,
            why="it would read local files, send traffic elsewhere or bypass the credentials",
        )
        authenticator = config.get("authenticator")
        if authenticator is not None and (
            not isinstance(authenticator, str) or authenticator.lower() not in AUTHENTICATORS
        ):
            raise invalid_option(
                "config.authenticator must be snowflake (password) or SNOWFLAKE_JWT (key pair)",
                "authenticator",
            )
        account(config)
        host(config)
        require_port(config, DEFAULT_PORT)
        protocol(config)
        require_text(config, "username")
        for key in ("warehouse", "database", "schema"):
            identifier(config, key)
        if optional_text(config, "role") is not None:
            identifier(config, "role")
        stage_parts(config)

    def connect(self, request: ConnectRequest) -> Any:
        import snowflake.connector

        egress_pins.install()  # the connector's vendored urllib3 exists from now on
        config = request.config
        self.validate_options(config)
        scheme = protocol(config)
        name = host(config)
        if scheme == "http" and request.address is not None:
            name = request.address  # no TLS to break: skip the second lookup
        seconds = _whole_seconds(request.timeout_s)
        kwargs: dict[str, Any] = {
            "account": account(config),
            "user": config["username"],
            "host": url_host(name),
            "port": require_port(config, DEFAULT_PORT),
            "protocol": scheme,
            "warehouse": identifier(config, "warehouse"),
            "database": identifier(config, "database"),
            "schema": identifier(config, "schema"),
            "login_timeout": seconds,
            "network_timeout": seconds,
            "socket_timeout": seconds,
            "client_session_keep_alive": False,
            # 0 skips the login-time probes of cloud metadata endpoints (169.254.169.254,
            # metadata.google.internal) the connector runs for telemetry: egress we never allow.
            "platform_detection_timeout_seconds": 0.0,
            "session_parameters": {"STATEMENT_TIMEOUT_IN_SECONDS": seconds},
        }
        role = optional_text(config, "role")
        if role is not None:
            kwargs["role"] = role
        if scheme == "http":
            kwargs["disable_ocsp_checks"] = True  # no certificate to check
        credentials = request.credentials
        if credentials.get("privateKey"):
            kwargs["private_key"] = private_key_der(
                credentials["privateKey"], credentials.get("privateKeyPassphrase") or None
            )
            kwargs["authenticator"] = "SNOWFLAKE_JWT"
        elif credentials.get("password"):
            kwargs["password"] = credentials["password"]
            kwargs["authenticator"] = "snowflake"
        else:
            raise StepFailed(
                ErrorCode.INVALID_CREDENTIALS,
                "credentials.password or credentials.privateKey is required",
            )
        return snowflake.connector.connect(**kwargs)

    def permission_checks(self, conn: Any, config: Mapping[str, Any]) -> str:
        warehouse = identifier(config, "warehouse")
        database = identifier(config, "database")
        schema = identifier(config, "schema")
        stage = stage_parts(config)
        with closing(conn.cursor()) as cur:
            # Login silently ignores a warehouse/database the role cannot use; USE does not.
            cur.execute(f"USE WAREHOUSE {warehouse}")
            cur.execute(f"USE DATABASE {database}")
            cur.execute(f"USE SCHEMA {database}.{schema}")
            cur.execute("SELECT 1")
            cur.fetchone()
            message = f"SELECT 1 succeeded in {warehouse}/{database}.{schema}"
            if stage is not None:
                cur.execute(f"LIST @{'.'.join(stage)}")
                files = len(cur.fetchall())
                message += f"; stage @{stage[2]} listed ({files} file{'s' * (files != 1)})"
        return message

    def identity(self, conn: Any, config: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "user": getattr(conn, "user", None),
            "role": getattr(conn, "role", None),
            "account": getattr(conn, "account", None),
        }

    def classify(self, exc: BaseException) -> str:
        if isinstance(exc, StepFailed):
            return exc.code
        from snowflake.connector import errors as sf

        if isinstance(exc, sf.Error):
            errno = exc.errno if isinstance(exc.errno, int) else None
            if errno is not None and errno in _ERRNO:
                return _ERRNO[errno]
            text = exc.raw_msg or exc.msg or ""
            login = first_match(_LOGIN_PATTERNS, text)
            if login is not None:
                return login
            if errno in (250001, 250003) or (exc.sqlstate or "").startswith("08"):
                # "Could not connect to Snowflake backend": the cause says why
                return _network_code(exc) or ErrorCode.NETWORK_UNREACHABLE
            if exc.sqlstate == "28000":
                return ErrorCode.INVALID_CREDENTIALS
            return (
                first_match(_QUERY_PATTERNS, text) or _network_code(exc) or ErrorCode.PROVIDER_ERROR
            )
        return _network_code(exc) or ErrorCode.PROVIDER_ERROR


ADAPTER = SnowflakeAdapter()
