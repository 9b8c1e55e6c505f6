"""Dependents of a connection: register, list, remove; they block deletes in every face."""

from __future__ import annotations

import asyncio
import re

import pytest

from connhub.workspaces.principal import Role

BODY = {
    "name": "Warehouse",
    "provider": "postgres",
    "config": {"host": "db.example.com", "database": "d", "username": "u"},
    "credentials": {"password": "pw-123456"},
}
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


async def make(client, caller, **extra) -> str:  # type: ignore[no-untyped-def]
    resp = await client.post("/api/v1/connections", json={**BODY, **extra}, headers=caller.headers)
    assert resp.status_code == 201, resp.text
    cid: str = resp.json()["id"]
    return cid


async def test_put_is_idempotent_and_listed(client, admin) -> None:
    cid = await make(client, admin)
    url = f"/api/v1/connections/{cid}/dependents"
    first = await client.put(f"{url}/model/orders-daily", headers=admin.headers)
    assert first.status_code == 201
    assert first.json()["kind"] == "model" and first.json()["ref"] == "orders-daily"
    assert ISO_Z.match(first.json()["createdAt"])
    again = await client.put(f"{url}/model/orders-daily", headers=admin.headers)
    assert again.status_code == 200 and again.json() == first.json()
    await client.put(f"{url}/sync/a/b/c", headers=admin.headers)  # refs may contain '/'
    listing = await client.get(url, headers=admin.headers)
    assert listing.status_code == 200
    assert [(d["kind"], d["ref"]) for d in listing.json()["dependents"]] == [
        ("model", "orders-daily"),
        ("sync", "a/b/c"),
    ]


async def test_concurrent_puts_both_succeed(client, admin) -> None:
    cid = await make(client, admin)
    url = f"/api/v1/connections/{cid}/dependents/sync/s-1"
    results = await asyncio.gather(*(client.put(url, headers=admin.headers) for _ in range(5)))
    assert sorted(r.status_code for r in results) == [200, 200, 200, 200, 201]
    assert len({r.json()["createdAt"] for r in results}) == 1


async def test_delete_then_404(client, admin) -> None:
    cid = await make(client, admin)
    url = f"/api/v1/connections/{cid}/dependents/model/m1"
    await client.put(url, headers=admin.headers)
    assert (await client.delete(url, headers=admin.headers)).status_code == 204
    missing = await client.delete(url, headers=admin.headers)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


async def test_dependents_block_connection_delete(client, admin) -> None:
    cid = await make(client, admin)
    await client.put(f"/api/v1/connections/{cid}/dependents/model/m1", headers=admin.headers)
    await client.put(f"/api/v1/connections/{cid}/dependents/sync/s1", headers=admin.headers)
    resp = await client.delete(f"/api/v1/connections/{cid}", headers=admin.headers)
    assert resp.status_code == 409 and resp.json()["code"] == "has_dependents"
    assert "model, sync" in resp.json()["detail"]
    assert (
        await client.get(f"/api/v1/connections/{cid}", headers=admin.headers)
    ).status_code == 200
    for ref in ("model/m1", "sync/s1"):
        await client.delete(f"/api/v1/connections/{cid}/dependents/{ref}", headers=admin.headers)
    assert (
        await client.delete(f"/api/v1/connections/{cid}", headers=admin.headers)
    ).status_code == 204


@pytest.mark.parametrize("kind", ["Model", "9lives", "has space", "k" * 65, "dot.ted"])
async def test_bad_kind_is_422(client, admin, kind) -> None:
    cid = await make(client, admin)
    resp = await client.put(f"/api/v1/connections/{cid}/dependents/{kind}/r", headers=admin.headers)
    assert resp.status_code == 422


@pytest.mark.parametrize("ref, status", [("zq" * 128, 422), ("zq%09zq", 400), ("zq%00", 400)])
async def test_bad_ref(client, admin, ref, status) -> None:
    cid = await make(client, admin)
    resp = await client.put(
        f"/api/v1/connections/{cid}/dependents/model/{ref}", headers=admin.headers
    )
    assert resp.status_code == status
    assert "zq" not in resp.text  # the value is not echoed


async def test_roles_and_tenancy(client, admin, make_caller) -> None:
    cid = await make(client, admin, visibility="global")
    url = f"/api/v1/connections/{cid}/dependents"
    await client.put(f"{url}/model/m1", headers=admin.headers)
    viewer = await make_caller(Role.viewer, workspace=admin.workspace_slug)
    assert (await client.get(url, headers=viewer.headers)).status_code == 200
    for method in ("PUT", "DELETE"):
        resp = await client.request(method, f"{url}/model/m1", headers=viewer.headers)
        assert resp.status_code == 403, method
    member = await make_caller(Role.member, workspace=admin.workspace_slug)
    assert (await client.put(f"{url}/model/m2", headers=member.headers)).status_code == 201
    stranger = await make_caller(Role.admin)
    for method, path in (("GET", ""), ("PUT", "/model/m3"), ("DELETE", "/model/m1")):
        resp = await client.request(method, f"{url}{path}", headers=stranger.headers)
        assert resp.status_code == 404, method
    unknown = "/api/v1/connections/00000000-0000-4000-8000-000000000000/dependents"
    assert (await client.get(unknown, headers=admin.headers)).status_code == 404
    assert (await client.get(url)).status_code == 401
