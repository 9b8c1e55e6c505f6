"""The statement pool against the machine's PostgreSQL: reuse, its bound, and which
connections it refuses to hand out again (a cancelled statement, a transaction left open, a
broken or long-idle session)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, select

from connhub.kit.db import Reader
from connhub.kit.statement_pool import StatementPool
from connhub.runtime import Runtime
from support.databases import pg_admin_dsn
from support.fakesnow_server import closed_port

STORE = os.environ.get("CONNHUB_TEST_STORE", "sqlite")


async def _until_sleeping(expected: int) -> None:
    """Wait (5 s at most) until the server runs ``expected`` ``pg_sleep`` statements: a
    statement is running only once the server says so, and stopped only once it says so."""
    watcher = await asyncpg.connect(pg_admin_dsn())
    try:
        for _ in range(100):
            running = await watcher.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                " AND query LIKE '%pg_sleep(%' AND pid <> pg_backend_pid()"
            )
            if running == expected:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{running} pg_sleep statements running, expected {expected}")
    finally:
        await watcher.close()


async def _closed_soon(connection: asyncpg.Connection) -> bool:
    """Whether ``connection`` is closed within 5 s (the pool closes it in the background)."""
    for _ in range(100):
        if connection.is_closed():
            return True
        await asyncio.sleep(0.05)
    return False


def _opener() -> tuple[Callable[[], Awaitable[asyncpg.Connection]], list[asyncpg.Connection]]:
    opened: list[asyncpg.Connection] = []

    async def connect() -> asyncpg.Connection:
        connection = await asyncpg.connect(pg_admin_dsn())
        opened.append(connection)
        return connection

    return connect, opened


@pytest.fixture
async def pool() -> AsyncIterator[StatementPool]:
    connect, _ = _opener()
    statement_pool = StatementPool(connect, max_size=2)
    yield statement_pool
    await statement_pool.close()


async def test_a_connection_given_back_is_the_next_one_out(pool: StatementPool) -> None:
    first = await pool.acquire()
    second = await pool.acquire()
    assert first is not second
    assert (pool.get_size(), pool.get_idle_size()) == (2, 0)
    pool.release(first)
    pool.release(second)
    assert (pool.get_size(), pool.get_idle_size()) == (2, 2)
    again = await pool.acquire()
    assert again is second  # the most recently used: the warmest backend
    assert await again.fetchval("SELECT 41 + 1") == 42
    pool.release(again)


async def test_callers_past_the_bound_wait_and_a_cancelled_wait_takes_no_slot(
    pool: StatementPool,
) -> None:
    held = [await pool.acquire(), await pool.acquire()]
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(pool.acquire(), timeout=0.1)
    waiting = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    pool.release(held.pop())
    handed = await asyncio.wait_for(waiting, timeout=2)
    pool.release(handed)
    pool.release(held.pop())
    # The timed-out caller left nothing behind: both slots are free again.
    both = [await asyncio.wait_for(pool.acquire(), timeout=2) for _ in range(2)]
    assert pool.get_size() == 2
    for connection in both:
        pool.release(connection)


async def test_a_cancelled_statement_closes_its_connection_a_server_error_does_not(
    pool: StatementPool,
) -> None:
    async def sleep_long() -> None:
        async with pool.connection() as connection:
            await connection.execute("SELECT pg_sleep(30)")

    running = asyncio.create_task(sleep_long())
    await _until_sleeping(1)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert (pool.get_size(), pool.get_idle_size()) == (0, 0)
    await _until_sleeping(0)

    with pytest.raises(asyncpg.DivisionByZeroError):
        async with pool.connection() as connection:
            kept = connection
            await connection.fetchval("SELECT 1 / 0")
    assert pool.get_idle_size() == 1
    async with pool.connection() as connection:
        assert connection is kept
        assert await connection.fetchval("SELECT 1") == 1


async def test_open_transactions_closed_sessions_and_refusals_are_not_reused(
    pool: StatementPool,
) -> None:
    in_transaction = await pool.acquire()
    await in_transaction.execute("BEGIN")
    pool.release(in_transaction)
    assert pool.get_idle_size() == 0
    assert await _closed_soon(in_transaction)

    refused = await pool.acquire()
    pool.release(refused, reusable=False)
    assert pool.get_idle_size() == 0
    assert await _closed_soon(refused)

    dropped = await pool.acquire()
    pool.release(dropped)
    dropped.terminate()  # the server or a proxy dropped it while idle
    fresh = await pool.acquire()
    assert fresh is not dropped
    assert await fresh.fetchval("SELECT 1") == 1
    pool.release(fresh)
    assert pool.get_size() == 1


async def test_a_connection_idle_too_long_is_closed_instead_of_used() -> None:
    connect, opened = _opener()
    pool = StatementPool(connect, max_size=1, max_idle_s=0.05)
    try:
        first = await pool.acquire()
        pool.release(first)
        await asyncio.sleep(0.1)
        second = await pool.acquire()
        assert second is not first
        assert first.is_closed()
        assert len(opened) == 2
        pool.release(second)
    finally:
        await pool.close()


async def test_a_failed_connect_gives_its_slot_back() -> None:
    attempts = 0

    async def connect() -> asyncpg.Connection:
        """The first attempt finds no server listening (a store restarting)."""
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            return await asyncpg.connect(
                host="127.0.0.1", port=closed_port(), user="postgres", database="postgres"
            )
        return await asyncpg.connect(pg_admin_dsn())

    pool = StatementPool(connect, max_size=1)
    try:
        with pytest.raises(ConnectionRefusedError):
            await pool.acquire()
        connection = await asyncio.wait_for(pool.acquire(), timeout=2)
        pool.release(connection)
        assert pool.get_size() == 1
    finally:
        await pool.close()


async def test_close_closes_idle_connections_and_those_still_in_use_on_return(
    pool: StatementPool,
) -> None:
    idle, busy = await pool.acquire(), await pool.acquire()
    pool.release(idle)
    await pool.close()
    assert idle.is_closed()
    assert not busy.is_closed()
    pool.release(busy)
    assert await _closed_soon(busy)
    with pytest.raises(RuntimeError):
        await pool.acquire()


@pytest.mark.skipif(STORE != "postgres", reason="only PostgreSQL stores have a statement pool")
async def test_a_reader_cancelled_mid_statement_does_not_return_its_connection(
    runtime: Runtime,
) -> None:
    pool = runtime.statement_pool
    assert pool is not None

    async def read_slowly() -> Any:
        async with runtime.reader() as reader:
            return await reader.fetch(select(func.pg_sleep(30)), {})

    running = asyncio.create_task(read_slowly())
    await _until_sleeping(1)
    during = pool.get_size()
    assert during - pool.get_idle_size() == 1  # the slow read's connection
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert pool.get_size() == during - 1
    assert pool.get_idle_size() == during - 1
    await _until_sleeping(0)
    async with Reader(runtime.reads, pool) as reader:
        assert len(await reader.fetch(select(func.now()), {})) == 1
