"""No planted credential value appears in any response of any endpoint, or in the logs."""

from __future__ import annotations

import io
import logging

import httpx

from connhub.kit import logs


async def test_planted_credentials_never_come_back(
    client: httpx.AsyncClient, admin, planted_secret: str
) -> None:
    stream = io.StringIO()
    previous = logging.getLogger().level
    handler = logs.configure("DEBUG", stream)
    try:
        bodies: list[str] = []

        async def call(method: str, url: str, **kw) -> httpx.Response:  # type: ignore[no-untyped-def]
            resp = await client.request(method, url, headers=admin.headers, **kw)
            bodies.append(resp.text)
            bodies.extend(f"{k}: {v}" for k, v in resp.headers.items())
            return resp

        body = {
            "name": "Leak test",
            "provider": "postgres",
            "config": {"host": "h.example.com", "database": "d", "username": "u"},
            "credentials": {"password": planted_secret},
        }
        created = (await call("POST", "/api/v1/connections", json=body)).json()
        cid = created["id"]
        await call(
            "POST",
            "/api/v1/connections",
            json={**body, "credentials": {"password": planted_secret, "bogus": planted_secret}},
        )
        await call(
            "POST", "/api/v1/connections", json={**body, "name": "", "credentials": {"password": 5}}
        )
        await call(
            "POST",
            "/api/v1/connections",
            json={**body, "credentials": {"password": [planted_secret]}},
        )
        await call("GET", "/api/v1/connections")
        await call("GET", "/api/v1/connections", params={"cursor": ""})
        await call("GET", f"/api/v1/connections/{cid}")
        await call("GET", "/api/v1/connections/slug/leak-test")
        await call("GET", f"/api/v1/connections/{cid}/edit-settings")
        await call(
            "PATCH",
            f"/api/v1/connections/{cid}",
            json={"credentials": {"password": planted_secret + "2"}},
        )
        await call(
            "PATCH", f"/api/v1/connections/{cid}", json={"credentials": {"unknown": planted_secret}}
        )
        await call("PATCH", f"/api/v1/connections/{cid}", json={"bogus": planted_secret})
        await call("POST", f"/api/v1/connections/{cid}/disable")
        await call("POST", f"/api/v1/connections/{cid}/reactivate")
        await call("POST", f"/api/v1/connections/{cid}/set-default")
        await call("GET", "/api/v1/providers")
        await call("DELETE", f"/api/v1/connections/{cid}")
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(previous)
    everything = "\n".join(bodies) + stream.getvalue()
    assert planted_secret not in everything
    assert stream.getvalue(), "the access log should have recorded the requests"
