"""Uniqueness held by the database under concurrent requests (a real server, many clients).

These run against a live uvicorn so that requests are truly concurrent, on whichever store
the suite uses (SQLite serialises writers; PostgreSQL relies on the constraints and locks).
"""

from __future__ import annotations

import asyncio

import httpx

from support.live import LiveServer

BODY = {
    "name": "Same",
    "provider": "postgres",
    "config": {"host": "h.example.com", "database": "d", "username": "u"},
    "credentials": {"password": "pw-123456"},
}


async def test_parallel_set_default_leaves_exactly_one(live_server: LiveServer, admin) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, headers=admin.headers) as c:
        ids = [(await c.post("/api/v1/connections", json=BODY)).json()["id"] for _ in range(8)]
        results = await asyncio.gather(
            *(c.post(f"/api/v1/connections/{i}/set-default") for i in ids * 2)
        )
        assert all(r.status_code in (200, 409) for r in results), [r.text for r in results]
        listing = (await c.get("/api/v1/connections", params={"limit": 100})).json()
    defaults = [x for x in listing["connections"] if x["isDefault"]]
    assert len(defaults) == 1


async def test_parallel_creates_with_one_slug_leave_one_row(live_server: LiveServer, admin) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, headers=admin.headers) as c:
        results = await asyncio.gather(
            *(c.post("/api/v1/connections", json={**BODY, "slug": "only-one"}) for _ in range(12))
        )
        codes = sorted(r.status_code for r in results)
        listing = (await c.get("/api/v1/connections")).json()
    assert codes.count(201) == 1 and codes.count(409) == 11, codes
    assert listing["total"] == 1


async def test_parallel_auto_slugs_are_all_distinct(live_server: LiveServer, admin) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, headers=admin.headers) as c:
        results = await asyncio.gather(
            *(c.post("/api/v1/connections", json=BODY) for _ in range(10))
        )
    assert all(r.status_code == 201 for r in results), [r.text for r in results]
    slugs = {r.json()["slug"] for r in results}
    assert len(slugs) == 10
    assert sum(r.json()["isDefault"] for r in results) == 1
