"""The second lock on read-only SQL: the database itself, with a deadline and a row bound.

Every statement runs in a read-only transaction that is rolled back afterwards, under a
statement timeout, and at most ``max_rows + 1`` rows are ever fetched (the extra row only says
"there is more"): a ten-million-row result costs what a thousand-row one does.

PostgreSQL (psycopg 3)
    sessions are opened with ``default_transaction_read_only=on`` (the adapter, for
    ``read_only`` requests) and get the query timeout as their ``statement_timeout``; each
    user statement then runs in ``BEGIN READ ONLY`` with ``SET LOCAL statement_timeout``,
    rolled back. The four statements travel in one pipeline (one round trip), and pipeline
    mode uses the extended protocol, which refuses two statements in one text: what slipped
    past the parser as ``SELECT 1; DELETE ...`` still cannot run. Queries are wrapped as
    ``SELECT * FROM (<query>) AS connhub_q LIMIT max_rows + 1``: the server stops producing
    rows there (a server-side cursor would keep the rest and cost three more round trips).
    Our own catalog queries run as single autocommit statements under the session defaults.
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
    with, plus the guard. Snowflake sessions get ``STATEMENT_TIMEOUT_IN_SECONDS`` and every
    statement the connector's ``timeout`` (which cancels it server-side); rows come from
    ``fetchmany(max_rows + 1)`` (the connectors fetch result chunks lazily).

Everything here is blocking and runs in worker threads (``pool.Session.run``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)
Params = Mapping[str, Any] | Sequence[Any] | None


@dataclass
class ResultSet:
    columns: list[str]
    rows: list[Sequence[Any]]
    truncated: bool
    native: list[bool] = field(default_factory=list)  # columns already JSON (json/jsonb)


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


_PG_JSON_TYPES = frozenset({114, 3802})  # json, jsonb: decoded by psycopg into plain JSON


def _ms(timeout_s: float) -> int:
    return max(1, math.ceil(timeout_s * 1000))


def _pg_numeric_loader() -> type:
    """A psycopg loader giving ``numeric`` text straight to JSON-safe values (see values.py).

    Most amounts have few digits: parsing them as int/float here skips building a Decimal
    and converting it again, the largest per-row cost of a query. Longer values still go
    through ``Decimal`` and keep every digit.
    """
    from psycopg.adapt import Loader

    from connhub.query.values import decimal_text

    class NumericLoader(Loader):
        def load(self, data: Any) -> Any:
            return decimal_text(bytes(data))

    return NumericLoader


class PostgresExecutor:
    def prepare(self, conn: Any, timeout_s: float) -> None:
        conn.autocommit = True  # we issue BEGIN READ ONLY ourselves
        conn.adapters.register_loader("numeric", _pg_numeric_loader())
        # Session-wide bound for our own catalog statements, which run without BEGIN: one
        # autocommit statement in a session whose default transactions are read-only.
        conn.execute(f"SET statement_timeout = {_ms(timeout_s)}")

    def query(self, conn: Any, sql: str, kind: str, max_rows: int, timeout_s: float) -> ResultSet:
        from psycopg.pq import TransactionStatus

        statement = sql
        if kind == "select":
            # The server stops after max_rows + 1 rows: nothing more is produced or sent.
            statement = f"SELECT * FROM ({sql}) AS connhub_q LIMIT {int(max_rows) + 1}"  # noqa: S608
        cursor = conn.cursor()
        try:
            # One round trip; pipeline mode sends every statement on the extended protocol,
            # which refuses more than one statement per query text.
            with conn.pipeline():
                conn.execute("BEGIN READ ONLY")
                conn.execute(f"SET LOCAL statement_timeout = {_ms(timeout_s)}")
                cursor.execute(statement)  # no params: the text is not %-formatted
                conn.execute("ROLLBACK")
            description = cursor.description or ()
            columns = [col.name for col in description]
            native = [col.type_code in _PG_JSON_TYPES for col in description]
            rows = cursor.fetchmany(max_rows + 1)
        finally:
            cursor.close()
            # After an error the pipeline skipped our ROLLBACK: end the transaction here.
            if (
                not conn.closed
                and not conn.broken
                and conn.info.transaction_status != TransactionStatus.IDLE
            ):
                with suppress(Exception):
                    conn.execute("ROLLBACK")
        return ResultSet(columns, rows[:max_rows], len(rows) > max_rows, native)

    def catalog(self, conn: Any, sql: str, params: Params, timeout_s: float) -> list[Sequence[Any]]:
        # Our own single SELECT: the session is read-only by default and has the statement
        # timeout (prepare), so BEGIN/ROLLBACK would only add two round trips.
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            rows: list[Sequence[Any]] = cursor.fetchall()
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
    _LIMITS = "_connhub_limits"

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
            f"SET SESSION max_execution_time = {_ms(timeout_s)}, SESSION sql_select_limit = {limit}"
        )

    def _begin(self, cursor: Any, conn: Any, timeout_s: float, select_limit: int | None) -> None:
        limits = self._limits(conn, timeout_s, select_limit)
        if getattr(conn, self._LIMITS, None) != limits:  # unchanged since last time: no trip
            cursor.execute(limits)
            setattr(conn, self._LIMITS, limits)
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
            except Exception:
                # Emulators (fakesnow) lack ALTER SESSION; every statement also carries the
                # connector's own timeout below, which cancels it on the server.
                log.debug("could not set STATEMENT_TIMEOUT_IN_SECONDS", exc_info=True)
            finally:
                cursor.close()

    def _execute(self, cursor: Any, sql: str, params: Params, timeout_s: float) -> None:
        if self.dialect == "snowflake":
            cursor.execute(sql, params, timeout=max(1, math.ceil(timeout_s)))
        elif self.dialect == "databricks" and isinstance(params, (list, tuple)):
            cursor.execute(*named_params(sql, params))  # its connector binds ":name" only
        else:
            cursor.execute(sql, params)

    def query(self, conn: Any, sql: str, kind: str, max_rows: int, timeout_s: float) -> ResultSet:
        cursor = conn.cursor()
        try:
            self._execute(cursor, sql, None, timeout_s)
            columns = [col[0] for col in cursor.description or ()]
            rows = list(cursor.fetchmany(max_rows + 1))
        finally:
            cursor.close()
        return ResultSet(columns, rows[:max_rows], len(rows) > max_rows)

    def catalog(self, conn: Any, sql: str, params: Params, timeout_s: float) -> list[Sequence[Any]]:
        cursor = conn.cursor()
        try:
            self._execute(cursor, sql, params, timeout_s)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def healthy(self, conn: Any) -> bool:
        closed = getattr(conn, "is_closed", None)
        return not (closed() if callable(closed) else False)


def named_params(sql: str, params: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """``%s`` placeholders (our catalog queries) as ``:p0``, ``:p1``... with a dict."""
    parts = sql.split("%s")
    if len(parts) != len(params) + 1:
        raise ValueError("placeholder count does not match the parameters")
    text = parts[0] + "".join(f":p{i}{part}" for i, part in enumerate(parts[1:]))
    return text, {f"p{i}": value for i, value in enumerate(params)}


def executor_for(dialect: str) -> Executor:
    if dialect == "postgres":
        return PostgresExecutor()
    if dialect == "mysql":
        return MySqlExecutor()
    return GenericExecutor(dialect)
