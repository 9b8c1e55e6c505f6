"""A bounded pool for blocking drivers (psycopg, PyMySQL, vendor connectors).

``run_blocking`` runs a call in a worker thread and returns as soon as its timeout expires or
the caller is cancelled: the event loop is never held by a driver. An abandoned call keeps
running until the driver's own timeout (which callers set to what is left of the budget) and
its result is thrown away.

The bound is real because it is the executor's: a ``ThreadPoolExecutor`` with ``limit``
workers never runs more calls than that, and an abandoned call keeps its worker until it truly
ends, so a burst of verifications against a black-hole host cannot grow the number of live
threads. A call still queued when its caller gives up is cancelled and never runs.

A plain executor rather than AnyIO's worker threads: each AnyIO call passes through two
cancellation checkpoints (extra event-loop turns), which on a 5 ms verification was a
measurable share of our overhead.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_LIMIT = 16
_limit = DEFAULT_LIMIT
_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()
_pending = 0  # calls queued or running, abandoned ones included


def configure(limit: int) -> None:
    """Set how many blocking calls may run at once (process-wide).

    A new size takes effect for new calls; calls already running finish on the old pool.
    """
    global _limit, _executor
    if limit < 1:
        raise ValueError("the blocking-call limit must be at least 1")
    with _lock:
        if limit == _limit:
            return
        _limit = limit
        old, _executor = _executor, None
    if old is not None:
        old.shutdown(wait=False)


def _pool() -> ThreadPoolExecutor:
    global _executor
    pool = _executor
    if pool is None:
        with _lock:
            pool = _executor
            if pool is None:
                pool = _executor = ThreadPoolExecutor(_limit, thread_name_prefix="connhub-blocking")
    return pool


def _settled(_future: Future[Any]) -> None:
    global _pending
    with _lock:
        _pending -= 1


async def run_blocking(
    fn: Callable[..., T],
    *args: Any,
    timeout: float | None = None,  # noqa: ASYNC109 - a deadline for the thread, not for I/O here
    **kwargs: Any,
) -> T:
    """Run ``fn(*args, **kwargs)`` in a worker thread, bounded by the pool's size.

    Raises ``TimeoutError`` after ``timeout`` seconds (``None``: no limit), counting the wait
    for a free thread. On timeout or cancellation it returns immediately; the thread finishes
    in the background and its result or exception is discarded.

    The call runs in a copy of the caller's context (as ``asyncio.to_thread`` does), so what
    a driver logs there is scrubbed of the secrets the caller's ``secret_scope`` holds.
    """
    global _pending
    loop = asyncio.get_running_loop()
    call = functools.partial(fn, *args, **kwargs)
    submitted = _pool().submit(contextvars.copy_context().run, call)
    with _lock:
        _pending += 1
    submitted.add_done_callback(_settled)  # runs at once if already done; also on cancel
    # Cancelling the asyncio side cancels a call that has not started; a running one is
    # left to finish on its own.
    future = asyncio.wrap_future(submitted, loop=loop)
    if timeout is None:
        return await future
    async with asyncio.timeout(timeout):
        return await future


def in_use() -> int:
    """Calls queued or running, abandoned ones included."""
    return _pending
