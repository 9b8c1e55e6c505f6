"""The limit holds across server processes sharing one PostgreSQL store.

Only meaningful on PostgreSQL (``CONNHUB_TEST_STORE=postgres``): the embedded SQLite store
is single-process by design and keeps its buckets in memory.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connhub.config import Settings
from connhub.errors import RateLimited
from connhub.ratelimit import RateLimiter
from connhub.ratelimit.store import SqlBucketStore
from connhub.runtime import Runtime
from support.live import free_port

pytestmark = pytest.mark.skipif(
    os.environ.get("CONNHUB_TEST_STORE", "sqlite") != "postgres",
    reason="shared buckets live in PostgreSQL; the SQLite store is one process (memory buckets)",
)


async def _count_allowed(limiter: RateLimiter, key: str, n: int) -> int:
    async def one() -> bool:
        try:
            await limiter.hit(key)
        except RateLimited:
            return False
        return True

    return sum(await asyncio.gather(*(one() for _ in range(n))))


@pytest.mark.parametrize("through", ["engine", "statement pool"])
async def test_concurrent_takes_never_overspend(runtime: Runtime, through: str) -> None:
    """40 simultaneous requests from one process's pool: the row lock serialises them, through
    the engine or through the statement pool the faces use.

    The burst bucket refills 10 tokens a second while the 40 queue on the lock, so what may
    pass is the burst plus what refilled meanwhile (a slow machine takes longer).
    """
    pool = runtime.statement_pool if through == "statement pool" else None
    if through == "statement pool":
        assert pool is not None
    store = SqlBucketStore(runtime.engine, statements=pool)
    burst_bound = RateLimiter(store, per_minute=1000, burst_per_second=10)
    started = time.monotonic()
    allowed = await _count_allowed(burst_bound, f"t:{through}:burst", 40)
    refilled = math.ceil((time.monotonic() - started) * 10)
    assert 10 <= allowed <= 10 + refilled, (allowed, refilled)
    assert allowed < 40
    minute_bound = RateLimiter(store, per_minute=7, burst_per_second=1000)
    assert await _count_allowed(minute_bound, f"t:{through}:minute", 40) == 7


def _env(settings: Settings, home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNHUB_")}
    env.update(
        {
            "CONNHUB_DATABASE_URL": str(settings.database_url),
            "CONNHUB_HOME": str(home),
            "CONNHUB_KEY_FILE": str(settings.resolved_key_file),
            "CONNHUB_EGRESS_ALLOW": "127.0.0.1",
            "CONNHUB_LOG_LEVEL": "WARNING",
            **extra,
        }
    )
    return env


def _cli(env: dict[str, str], *args: str) -> dict[str, Any]:
    out = subprocess.run(  # noqa: S603 - our own interpreter and CLI
        [sys.executable, "-m", "connhub.cli", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


@pytest.fixture
def two_servers(
    settings: Settings, runtime: Runtime, tmp_path: Path
) -> Iterator[tuple[list[str], dict[str, str], str]]:
    env = _env(
        settings,
        tmp_path,
        CONNHUB_RATE_LIMIT_ENABLED="true",
        CONNHUB_RATE_LIMIT_PER_MINUTE="8",
        CONNHUB_RATE_LIMIT_BURST_PER_SECOND="4",
    )
    workspace = _cli(env, "workspaces", "create", "Shared limits")
    token = _cli(
        env,
        "tokens",
        "create",
        "--workspace",
        workspace["slug"],
        "--email",
        "limits@example.com",
        "--role",
        "admin",
    )["token"]
    procs: list[subprocess.Popen[bytes]] = []
    urls = []
    try:
        for _ in range(2):
            port = free_port()
            procs.append(
                subprocess.Popen(  # noqa: S603
                    [sys.executable, "-m", "connhub.cli", "serve", "--port", str(port)],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        for url, proc in zip(urls, procs, strict=True):
            while True:
                assert proc.poll() is None, "server exited"
                assert time.monotonic() < deadline, "server did not start"
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
        headers = {"Authorization": f"Bearer {token}", "X-Workspace-ID": workspace["id"]}
        yield urls, headers, workspace["id"]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


async def test_two_processes_share_one_allowance(two_servers) -> None:  # type: ignore[no-untyped-def]
    urls, headers, workspace_id = two_servers
    path = f"/api/v1/workspaces/{workspace_id}/sources"
    async with httpx.AsyncClient(timeout=10) as http:
        # Burst: 8 simultaneous requests, 4 to each process. Two separate limiters would let
        # all 8 through; one shared bucket lets 4 (5 if a token refilled meanwhile).
        burst = await asyncio.gather(
            *(http.get(urls[i % 2] + path, headers=headers) for i in range(8))
        )
        allowed = [r for r in burst if r.status_code == 200]
        refused = [r for r in burst if r.status_code == 429]
        assert 4 <= len(allowed) <= 5, [r.status_code for r in burst]
        assert all(int(r.headers["Retry-After"]) >= 1 for r in refused)
        assert all(
            r.json() == {"error": "Rate limit exceeded; retry after the Retry-After delay"}
            for r in refused
        )

        # Per-minute cap (8): after the burst bucket refills, alternate between the processes
        # one request at a time until refused; the total across both stays 8.
        await asyncio.sleep(1.1)
        total = len(allowed)
        remaining = []
        for i in range(10):
            resp = await http.get(urls[i % 2] + path, headers=headers)
            if resp.status_code == 429:
                last = resp
                break
            total += 1
            remaining.append(int(resp.headers["X-RateLimit-Remaining"]))
        else:
            pytest.fail("the per-minute cap never applied")
        assert total == 8
        assert remaining == sorted(remaining, reverse=True) and remaining[-1] == 0
        assert 1 <= int(last.headers["Retry-After"]) <= 8  # 60/8 = 7.5 s per token
        assert last.headers["X-RateLimit-Limit"] == "8"
