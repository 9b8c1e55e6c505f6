"""Connections API: create, read, update, delete, state changes (API.md section 3)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from connhub.workspaces.principal import Role

PG_CONFIG = {"host": "db.example.com", "port": 5432, "database": "app", "username": "svc"}


def pg_body(name: str = "Warehouse DB", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "provider": "postgres",
        "config": dict(PG_CONFIG),
        "credentials": {"password": "hunter2-pass"},
    }
    body.update(extra)
    return body


async def create(client: httpx.AsyncClient, caller: Any, **extra: Any) -> dict[str, Any]:
    resp = await client.post("/api/v1/connections", json=pg_body(**extra), headers=caller.headers)
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data


async def test_create_returns_contract_shape(client, admin) -> None:
    data = await create(client, admin)
    assert set(data) == {
        "id",
        "name",
        "slug",
        "provider",
        "config",
        "hasCredentials",
        "status",
        "visibility",
        "isDefault",
        "isFromTemplate",
        "lastVerifiedAt",
        "lastUsedAt",
        "verificationError",
        "verificationErrorCode",
        "verificationDetails",
        "createdAt",
        "updatedAt",
        "createdBy",
        "updatedBy",
    }
    assert data["status"] == "needs_verification"
    assert data["visibility"] == "private"
    assert data["slug"] == "warehouse-db"
    assert data["hasCredentials"] is True
    assert data["isDefault"] is True  # first of its provider
    assert data["config"] == PG_CONFIG
    assert data["createdAt"].endswith("Z")
    assert data["createdBy"] == str(admin.user_id)
    uuid.UUID(data["id"])


async def test_second_of_provider_is_not_default_and_slug_suffixed(client, admin) -> None:
    first = await create(client, admin)
    second = await create(client, admin)
    assert first["isDefault"] and not second["isDefault"]
    assert second["slug"] == "warehouse-db-2"


async def test_get_by_id_and_slug(client, admin) -> None:
    data = await create(client, admin, slug="main-db")
    by_id = await client.get(f"/api/v1/connections/{data['id']}", headers=admin.headers)
    by_slug = await client.get("/api/v1/connections/slug/main-db", headers=admin.headers)
    assert by_id.status_code == by_slug.status_code == 200
    assert by_id.json() == by_slug.json() == data


async def test_explicit_slug_clash_is_409(client, admin) -> None:
    await create(client, admin, slug="dup")
    resp = await client.post("/api/v1/connections", json=pg_body(slug="dup"), headers=admin.headers)
    assert resp.status_code == 409
    assert resp.json()["code"] == "conflict"


@pytest.mark.parametrize("bad", ["Upper", "has space", "x" * 256, "ü", "a_b", ""])
async def test_bad_slug_is_422(client, admin, bad: str) -> None:
    resp = await client.post("/api/v1/connections", json=pg_body(slug=bad), headers=admin.headers)
    assert resp.status_code == 422


@pytest.mark.parametrize("good", ["trailing-", "-lead", "a--b", "42"])
async def test_any_slug_the_contract_allows_is_taken(client, admin, good: str) -> None:
    """API.md: lower-case ``[a-z0-9-]+``; a client may choose more than slugify would make."""
    resp = await client.post("/api/v1/connections", json=pg_body(slug=good), headers=admin.headers)
    assert resp.status_code == 201 and resp.json()["slug"] == good
    by_slug = await client.get(f"/api/v1/connections/slug/{good}", headers=admin.headers)
    assert by_slug.status_code == 200 and by_slug.json()["id"] == resp.json()["id"]


async def test_http_api_auth_mode_needs_its_fields_on_create_and_patch(client, admin) -> None:
    base = {"name": "api", "provider": "http_api"}
    url = "/api/v1/connections"
    basic = {"baseUrl": "https://api.example.com", "authMode": "basic"}
    missing_user = await client.post(
        url,
        json={**base, "config": basic, "credentials": {"password": "pw"}},
        headers=admin.headers,
    )
    assert missing_user.status_code == 400 and "config.username" in missing_user.json()["detail"]
    keyless = {**base, "config": {"baseUrl": "https://api.example.com"}, "credentials": {}}
    missing_key = await client.post(url, json=keyless, headers=admin.headers)
    assert missing_key.status_code == 400 and "credentials.apiKey" in missing_key.json()["detail"]

    created = await client.post(
        url,
        json={**base, "config": {**basic, "username": "u"}, "credentials": {"password": "pw"}},
        headers=admin.headers,
    )
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    # Switching to header auth without an API key is refused, and nothing changes.
    switched = await client.patch(
        f"{url}/{cid}", json={"config": {"authMode": "header"}}, headers=admin.headers
    )
    assert switched.status_code == 400 and "credentials.apiKey" in switched.json()["detail"]
    assert (await client.get(f"{url}/{cid}", headers=admin.headers)).json() == created.json()
    switched = await client.patch(
        f"{url}/{cid}",
        json={"config": {"authMode": "header"}, "credentials": {"apiKey": "k", "password": None}},
        headers=admin.headers,
    )
    assert switched.status_code == 200, switched.text
    assert switched.json()["config"]["authMode"] == "header"


async def test_missing_required_config_is_400_naming_field(client, admin) -> None:
    body = pg_body()
    del body["config"]["host"]
    resp = await client.post("/api/v1/connections", json=body, headers=admin.headers)
    assert resp.status_code == 400
    assert "host" in resp.json()["detail"]


async def test_unknown_credential_key_is_400_naming_key(client, admin) -> None:
    body = pg_body(credentials={"password": "x-secret-1", "sneaky": "v"})
    resp = await client.post("/api/v1/connections", json=body, headers=admin.headers)
    assert resp.status_code == 400
    assert "sneaky" in resp.json()["detail"]
    listing = await client.get("/api/v1/connections", headers=admin.headers)
    assert listing.json()["total"] == 0  # nothing half-written


async def test_unknown_config_key_is_400(client, admin) -> None:
    body = pg_body()
    body["config"]["sslrootcert"] = "/etc/passwd"
    resp = await client.post("/api/v1/connections", json=body, headers=admin.headers)
    assert resp.status_code == 400
    assert "sslrootcert" in resp.json()["detail"]


async def test_unknown_provider_and_top_level_field_are_422(client, admin) -> None:
    resp = await client.post(
        "/api/v1/connections", json=pg_body(provider="oracle"), headers=admin.headers
    )
    assert resp.status_code == 422
    resp = await client.post(
        "/api/v1/connections", json=pg_body(extra_field=1), headers=admin.headers
    )
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["type"] == "extra_forbidden"


async def test_validation_errors_never_echo_input(client, admin) -> None:
    body = pg_body(credentials={"password": 12345678})
    body["name"] = ""
    resp = await client.post("/api/v1/connections", json=body, headers=admin.headers)
    assert resp.status_code == 422
    for item in resp.json()["detail"]:
        assert set(item) == {"loc", "msg", "type"}
    assert "12345678" not in resp.text


async def test_malformed_json_is_422_not_500(client, admin) -> None:
    resp = await client.post(
        "/api/v1/connections",
        content=b'{"name": ',
        headers={**admin.headers, "content-type": "application/json"},
    )
    assert resp.status_code == 422
    resp = await client.post(
        "/api/v1/connections",
        content=b"\xff\xfe",
        headers={**admin.headers, "content-type": "application/json"},
    )
    assert resp.status_code == 422


async def test_oversized_body_is_413(client, admin) -> None:
    body = pg_body(name="x")
    body["config"]["host"] = "h" * (2 * 1024 * 1024)
    resp = await client.post("/api/v1/connections", json=body, headers=admin.headers)
    assert resp.status_code == 413
    assert resp.json()["code"] == "payload_too_large"


async def test_non_uuid_id_is_422(client, admin) -> None:
    resp = await client.get("/api/v1/connections/not-a-uuid", headers=admin.headers)
    assert resp.status_code == 422


async def test_unicode_and_sql_looking_names_round_trip(client, admin) -> None:
    for name in ["Ωmega données 数据", "x'; DROP TABLE connections; --", "a\u0000b"[0:1] + "b"]:
        data = await create(client, admin, name=name)
        assert data["name"] == name
        got = await client.get(f"/api/v1/connections/{data['id']}", headers=admin.headers)
        assert got.json()["name"] == name
    assert (await client.get("/api/v1/connections", headers=admin.headers)).json()["total"] == 3


async def test_patch_merges_config_and_credentials(client, admin, runtime) -> None:
    data = await create(client, admin)
    resp = await client.patch(
        f"/api/v1/connections/{data['id']}",
        headers=admin.headers,
        json={"config": {"port": 6543}, "name": "Renamed"},
    )
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["config"] == {**PG_CONFIG, "port": 6543}
    assert out["name"] == "Renamed"
    assert out["status"] == "needs_verification"
    resp = await client.patch(
        f"/api/v1/connections/{data['id']}",
        headers=admin.headers,
        json={"credentials": {"password": "new-pass-123"}},
    )
    assert resp.status_code == 200
    from connhub.connections import service

    async with runtime.sessions() as session:
        from connhub.models import Connection

        conn = await session.get(Connection, uuid.UUID(data["id"]))
        creds = await service.load_credentials(session, runtime.envelope, conn)
    assert creds == {"password": "new-pass-123"}


async def test_patch_provider_is_immutable(client, admin) -> None:
    data = await create(client, admin)
    resp = await client.patch(
        f"/api/v1/connections/{data['id']}", headers=admin.headers, json={"provider": "mysql"}
    )
    assert resp.status_code == 400
    assert resp.json()["code"] == "immutable_field"


async def test_patch_clearing_required_credential_is_400(client, admin) -> None:
    data = await create(client, admin)
    resp = await client.patch(
        f"/api/v1/connections/{data['id']}",
        headers=admin.headers,
        json={"credentials": {"password": None}},
    )
    assert resp.status_code == 400
    settings = await client.get(
        f"/api/v1/connections/{data['id']}/edit-settings", headers=admin.headers
    )
    assert settings.json()["secretFields"]["password"] == {"configured": True}


async def test_patch_resets_status_after_error(client, admin, runtime) -> None:
    data = await create(client, admin)
    from connhub.models import Connection

    async with runtime.sessions() as session:
        conn = await session.get(Connection, uuid.UUID(data["id"]))
        conn.status, conn.verification_error = "error", "boom"
        await session.commit()
    resp = await client.patch(
        f"/api/v1/connections/{data['id']}",
        headers=admin.headers,
        json={"config": {"database": "other"}},
    )
    assert resp.json()["status"] == "needs_verification"
    assert resp.json()["verificationError"] is None


async def test_edit_settings_lists_secret_fields_only_as_flags(client, admin) -> None:
    data = await create(client, admin)
    resp = await client.get(
        f"/api/v1/connections/{data['id']}/edit-settings", headers=admin.headers
    )
    assert resp.status_code == 200
    assert resp.json() == {"config": PG_CONFIG, "secretFields": {"password": {"configured": True}}}
    assert "hunter2" not in resp.text


async def test_delete_then_404(client, admin) -> None:
    data = await create(client, admin)
    resp = await client.delete(f"/api/v1/connections/{data['id']}", headers=admin.headers)
    assert resp.status_code == 204 and resp.content == b""
    again = await client.get(f"/api/v1/connections/{data['id']}", headers=admin.headers)
    assert again.status_code == 404
    assert (
        await client.delete(f"/api/v1/connections/{data['id']}", headers=admin.headers)
    ).status_code == 404


async def test_delete_does_not_promote_another_default(client, admin) -> None:
    first = await create(client, admin)
    second = await create(client, admin)
    await client.delete(f"/api/v1/connections/{first['id']}", headers=admin.headers)
    got = await client.get(f"/api/v1/connections/{second['id']}", headers=admin.headers)
    assert got.json()["isDefault"] is False


async def test_disable_reactivate_cycle(client, admin) -> None:
    data = await create(client, admin)
    url = f"/api/v1/connections/{data['id']}"
    first = await client.post(f"{url}/disable", headers=admin.headers)
    second = await client.post(f"{url}/disable", headers=admin.headers)
    assert first.status_code == second.status_code == 200
    assert second.json()["status"] == "disabled"
    default = await client.post(f"{url}/set-default", headers=admin.headers)
    assert default.status_code == 400
    back = await client.post(f"{url}/reactivate", headers=admin.headers)
    assert back.json()["status"] == "needs_verification"
    again = await client.post(f"{url}/reactivate", headers=admin.headers)
    assert again.status_code == 400


async def test_set_default_moves_the_flag(client, admin) -> None:
    first = await create(client, admin)
    second = await create(client, admin)
    resp = await client.post(
        f"/api/v1/connections/{second['id']}/set-default", headers=admin.headers
    )
    assert resp.status_code == 200 and resp.json()["isDefault"] is True
    got = await client.get(f"/api/v1/connections/{first['id']}", headers=admin.headers)
    assert got.json()["isDefault"] is False


async def test_unknown_route_and_method(client, admin) -> None:
    assert (await client.get("/api/v1/nope", headers=admin.headers)).status_code == 404
    resp = await client.put("/api/v1/connections", headers=admin.headers, json={})
    assert resp.status_code == 405


@pytest.mark.parametrize("role", [Role.viewer])
async def test_viewer_cannot_write(client, make_caller, role) -> None:
    admin = await make_caller(Role.admin)
    viewer = await make_caller(role, workspace=admin.workspace_slug)
    data = await create(client, admin, visibility="global")
    resp = await client.post("/api/v1/connections", json=pg_body(), headers=viewer.headers)
    assert resp.status_code == 403
    for method, path in [
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/disable"),
        ("POST", "/set-default"),
        ("POST", "/reactivate"),
    ]:
        resp = await client.request(
            method,
            f"/api/v1/connections/{data['id']}{path}",
            headers=viewer.headers,
            json={} if method == "PATCH" else None,
        )
        assert resp.status_code == 403, (method, path)
    assert (
        await client.get(f"/api/v1/connections/{data['id']}", headers=viewer.headers)
    ).status_code == 200
