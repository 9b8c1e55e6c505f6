"""kit.ttlcache.TTLCache.get_or_load: concurrent misses share one load."""

from __future__ import annotations

import asyncio

import pytest

from connhub.kit.ttlcache import TTLCache


class Loader:
    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.fail = fail

    async def __call__(self) -> str:
        self.calls += 1
        await self.release.wait()
        if self.fail:
            raise LookupError("no such token")
        return f"value {self.calls}"


async def test_concurrent_misses_share_one_load_and_the_value_is_cached() -> None:
    cache: TTLCache[str, str] = TTLCache(60)
    load = Loader()
    waiters = [asyncio.ensure_future(cache.get_or_load("k", load)) for _ in range(16)]
    await asyncio.sleep(0)
    load.release.set()
    assert await asyncio.gather(*waiters) == ["value 1"] * 16
    assert load.calls == 1
    assert await cache.get_or_load("k", load) == "value 1"
    assert load.calls == 1


async def test_a_failed_load_reaches_every_waiter_and_is_not_cached() -> None:
    cache: TTLCache[str, str] = TTLCache(60)
    load = Loader(fail=True)
    waiters = [asyncio.ensure_future(cache.get_or_load("k", load)) for _ in range(4)]
    await asyncio.sleep(0)
    load.release.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, LookupError) for r in results)
    assert load.calls == 1
    load.fail = False
    assert await cache.get_or_load("k", load) == "value 2"


async def test_a_cancelled_waiter_does_not_cancel_the_load_for_the_others() -> None:
    cache: TTLCache[str, str] = TTLCache(60)
    load = Loader()
    first = asyncio.ensure_future(cache.get_or_load("k", load))
    second = asyncio.ensure_future(cache.get_or_load("k", load))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    load.release.set()
    assert await second == "value 1"
    assert load.calls == 1


async def test_a_zero_ttl_loads_every_time() -> None:
    cache: TTLCache[str, str] = TTLCache(0)
    load = Loader()
    load.release.set()
    assert await cache.get_or_load("k", load) == "value 1"
    assert await cache.get_or_load("k", load) == "value 2"


async def test_an_expired_entry_is_loaded_again() -> None:
    cache: TTLCache[str, str] = TTLCache(0.05)
    load = Loader()
    load.release.set()
    assert await cache.get_or_load("k", load) == "value 1"
    await asyncio.sleep(0.1)
    assert await cache.get_or_load("k", load) == "value 2"
