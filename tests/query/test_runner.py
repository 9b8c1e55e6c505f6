"""The database-level lock on its own: the runner with the guard skipped, on real databases.

If the parser were ever fooled, the read-only transaction, the statement timeout and the
single-statement protocol must still hold. The sessions here log in as accounts that *may*
write (PostgreSQL superuser, a MariaDB user with ALL on its database), so only the runner's
read-only session stops the writes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pymysql
import pytest

from connhub.errors import QueryRefused, UpstreamError
from connhub.kit.egress import EgressPolicy
from connhub.providers.kinds.sql import load_adapter, open_session
from connhub.query.errors import translate
from connhub.query.runner import executor_for, mysql_sql_mode
from query.fixtures import (  # noqa: F401 (fixtures)
    BIG_ROWS,
    CustomerDb,
    maria_customer,
    maria_victim_rows,
    pg_customer,
    pg_victim_rows,
)

EGRESS = EgressPolicy(["127.0.0.1"])


async def _session(db: CustomerDb) -> tuple[Any, Any]:
    body = db.body()
    conn = await open_session(
        db.provider, body["config"], body["credentials"], egress=EGRESS, timeout_s=5, read_only=True
    )
    executor = executor_for(db.provider)
    executor.prepare(conn, 5)
    return conn, executor


@pytest.fixture
async def pg(pg_customer: CustomerDb) -> AsyncIterator[tuple[Any, Any]]:
    conn, executor = await _session(pg_customer)
    yield conn, executor
    conn.close()


@pytest.fixture
async def maria(maria_customer: CustomerDb) -> AsyncIterator[tuple[Any, Any]]:
    conn, executor = await _session(maria_customer)
    yield conn, executor
    conn.close()


PG_WRITES = [
    "INSERT INTO shop.victim VALUES (1)",
    "CREATE TABLE shop.pwned (x int)",
    "DELETE FROM shop.victim",
    "SELECT shop.writer()",  # a function that writes: invisible to any parser
    "WITH d AS (INSERT INTO shop.victim VALUES (1) RETURNING x) SELECT * FROM d",
]


@pytest.mark.parametrize("sql", PG_WRITES)
@pytest.mark.parametrize("kind", ["select", "show"])
def test_pg_writes_fail_in_the_database(pg, pg_customer, sql: str, kind: str) -> None:
    conn, executor = pg
    with pytest.raises(psycopg.Error) as info:
        executor.query(conn, sql, kind, 10, 5)
    # The unwrapped path ("show") reaches the read-only transaction; the query path wraps the
    # text as a subquery (SELECT * FROM (<sql>) ... LIMIT n), where only a query parses.
    expected = {"25006"} if kind == "show" else {"25006", "42601", "0A000"}
    assert info.value.sqlstate in expected, info.value
    assert executor.healthy(conn)
    assert pg_victim_rows(pg_customer) == 0
    if info.value.sqlstate == "25006":
        error = translate(info.value, load_adapter("postgres"), timeout_s=5)
        assert isinstance(error, QueryRefused) and error.code == "statement_not_read_only"


@pytest.mark.parametrize("kind", ["select", "show"])
def test_pg_stacked_statements_fail_in_the_protocol(pg, pg_customer, kind: str) -> None:
    conn, executor = pg
    for sql in (
        "SELECT 1; INSERT INTO shop.victim VALUES (1)",
        "COMMIT; INSERT INTO shop.victim VALUES (1); SELECT 1",
    ):
        with pytest.raises(psycopg.Error) as info:
            executor.query(conn, sql, kind, 10, 5)
        assert "multiple commands" in str(info.value) or info.value.sqlstate == "42601"
    assert pg_victim_rows(pg_customer) == 0


def test_pg_session_is_read_only_outside_our_transactions(pg) -> None:
    conn, _ = pg
    row = conn.execute("SHOW default_transaction_read_only").fetchone()
    assert row == ("on",)


def test_pg_statement_timeout(pg) -> None:
    conn, executor = pg
    started = time.perf_counter()
    with pytest.raises(psycopg.Error) as info:
        executor.query(conn, "SELECT pg_sleep(5)", "select", 10, 0.3)
    assert info.value.sqlstate == "57014" and time.perf_counter() - started < 2
    error = translate(info.value, load_adapter("postgres"), timeout_s=0.3)
    assert isinstance(error, UpstreamError) and error.code == "timeout"
    assert executor.healthy(conn)
    assert executor.query(conn, "SELECT 1 AS one", "select", 10, 5).rows == [(1,)]


def test_pg_fetch_is_bounded(pg) -> None:
    conn, executor = pg
    result = executor.query(conn, "SELECT id FROM big ORDER BY id", "select", 10, 5)
    assert [r[0] for r in result.rows] == list(range(1, 11)) and result.truncated
    everything = executor.query(conn, "SELECT id FROM big", "select", BIG_ROWS, 5)
    assert len(everything.rows) == BIG_ROWS and not everything.truncated


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO victim VALUES (1)",
        "CREATE TABLE pwned (x INT)",
        "DROP TABLE victim",
        "UPDATE victim SET x = 2",
    ],
)
def test_maria_writes_fail_in_the_database(maria, maria_customer, sql: str) -> None:
    conn, executor = maria
    with pytest.raises(pymysql.err.MySQLError) as info:
        executor.query(conn, sql, "select", 10, 5)
    assert info.value.args[0] == 1792, info.value  # Cannot execute ... in a READ ONLY trx
    error = translate(info.value, load_adapter("mysql"), timeout_s=5)
    assert isinstance(error, QueryRefused) and error.code == "statement_not_read_only"
    assert executor.healthy(conn)
    assert maria_victim_rows(maria_customer) == 0


def test_maria_stacked_statements_fail_in_the_protocol(maria, maria_customer) -> None:
    conn, executor = maria
    with pytest.raises(pymysql.err.MySQLError) as info:
        executor.query(conn, "SELECT 1; INSERT INTO victim VALUES (1)", "select", 10, 5)
    assert info.value.args[0] == 1064  # the client never enables multi-statements
    assert maria_victim_rows(maria_customer) == 0


def test_maria_statement_timeout(maria) -> None:
    conn, executor = maria
    started = time.perf_counter()
    with pytest.raises(pymysql.err.MySQLError) as info:
        executor.query(conn, "SELECT SLEEP(5) FROM big LIMIT 1", "select", 10, 0.3)
    assert time.perf_counter() - started < 2
    error = translate(info.value, load_adapter("mysql"), timeout_s=0.3)
    assert error.code == "timeout", info.value
    assert executor.query(conn, "SELECT 1", "select", 10, 5).rows == [(1,)]


def test_maria_fetch_bounded_by_sql_select_limit(maria) -> None:
    conn, executor = maria
    result = executor.query(conn, "SELECT id FROM big ORDER BY id", "select", 10, 5)
    assert [r[0] for r in result.rows] == list(range(1, 11)) and result.truncated
    assert executor.healthy(conn)  # the server stopped at 11 rows: nothing left to drain
    catalog = executor.catalog(conn, "SELECT id FROM big", None, 5)
    assert len(catalog) == BIG_ROWS  # sql_select_limit is reset for our own queries


def test_maria_session_refuses_lexical_modes(maria) -> None:
    conn, _ = maria
    with conn.cursor() as cur:
        cur.execute("SELECT @@SESSION.sql_mode, @@SESSION.tx_read_only")
        mode, read_only = cur.fetchone()
    assert "NO_BACKSLASH_ESCAPES" not in mode and "ANSI_QUOTES" not in mode
    assert read_only == 1


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("STRICT_TRANS_TABLES,NO_BACKSLASH_ESCAPES", "STRICT_TRANS_TABLES"),
        ("ANSI_QUOTES,ONLY_FULL_GROUP_BY", "ONLY_FULL_GROUP_BY"),
        ("ANSI", "REAL_AS_FLOAT,PIPES_AS_CONCAT,IGNORE_SPACE,ONLY_FULL_GROUP_BY"),
        ("", ""),
    ],
)
def test_mysql_sql_mode(given: str, expected: str) -> None:
    assert mysql_sql_mode(given) == expected
