"""Snowflake adapter against fakesnow's server, with the real snowflake-connector-python.

fakesnow does not check credentials (any password or key pair logs in), so the "success"
tests prove the login request is well formed and the permission statements run, and rejected
logins are covered by ``classify`` with the connector's real exception classes. Everything
else (stage listing, unreachable and silent servers, local key decryption) is end to end.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from snowflake.connector import errors as sf

from connhub.kit.egress import EgressPolicy
from connhub.providers.custom.snowflake import ADAPTER, private_key_der
from connhub.providers.kinds.sql import sql_steps
from connhub.providers.kinds.sql_driver import ConnectRequest
from connhub.verification.codes import ErrorCode
from connhub.verification.result import StepFailed
from connhub.verification.runner import run_steps
from support.fakesnow_server import (
    FakesnowServer,
    closed_port,
    create_objects,
    fakesnow_server_fixture,  # noqa: F401 - registers the fixture
    non_loopback_traffic,
    silent_server,
    unique_name,
)

from .driver_seam import assert_option_refused

PASSPHRASE = "correct horse battery staple"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey, passphrase: str | None = None) -> str:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    ).decode()


def request(
    config: dict[str, Any], credentials: dict[str, str], timeout_s: float = 10.0
) -> ConnectRequest:
    target = ADAPTER.target(config)
    return ConnectRequest(
        config=config,
        credentials=credentials,
        target=target,
        address="127.0.0.1",
        timeout_s=timeout_s,
    )


def connect_and_check(config: dict[str, Any], credentials: dict[str, str]) -> str:
    ADAPTER.validate_options(config)
    conn = ADAPTER.connect(request(config, credentials))
    try:
        return ADAPTER.permission_checks(conn, config)
    finally:
        conn.close()


@pytest.fixture
def database(fakesnow_server: FakesnowServer) -> str:
    name = unique_name()
    create_objects(fakesnow_server, name, "ANALYTICS", stages=["FLAGSMITH_STAGE"])
    return name


# --- success ---------------------------------------------------------------------------------


def test_password_login_and_stage_listing(fakesnow_server: FakesnowServer, database: str) -> None:
    config = fakesnow_server.config(database, "ANALYTICS", stage="FLAGSMITH_STAGE")
    message = connect_and_check(config, {"password": "pw"})
    assert message == (
        f"SELECT 1 succeeded in COMPUTE_WH/{database}.ANALYTICS; "
        "stage @FLAGSMITH_STAGE listed (0 files)"
    )


def test_key_pair_login(
    fakesnow_server: FakesnowServer, database: str, rsa_key: rsa.RSAPrivateKey
) -> None:
    """The key is turned into DER and sent as SNOWFLAKE_JWT; fakesnow accepts any JWT."""
    config = fakesnow_server.config(database, "ANALYTICS", role="FLAGSMITH_LOADER")
    message = connect_and_check(config, {"privateKey": pem(rsa_key)})
    assert message == f"SELECT 1 succeeded in COMPUTE_WH/{database}.ANALYTICS"


def test_encrypted_key_pair_login(
    fakesnow_server: FakesnowServer, database: str, rsa_key: rsa.RSAPrivateKey
) -> None:
    config = fakesnow_server.config(database, "ANALYTICS")
    credentials = {"privateKey": pem(rsa_key, PASSPHRASE), "privateKeyPassphrase": PASSPHRASE}
    assert connect_and_check(config, credentials).startswith("SELECT 1 succeeded")


def test_no_traffic_leaves_loopback(fakesnow_server: FakesnowServer, database: str) -> None:
    """The connector's login-time cloud-metadata probes (platform detection) stay off."""
    config = fakesnow_server.config(database, "ANALYTICS")
    with non_loopback_traffic() as seen:
        connect_and_check(config, {"password": "pw"})
    assert seen == []


async def test_whole_sql_kind_run_passes(fakesnow_server: FakesnowServer, database: str) -> None:
    """The adapter inside the SQL kind: egress check, login, permissions, all three passed."""
    config = fakesnow_server.config(database, "ANALYTICS", stage="FLAGSMITH_STAGE")
    steps = sql_steps(
        "snowflake", config, {"password": "pw"}, egress=EgressPolicy(allow=["127.0.0.1"])
    )
    outcome = await run_steps(steps, budget_s=15.0)
    assert outcome.success, outcome
    assert [s.name for s in outcome.steps] == ["connectivity", "authentication", "permissions"]
    assert "stage @FLAGSMITH_STAGE listed" in outcome.steps[-1].message
    assert outcome.identity["user"] == "FLAGSMITH_SERVICE"


async def test_whole_sql_kind_run_keeps_the_raw_error(
    fakesnow_server: FakesnowServer, database: str
) -> None:
    config = fakesnow_server.config(database, "ANALYTICS", stage="MISSING_STAGE")
    steps = sql_steps(
        "snowflake", config, {"password": "pw"}, egress=EgressPolicy(allow=["127.0.0.1"])
    )
    outcome = await run_steps(steps, budget_s=15.0)
    assert not outcome.success
    assert outcome.code == ErrorCode.PERMISSION_DENIED
    assert outcome.raw_error is not None
    assert "MISSING_STAGE' does not exist or not authorized" in outcome.raw_error


# --- failures ----------------------------------------------------------------------------------


def loopback_config(port: int) -> dict[str, Any]:
    """A plain-http account on 127.0.0.1:``port`` (a closed port or a silent server)."""
    return {
        "account": "fakeacct",
        "warehouse": "WH",
        "database": "DB",
        "schema": "S",
        "username": "U",
        "host": "127.0.0.1",
        "port": port,
        "protocol": "http",
    }


def test_missing_stage_fails_with_the_raw_snowflake_error(
    fakesnow_server: FakesnowServer, database: str
) -> None:
    config = fakesnow_server.config(database, "ANALYTICS", stage="NO_SUCH_STAGE")
    with pytest.raises(sf.ProgrammingError) as info:
        connect_and_check(config, {"password": "pw"})
    assert f"Stage '{database}.ANALYTICS.NO_SUCH_STAGE' does not exist or not authorized" in str(
        info.value
    )
    assert ADAPTER.classify(info.value) == ErrorCode.PERMISSION_DENIED


def test_wrong_passphrase_is_decided_before_the_network(rsa_key: rsa.RSAPrivateKey) -> None:
    """The target is a closed port: reaching the network would say network_unreachable."""
    config = loopback_config(closed_port())
    encrypted = pem(rsa_key, PASSPHRASE)
    for credentials in (
        {"privateKey": encrypted, "privateKeyPassphrase": "Not-The-Passphrase-42"},
        {"privateKey": encrypted},
        {"privateKey": "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----"},
    ):
        with pytest.raises(StepFailed) as info:
            ADAPTER.connect(request(config, credentials))
        assert info.value.code == ErrorCode.INVALID_CREDENTIALS
        assert ADAPTER.classify(info.value) == ErrorCode.INVALID_CREDENTIALS
        assert PASSPHRASE not in info.value.message
        assert "Not-The-Passphrase-42" not in info.value.message


def test_private_key_normalisation(rsa_key: rsa.RSAPrivateKey) -> None:
    """Escaped newlines, a bare base64 body and a passphrase for a clear key all load."""
    clear = pem(rsa_key)
    expected = private_key_der(clear, None)
    assert private_key_der(clear.replace("\n", "\\n"), None) == expected
    body = "".join(clear.strip().splitlines()[1:-1])
    assert private_key_der(body, None) == expected
    assert private_key_der(clear, "ignored") == expected


def test_unreachable_account_is_network_unreachable() -> None:
    config = loopback_config(closed_port())
    started = time.monotonic()
    with pytest.raises(sf.OperationalError) as info:
        ADAPTER.connect(request(config, {"password": "pw"}, timeout_s=3))
    assert time.monotonic() - started < 4
    assert ADAPTER.classify(info.value) == ErrorCode.NETWORK_UNREACHABLE


def test_silent_server_times_out_within_the_budget() -> None:
    """A server that accepts TCP and never answers: login must give up at the budget."""
    with silent_server() as port:
        config = loopback_config(port)
        started = time.monotonic()
        with pytest.raises(sf.OperationalError) as info:
            ADAPTER.connect(request(config, {"password": "pw"}, timeout_s=2.5))
        elapsed = time.monotonic() - started
    assert elapsed < 2.5 + 1, elapsed
    assert ADAPTER.classify(info.value) == ErrorCode.TIMEOUT


# --- options -----------------------------------------------------------------------------------

BASE = {
    "account": "xy12345.us-east-1",
    "warehouse": "COMPUTE_WH",
    "database": "FLAGSMITH",
    "schema": "ANALYTICS",
    "username": "FLAGSMITH_SERVICE",
}


def test_target_defaults_to_the_account_host() -> None:
    target = ADAPTER.target(BASE)
    assert (target.host, target.port) == ("xy12345.us-east-1.snowflakecomputing.com", 443)
    override = ADAPTER.target(
        {**BASE, "host": "h.privatelink.snowflakecomputing.com", "port": 8443}
    )
    assert (override.host, override.port) == ("h.privatelink.snowflakecomputing.com", 8443)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"private_key_file": "/etc/shadow"}, "config.private_key_file"),
        ({"privateKeyFilePwd": "x"}, "config.privateKeyFilePwd"),
        ({"token_file_path": "/var/run/token"}, "config.token_file_path"),
        ({"authenticator": "externalbrowser"}, "config.authenticator"),
        ({"authenticator": "https://okta.example.com"}, "config.authenticator"),
        ({"host": "https://evil.example.com"}, "config.host"),
        ({"host": "evil.example.com/path"}, "config.host"),
        ({"host": "evil.example.com:443"}, "config.host"),
        ({"protocol": "ftp"}, "config.protocol"),
        ({"account": "https://xy.snowflakecomputing.com"}, "config.account"),
        ({"warehouse": "WH; DROP TABLE X"}, "config.warehouse"),
        ({"stage": "S; LIST @OTHER"}, "config.stage"),
        ({"role": "R R"}, "config.role"),
    ],
)
def test_dangerous_options_are_refused(extra: dict[str, Any], field: str) -> None:
    assert_option_refused(ADAPTER, {**BASE, **extra}, field)


def test_accepted_options() -> None:
    ADAPTER.validate_options(
        {**BASE, "authenticator": "SNOWFLAKE_JWT", "stage": "@DB.S.STG", "host": "::1"}
    )
    ADAPTER.validate_options({**BASE, "protocol": "HTTP", "port": "8080", "role": "R$1"})


# --- classification with the connector's own exception classes ---------------------------------


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (
            sf.DatabaseError(
                msg="Incorrect username or password was specified.", errno=390100, sqlstate="28000"
            ),
            ErrorCode.INVALID_CREDENTIALS,
        ),
        (
            sf.DatabaseError(msg="JWT token is invalid.", errno=390144, sqlstate="28000"),
            ErrorCode.INVALID_CREDENTIALS,
        ),
        (
            sf.DatabaseError(
                msg="Role 'X' specified in the connect string is not granted",
                errno=390189,
                sqlstate="08004",
            ),
            ErrorCode.PERMISSION_DENIED,
        ),
        (
            sf.ProgrammingError(msg="Session no longer exists.", errno=390112),
            ErrorCode.TOKEN_EXPIRED,
        ),
        (
            sf.ProgrammingError(
                msg="Object does not exist, or operation cannot be performed.",
                errno=2043,
                sqlstate="02000",
            ),
            ErrorCode.PERMISSION_DENIED,
        ),
        (
            sf.ProgrammingError(
                msg="Insufficient privileges to operate on schema 'S'", errno=3001, sqlstate="42501"
            ),
            ErrorCode.PERMISSION_DENIED,
        ),
        (
            sf.OperationalError(
                msg="Statement reached its statement or warehouse timeout", errno=630
            ),
            ErrorCode.TIMEOUT,
        ),
        (
            sf.ForbiddenError(
                msg="Failed to connect to DB. Verify the account name is correct: "
                "x.snowflakecomputing.com:443. 000403: HTTP 403: Forbidden",
                errno=250001,
                sqlstate="08001",
            ),
            ErrorCode.INVALID_CONFIG,
        ),
        (
            sf.ProgrammingError(
                msg="SQL compilation error: syntax error", errno=1003, sqlstate="42000"
            ),
            ErrorCode.PROVIDER_ERROR,
        ),
        (ConnectionRefusedError(111, "Connection refused"), ErrorCode.NETWORK_UNREACHABLE),
        (TimeoutError("timed out"), ErrorCode.TIMEOUT),
    ],
)
def test_classify(exc: BaseException, code: ErrorCode) -> None:
    assert ADAPTER.classify(exc) == code
