"""The Sources face under a rate limit, in process (memory buckets on SQLite, the shared
``rate_limit_buckets`` table on PostgreSQL: whichever store the suite runs on)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from connhub.workspaces.principal import Role

Client = Callable[..., Any]


def headers(caller: Any) -> dict[str, str]:
    return {**caller.headers, "X-Workspace-ID": str(caller.workspace_id)}


def url(caller: Any) -> str:
    return f"/api/v1/workspaces/{caller.workspace_id}/sources"


async def test_burst_is_429_with_retry_after(limited, make_caller) -> None:
    caller = await make_caller(Role.admin)
    client = await limited(per_minute=100, burst=5)
    responses = [await client.get(url(caller), headers=headers(caller)) for _ in range(5)]
    assert [r.status_code for r in responses] == [200] * 5
    assert responses[0].headers["X-RateLimit-Limit"] == "100"
    assert [r.headers["X-RateLimit-Remaining"] for r in responses] == ["99", "98", "97", "96", "95"]
    assert int(responses[-1].headers["X-RateLimit-Reset"]) >= 1
    refused = await client.get(url(caller), headers=headers(caller))
    assert refused.status_code == 429
    assert refused.json() == {"error": "Rate limit exceeded; retry after the Retry-After delay"}
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    await asyncio.sleep(0.25)  # > 1/5 s: one burst token is back
    assert (await client.get(url(caller), headers=headers(caller))).status_code == 200


async def test_per_minute_cap(limited, make_caller) -> None:
    caller = await make_caller(Role.admin)
    other = await make_caller(Role.admin)
    client = await limited(per_minute=6, burst=20)
    statuses = [
        (await client.get(url(caller), headers=headers(caller))).status_code for _ in range(6)
    ]
    assert statuses == [200] * 6
    refused = await client.post(url(caller), headers=headers(caller), json={})
    assert refused.status_code == 429
    assert 9 <= int(refused.headers["Retry-After"]) <= 10  # one token per 10 s
    # Another workspace has its own allowance.
    assert (await client.get(url(other), headers=headers(other))).status_code == 200


async def test_refused_callers_do_not_spend_the_allowance(limited, make_caller) -> None:
    caller = await make_caller(Role.admin)
    stranger = await make_caller(Role.admin)
    client = await limited(per_minute=100, burst=3)
    for _ in range(10):
        assert (await client.get(url(caller))).status_code == 401
        resp = await client.get(
            url(caller), headers={**stranger.headers, "X-Workspace-ID": str(caller.workspace_id)}
        )
        assert resp.status_code == 403
    statuses = [
        (await client.get(url(caller), headers=headers(caller))).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 200]


async def test_streams_carry_the_headers_too(limited, make_caller) -> None:
    caller = await make_caller(Role.admin)
    client = await limited(per_minute=100, burst=20)
    payload = {
        "source_type": "databricks",
        "config": {
            "host": "127.0.0.1",
            "http_path": "/sql/1.0/x",
            "token": "t",
            "catalog": "c",
            "schema": "s",
        },
    }
    resp = await client.post(url(caller) + "/test", headers=headers(caller), json=payload)
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert resp.headers["X-RateLimit-Remaining"] == "99"


async def test_the_connections_face_counts_in_its_own_bucket(limited, make_caller) -> None:
    """The Connections API is limited too (test_ratelimit_connections), but apart: spending
    the Sources allowance leaves the workspace's Connections allowance whole."""
    caller = await make_caller(Role.admin)
    client = await limited(per_minute=2, burst=20)
    for _ in range(2):
        assert (await client.get(url(caller), headers=headers(caller))).status_code == 200
    assert (await client.get(url(caller), headers=headers(caller))).status_code == 429
    resp = await client.get("/api/v1/connections", headers=caller.headers)
    assert resp.status_code == 200
    assert resp.headers["X-RateLimit-Remaining"] == "1"
