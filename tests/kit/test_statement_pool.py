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

STORE = os.environ.get("CONNHUB_TEST_STORE", "sqlite")


def _opener() -> tuple[Callable[[], Awaitable[asyncpg.Connection]], list[asyncpg.Connection]]:
    opened: list[asyncpg.Connection] = []

    async def connect() -> asyncpg.Connection:
        connection = await asyncpg.connect(pg_admin_dsn())
        opened.append(connection)
        return connection

    return connect, opened


@pytest.fixture
async def pool() -> AsyncIterator[StatementPool]:
    connect, _opened = _opener()
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
    await asyncio.sleep(0.2)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert (pool.get_size(), pool.get_idle_size()) == (0, 0)

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
    assert in_transaction.is_closed()

    refused = await pool.acquire()
    pool.release(refused, reusable=False)
    assert refused.is_closed()

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
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionRefusedError("store is restarting")
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
    assert busy.is_closed()
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
    await asyncio.sleep(0.2)
    during = pool.get_size()
    assert during - pool.get_idle_size() == 1  # the slow read's connection
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert pool.get_size() == during - 1
    assert pool.get_idle_size() == during - 1
    async with Reader(runtime.reads, pool) as reader:
        assert len(await reader.fetch(select(func.now()), {})) == 1
