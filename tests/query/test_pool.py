"""The per-connection session pool: bounds, reuse, invalidation, idle closing, abandonment."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any

import pytest

from connhub.errors import UpstreamError
from connhub.query import pool
from connhub.query.runner import ResultSet


class FakeConn:
    def __init__(self) -> None:
        self.closed = threading.Event()

    def close(self) -> None:
        self.closed.set()


class FakeExecutor:
    def prepare(self, conn: Any, timeout_s: float) -> None: ...

    def query(self, conn: Any, sql: str, kind: str, max_rows: int, timeout_s: float) -> ResultSet:
        return ResultSet([], [], False)

    def catalog(self, conn: Any, sql: str, params: Any, timeout_s: float) -> list[Any]:
        return []

    def healthy(self, conn: Any) -> bool:
        return not conn.closed.is_set()


class Opener:
    def __init__(self) -> None:
        self.opened: list[FakeConn] = []

    async def __call__(self) -> pool.Session:
        conn = FakeConn()
        self.opened.append(conn)
        return pool.Session(conn, FakeExecutor())


async def closed(conn: FakeConn) -> bool:
    return await asyncio.to_thread(conn.closed.wait, 2)


async def test_sessions_are_reused() -> None:
    registry, opener, cid = pool.PoolRegistry(2, 60), Opener(), uuid.uuid4()
    for _ in range(3):
        async with pool.lease(registry, cid, "fp", opener, wait_s=1) as session:
            await session.run(lambda conn: None, timeout=1)
    assert len(opener.opened) == 1
    await registry.close()
    assert await closed(opener.opened[0])


async def test_pool_is_bounded_and_waiters_time_out() -> None:
    registry, opener, cid = pool.PoolRegistry(2, 60), Opener(), uuid.uuid4()
    active = peak = 0

    async def use() -> None:
        nonlocal active, peak
        async with pool.lease(registry, cid, "fp", opener, wait_s=2) as session:
            active += 1
            peak = max(peak, active)
            await session.run(lambda conn: time.sleep(0.05), timeout=1)
            active -= 1

    await asyncio.gather(*(use() for _ in range(8)))
    assert peak == 2 and len(opener.opened) == 2

    async def hold(release: asyncio.Event) -> None:
        async with pool.lease(registry, cid, "fp", opener, wait_s=1):
            await release.wait()

    release = asyncio.Event()
    holders = [asyncio.create_task(hold(release)) for _ in range(2)]
    await asyncio.sleep(0.05)
    with pytest.raises(UpstreamError) as info:
        async with pool.lease(registry, cid, "fp", opener, wait_s=0.1):
            pass
    assert info.value.code == "timeout"
    release.set()
    await asyncio.gather(*holders)
    await registry.close()


async def test_new_fingerprint_closes_old_sessions() -> None:
    registry, opener, cid = pool.PoolRegistry(2, 60), Opener(), uuid.uuid4()
    async with pool.lease(registry, cid, "old", opener, wait_s=1):
        pass
    busy_release = asyncio.Event()

    async def hold_old() -> None:
        async with pool.lease(registry, cid, "old", opener, wait_s=1):
            await busy_release.wait()

    holder = asyncio.create_task(hold_old())
    await asyncio.sleep(0.01)
    async with pool.lease(registry, cid, "new", opener, wait_s=1):
        pass
    busy_release.set()
    await holder
    old, new = opener.opened[0], opener.opened[-1]
    assert await closed(old)  # the busy old session was closed when it came back
    assert not new.closed.is_set()
    await registry.close()


async def test_idle_sessions_are_reaped() -> None:
    registry, opener, cid = pool.PoolRegistry(2, 0.1), Opener(), uuid.uuid4()
    async with pool.lease(registry, cid, "fp", opener, wait_s=1):
        pass
    assert registry.stats() == {str(cid): 1}
    assert await closed(opener.opened[0])  # the reaper task ran on its own
    assert registry.stats() == {}
    await registry.close()


async def test_abandoned_session_is_closed_by_its_worker_and_not_reused() -> None:
    registry, opener, cid = pool.PoolRegistry(1, 60), Opener(), uuid.uuid4()
    finished = threading.Event()

    def slow(conn: Any) -> None:
        time.sleep(0.3)
        finished.set()

    async with pool.lease(registry, cid, "fp", opener, wait_s=1) as session:
        with pytest.raises(TimeoutError):
            await session.run(slow, timeout=0.05)
        assert session.broken
    assert not opener.opened[0].closed.is_set() or finished.is_set()
    assert await closed(opener.opened[0])  # closed by the worker once the driver returned
    assert finished.is_set()
    async with pool.lease(registry, cid, "fp", opener, wait_s=1):
        pass
    assert len(opener.opened) == 2
    await registry.close()


async def test_failed_open_frees_the_slot() -> None:
    registry, cid = pool.PoolRegistry(1, 60), uuid.uuid4()

    async def failing() -> pool.Session:
        raise UpstreamError("down", code="network_unreachable")

    for _ in range(3):
        with pytest.raises(UpstreamError):
            async with pool.lease(registry, cid, "fp", failing, wait_s=0.2):
                pass
    await registry.close()


def test_fingerprint_changes_with_config_and_credentials() -> None:
    base = pool.fingerprint("postgres", {"host": "a"}, {"password": "one"})
    assert base == pool.fingerprint("postgres", {"host": "a"}, {"password": "one"})
    assert base != pool.fingerprint("postgres", {"host": "b"}, {"password": "one"})
    assert base != pool.fingerprint("postgres", {"host": "a"}, {"password": "two"})
    assert "one" not in base


async def test_closed_registry_refuses_new_leases() -> None:
    registry = pool.PoolRegistry(1, 60)
    await registry.close()
    with pytest.raises(UpstreamError):
        registry.pool(uuid.uuid4(), "fp")
