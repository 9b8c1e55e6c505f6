"""PostgreSQL adapter against the machine's server (trust) and a password-checking cluster."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql as pgsql

from connhub.errors import BadRequest
from connhub.kit import threads
from connhub.kit.egress import EgressPolicy
from connhub.kit.threads import run_blocking
from connhub.providers.custom.postgres import ADAPTER, NO_PASSFILE
from connhub.providers.kinds.sql import sql_steps
from connhub.providers.kinds.sql_driver import ConnectRequest, ConnectTarget
from connhub.verification.result import StepStatus, VerificationOutcome
from connhub.verification.runner import run_steps
from support.databases import ScramPostgres, pg_admin_dsn

LOOPBACK = EgressPolicy(["127.0.0.1"])
TRUST = "ignored-under-trust"  # the machine server trusts loopback logins
BASE = {"host": "127.0.0.1", "port": 5432, "database": "postgres", "username": "postgres"}


async def check(
    config: dict[str, Any], password: str = TRUST, egress: EgressPolicy = LOOPBACK
) -> VerificationOutcome:
    steps = sql_steps("postgres", config, {"password": password}, egress=egress)
    return await run_steps(steps, budget_s=5, secrets=[password])


@pytest.fixture(params=["loop", "thread"])
def login_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways a verification logs in: on the event loop (the default for every ``sslMode``
    but ``verify-full``) and through a worker thread (``verify-full``, and other adapters)."""
    if request.param == "thread":
        monkeypatch.setattr(ADAPTER, "login_on_loop", lambda config: False)
    return str(request.param)


@pytest.mark.usefixtures("login_path")
async def test_good_credentials_pass_all_three_steps() -> None:
    outcome = await check(BASE)
    assert outcome.success, outcome
    assert [s.status for s in outcome.steps] == [StepStatus.PASSED] * 3
    assert outcome.steps[2].message == "Required permissions confirmed (SELECT 1)"
    assert outcome.identity["user"] == "postgres"
    assert outcome.identity["database"] == "postgres"
    assert outcome.identity["serverVersion"]


async def test_unknown_database_is_invalid_config() -> None:
    outcome = await check({**BASE, "database": "connhub_no_such_database"})
    assert outcome.code == "invalid_config"
    assert outcome.message == (
        'Invalid configuration: database "connhub_no_such_database" does not exist'
    )
    assert outcome.steps[1].status is StepStatus.FAILED
    assert outcome.steps[2].status is StepStatus.SKIPPED


async def test_egress_policy_blocking_loopback_is_network_unreachable() -> None:
    outcome = await check(BASE, egress=EgressPolicy())
    assert outcome.code == "network_unreachable"
    assert "egress policy" in outcome.message
    assert outcome.steps[0].status is StepStatus.FAILED


async def test_a_name_is_resolved_once_and_the_driver_dials_the_checked_address() -> None:
    """``pinned.invalid`` exists only in the policy's resolver: libpq never looks it up."""
    lookups: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    egress = EgressPolicy(["127.0.0.1"], resolver=resolver)
    outcome = await check({**BASE, "host": "pinned.invalid"}, egress=egress)
    assert outcome.success, outcome
    assert lookups == ["pinned.invalid"]
    assert outcome.identity["host"] == "pinned.invalid"
    assert outcome.identity["address"] == "127.0.0.1"


@pytest.fixture
def role_without_schema_usage() -> Iterator[tuple[str, str]]:
    suffix = uuid.uuid4().hex[:10]
    role, schema = f"connhub_r_{suffix}", f"connhub_s_{suffix}"
    with psycopg.connect(pg_admin_dsn(), autocommit=True) as admin:
        admin.execute(pgsql.SQL("CREATE ROLE {} LOGIN").format(pgsql.Identifier(role)))
        admin.execute(pgsql.SQL("CREATE SCHEMA {}").format(pgsql.Identifier(schema)))
        admin.execute(
            pgsql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(pgsql.Identifier(schema))
        )
    try:
        yield role, schema
    finally:
        with psycopg.connect(pg_admin_dsn(), autocommit=True) as admin:
            admin.execute(pgsql.SQL("DROP SCHEMA IF EXISTS {}").format(pgsql.Identifier(schema)))
            admin.execute(pgsql.SQL("DROP ROLE IF EXISTS {}").format(pgsql.Identifier(role)))


@pytest.mark.usefixtures("login_path")
async def test_role_without_usage_on_the_schema_is_permission_denied(
    role_without_schema_usage: tuple[str, str],
) -> None:
    role, schema = role_without_schema_usage
    outcome = await check({**BASE, "username": role, "schema": schema})
    assert outcome.code == "permission_denied", outcome
    assert outcome.steps[2].status is StepStatus.FAILED
    assert schema in outcome.message and role in outcome.message
    # the same role passes on a schema it may use
    usable = await check({**BASE, "username": role, "schema": "public"})
    assert usable.success, usable
    assert usable.steps[2].message.endswith("(SELECT 1; USAGE on schema public)")


async def test_unknown_schema_is_invalid_config() -> None:
    outcome = await check({**BASE, "schema": "connhub_no_such_schema"})
    assert outcome.code == "invalid_config"


@pytest.mark.usefixtures("login_path")
async def test_wrong_password_is_invalid_credentials(scram_postgres: ScramPostgres) -> None:
    cfg = {
        "host": scram_postgres.host,
        "port": scram_postgres.port,
        "database": scram_postgres.database,
        "username": "alice",
    }
    wrong = "definitely-not-alices-password"
    outcome = await check(cfg, password=wrong)
    assert outcome.code == "invalid_credentials", outcome
    assert "password authentication failed" in outcome.message
    assert wrong not in repr(outcome)
    good = await check(cfg, password=scram_postgres.users["alice"])
    assert good.success, good


@pytest.mark.usefixtures("login_path")
async def test_scram_role_without_schema_usage(scram_postgres: ScramPostgres) -> None:
    cfg = {
        "host": scram_postgres.host,
        "port": scram_postgres.port,
        "database": scram_postgres.database,
        "username": "bob",
        "schema": "secure",
    }
    outcome = await check(cfg, password=scram_postgres.users["bob"])
    assert outcome.code == "permission_denied"


async def test_the_login_on_the_loop_needs_no_worker_thread() -> None:
    """With the only worker thread busy, a thread login would wait out the budget."""
    threads.configure(1)
    release = threading.Event()
    busy = asyncio.ensure_future(run_blocking(release.wait, 10))
    try:
        steps = sql_steps("postgres", BASE, {"password": TRUST}, egress=LOOPBACK)
        outcome = await run_steps(steps, budget_s=2, secrets=[TRUST])
        assert outcome.success, outcome
        assert not busy.done()
    finally:
        release.set()
        await busy
        threads.configure(threads.DEFAULT_LIMIT)


async def test_a_login_cut_off_by_the_budget_leaves_no_socket_open() -> None:
    """A server that accepts and never answers: at the budget every socket we opened closes."""
    closed: list[asyncio.Event] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        gone = asyncio.Event()
        closed.append(gone)
        while await reader.read(4096):
            pass  # the startup packet arrives; we never reply
        gone.set()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        cfg = {**BASE, "port": port, "sslMode": "disable"}
        steps = sql_steps("postgres", cfg, {"password": TRUST}, egress=LOOPBACK)
        outcome = await run_steps(steps, budget_s=0.6, secrets=[TRUST])
        assert outcome.code == "timeout", outcome
        assert closed  # the login reached the server
        async with asyncio.timeout(2):
            for gone in closed:
                await gone.wait()
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    "bad",
    [
        {"sslrootcert": "/etc/ssl/certs/ca.pem"},
        {"sslRootCert": "/etc/ssl/certs/ca.pem"},
        {"passfile": "/root/.pgpass"},
        {"service": "prod"},
        {"options": "-c search_path=evil"},
        {"hostaddr": "10.0.0.1"},
        {"sslMode": "please"},
        {"host": "a,b"},
        {"host": "/var/run/postgresql"},
        {"database": "dbname=postgres host=10.0.0.1"},
        {"database": "postgresql://10.0.0.1/x"},
        {"username": ""},
    ],
)
def test_dangerous_or_malformed_options_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(BadRequest) as info:
        ADAPTER.validate_options({**BASE, **bad})
    assert info.value.code == "invalid_config"


def test_connection_parameters() -> None:
    request = ConnectRequest(
        config={**BASE, "host": "db.example.com", "sslMode": "verify-full"},
        credentials={"password": "pw"},
        target=ConnectTarget("db.example.com", 5432),
        address="203.0.113.7",
        timeout_s=0.4,
        read_only=True,
    )
    params = ADAPTER._params(request)
    assert params["host"] == "db.example.com"  # SNI and certificate checks use the name
    assert params["hostaddr"] == "203.0.113.7"  # the socket goes to the checked address
    assert params["connect_timeout"] == 2  # libpq's minimum
    assert params["passfile"] == NO_PASSFILE
    assert params["sslmode"] == "verify-full" and params["sslrootcert"] == "system"
    assert "statement_timeout=400" in params["options"]
    assert "default_transaction_read_only=on" in params["options"]
    with pytest.raises(ValueError):
        ADAPTER._params(
            ConnectRequest(config=BASE, credentials={}, target=None, address=None, timeout_s=1)
        )


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (psycopg.errors.lookup("28P01")("x"), "invalid_credentials"),
        (psycopg.errors.lookup("28000")("x"), "invalid_credentials"),
        (psycopg.errors.lookup("3D000")("x"), "invalid_config"),
        (psycopg.errors.lookup("42501")("x"), "permission_denied"),
        (psycopg.errors.lookup("57014")("x"), "timeout"),
        (psycopg.errors.ConnectionTimeout("connection timeout expired"), "timeout"),
        (
            psycopg.OperationalError(
                'connection failed: connection to server at "10.1.1.1", port 5432 failed: '
                'FATAL:  password authentication failed for user "x"'
            ),
            "invalid_credentials",
        ),
        (psycopg.OperationalError('FATAL:  role "ghost" does not exist'), "invalid_credentials"),
        (psycopg.OperationalError("... failed: Connection refused"), "network_unreachable"),
        (
            psycopg.OperationalError("server does not support SSL, but SSL was required"),
            "invalid_config",
        ),
        (psycopg.OperationalError("something odd"), "provider_error"),
    ],
)
def test_classify(exc: BaseException, code: str) -> None:
    assert ADAPTER.classify(exc) == code
