"""Fixtures of the Sources API tests (helpers live in ``sources_support``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sources_support import body, source_headers, sources_url

from connhub.workspaces.principal import Role

MakeSource = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def make_source(client: httpx.AsyncClient) -> MakeSource:
    async def make(caller: Any, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        resp = await client.post(
            sources_url(caller), json=payload or body(), headers=source_headers(caller)
        )
        assert resp.status_code == 201, resp.text
        data: dict[str, Any] = resp.json()
        return data

    return make


@pytest.fixture
async def member(make_caller: Any) -> Any:
    return await make_caller(Role.member)
