"""A bounded pool for blocking drivers (psycopg, PyMySQL, vendor connectors).

``run_blocking`` runs a call in an AnyIO worker thread and returns as soon as its timeout
expires or the caller is cancelled (``abandon_on_cancel=True``): the event loop is never
held by a driver. The abandoned thread keeps running until the driver's own timeout (which
callers set to what is left of the budget) and its result is thrown away.

The bound is real: a thread keeps its token of the module's ``CapacityLimiter`` until the
call truly ends, not merely until the caller stopped waiting. AnyIO alone would release the
token on abandonment, so a burst of verifications against a black-hole host could grow the
number of live threads without limit. Here the token is taken on behalf of a ``_Lease`` and
given back either by the waiting caller (call finished, or never started) or by the worker
thread itself when it finishes after being abandoned.

One limiter per event loop (AnyIO limiters belong to a loop); ``configure`` sets its size
(``Settings.verify_threads``) for every loop.
"""

from __future__ import annotations

import asyncio
import functools
import math
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
from anyio import CapacityLimiter
from anyio.lowlevel import RunVar

T = TypeVar("T")

DEFAULT_LIMIT = 16
_limit = DEFAULT_LIMIT
_LIMITER: RunVar[CapacityLimiter] = RunVar("connhub_blocking_limiter")
# AnyIO's own run_sync needs a limiter too; ours already bounds the work, so that one must
# not (its default of 40 is shared with Starlette's sync endpoints).
_PASSTHROUGH: RunVar[CapacityLimiter] = RunVar("connhub_blocking_passthrough")


def configure(limit: int) -> None:
    """Set how many blocking calls may run at once (per event loop)."""
    global _limit
    if limit < 1:
        raise ValueError("the blocking-call limit must be at least 1")
    _limit = limit


def limiter() -> CapacityLimiter:
    """The current loop's limiter, created on first use and kept at the configured size."""
    try:
        current = _LIMITER.get()
    except LookupError:
        current = CapacityLimiter(_limit)
        _LIMITER.set(current)
    if current.total_tokens != _limit:
        current.total_tokens = _limit
    return current


def _passthrough() -> CapacityLimiter:
    try:
        return _PASSTHROUGH.get()
    except LookupError:
        unbounded = CapacityLimiter(math.inf)
        _PASSTHROUGH.set(unbounded)
        return unbounded


class _NotStarted(Exception):
    """The caller gave up before the worker picked the call up; it must not run at all."""


class _Lease:
    """One limiter token, held for as long as the blocking call is queued or running."""

    def __init__(self, tokens: CapacityLimiter, loop: asyncio.AbstractEventLoop) -> None:
        self._tokens = tokens
        self._loop = loop
        self._lock = threading.Lock()
        self._state = "queued"  # -> running -> finished, or queued -> dropped
        self._caller_gone = False
        self._released = False

    def call(self, fn: Callable[[], T]) -> T:
        """Runs in the worker thread."""
        with self._lock:
            if self._state == "dropped":
                raise _NotStarted
            self._state = "running"
        try:
            return fn()
        finally:
            with self._lock:
                self._state = "finished"
                caller_gone = self._caller_gone
            if caller_gone:
                try:
                    self._loop.call_soon_threadsafe(self._release)
                except RuntimeError:  # the loop is closed; so is its limiter
                    pass

    def settle(self) -> None:
        """Runs on the loop when the caller stops waiting (result, error or cancellation)."""
        with self._lock:
            if self._state == "running":
                self._caller_gone = True  # the worker gives the token back when it ends
                return
            if self._state == "queued":
                self._state = "dropped"
        self._release()

    def _release(self) -> None:
        if not self._released:
            self._released = True
            self._tokens.release_on_behalf_of(self)


async def run_blocking(
    fn: Callable[..., T],
    *args: Any,
    timeout: float | None = None,  # noqa: ASYNC109 - a deadline for the thread, not for I/O here
    **kwargs: Any,
) -> T:
    """Run ``fn(*args, **kwargs)`` in a worker thread, bounded by the module limiter.

    Raises ``TimeoutError`` after ``timeout`` seconds (``None``: no limit), counting the wait
    for a free thread. On timeout or cancellation it returns immediately; the thread finishes
    in the background and its result or exception is discarded.
    """
    tokens = limiter()
    lease = _Lease(tokens, asyncio.get_running_loop())
    call = functools.partial(fn, *args, **kwargs)
    async with asyncio.timeout(timeout):
        await tokens.acquire_on_behalf_of(lease)
        try:
            return await anyio.to_thread.run_sync(
                lease.call, call, abandon_on_cancel=True, limiter=_passthrough()
            )
        finally:
            lease.settle()


def in_use() -> int:
    """Tokens currently held on this loop (queued or running calls, abandoned ones included)."""
    return int(limiter().borrowed_tokens)
