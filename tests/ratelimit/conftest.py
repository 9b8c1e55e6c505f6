"""What the rate-limit tests share: an app of their own with rate limits on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from connhub.app import create_app
from connhub.config import Settings


@pytest.fixture
async def limited(settings: Settings, runtime: object) -> AsyncIterator[Callable[..., Any]]:
    """Start an app with rate limits on; ``runtime`` makes the suite clean the tables after."""
    stack: list[Any] = []

    async def start(per_minute: int, burst: int) -> httpx.AsyncClient:
        app = create_app(
            settings.model_copy(
                update={
                    "rate_limit_enabled": True,
                    "rate_limit_per_minute": per_minute,
                    "rate_limit_burst_per_second": burst,
                    "connections_rate_limit_per_minute": per_minute,
                    "connections_rate_limit_burst_per_second": burst,
                }
            )
        )
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://connhub.test"
        )
        stack.append((lifespan, client))
        return client

    yield start
    for lifespan, client in reversed(stack):
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
