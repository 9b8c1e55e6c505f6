"""Token buckets: where their levels live and how a request takes a token from them.

A request takes one token from a *burst* bucket (small, refills fast) and then one from a
*sustained* bucket (large, refills slowly). It is let through only if both had a token. The
burst bucket is taken first and is not refunded when the sustained one refuses: a caller held
back by the sustained bucket waits long enough for the burst bucket to refill anyway, whereas
the other order would burn sustained tokens on requests the burst bucket refuses.

Two stores:

* :class:`SqlBucketStore` (PostgreSQL): the buckets are rows of ``rate_limit_buckets`` and
  both takes are ONE statement, so every server process sharing the store enforces the same
  limit. Each take is ``INSERT ... ON CONFLICT (key) DO UPDATE ... WHERE <a token is left>``:
  the row is locked for the update, the refill is computed from the row's latest version
  (never from a stale read), and a refused take changes nothing and returns no row. The clock
  is the database's (``clock_timestamp()``), so processes on hosts with skewed clocks agree.
  Given the runtime's statement pool (``kit.statement_pool``), the statement runs there:
  autocommit (one statement needs no BEGIN/COMMIT round trips) and without waiting for the
  WAL flush (``synchronous_commit=off``: a crash may forget the last fraction of a second of
  takes, which only hands out a few requests more).
  Through the engine (``engine.begin()``, the fallback) a take costs about 600 us of latency
  and 300 us of CPU here; through the pool about 120 and 60.
* :class:`MemoryBucketStore` (embedded SQLite: one process by construction): a dict under an
  ``asyncio.Lock``, with ``time.monotonic``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from connhub.kit import prebuilt

if TYPE_CHECKING:
    from connhub.kit.statement_pool import StatementPool

EPSILON = 1e-9


@dataclass(frozen=True)
class Bucket:
    """``capacity`` tokens at most, refilled at ``rate`` tokens per second."""

    key: str
    capacity: float
    rate: float

    def refill(self, tokens: float, elapsed: float) -> float:
        return min(self.capacity, tokens + max(0.0, elapsed) * self.rate)

    @staticmethod
    def has_one(tokens: float) -> bool:
        """A whole token is there (allowing for float error in ``now - then`` sums)."""
        return tokens >= 1.0 - EPSILON

    def wait_for_one(self, tokens: float) -> float:
        """Seconds until ``tokens`` (the refilled level now) reaches one whole token."""
        return max(0.0, (1.0 - tokens) / self.rate)

    def wait_until_full(self, tokens: float) -> float:
        return max(0.0, (self.capacity - tokens) / self.rate)


@dataclass(frozen=True)
class Take:
    """What a take did. ``sustained_left`` is the sustained level after the take (allowed),
    ``retry_after`` the seconds until the refusing bucket has a token again (refused)."""

    allowed: bool
    sustained_left: float
    retry_after: float


class BucketStore(Protocol):
    async def take(self, burst: Bucket, sustained: Bucket) -> Take: ...


class MemoryBucketStore:
    """Buckets of one process (the embedded store runs exactly one)."""

    def __init__(self) -> None:
        self._levels: dict[str, tuple[float, float]] = {}  # key -> (tokens, monotonic time)
        self._lock = asyncio.Lock()

    def _level(self, bucket: Bucket, now: float) -> float:
        tokens, at = self._levels.get(bucket.key, (bucket.capacity, now))
        return bucket.refill(tokens, now - at)

    async def take(self, burst: Bucket, sustained: Bucket) -> Take:
        async with self._lock:
            now = time.monotonic()
            burst_level = self._level(burst, now)
            if not burst.has_one(burst_level):
                self._levels[burst.key] = (burst_level, now)
                return Take(False, 0.0, burst.wait_for_one(burst_level))
            self._levels[burst.key] = (max(0.0, burst_level - 1), now)
            level = self._level(sustained, now)
            if not sustained.has_one(level):
                self._levels[sustained.key] = (level, now)
                return Take(False, 0.0, sustained.wait_for_one(level))
            self._levels[sustained.key] = (max(0.0, level - 1), now)
            return Take(True, max(0.0, level - 1), 0.0)


# Both takes, the clock and (for Retry-After) the levels as they were, in one round trip.
# ``burst`` takes a token if the refilled level has one; ``sustained`` runs only if ``burst``
# returned a row. The plain SELECTs read the statement's snapshot, i.e. the rows before this
# statement's takes: exactly what a refused take left unchanged.
TAKE_SQL = """
WITH clock AS (
  SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS double precision) AS now
),
burst AS (
  INSERT INTO rate_limit_buckets AS b (key, tokens, updated_at)
  SELECT CAST(:burst_key AS varchar), CAST(:burst_cap AS double precision) - 1, clock.now
  FROM clock
  ON CONFLICT (key) DO UPDATE
    SET tokens = GREATEST(0, LEAST(CAST(:burst_cap AS double precision),
                                   b.tokens + GREATEST(0, excluded.updated_at - b.updated_at)
                                              * CAST(:burst_rate AS double precision)) - 1),
        updated_at = GREATEST(b.updated_at, excluded.updated_at)
    WHERE LEAST(CAST(:burst_cap AS double precision),
                b.tokens + GREATEST(0, excluded.updated_at - b.updated_at)
                           * CAST(:burst_rate AS double precision)) >= 1 - 1e-9
  RETURNING b.tokens
),
sustained AS (
  INSERT INTO rate_limit_buckets AS b (key, tokens, updated_at)
  SELECT CAST(:sustained_key AS varchar), CAST(:sustained_cap AS double precision) - 1,
         clock.now
  FROM clock WHERE EXISTS (SELECT 1 FROM burst)
  ON CONFLICT (key) DO UPDATE
    SET tokens = GREATEST(0, LEAST(CAST(:sustained_cap AS double precision),
                                   b.tokens + GREATEST(0, excluded.updated_at - b.updated_at)
                                              * CAST(:sustained_rate AS double precision)) - 1),
        updated_at = GREATEST(b.updated_at, excluded.updated_at)
    WHERE LEAST(CAST(:sustained_cap AS double precision),
                b.tokens + GREATEST(0, excluded.updated_at - b.updated_at)
                           * CAST(:sustained_rate AS double precision)) >= 1 - 1e-9
  RETURNING b.tokens
)
SELECT clock.now,
       (SELECT tokens FROM burst) AS burst_left,
       (SELECT tokens FROM sustained) AS sustained_left,
       was_burst.tokens AS burst_was, was_burst.updated_at AS burst_at,
       was_sustained.tokens AS sustained_was, was_sustained.updated_at AS sustained_at
FROM clock
LEFT JOIN rate_limit_buckets AS was_burst ON was_burst.key = CAST(:burst_key AS varchar)
LEFT JOIN rate_limit_buckets AS was_sustained
       ON was_sustained.key = CAST(:sustained_key AS varchar)
"""


class SqlBucketStore:
    """Buckets in ``rate_limit_buckets``, shared by every process on the same PostgreSQL."""

    def __init__(self, engine: AsyncEngine, *, statements: StatementPool | None = None) -> None:
        """``statements``: the runtime's statement pool, if any (see the module)."""
        self._engine = engine
        self._statements = statements
        self._sql = text(TAKE_SQL)

    async def take(self, burst: Bucket, sustained: Bucket) -> Take:
        params = {
            "burst_key": burst.key,
            "burst_cap": burst.capacity,
            "burst_rate": burst.rate,
            "sustained_key": sustained.key,
            "sustained_cap": sustained.capacity,
            "sustained_rate": sustained.rate,
        }
        row: Mapping[Any, Any]
        if self._statements is not None:
            plan = prebuilt.plan(self._sql, self._engine.dialect)
            async with self._statements.connection() as driver:
                row = await driver.fetchrow(plan.sql, *plan.values(params))
        else:
            async with self._engine.begin() as conn:
                row = (await conn.execute(self._sql, params)).one()._mapping
        now = float(row["now"])
        if row["sustained_left"] is not None:
            return Take(True, float(row["sustained_left"]), 0.0)
        if row["burst_left"] is None:
            level = _level_then(burst, row["burst_was"], row["burst_at"], now)
            return Take(False, 0.0, burst.wait_for_one(level))
        level = _level_then(sustained, row["sustained_was"], row["sustained_at"], now)
        return Take(False, 0.0, sustained.wait_for_one(level))


def _level_then(bucket: Bucket, tokens: float | None, at: float | None, now: float) -> float:
    if tokens is None or at is None:  # a concurrent first request created it meanwhile
        return 0.0
    return bucket.refill(float(tokens), now - float(at))


def whole(seconds: float) -> int:
    """Header value: whole seconds, rounded up, at least 1 when anything is left to wait."""
    return max(1, math.ceil(seconds - EPSILON)) if seconds > EPSILON else 0
