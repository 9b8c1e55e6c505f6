"""Fixtures for the Warehouse connection API tests.

Most tests run against an app built with ``warehouse_key_bits=2048`` (a 4096-bit key costs
up to seconds of CPU per create); it shares the suite's store and key file, and depends on
``runtime`` so the suite's per-test table cleanup covers it too. ``client`` (the suite's app,
default settings) is used where the 4096-bit default itself is under test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from connhub.app import create_app
from connhub.config import Settings
from connhub.runtime import Runtime

FAST_BITS = 2048


@pytest.fixture(scope="session")
def fast_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"warehouse_key_bits": FAST_BITS})


@pytest.fixture(scope="session")
async def fast_app(
    fast_settings: Settings, app_and_runtime: tuple[object, Runtime]
) -> AsyncIterator[FastAPI]:
    """Started after the suite's app, so the key file already exists when it loads."""
    app = create_app(fast_settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def wh(fast_app: FastAPI, runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=fast_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://connhub.test") as c:
        yield c
