"""A small pool of customer-database sessions per connection, so browsing is not a login per click.

Shape (why each part):

- one :class:`ConnectionPool` per connection id, at most ``Settings.pool_size_per_connection``
  sessions open at once (a busy dashboard cannot open hundreds of sessions on a customer's
  database); callers beyond that wait, up to a deadline;
- pools are keyed by the connection id *and* a fingerprint of provider + config + credentials
  (an HMAC with a per-process key, so no hash of a password is ever kept). A PATCH that changes
  either gives a new fingerprint: the old pool is closed (idle sessions at once, busy ones when
  they come back), so nothing keeps using an old password or host;
- sessions idle longer than ``Settings.pool_idle_s`` are closed by a reaper task, and a pool
  with no sessions left is forgotten;
- a session whose caller stopped waiting (timeout, client gone) while its worker thread still
  runs is never reused: the worker closes it when the driver returns (the database's own
  statement timeout ends the statement first);
- the registry lives on ``app.state`` (``registry_for``) and ``close_registry`` closes every
  session at shutdown (``app.py`` lifespan).

Sessions themselves are opened by the caller's ``opener`` (``providers.kinds.sql.open_session``
through the egress policy, then ``Executor.prepare``), see ``query/service.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar

from connhub.errors import UpstreamError
from connhub.kit import egress_pins
from connhub.kit.threads import run_blocking
from connhub.providers.kinds.sql import close_in_background
from connhub.query.runner import Executor

log = logging.getLogger(__name__)
T = TypeVar("T")

_PROCESS_KEY = secrets.token_bytes(32)
_STATE_ATTR = "connhub_query_pools"


def fingerprint(provider: str, config: Mapping[str, Any], credentials: Mapping[str, str]) -> str:
    """Changes whenever the provider, config or credentials change; reveals none of them."""
    blob = json.dumps([provider, config, credentials], sort_keys=True, default=str).encode()
    return hmac.new(_PROCESS_KEY, blob, hashlib.sha256).hexdigest()


class Session:
    """One open DB-API connection and the executor that knows its engine."""

    def __init__(self, conn: Any, executor: Executor) -> None:
        self.conn = conn
        self.executor = executor
        # The addresses the egress policy checked when it was opened: later requests' calls
        # on it (HTTPS drivers reach their hosts by name) use them too.
        self._pins = egress_pins.current()
        self.last_used = time.monotonic()
        self.broken = False
        self.fresh = True  # opened for this lease; False once it has been back in the pool
        self._lock = threading.Lock()
        self._abandoned = False

    async def run(self, fn: Callable[[Any], T], *, timeout: float) -> T:  # noqa: ASYNC109
        """``fn(conn)`` in a worker thread; if we stop waiting, the worker closes the session."""
        done = False

        def work() -> T:
            nonlocal done
            with egress_pins.applied(self._pins):
                try:
                    return fn(self.conn)
                finally:
                    with self._lock:
                        done = True
                        abandoned = self._abandoned
                    if abandoned:
                        with suppress(Exception):
                            self.conn.close()

        try:
            return await run_blocking(work, timeout=timeout)
        except BaseException:
            with self._lock:
                if not done:
                    self._abandoned = True
                    self.broken = True
            raise

    def reusable(self) -> bool:
        if self.broken:
            return False
        try:
            return self.executor.healthy(self.conn)
        except Exception:
            return False

    def close_soon(self) -> None:
        """Close off the event loop; unless a worker still holds it (then the worker closes)."""
        with self._lock:
            if self._abandoned:
                return
            self._abandoned = True  # a late worker must not reuse it either
        with egress_pins.applied(self._pins):  # the closing thread starts from this context
            close_in_background(self.conn)


Opener = Callable[[], Awaitable[Session]]


class ConnectionPool:
    def __init__(self, connection_id: uuid.UUID, fingerprint: str, size: int) -> None:
        self.connection_id = connection_id
        self.fingerprint = fingerprint
        self.size = size
        self._slots = asyncio.Semaphore(size)
        self._idle: deque[Session] = deque()
        self._busy = 0
        self.closed = False

    @property
    def open_sessions(self) -> int:
        return len(self._idle) + self._busy

    async def acquire(self, opener: Opener, wait_s: float) -> Session:
        try:
            async with asyncio.timeout(wait_s):
                await self._slots.acquire()
        except TimeoutError:
            raise UpstreamError(
                f"All {self.size} sessions to this connection are busy; try again shortly",
                code="timeout",
            ) from None
        try:
            while self._idle:
                session = self._idle.pop()  # most recent first: warm caches, old ones expire
                if session.reusable():
                    self._busy += 1
                    return session
                session.close_soon()
            session = await opener()
        except BaseException:
            self._slots.release()
            raise
        self._busy += 1
        return session

    def release(self, session: Session) -> None:
        self._busy -= 1
        self._slots.release()
        if self.closed or not session.reusable():
            session.close_soon()
            return
        session.fresh = False
        session.last_used = time.monotonic()
        self._idle.append(session)

    def reap(self, idle_s: float, now: float) -> None:
        keep: deque[Session] = deque()
        for session in self._idle:
            if now - session.last_used >= idle_s:
                session.close_soon()
            else:
                keep.append(session)
        self._idle = keep

    def close(self) -> None:
        """Close idle sessions now; busy ones are closed when released."""
        self.closed = True
        while self._idle:
            self._idle.pop().close_soon()


class PoolRegistry:
    """Every connection's pool in this process (one registry per app)."""

    def __init__(self, size: int, idle_s: float) -> None:
        if size < 1:
            raise ValueError("pool_size_per_connection must be at least 1")
        self.size = size
        self.idle_s = idle_s
        self._pools: dict[uuid.UUID, ConnectionPool] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False

    def pool(self, connection_id: uuid.UUID, fingerprint: str) -> ConnectionPool:
        if self._closed:
            raise UpstreamError("The service is shutting down", code="provider_error")
        current = self._pools.get(connection_id)
        if current is not None and current.fingerprint != fingerprint:
            current.close()  # config or credentials changed: never reuse the old sessions
            current = None
        if current is None:
            current = self._pools[connection_id] = ConnectionPool(
                connection_id, fingerprint, self.size
            )
        self._ensure_reaper()
        return current

    def forget(self, connection_id: uuid.UUID) -> None:
        """Close a connection's pool (e.g. after it was deleted or disabled)."""
        pool = self._pools.pop(connection_id, None)
        if pool is not None:
            pool.close()

    def stats(self) -> dict[str, int]:
        return {str(cid): pool.open_sessions for cid, pool in self._pools.items()}

    def reap(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for cid, pool in list(self._pools.items()):
            pool.reap(self.idle_s, now)
            if pool.open_sessions == 0:
                del self._pools[cid]

    def _ensure_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(
                self._reap_forever(), name="connhub-query-pool-reaper"
            )

    async def _reap_forever(self) -> None:
        interval = max(0.05, min(self.idle_s / 2, 30.0))
        while True:
            await asyncio.sleep(interval)
            try:
                self.reap()
            except Exception:  # the reaper must outlive a bad session
                log.exception("query pool reaper failed")

    async def close(self) -> None:
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            with suppress(asyncio.CancelledError):
                await self._reaper
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


@asynccontextmanager
async def lease(
    registry: PoolRegistry,
    connection_id: uuid.UUID,
    fingerprint: str,
    opener: Opener,
    *,
    wait_s: float,
) -> AsyncIterator[Session]:
    """A session of this connection's pool for the duration of the block."""
    pool = registry.pool(connection_id, fingerprint)
    session = await pool.acquire(opener, wait_s)
    try:
        yield session
    finally:
        pool.release(session)


def registry_for(state: Any, *, size: int, idle_s: float) -> PoolRegistry:
    """The app's registry (``app.state``), made on first use."""
    registry = getattr(state, _STATE_ATTR, None)
    if registry is None:
        registry = PoolRegistry(size, idle_s)
        setattr(state, _STATE_ATTR, registry)
    return registry


def forget(state: Any, connection_id: uuid.UUID) -> None:
    """Close a connection's pooled sessions now (it was deleted, disabled or changed).

    Without this they would stay open on the customer's database until they idled out.
    """
    registry: PoolRegistry | None = getattr(state, _STATE_ATTR, None)
    if registry is not None:
        registry.forget(connection_id)


async def close_registry(state: Any) -> None:
    """Close every pooled session of this app (lifespan shutdown)."""
    registry: PoolRegistry | None = getattr(state, _STATE_ATTR, None)
    if registry is not None:
        await registry.close()
        with suppress(AttributeError):
            delattr(state, _STATE_ATTR)
