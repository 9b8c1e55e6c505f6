"""The in-process token cache: reused within its TTL, re-checked after it."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import update

from connhub.app import create_app
from connhub.config import Settings
from connhub.models import ApiToken
from connhub.models.base import utcnow


async def test_revoked_token_stops_working_after_ttl(settings: Settings, make_caller) -> None:
    caller = await make_caller()
    app = create_app(settings.model_copy(update={"auth_cache_s": 0.3}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers=caller.headers
        ) as c:
            assert (await c.get("/api/v1/connections")).status_code == 200
            async with app.state.runtime.sessions() as session:
                await session.execute(update(ApiToken).values(revoked_at=utcnow()))
                await session.commit()
            assert (await c.get("/api/v1/connections")).status_code == 200  # cached
            await asyncio.sleep(0.4)
            assert (await c.get("/api/v1/connections")).status_code == 401
