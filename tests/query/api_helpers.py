"""Small helpers for tests that drive the schema endpoints over the API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

from connhub.app import create_app
from connhub.config import Settings

BASE = "/api/v1/connections"


async def activated(client: httpx.AsyncClient, caller: Any, body: dict[str, Any]) -> str:
    """Create a connection and verify it; returns its id (status ``active``)."""
    resp = await client.post(BASE, json=body, headers=caller.headers)
    assert resp.status_code == 201, resp.text
    cid: str = resp.json()["id"]
    verified = await client.post(f"{BASE}/{cid}/verify", headers=caller.headers)
    assert verified.json()["status"] == "active", verified.json()["verificationDetails"]
    return cid


async def run_sql(
    client: httpx.AsyncClient, caller: Any, cid: str, sql: str, **extra: Any
) -> httpx.Response:
    return await client.post(
        f"{BASE}/{cid}/schema/query", json={"sql": sql, **extra}, headers=caller.headers
    )


async def sample_rows(
    client: httpx.AsyncClient, caller: Any, cid: str, schema: str, table: str, **extra: Any
) -> httpx.Response:
    return await client.post(
        f"{BASE}/{cid}/schema/sample",
        json={"schema": schema, "table": table, **extra},
        headers=caller.headers,
    )


@asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """A second app (other settings, same store) with its own lifespan and client."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://connhub.test") as c:
            yield app, c


async def eventually(check: Callable[[], bool], *, within: float = 5.0) -> bool:  # noqa: ASYNC109
    """Poll ``check`` until it holds (sessions close in background threads)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if check():
            return True
        await asyncio.sleep(0.05)
    return check()
