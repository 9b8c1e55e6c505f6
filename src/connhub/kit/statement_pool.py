"""A lean pool of asyncpg connections for single autocommit statements (PostgreSQL stores).

Hot paths (list, get, a connection and its secret for use, a verification's outcome, shared
rate-limit buckets) run one prebuilt statement each on a connection of their own. asyncpg's
own pool was measured at about 0.2 ms per checkout and check-in on this project's VMs when
the process has been busy elsewhere for a few milliseconds (a proxy object, a future, an
idle timer set and cancelled, a task per release): as much as the statement's round trip.
Here a checkout is a semaphore step and a pop, and a check-in a push.

Rules that keep that safe:

* every statement run on a pooled connection is one autocommit statement, so a connection
  given back holds no session state worth resetting (the sessions' settings are fixed when
  they open: ``server_settings``);
* a connection is reused only when the caller says its statement ended normally (a server
  error included) and it is neither closed nor inside a transaction; anything else (a
  cancelled statement, a broken socket) closes it, since asyncpg may still be cancelling
  (gracefully, in the background, so that its cancel request reaches the server);
* the most recently used connection goes out first (the warmest backend), and one idle
  longer than ``max_idle_s`` is closed instead of used (a server or proxy may have dropped
  it meanwhile).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from connhub.kit.db import json_text


class StatementPool:
    """At most ``max_size`` connections, opened on demand by ``connect``."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        *,
        max_size: int,
        max_idle_s: float = 300.0,
    ) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self._connect = connect
        self._slots = asyncio.Semaphore(max_size)
        self._idle: list[tuple[asyncpg.Connection, float]] = []  # a stack: (connection, since)
        self._busy = 0
        self._closing: set[asyncio.Task[None]] = set()
        self._max_idle_s = max_idle_s
        self._closed = False

    def get_size(self) -> int:
        """Connections open now, in use or idle."""
        return self._busy + len(self._idle)

    def get_idle_size(self) -> int:
        return len(self._idle)

    async def acquire(self) -> asyncpg.Connection:
        """A connection for one statement; waits while ``max_size`` are in use."""
        if self._closed:
            raise RuntimeError("the statement pool is closed")
        await self._slots.acquire()
        try:
            connection = self._take_idle()
            if connection is None:
                connection = await self._connect()
        except BaseException:
            self._slots.release()
            raise
        self._busy += 1
        return connection

    def _take_idle(self) -> asyncpg.Connection | None:
        oldest = time.monotonic() - self._max_idle_s
        while self._idle:
            connection, since = self._idle.pop()
            if since >= oldest and not connection.is_closed():
                return connection
            connection.terminate()
        return None

    def release(self, connection: asyncpg.Connection, *, reusable: bool = True) -> None:
        """Give ``connection`` back; ``reusable=False`` when its statement did not end
        normally (cancelled, connection lost): it is closed instead."""
        self._busy -= 1
        if (
            reusable
            and not self._closed
            and not connection.is_closed()
            and not connection.is_in_transaction()
        ):
            self._idle.append((connection, time.monotonic()))
        elif not connection.is_closed():
            # Closed, not dropped: a statement cancelled mid-way has asyncpg's cancel request
            # in flight, which dropping the socket would abort (the server would go on
            # running the statement).
            closing = asyncio.get_running_loop().create_task(_close(connection))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
        self._slots.release()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """``acquire`` and ``release`` around a block; reused unless the block raised
        something other than a server's error."""
        connection = await self.acquire()
        reusable = False
        try:
            yield connection
            reusable = True
        except asyncpg.PostgresError:
            reusable = True  # the server refused the statement; the session is fine
            raise
        finally:
            self.release(connection, reusable=reusable)

    async def close(self) -> None:
        """Close the idle connections and wait for those being closed; those in use are
        closed when they come back."""
        self._closed = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(_close(connection) for connection, _since in idle))
        await asyncio.gather(*self._closing)


async def _close(connection: asyncpg.Connection) -> None:
    """Close gracefully (5 s at most), else drop the socket; raises only if cancelled."""
    try:
        await asyncio.wait_for(connection.close(), timeout=5)
    except asyncio.CancelledError:
        connection.terminate()
        raise
    except Exception:
        connection.terminate()


async def open_statement_pool(engine: AsyncEngine, *, size: int) -> StatementPool | None:
    """The statement pool for ``engine``'s PostgreSQL store; ``None`` for other stores.

    Beside the engine's SQLAlchemy pool because a SQLAlchemy checkout and check-in cost
    about 150 us per request on the list and get endpoints, more than the driver's own work.
    Its sessions also skip the WAL flush wait at commit (``synchronous_commit=off``): the
    only writes through it are bookkeeping whose loss in a crash is harmless (a
    verification's outcome, a rate-limit bucket). Opens connections on first use.
    """
    if engine.dialect.driver != "asyncpg":
        return None
    _args, kwargs = engine.dialect.create_connect_args(engine.url)
    if "prepared_statement_cache_size" in kwargs:  # SQLAlchemy's name for asyncpg's option
        kwargs["statement_cache_size"] = kwargs.pop("prepared_statement_cache_size")
    accepted = inspect.signature(asyncpg.connect).parameters
    kwargs = {key: value for key, value in kwargs.items() if key in accepted}
    kwargs["server_settings"] = {
        **kwargs.get("server_settings", {}),
        # Bookkeeping writes only (see repository.update_unless_disabled): no WAL flush wait.
        "synchronous_commit": "off",
        # Its statements are few, fixed, and keyed on equalities: one generic plan each,
        # instead of planning again on every run (PostgreSQL 12+; about 15 % of a list
        # page's server time).
        "plan_cache_mode": "force_generic_plan",
    }
    return StatementPool(functools.partial(_open, kwargs), max_size=size)


async def _open(kwargs: dict[str, Any]) -> asyncpg.Connection:
    connection = await asyncpg.connect(**kwargs)
    try:
        # Decode JSON the way the SQLAlchemy engine does (orjson), so rows look the same.
        for name in ("json", "jsonb"):
            await connection.set_type_codec(
                name, schema="pg_catalog", encoder=json_text, decoder=orjson.loads, format="text"
            )
    except BaseException:
        connection.terminate()
        raise
    return connection
