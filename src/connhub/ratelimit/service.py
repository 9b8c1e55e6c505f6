"""Per-workspace rate limits (API.md section 2: 100 requests/min, bursts of 20/s).

The limiter turns two settings into two token buckets per key and answers with a
:class:`Quota` (for the ``X-RateLimit-*`` headers) or raises ``RateLimited`` (429 with
``Retry-After``). Which store holds the buckets follows the store the service runs on:
PostgreSQL may be shared by several server processes, so the buckets live in it; the embedded
SQLite store means one process, so they live in memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from connhub.config import Settings
from connhub.errors import RateLimited
from connhub.ratelimit.store import (
    Bucket,
    BucketStore,
    MemoryBucketStore,
    SqlBucketStore,
    whole,
)

if TYPE_CHECKING:
    from connhub.kit.statement_pool import StatementPool


@dataclass(frozen=True)
class Quota:
    """What the ``X-RateLimit-*`` headers report: the sustained (per-minute) bucket."""

    limit: int
    remaining: int
    reset_s: int

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_s),
        }


class RateLimiter:
    def __init__(self, store: BucketStore, *, per_minute: int, burst_per_second: int) -> None:
        if per_minute < 1 or burst_per_second < 1:
            raise ValueError("rate limits must be at least 1")
        self.store = store
        self.per_minute = per_minute
        self.burst_per_second = burst_per_second

    def buckets(self, key: str) -> tuple[Bucket, Bucket]:
        # Burst: up to N requests at once, N more each second. Sustained: up to M at once
        # (a fresh minute), refilled at M per minute.
        return (
            Bucket(f"{key}:s", self.burst_per_second, float(self.burst_per_second)),
            Bucket(f"{key}:m", self.per_minute, self.per_minute / 60.0),
        )

    async def hit(self, key: str) -> Quota:
        """Take one request from ``key``'s allowance, or raise ``RateLimited`` (429)."""
        burst, sustained = self.buckets(key)
        take = await self.store.take(burst, sustained)
        if not take.allowed:
            raise RateLimited(
                "Rate limit exceeded; retry after the Retry-After delay",
                retry_after=take.retry_after,
                limit=self.per_minute,
                remaining=0,
            )
        left = max(0.0, take.sustained_left)
        return Quota(
            limit=self.per_minute,
            remaining=math.floor(left + 1e-9),
            reset_s=whole(sustained.wait_until_full(left)),
        )


def build_limiter(
    settings: Settings,
    engine: AsyncEngine,
    *,
    statements: StatementPool | None = None,
    per_minute: int | None = None,
    burst_per_second: int | None = None,
) -> RateLimiter | None:
    """A limiter for this process (the settings' Sources limits unless given others), or
    ``None`` when rate limiting is switched off. ``statements``: the runtime's statement
    pool, which takes shared buckets at a fifth of the engine's cost."""
    if not settings.rate_limit_enabled:
        return None
    store: BucketStore
    if engine.dialect.name == "postgresql":
        store = SqlBucketStore(engine, statements=statements)
    else:
        store = MemoryBucketStore()
    return RateLimiter(
        store,
        per_minute=settings.rate_limit_per_minute if per_minute is None else per_minute,
        burst_per_second=(
            settings.rate_limit_burst_per_second if burst_per_second is None else burst_per_second
        ),
    )
