"""MySQL adapter against the machine's MariaDB (root, empty password, 127.0.0.1:3306)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
from pymysql.constants import CLIENT

from connhub.errors import BadRequest
from connhub.kit.egress import EgressPolicy
from connhub.kit.threads import run_blocking
from connhub.providers.custom.mysql import ADAPTER
from connhub.providers.kinds.sql import close_session, open_session, sql_steps
from connhub.verification.result import StepStatus, VerificationOutcome
from connhub.verification.runner import run_steps
from support.databases import MariaDBUsers

LOOPBACK = EgressPolicy(["127.0.0.1"])
ROOT = {"host": "127.0.0.1", "port": 3306, "database": "mysql", "username": "root"}


async def check(
    config: dict[str, Any], password: str = "", egress: EgressPolicy = LOOPBACK
) -> VerificationOutcome:
    steps = sql_steps("mysql", config, {"password": password}, egress=egress)
    return await run_steps(steps, budget_s=5, secrets=[password])


async def test_root_passes_all_three_steps() -> None:
    outcome = await check(ROOT)
    assert outcome.success, outcome
    assert [s.status for s in outcome.steps] == [StepStatus.PASSED] * 3
    assert outcome.steps[2].message == "Required permissions confirmed (SELECT 1 in database mysql)"
    assert outcome.identity["database"] == "mysql"
    assert "MariaDB" in outcome.identity["serverVersion"]


@pytest.fixture
def user_with_password() -> Iterator[tuple[str, str]]:
    user, password = f"connhub_p_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    root = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    with root.cursor() as cur:
        cur.execute(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY %s", (password,))
        cur.execute(f"GRANT SELECT ON mysql.db TO '{user}'@'127.0.0.1'")
    try:
        yield user, password
    finally:
        with root.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'127.0.0.1'")
        root.close()


async def test_wrong_password_is_invalid_credentials(user_with_password: tuple[str, str]) -> None:
    user, password = user_with_password
    cfg = {**ROOT, "username": user}
    wrong = "not-the-password-123"
    outcome = await check(cfg, password=wrong)
    assert outcome.code == "invalid_credentials", outcome
    assert "Access denied" in outcome.message
    assert outcome.steps[1].status is StepStatus.FAILED
    assert (await check(cfg, password=password)).success


async def test_user_without_access_to_the_database_is_permission_denied(
    mariadb_users: MariaDBUsers,
) -> None:
    cfg = {**ROOT, "database": mariadb_users.database, "username": mariadb_users.no_access}
    outcome = await check(cfg, password=mariadb_users.users[mariadb_users.no_access])
    assert outcome.code == "permission_denied", outcome
    reader = {**cfg, "username": mariadb_users.reader}
    assert (await check(reader, password=mariadb_users.users[mariadb_users.reader])).success


async def test_unknown_database_is_invalid_config() -> None:
    outcome = await check({**ROOT, "database": "connhub_no_such_db"})
    assert outcome.code == "invalid_config"
    assert outcome.message == (
        "Invalid configuration: Unknown database 'connhub_no_such_db' (error 1049)"
    )


async def test_egress_policy_blocking_loopback_is_network_unreachable() -> None:
    outcome = await check(ROOT, egress=EgressPolicy())
    assert outcome.code == "network_unreachable" and "egress policy" in outcome.message


async def test_a_name_is_resolved_once_and_the_driver_dials_the_checked_address() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    egress = EgressPolicy(["127.0.0.1"], resolver=resolver)
    outcome = await check({**ROOT, "host": "pinned.invalid"}, egress=egress)
    assert outcome.success, outcome


async def test_tls_required_but_not_offered_is_invalid_config() -> None:
    outcome = await check({**ROOT, "ssl": True})  # this MariaDB has have_ssl=DISABLED
    assert outcome.code == "invalid_config", outcome


@pytest.mark.parametrize(
    "bad",
    [
        {"localInfile": True},
        {"local_infile": 1},
        {"allowLoadLocalInfile": "true"},
        {"LOCAL_INFILE": 1},  # option names compare without case, "_" or "-"
        {"local-infile": True},
        {"allow-load-local-infile": "1"},
        {"localInfile": False},  # not settable at all, even to its safe value
        {"readDefaultFile": "/etc/mysql/debian.cnf"},
        {"init_command": "DROP TABLE x"},
        {"unixSocket": "/run/mysqld/mysqld.sock"},
        {"ssl_ca": "/etc/ssl/ca.pem"},
        {"ssl": "sometimes"},
        {"host": "a,b"},
        {"database": ""},
    ],
)
def test_dangerous_or_malformed_options_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(BadRequest) as info:
        ADAPTER.validate_options({**ROOT, **bad})
    assert info.value.code == "invalid_config"


async def test_local_infile_attempt_fails_verification() -> None:
    outcome = await check({**ROOT, "localInfile": True})
    assert outcome.code == "invalid_config"
    assert "LOCAL INFILE" in outcome.message


async def test_sessions_never_allow_local_infile_and_are_read_only() -> None:
    conn = await open_session("mysql", ROOT, {"password": ""}, egress=LOOPBACK, timeout_s=5)
    try:
        assert not conn.client_flag & CLIENT.LOCAL_FILES

        def write() -> None:
            with conn.cursor() as cur:
                cur.execute("CREATE TEMPORARY TABLE connhub_t (x int)")
                cur.execute("INSERT INTO mysql.db (Host) VALUES ('x')")

        with pytest.raises(pymysql.err.MySQLError) as info:
            await run_blocking(write)
        assert info.value.args[0] in (1792, 1142)  # read-only transaction
    finally:
        await close_session(conn)


@pytest.mark.parametrize(
    ("errno", "code"),
    [
        (1045, "invalid_credentials"),
        (1044, "permission_denied"),
        (1142, "permission_denied"),
        (1143, "permission_denied"),
        (1049, "invalid_config"),
        (2003, "network_unreachable"),
        (2013, "timeout"),
        (9999, "provider_error"),
    ],
)
def test_classify_by_errno(errno: int, code: str) -> None:
    assert ADAPTER.classify(pymysql.err.OperationalError(errno, "msg")) == code


def test_classify_socket_errors() -> None:
    assert ADAPTER.classify(TimeoutError()) == "timeout"
    assert ADAPTER.classify(ConnectionRefusedError()) == "network_unreachable"
