"""Engine and session factory for our own store (SQLite embedded, PostgreSQL in production).

SQLite is given a single pooled connection: every request's unit of work then runs alone,
which is what SQLite's one-writer model needs anyway (a deferred transaction that upgrades
to a write would otherwise fail with SQLITE_BUSY under concurrency). Sessions give the
connection back at commit, so nothing holds it across a network call to a customer system.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from connhub.errors import Conflict


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def make_engine(url: str, *, pool_size: int = 20) -> AsyncEngine:
    json_args: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
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


class Reader:
    """One request's read access to the store: a connection checked out on first use.

    Lighter than an ``AsyncSession`` (no identity map, no transaction bookkeeping), which on
    the list and get endpoints cost as much as the query. Lazy so that a request holds no
    store connection before it needs one: the embedded SQLite store has exactly one, and the
    caller's principal may need it first.
    """

    __slots__ = ("_engine", "_connection")

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None

    async def connection(self) -> AsyncConnection:
        if self._connection is None:
            self._connection = await self._engine.connect()
        return self._connection

    async def close(self) -> None:
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
