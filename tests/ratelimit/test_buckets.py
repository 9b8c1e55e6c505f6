"""Token-bucket arithmetic of the in-memory store, on a controlled clock."""

from __future__ import annotations

import pytest

from connhub.errors import RateLimited
from connhub.ratelimit import RateLimiter
from connhub.ratelimit import store as store_module
from connhub.ratelimit.store import Bucket, MemoryBucketStore, whole


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(store_module.time, "monotonic", fake)
    return fake


def limiter(per_minute: int = 100, burst: int = 20) -> RateLimiter:
    return RateLimiter(MemoryBucketStore(), per_minute=per_minute, burst_per_second=burst)


async def test_burst_then_refill(clock: Clock) -> None:
    rl = limiter(per_minute=100, burst=20)
    quotas = [await rl.hit("w") for _ in range(20)]
    assert [q.remaining for q in quotas[:3]] == [99, 98, 97]
    assert quotas[-1].remaining == 80 and quotas[-1].limit == 100
    with pytest.raises(RateLimited) as refused:
        await rl.hit("w")
    assert refused.value.retry_after == pytest.approx(1 / 20)
    assert refused.value.limit == 100 and refused.value.remaining == 0
    clock.now += 0.05  # one burst token back
    await rl.hit("w")
    with pytest.raises(RateLimited):
        await rl.hit("w")


async def test_per_minute_cap_and_retry_after(clock: Clock) -> None:
    rl = limiter(per_minute=6, burst=20)
    for _ in range(6):
        quota = await rl.hit("w")
    assert quota.remaining == 0 and quota.reset_s == 60
    with pytest.raises(RateLimited) as refused:
        await rl.hit("w")
    assert refused.value.retry_after == pytest.approx(10.0)
    clock.now += 9.9
    with pytest.raises(RateLimited) as refused:
        await rl.hit("w")
    assert refused.value.retry_after == pytest.approx(0.1)
    clock.now += 0.1
    assert (await rl.hit("w")).remaining == 0


async def test_refused_requests_do_not_drain_the_sustained_bucket(clock: Clock) -> None:
    rl = limiter(per_minute=100, burst=2)
    await rl.hit("w")
    await rl.hit("w")
    for _ in range(50):
        with pytest.raises(RateLimited):
            await rl.hit("w")
    clock.now += 1.0
    assert (await rl.hit("w")).remaining == 98  # 100 - 3 allowed + 1.67 refilled


async def test_keys_are_independent(clock: Clock) -> None:
    rl = limiter(per_minute=1, burst=1)
    await rl.hit("a")
    await rl.hit("b")
    with pytest.raises(RateLimited):
        await rl.hit("a")


def test_bucket_math() -> None:
    bucket = Bucket("k", 10, 2.0)
    assert bucket.refill(3, 2.0) == 7
    assert bucket.refill(9, 5.0) == 10
    assert bucket.refill(3, -1.0) == 3  # clocks never run backwards here
    assert bucket.wait_for_one(0.5) == 0.25
    assert whole(0) == 0 and whole(0.01) == 1 and whole(2.0) == 2 and whole(2.2) == 3


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RateLimiter(MemoryBucketStore(), per_minute=0, burst_per_second=1)
