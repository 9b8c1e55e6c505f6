"""The SQL guard on its own: what it accepts, what it refuses and why, hashes and table refs."""

from __future__ import annotations

import inspect

import pytest
import sqlglot.expressions.ddl as ddl
import sqlglot.expressions.dml as dml
from sqlglot import exp

from connhub.errors import QueryRefused
from connhub.query import policy
from connhub.query.guard import TableRef, check


def refused(sql: str, dialect: str = "postgres") -> QueryRefused:
    with pytest.raises(QueryRefused) as info:
        check(sql, dialect)
    return info.value


@pytest.mark.parametrize(
    ("dialect", "sql", "kind"),
    [
        ("postgres", "SELECT 1", "select"),
        (
            "postgres",
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) "
            "SELECT * FROM r",
            "select",
        ),
        ("postgres", "SELECT 1 UNION SELECT 2 EXCEPT SELECT 3", "select"),
        ("postgres", "(SELECT 1)", "select"),
        ("postgres", "VALUES (1), (2)", "select"),
        ("postgres", "SELECT 'DELETE FROM t; DROP TABLE x' AS text", "select"),
        ("postgres", 'SELECT "delete", "insert" FROM t', "select"),
        ("postgres", "SELECT $$ ; DELETE FROM t $$", "select"),
        ("postgres", "SELECT 1 -- DROP TABLE t\n", "select"),
        ("postgres", "SELECT xpath('/a/text()', '<a>1</a>'::xml)", "select"),
        ("postgres", "SELECT pg_sleep(0.01)", "select"),
        ("postgres", "SELECT * FROM generate_series(1, 3) AS g", "select"),
        ("postgres", "SHOW search_path", "show"),
        ("postgres", "SHOW ALL", "show"),
        ("postgres", "EXPLAIN SELECT * FROM t", "explain"),
        ("postgres", "EXPLAIN (FORMAT JSON, VERBOSE) SELECT * FROM t", "explain"),
        ("mysql", "SELECT `a` FROM `t` WHERE b LIKE 'x%'", "select"),
        ("mysql", "SELECT SLEEP(0.01)", "select"),
        ("mysql", "SHOW TABLES", "show"),
        ("mysql", "DESCRIBE t", "describe"),
        ("mysql", "EXPLAIN SELECT * FROM t", "describe"),
        ("snowflake", "SHOW TABLES", "show"),
        ("snowflake", "SELECT * FROM db.sch.t SAMPLE (10 ROWS)", "select"),
    ],
)
def test_accepts_read_statements(dialect: str, sql: str, kind: str) -> None:
    assert check(sql, dialect).kind == kind


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        ("", "parse_error"),
        (";", "parse_error"),
        ("-- only a comment", "parse_error"),
        ("SELECT FROM WHERE", "parse_error"),
        ("SELECT 1; SELECT 2", "multiple_statements"),
        ("INSERT INTO t VALUES (1)", "statement_not_read_only"),
        ("SELECT * FROM t FOR UPDATE", "statement_not_read_only"),
        ("SELECT (SELECT 1 FROM t FOR SHARE)", "statement_not_read_only"),
        ("SELECT * INTO t2 FROM t", "statement_not_read_only"),
        ("EXPLAIN ANALYZE SELECT 1", "statement_not_read_only"),
        ("EXPLAIN (ANALYZE) SELECT 1", "statement_not_read_only"),
        ("EXPLAIN DELETE FROM t", "statement_not_read_only"),
        ("SHOW x || y", "statement_not_read_only"),
        ("SELECT pg_catalog.pg_read_file('x')", "denied_function"),
        ("SELECT U&\"pg_read\\005ffile\"('x')", "unsupported_syntax"),
    ],
)
def test_refusal_codes(sql: str, code: str) -> None:
    assert refused(sql).code == code


def test_denied_function_is_named() -> None:
    error = refused("SELECT 1 FROM t WHERE x = (SELECT set_config('a', 'b', false))")
    assert error.code == "denied_function" and "set_config" in error.message
    assert error.status_code == 400


@pytest.mark.parametrize("dialect", ["postgres", "mysql", "snowflake", "bigquery", "tsql"])
def test_every_denied_name_is_caught_when_called(dialect: str) -> None:
    """The deny list is only as good as the parser's view of calls: try every name."""
    missed = []
    for name in sorted(policy.denied_names(dialect)):
        sql = f"SELECT {name}(1)" if "$" not in name else f"SELECT {name.upper()}(1)"
        try:
            check(sql, dialect)
            missed.append(name)
        except QueryRefused as exc:
            if exc.code not in ("denied_function", "statement_not_read_only"):
                missed.append(f"{name}: {exc.code}")
    assert missed == []


@pytest.mark.parametrize(
    "name",
    [
        "lo_unlink",
        "lo_from_bytea",
        "dblink_exec",
        "dblink_open",
        "pg_advisory_xact_lock",
        "pg_try_advisory_lock_shared",
        "pg_ls_waldir",
        "pg_read_binary_file",
        "pg_stat_reset_shared",
        "pg_create_logical_replication_slot",
    ],
)
def test_postgres_prefixes(name: str) -> None:
    assert refused(f"SELECT {name}(1)").code == "denied_function"


def test_snowflake_system_functions() -> None:
    assert refused("SELECT SYSTEM$CANCEL_ALL_QUERIES(1)", "snowflake").code == "denied_function"


def test_every_statement_class_of_sqlglot_is_reviewed() -> None:
    """A sqlglot upgrade that adds a statement type must be looked at, not let through."""
    unreviewed = []
    denied = {cls.__name__ for cls in policy.DENIED_NODES}
    for module in (ddl, dml):
        for name, cls in vars(module).items():
            if (
                inspect.isclass(cls)
                and issubclass(cls, exp.Expr)
                and cls.__module__ == module.__name__
                and name not in denied
                and name not in policy.REVIEWED_HARMLESS
            ):
                unreviewed.append(name)
    assert unreviewed == []


def test_runs_the_callers_text_trimmed() -> None:
    checked = check("SELECT  id\nFROM t ; -- trailing\n", "postgres")
    assert checked.sql == "SELECT  id\nFROM t"
    assert check("SHOW search_path;", "postgres").sql == "SHOW search_path"


def test_query_hash_ignores_case_whitespace_and_comments() -> None:
    a = check("SELECT id, total FROM shop.orders WHERE id = 1", "postgres")
    b = check("select ID,\n  TOTAL from SHOP.ORDERS /* c */ where id=1;", "postgres")
    c = check("SELECT id, total FROM shop.orders WHERE id = 2", "postgres")
    quoted = check('SELECT "ID", total FROM shop.orders WHERE id = 1', "postgres")
    assert a.query_hash == b.query_hash != c.query_hash
    assert quoted.query_hash != a.query_hash  # "ID" is another column in PostgreSQL


def test_table_refs_skip_ctes_and_functions() -> None:
    checked = check(
        "WITH recent AS (SELECT * FROM shop.orders) "
        "SELECT * FROM recent JOIN items i ON true, generate_series(1, 2) g "
        "WHERE EXISTS (SELECT 1 FROM audit.log) AND i.x IN (SELECT x FROM shop.orders)",
        "postgres",
    )
    assert checked.table_refs == (
        TableRef("shop", "orders"),
        TableRef(None, "items"),
        TableRef("audit", "log"),
    )


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1 /*! , LOAD_FILE('/etc/passwd') */",
        "SELECT 1 /*M!100000 , LOAD_FILE('/etc/passwd') */",
        "SELECT 1 /*!50000 UNION SELECT LOAD_FILE('/etc/passwd') */",
    ],
)
def test_mysql_executable_comments(sql: str) -> None:
    assert refused(sql, "mysql").code == "unsupported_syntax"


def test_mysql_comment_and_string_edge_cases_parse_like_the_server() -> None:
    # "--x" is not a comment in MySQL (it is minus minus x): the call must be seen.
    assert refused("SELECT 1 --LOAD_FILE('/etc/passwd')\n", "mysql").code == "denied_function"
    # Plain comments and strings that merely look dangerous are fine.
    assert check("SELECT '/*! not a comment */' AS s -- LOAD_FILE('x')\n", "mysql")


def test_parse_error_message_is_short_and_plain() -> None:
    error = refused("SELECT * FROM t WHERE " + "(" * 5)
    assert "\x1b" not in error.message and len(error.message) < 260


def test_verdicts_are_cached_but_errors_are_fresh() -> None:
    first = refused("DELETE FROM t")
    second = refused("DELETE FROM t")
    assert first is not second and (first.code, first.message) == (second.code, second.message)
    assert check("SELECT 1", "postgres") is check("SELECT 1", "postgres")
