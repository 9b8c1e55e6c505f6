"""A tiny bounded TTL cache for per-process lookups that may be slightly stale."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    def __init__(self, ttl_s: float, max_items: int = 10_000) -> None:
        self.ttl = ttl_s
        self.max_items = max_items
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._loading: dict[K, asyncio.Future[V]] = {}

    def get(self, key: K) -> V | None:
        if self.ttl <= 0:
            return None
        item = self._data.get(key)
        if item is None:
            return None
        expires, value = item
        if expires < time.monotonic():
            self._data.pop(key, None)
            return None
        return value

    def put(self, key: K, value: V) -> None:
        if self.ttl <= 0:
            return
        self._data[key] = (time.monotonic() + self.ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self.max_items:
            self._data.popitem(last=False)

    async def get_or_load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The cached value, or ``load()``'s, cached; callers missing the same key at once
        share one load (when an entry expires under load, every request in flight would
        otherwise run the same lookup). A failed load is shared too, and not cached. A
        caller cancelled while waiting does not cancel the load for the others."""
        value = self.get(key)
        if value is not None:
            return value
        if self.ttl <= 0:
            return await load()
        pending = self._loading.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._load(key, load))
            pending.add_done_callback(_retrieve)
            self._loading[key] = pending
        return await asyncio.shield(pending)

    async def _load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        try:
            value = await load()
            self.put(key, value)
            return value
        finally:
            self._loading.pop(key, None)

    def clear(self) -> None:
        self._data.clear()


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a shared load's error as seen even when every waiter has gone."""
    if not future.cancelled():
        future.exception()
