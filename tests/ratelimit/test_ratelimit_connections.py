"""The Connections API under a rate limit, in process (memory buckets on SQLite, the shared
``rate_limit_buckets`` table on PostgreSQL: whichever store the suite runs on)."""

from __future__ import annotations

import asyncio
import math
import os
import time
import uuid
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from sqlalchemy import text

from connhub.api.connections.limits import LimitedRoute
from connhub.deps import PrincipalDep
from connhub.workspaces.principal import Role

BASE = "/api/v1/connections"
HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
BODY = {
    "name": "Warehouse",
    "provider": "postgres",
    "config": {"host": "db.example.com", "database": "d", "username": "u"},
    "credentials": {"password": "pw-123456"},
}
POSTGRES = os.environ.get("CONNHUB_TEST_STORE", "sqlite") == "postgres"


def remaining(resp: httpx.Response) -> int:
    return int(resp.headers["X-RateLimit-Remaining"])


async def test_burst_is_429_with_the_headers(limited, make_caller) -> None:
    caller = await make_caller(Role.admin)
    client = await limited(per_minute=100, burst=3)
    responses = [await client.get(BASE, headers=caller.headers) for _ in range(3)]
    assert [r.status_code for r in responses] == [200] * 3
    assert [r.headers["X-RateLimit-Limit"] for r in responses] == ["100"] * 3
    assert [remaining(r) for r in responses] == [99, 98, 97]
    assert all(int(r.headers["X-RateLimit-Reset"]) >= 1 for r in responses)
    refused = await client.get(f"{BASE}/{uuid.uuid4()}", headers=caller.headers)
    assert refused.status_code == 429
    assert refused.json() == {
        "detail": "Rate limit exceeded; retry after the Retry-After delay",
        "code": "rate_limited",
    }
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["X-RateLimit-Limit"] == "100"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert int(refused.headers["X-RateLimit-Reset"]) >= 1
    await asyncio.sleep(0.4)  # > 1/3 s: one burst token is back
    assert (await client.get(BASE, headers=caller.headers)).status_code == 200


async def test_per_minute_cap_counts_every_route(limited, make_caller) -> None:
    caller = await make_caller(Role.admin)
    client = await limited(per_minute=3, burst=20)
    created = await client.post(BASE, json=BODY, headers=caller.headers)
    assert created.status_code == 201
    cid = created.json()["id"]
    assert (await client.get(f"{BASE}/{cid}", headers=caller.headers)).status_code == 200
    assert (await client.post(f"{BASE}/{cid}/disable", headers=caller.headers)).status_code == 200
    refused = await client.delete(f"{BASE}/{cid}", headers=caller.headers)
    assert refused.status_code == 429
    # One token per 20 s: the per-minute bucket refused it (the burst one would say 1).
    assert 1 < int(refused.headers["Retry-After"]) <= 20
    assert (await client.get(f"{BASE}/{cid}", headers=caller.headers)).status_code == 429


async def test_headers_on_every_response_errors_included(limited, make_caller) -> None:
    caller = await make_caller(Role.admin)
    client = await limited(per_minute=100, burst=100)
    cid = (await client.post(BASE, json=BODY, headers=caller.headers)).json()["id"]
    slug = (await client.get(f"{BASE}/{cid}", headers=caller.headers)).json()["slug"]
    deps = f"{BASE}/{cid}/dependents/model/m1"
    calls: list[tuple[str, str, Any, int]] = [
        ("GET", f"{BASE}/", None, 200),
        ("GET", f"{BASE}?status[]=active&provider[]=postgres", None, 200),
        ("GET", f"{BASE}/slug/{slug}", None, 200),
        ("PATCH", f"{BASE}/{cid}", {"name": "Renamed"}, 200),
        ("GET", f"{BASE}/{cid}/edit-settings", None, 200),
        ("POST", f"{BASE}/{cid}/set-default", None, 200),
        ("PUT", deps, None, 201),
        ("GET", f"{BASE}/{cid}/dependents", None, 200),
        ("DELETE", deps, None, 204),
        ("GET", f"{BASE}/{uuid.uuid4()}", None, 404),
        ("GET", f"{BASE}/{uuid.uuid4()}/schema/tables", None, 404),
        ("GET", f"{BASE}/not-a-uuid", None, 422),
        ("GET", f"{BASE}?status[]=bogus", None, 422),
        ("PATCH", f"{BASE}/{cid}", {"provider": "mysql"}, 400),
        ("POST", BASE, {**BODY, "slug": slug}, 409),
        ("POST", f"{BASE}/{cid}/disable", None, 200),
        ("POST", f"{BASE}/{cid}/verify", None, 400),  # disabled
        ("DELETE", f"{BASE}/{cid}", None, 204),
    ]
    seen = []
    started = time.monotonic()
    for method, path, body, status in calls:
        resp = await client.request(method, path, json=body, headers=caller.headers)
        assert resp.status_code == status, (method, path, resp.text)
        assert all(name in resp.headers for name in HEADERS), (method, path, resp.headers)
        assert resp.headers["X-RateLimit-Limit"] == "100"
        assert "Retry-After" not in resp.headers
        seen.append(remaining(resp))
    # Every one counted: the bucket refills 100 tokens a minute meanwhile, no more.
    refill = math.ceil((time.monotonic() - started) * 100 / 60)
    assert seen[0] <= 97
    assert seen[0] - seen[-1] >= len(calls) - 1 - refill, seen


async def test_buckets_are_per_workspace(limited, make_caller) -> None:
    caller = await make_caller(Role.admin)
    colleague = await make_caller(Role.viewer, workspace=caller.workspace_slug)
    other = await make_caller(Role.admin)
    client = await limited(per_minute=2, burst=20)
    assert (await client.get(BASE, headers=caller.headers)).status_code == 200
    assert (await client.get(BASE, headers=colleague.headers)).status_code == 200
    # The workspace's allowance, whoever spends it.
    assert (await client.get(BASE, headers=caller.headers)).status_code == 429
    assert (await client.get(BASE, headers=colleague.headers)).status_code == 429
    resp = await client.get(BASE, headers=other.headers)
    assert resp.status_code == 200
    assert resp.headers["X-RateLimit-Remaining"] == "1"


async def test_refused_callers_are_not_counted(limited, make_caller) -> None:
    caller = await make_caller(Role.admin)
    other = await make_caller(Role.admin)
    client = await limited(per_minute=100, burst=2)
    for _ in range(5):
        anonymous = await client.get(BASE)
        assert anonymous.status_code == 401
        assert "X-RateLimit-Limit" not in anonymous.headers
        bad = await client.get(BASE, headers={"Authorization": "Bearer not-a-token"})
        assert bad.status_code == 401
        # A valid token asking for a workspace it is not a member of.
        outsider = await client.get(
            BASE, headers={**other.headers, "X-Workspace-ID": str(caller.workspace_id)}
        )
        assert outsider.status_code == 404
        assert "X-RateLimit-Limit" not in outsider.headers
    statuses = [(await client.get(BASE, headers=caller.headers)).status_code for _ in range(2)]
    assert statuses == [200, 200]


async def test_disabled_means_no_limit_and_no_headers(client, admin, app_and_runtime) -> None:
    """The suite's app runs with ``rate_limit_enabled=False``."""
    assert app_and_runtime[0].state.rate_limiter is None
    assert app_and_runtime[0].state.connections_rate_limiter is None
    for _ in range(30):  # more than the default burst (20 a second)
        resp = await client.get(BASE, headers=admin.headers)
        assert resp.status_code == 200
        assert not any(name.lower().startswith("x-ratelimit") for name in resp.headers)
    missing = await client.get(f"{BASE}/{uuid.uuid4()}", headers=admin.headers)
    assert missing.status_code == 404
    assert "X-RateLimit-Limit" not in missing.headers


@pytest.mark.skipif(not POSTGRES, reason="the shared buckets live in PostgreSQL")
async def test_buckets_are_shared_rows_on_postgres(limited, make_caller, runtime) -> None:
    caller = await make_caller(Role.admin)
    client = await limited(per_minute=100, burst=20)
    assert (await client.get(BASE, headers=caller.headers)).status_code == 200
    async with runtime.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT key, tokens FROM rate_limit_buckets WHERE key LIKE :prefix"),
            {"prefix": f"connections:{caller.workspace_id}:%"},
        )
        levels = {key: tokens for key, tokens in rows}
    assert set(levels) == {f"connections:{caller.workspace_id}:{b}" for b in ("s", "m")}
    assert 98 <= levels[f"connections:{caller.workspace_id}:m"] < 100


def test_a_route_that_does_not_count_is_refused() -> None:
    router = APIRouter(route_class=LimitedRoute)

    async def unlimited(principal: PrincipalDep) -> None:
        return None

    with pytest.raises(TypeError, match="CallerDep"):
        router.get("/x")(unlimited)
