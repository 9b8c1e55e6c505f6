"""Engine and session factory for our own store (SQLite embedded, PostgreSQL in production).

SQLite is given a single pooled connection: every request's unit of work then runs alone,
which is what SQLite's one-writer model needs anyway (a deferred transaction that upgrades
to a write would otherwise fail with SQLITE_BUSY under concurrency). Sessions give the
connection back at commit, so nothing holds it across a network call to a customer system.
Hot single statements use a second connection (``SqliteStatements``) that never waits.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson
from sqlalchemy import event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from connhub.errors import Conflict
from connhub.kit import prebuilt
from connhub.kit.threads import run_blocking

if TYPE_CHECKING:
    from connhub.kit.statement_pool import StatementPool


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def json_text(value: Any) -> str:
    """JSON as the store keeps it (orjson, compact)."""
    return orjson.dumps(value).decode()


def _unicode_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def unicode_lower(connection: Any) -> None:
    """SQLite's own ``lower()`` folds ASCII only, so a search for "étoile" missed
    "Café Étoile"; Python's folds all of Unicode, as PostgreSQL's does. No index is built on
    ``lower()``, so replacing it changes no stored order."""
    connection.create_function("lower", 1, _unicode_lower, deterministic=True)


def make_engine(url: str, *, pool_size: int = 20) -> AsyncEngine:
    json_args: dict[str, Any] = {"json_serializer": json_text, "json_deserializer": orjson.loads}
    if is_sqlite(url):
        engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=60, **json_args)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()
            unicode_lower(dbapi_conn)

        return engine
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=False, **json_args
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for units of work (ORM objects, flush, commit)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def reader_engine(engine: AsyncEngine) -> AsyncEngine:
    """The engine for single-statement reads: autocommit on PostgreSQL.

    A read of one page or one row needs no transaction: autocommit skips the BEGIN and the
    ROLLBACK round trips that would otherwise cost more than the query itself. (SQLite: no
    gain, more hops.)
    """
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine


class SqliteStatements:
    """The embedded store's prebuilt statements on ``sqlite3`` connections of their own: on
    the event loop itself while a statement stays small, in a worker thread once it is not.

    Why: through aiosqlite, every statement makes several hops to its thread and back, which
    on the list and get endpoints cost several times the statement (a primary-key read or a
    50-row page is tens to hundreds of microseconds in SQLite); under load each hop also
    waits for the busy loop to hand over the GIL. A statement that runs past ``loop_ops``
    SQLite VM steps (about a millisecond: a count or a search over a big workspace) is
    interrupted and runs again in a worker thread (``kit.threads``), where SQLite releases
    the GIL and the loop goes on; reads are idempotent, and an interrupted statement leaves
    nothing behind.

    Extra connections are safe beside the engine's: the store is in WAL mode, where readers
    never wait for the writer. The loop's connection never waits either (``timeout=0``):
    when the engine's connection holds the write lock, a write fails at once and the caller
    falls back to the engine (``None``). File stores only (an in-memory database is private
    to one connection).
    """

    def __init__(self, path: str, *, loop_ops: int = 50_000) -> None:
        self._path = path
        self._loop_ops = loop_ops
        self._connection: sqlite3.Connection | None = None
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    @classmethod
    def for_engine(cls, engine: AsyncEngine) -> SqliteStatements | None:
        url = engine.url
        if engine.dialect.name != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        if url.query.get("mode") == "memory" or url.database.startswith("file:"):
            return None
        return cls(url.database)

    def _open(self, *, timeout: float) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self._path, isolation_level=None, check_same_thread=False, timeout=timeout
        )
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA foreign_keys=ON")
        # Pages read through a memory map (no read() call per page) and a larger page
        # cache: paging through 100,000 rows touches pages all over the file.
        connection.execute("PRAGMA mmap_size=268435456")
        connection.execute("PRAGMA cache_size=-32768")
        unicode_lower(connection)
        with self._lock:
            self._opened.append(connection)
        return connection

    def _loop_connection(self) -> sqlite3.Connection:
        connection = self._connection
        if connection is None:
            connection = self._open(timeout=0)
            # Returning non-zero interrupts the statement: called once it has run loop_ops.
            connection.set_progress_handler(_stop, self._loop_ops)
            self._connection = connection
        return connection

    def _in_thread(self, plan: prebuilt.Plan, params: dict[str, Any]) -> list[Any]:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._open(timeout=10)
        return prebuilt.sqlite_execute(connection, plan, params)

    async def run(
        self, statement: Any, dialect: Dialect, params: dict[str, Any]
    ) -> list[Any] | None:
        """The statement's rows (a write commits at once), or None if the store was busy."""
        plan = prebuilt.plan(statement, dialect)
        try:
            return prebuilt.sqlite_execute(self._loop_connection(), plan, params)
        except sqlite3.OperationalError as exc:
            code = exc.sqlite_errorcode & 0xFF
            if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                return None
            if code != sqlite3.SQLITE_INTERRUPT:
                raise
        return await run_blocking(self._in_thread, plan, params)

    def close(self) -> None:
        self._connection = None
        with self._lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            connection.close()


def _stop() -> int:
    return 1


class Reader:
    """One request's single statements on the store: reads, and bookkeeping writes that
    commit by themselves (a verification's outcome). A connection checked out on first use.

    Lighter than an ``AsyncSession`` (no identity map, no transaction bookkeeping), which on
    the list and get endpoints cost as much as the query. Lazy so that a request holds no
    store connection before it needs one: the embedded SQLite store has exactly one, and the
    caller's principal may need it first. ``fetch`` runs prebuilt statements on the driver
    directly (``kit.prebuilt``): asyncpg, from the statement pool when there is one
    (PostgreSQL), or ``SqliteStatements`` (the embedded store).
    """

    __slots__ = ("_engine", "_pool", "_sqlite", "_connection", "_driver", "_reusable")

    def __init__(
        self,
        engine: AsyncEngine,
        pool: StatementPool | None = None,
        sqlite: SqliteStatements | None = None,
    ) -> None:
        self._engine = engine
        self._pool = pool
        self._sqlite = sqlite
        self._connection: AsyncConnection | None = None
        self._driver: Any | None = None
        self._reusable = True

    @property
    def dialect(self) -> Dialect:
        return self._engine.dialect

    async def connection(self) -> AsyncConnection:
        """A SQLAlchemy connection, for statements that need its compilation and results."""
        if self._connection is None:
            self._connection = await self._engine.connect()
        return self._connection

    async def driver(self) -> Any:
        """The asyncpg connection itself (PostgreSQL stores only)."""
        if self._driver is None:
            if self._pool is not None:
                self._driver = await self._pool.acquire()
            else:
                raw = await (await self.connection()).get_raw_connection()
                self._driver = raw.driver_connection
        return self._driver

    async def fetch(
        self, statement: Any, params: dict[str, Any], *, write: bool = False
    ) -> list[Any]:
        """Every row of a prebuilt statement without expanding parameters; ``write``: it
        changes rows and must commit at once."""
        dialect = self.dialect
        if dialect.name == "postgresql":
            plan = prebuilt.plan(statement, dialect)
            driver = await self.driver()
            # Until the statement ends normally (a server's error included), the connection
            # may be mid-statement or cancelling: not to be handed to anyone else.
            self._reusable = False
            try:
                records = await driver.fetch(plan.sql, *plan.values(params))
            except asyncpg.PostgresError:
                self._reusable = True
                raise
            self._reusable = True
            return [plan.row_class(record) for record in records]
        if self._sqlite is not None:
            rows = await self._sqlite.run(statement, dialect, params)
            if rows is not None:
                return rows
        connection = await self.connection()
        result = list((await connection.execute(statement, params)).all())
        if write:
            await connection.commit()
        return result

    async def close(self) -> None:
        driver, self._driver = self._driver, None
        if driver is not None and self._pool is not None:
            self._pool.release(driver, reusable=self._reusable)
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.close()

    async def __aenter__(self) -> Reader:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def sync_url(async_url: str) -> str:
    """The synchronous URL Alembic runs migrations with (no event loop needed)."""
    if async_url.startswith("sqlite+aiosqlite"):
        return "sqlite" + async_url[len("sqlite+aiosqlite") :]
    if async_url.startswith("postgresql+asyncpg"):
        return "postgresql+psycopg" + async_url[len("postgresql+asyncpg") :]
    return async_url


async def commit(session: AsyncSession, *, conflict: str = "Conflicting change") -> None:
    """Commit the request's unit of work; a unique-constraint race becomes a 409."""
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise Conflict(conflict) from exc


@asynccontextmanager
async def session_scope(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with factory() as session:
        yield session
