"""The singleton under truly concurrent creates: a real uvicorn server, parallel clients.

Both requests usually pass the service's early "already exists?" check together and race at
the insert, where the partial unique index ``uq_connections_one_warehouse`` decides.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select
from wh_support import base, body

from connhub.config import Settings
from connhub.models import Connection, ConnectionSecret
from connhub.runtime import Runtime
from support.live import LiveServer, start_server, stop_server

CONFLICT = {"detail": "This organisation already has an active warehouse connection."}


@pytest.fixture
async def live_fast(fast_settings: Settings, runtime: Runtime) -> AsyncIterator[LiveServer]:
    live, task = await start_server(fast_settings)
    try:
        yield live
    finally:
        await stop_server(live, task)


async def rows(runtime: Runtime, admin) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    async with runtime.sessions() as session:
        conns = await session.scalar(
            select(func.count())
            .select_from(Connection)
            .where(Connection.workspace_id == admin.workspace_id)
        )
        secrets = await session.scalar(
            select(func.count())
            .select_from(ConnectionSecret)
            .where(ConnectionSecret.workspace_id == admin.workspace_id)
        )
    return int(conns or 0), int(secrets or 0)


@pytest.mark.parametrize("parallel", [2, 8])
async def test_parallel_creates_leave_one_row(
    live_fast: LiveServer, admin, runtime: Runtime, parallel: int
) -> None:
    url = base(admin.workspace_slug)
    async with httpx.AsyncClient(base_url=live_fast.url, headers=admin.headers, timeout=30) as c:
        results = await asyncio.gather(*(c.post(url, json=body()) for _ in range(parallel)))
        listing = (await c.get(url)).json()
    codes = sorted(r.status_code for r in results)
    assert codes == [201] + [409] * (parallel - 1), [r.text for r in results]
    assert all(r.json() == CONFLICT for r in results if r.status_code == 409)
    winner = next(r.json() for r in results if r.status_code == 201)
    assert listing == [winner]
    assert await rows(runtime, admin) == (1, 1)  # no orphaned sealed key either
