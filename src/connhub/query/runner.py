"""The second lock on read-only SQL: the database itself, with a deadline and a row bound.

Every statement runs in a read-only transaction that is rolled back afterwards, under a
statement timeout, and at most ``max_rows + 1`` rows are ever fetched (the extra row only says
"there is more"): a ten-million-row result costs what a thousand-row one does.

PostgreSQL (psycopg 3)
    sessions are opened with ``default_transaction_read_only=on`` (the adapter, for
    ``read_only`` requests); each statement then runs in ``BEGIN READ ONLY`` with
    ``SET LOCAL statement_timeout``. Queries go through a server-side cursor (``DECLARE ...
    CURSOR``, ``FETCH FORWARD n``): the server keeps the rest, and ``DECLARE`` accepts exactly
    one query, so text that slipped past the parser as two statements still cannot run.
    ``SHOW``/``EXPLAIN`` (which ``DECLARE`` refuses) use a client cursor in binary mode, which
    forces the extended protocol: again one statement only.
MySQL / MariaDB (PyMySQL)
    ``SET SESSION TRANSACTION READ ONLY`` (the adapter) plus ``START TRANSACTION READ ONLY``
    per statement, ``max_statement_time`` (MariaDB, seconds) or ``max_execution_time``
    (MySQL, ms), and ``sql_select_limit = max_rows + 1`` so the server stops sending. Rows
    stream through an unbuffered ``SSCursor``; when a query's own larger ``LIMIT`` beats
    ``sql_select_limit``, the session is dropped instead of draining the rest. The client
    never sets ``CLIENT_MULTI_STATEMENTS``. ``sql_mode`` loses ``NO_BACKSLASH_ESCAPES`` and
    ``ANSI_QUOTES`` so the server tokenizes strings as the guard's parser did.
Snowflake, BigQuery and others (generic DB-API)
    no read-only transaction exists there: read-only relies on the role the connection logs in
    with, plus the guard. Snowflake sessions get ``STATEMENT_TIMEOUT_IN_SECONDS``; rows come
    from ``fetchmany(max_rows + 1)`` (the connectors fetch result chunks lazily).

Everything here is blocking and runs in worker threads (``pool.Session.run``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Protocol

Params = Mapping[str, Any] | Sequence[Any] | None


@dataclass
class ResultSet:
    columns: list[str]
    rows: list[Sequence[Any]]
    truncated: bool


class Executor(Protocol):
    """How one engine runs statements read-only; one instance per dialect, stateless."""

    def prepare(self, conn: Any, timeout_s: float) -> None:
        """Once per new pooled session: session-wide settings."""

    def query(self, conn: Any, sql: str, kind: str, max_rows: int, timeout_s: float) -> ResultSet:
        """Run the user's statement (already accepted by the guard) read-only and bounded."""

    def catalog(self, conn: Any, sql: str, params: Params, timeout_s: float) -> list[Sequence[Any]]:
        """Run one of our own catalog queries read-only; all rows (catalog results are small)."""

    def healthy(self, conn: Any) -> bool:
        """Whether the session may go back to the pool after use (or after an error)."""


def _ms(timeout_s: float) -> int:
    return max(1, math.ceil(timeout_s * 1000))


class PostgresExecutor:
    def prepare(self, conn: Any, timeout_s: float) -> None:
        conn.autocommit = True  # we issue BEGIN READ ONLY ourselves

    def _begin(self, conn: Any, timeout_s: float) -> None:
        # Our own fixed text, no parameters: one round trip on the simple protocol.
        conn.execute(f"BEGIN READ ONLY; SET LOCAL statement_timeout = {_ms(timeout_s)}")

    def _end(self, conn: Any) -> None:
        # A failed ROLLBACK must not hide the statement's own error; healthy() sees the state.
        if not conn.closed and not conn.broken:
            with suppress(Exception):
                conn.execute("ROLLBACK")

    def query(self, conn: Any, sql: str, kind: str, max_rows: int, timeout_s: float) -> ResultSet:
        self._begin(conn, timeout_s)
        try:
            if kind == "select":
                cursor = conn.cursor(name="connhub_query")
                cursor.execute(sql)  # no params: the text is not %-formatted
            else:
                cursor = conn.cursor()
                cursor.execute(sql, binary=True)  # binary: extended protocol, one statement
            try:
                columns = [col.name for col in cursor.description or ()]
                rows = cursor.fetchmany(max_rows + 1)
            finally:
                if kind != "select":
                    cursor.close()
        finally:
            self._end(conn)
        if kind == "select":
            cursor.close()  # after ROLLBACK: psycopg knows the portal is gone, no round trip
        return ResultSet(columns, rows[:max_rows], len(rows) > max_rows)

    def catalog(self, conn: Any, sql: str, params: Params, timeout_s: float) -> list[Sequence[Any]]:
        self._begin(conn, timeout_s)
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql, params)
                rows: list[Sequence[Any]] = cursor.fetchall()
        finally:
            self._end(conn)
        return rows

    def healthy(self, conn: Any) -> bool:
        from psycopg.pq import TransactionStatus

        return bool(
            not conn.closed
            and not conn.broken
            and conn.info.transaction_status == TransactionStatus.IDLE
        )


_MYSQL_LEXICAL_MODES = {"NO_BACKSLASH_ESCAPES", "ANSI_QUOTES"}
# ANSI implies ANSI_QUOTES; keep the rest of what it means.
_MYSQL_ANSI = ("REAL_AS_FLOAT", "PIPES_AS_CONCAT", "IGNORE_SPACE", "ONLY_FULL_GROUP_BY")


def mysql_sql_mode(current: str) -> str:
    """``current`` without the modes that change how strings and quotes are tokenized."""
    modes = [m for m in current.upper().split(",") if m]
    out: list[str] = []
    for mode in modes:
        if mode == "ANSI":
            out.extend(m for m in _MYSQL_ANSI if m not in out and m not in modes)
        elif mode not in _MYSQL_LEXICAL_MODES and mode not in out:
            out.append(mode)
    return ",".join(out)


class MySqlExecutor:
    _UNDRAINED = "_connhub_undrained"

    def prepare(self, conn: Any, timeout_s: float) -> None:
        with conn.cursor() as cursor:
            cursor.execute("SELECT @@SESSION.sql_mode")
            row = cursor.fetchone()
            mode = mysql_sql_mode(str(row[0] if row else ""))
            cursor.execute("SET SESSION sql_mode = %s", (mode,))

    @staticmethod
    def _limits(conn: Any, timeout_s: float, select_limit: int | None) -> str:
        limit = "DEFAULT" if select_limit is None else str(int(select_limit))
        if "mariadb" in conn.get_server_info().lower():
            return (
                f"SET SESSION max_statement_time = {max(0.001, timeout_s):.3f}, "
                f"SESSION sql_select_limit = {limit}"
            )
        return (
            f"SET SESSION max_execution_time = {_ms(timeout_s)}, "
            f"SESSION sql_select_limit = {limit}"
        )

    def _begin(self, cursor: Any, conn: Any, timeout_s: float, select_limit: int | None) -> None:
        cursor.execute(self._limits(conn, timeout_s, select_limit))
        cursor.execute("START TRANSACTION READ ONLY")

    def query(self, conn: Any, sql: str, kind: str, max_rows: int, timeout_s: float) -> ResultSet:
        import pymysql.cursors

        with conn.cursor() as setup:
            self._begin(setup, conn, timeout_s, max_rows + 1)
        cursor = conn.cursor(pymysql.cursors.SSCursor)
        drained = True
        try:
            cursor.execute(sql)  # no args: the text is not %-formatted
            columns = [col[0] for col in cursor.description or ()]
            rows = list(cursor.fetchmany(max_rows + 1))
            if len(rows) > max_rows and cursor.fetchone() is not None:
                drained = False  # the query's own LIMIT beat sql_select_limit
        finally:
            if drained:
                self._finish(conn, cursor)
            else:
                # Draining could mean millions of rows: drop the session instead. PyMySQL
                # drains on close and on garbage collection; tell both the result is over.
                result = getattr(cursor, "_result", None)
                if result is not None:
                    result.unbuffered_active = False
                cursor.connection = None
                setattr(conn, self._UNDRAINED, True)
                with suppress(Exception):
                    conn.close()
        return ResultSet(columns, rows[:max_rows], len(rows) > max_rows)

    def catalog(self, conn: Any, sql: str, params: Params, timeout_s: float) -> list[Sequence[Any]]:
        with conn.cursor() as cursor:
            self._begin(cursor, conn, timeout_s, None)
            try:
                cursor.execute(sql, params)
                rows: list[Sequence[Any]] = list(cursor.fetchall())
            finally:
                self._finish(conn, None)
        return rows

    def _finish(self, conn: Any, cursor: Any) -> None:
        """Close the cursor and roll back; on failure mark the session unusable, never raise."""
        try:
            if cursor is not None:
                cursor.close()
            if conn.open:
                conn.rollback()
        except Exception:
            setattr(conn, self._UNDRAINED, True)

    def healthy(self, conn: Any) -> bool:
        return bool(conn.open) and not getattr(conn, self._UNDRAINED, False)


class GenericExecutor:
    """DB-API engines without read-only transactions (Snowflake, BigQuery, ...)."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect

    def prepare(self, conn: Any, timeout_s: float) -> None:
        if self.dialect == "snowflake":
            cursor = conn.cursor()
            try:
                seconds = max(1, math.ceil(timeout_s))
                cursor.execute(f"ALTER SESSION SET STATEMENT_TIMEOUT_IN_SECONDS = {seconds}")
            finally:
                cursor.close()

    def query(self, conn: Any, sql: str, kind: str, max_rows: int, timeout_s: float) -> ResultSet:
        cursor = conn.cursor()
        try:
            cursor.execute(sql)
            columns = [col[0] for col in cursor.description or ()]
            rows = list(cursor.fetchmany(max_rows + 1))
        finally:
            cursor.close()
        return ResultSet(columns, rows[:max_rows], len(rows) > max_rows)

    def catalog(self, conn: Any, sql: str, params: Params, timeout_s: float) -> list[Sequence[Any]]:
        cursor = conn.cursor()
        try:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def healthy(self, conn: Any) -> bool:
        closed = getattr(conn, "is_closed", None)
        return not (closed() if callable(closed) else False)


def executor_for(dialect: str) -> Executor:
    if dialect == "postgres":
        return PostgresExecutor()
    if dialect == "mysql":
        return MySqlExecutor()
    return GenericExecutor(dialect)
