"""kit.threads: blocking calls never hold the loop, time out at once, and stay bounded."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from connhub.kit import threads
from connhub.kit.threads import run_blocking


@pytest.fixture(autouse=True)
def _restore_limit() -> Iterator[None]:
    yield
    threads.configure(threads.DEFAULT_LIMIT)


async def test_the_loop_keeps_ticking_while_a_blocking_call_sleeps() -> None:
    ticks: list[float] = []
    stop = asyncio.Event()

    async def heartbeat() -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    beat = asyncio.create_task(heartbeat())
    started = time.monotonic()
    await run_blocking(time.sleep, 0.5)
    stop.set()
    await beat
    during = [t for t in ticks if started < t < started + 0.5]
    assert len(during) >= 20  # ~50 expected at 10 ms; a blocked loop would give 0 or 1
    gaps = [b - a for a, b in zip(during, during[1:], strict=False)]
    assert max(gaps) < 0.2


async def test_results_and_exceptions_come_back() -> None:
    assert await run_blocking(lambda a, b=0: a + b, 2, b=3) == 5

    def boom() -> None:
        raise KeyError("nope")

    with pytest.raises(KeyError):
        await run_blocking(boom)


async def test_timeout_returns_at_once_and_the_thread_finishes_in_the_background() -> None:
    finished = threading.Event()

    def slow() -> str:
        time.sleep(0.4)
        finished.set()
        return "late"

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await run_blocking(slow, timeout=0.1)
    assert time.monotonic() - started < 0.2
    assert not finished.is_set()
    await asyncio.sleep(0.5)
    assert finished.is_set()


async def test_an_abandoned_thread_keeps_its_slot_until_it_really_ends() -> None:
    threads.configure(1)
    release = threading.Event()

    def stuck() -> None:
        release.wait(5)

    with pytest.raises(TimeoutError):
        await run_blocking(stuck, timeout=0.05)
    assert threads.in_use() == 1  # the caller left, the thread did not
    with pytest.raises(TimeoutError):  # so a second call cannot start
        await run_blocking(lambda: None, timeout=0.1)
    release.set()
    await asyncio.sleep(0.1)
    assert threads.in_use() == 0
    assert await run_blocking(lambda: "free", timeout=1) == "free"


async def test_a_call_cancelled_while_queued_never_runs() -> None:
    threads.configure(1)
    release = threading.Event()
    ran: list[str] = []
    first = asyncio.create_task(run_blocking(release.wait, 5))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(run_blocking(ran.append, "second"))
    await asyncio.sleep(0.05)
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    release.set()
    await first
    await asyncio.sleep(0.05)
    assert ran == []
    assert threads.in_use() == 0


async def test_at_most_the_configured_number_run_at_once() -> None:
    threads.configure(2)
    lock = threading.Lock()
    running = 0
    peak = 0

    def work() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.1)
        with lock:
            running -= 1

    started = time.monotonic()
    await asyncio.gather(*(run_blocking(work) for _ in range(6)))
    assert peak == 2
    assert time.monotonic() - started >= 0.29


def test_configure_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        threads.configure(0)
