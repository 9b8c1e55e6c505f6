"""Sources CRUD (API.md section 2): shapes, validation, masking, updates, deletes."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sources_support import SECRET, body, snowflake_config, source_headers, sources_url
from sqlalchemy import update

from connhub.connections import service as connections
from connhub.models import Connection
from connhub.runtime import Runtime
from connhub.workspaces.principal import Role

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
SOURCE_KEYS = {
    "id",
    "workspace_id",
    "name",
    "source_type",
    "config",
    "connection_id",
    "status",
    "status_error",
    "created_by",
    "created_at",
    "updated_at",
}


def pem_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


async def stored_credentials(runtime: Runtime, source_id: str) -> dict[str, str]:
    async with runtime.sessions() as session:
        conn = await session.get(Connection, uuid.UUID(source_id))
        assert conn is not None
        return await connections.load_credentials(session, runtime.envelope, conn)


async def set_status(
    runtime: Runtime, source_id: str, status: str, error: str | None = None
) -> None:
    async with runtime.sessions() as session:
        await session.execute(
            update(Connection)
            .where(Connection.id == uuid.UUID(source_id))
            .values(status=status, verification_error=error)
        )
        await session.commit()


async def plain_snowflake(client: Any, caller: Any, name: str) -> Any:
    """A Snowflake connection made through the Connections API (not a source)."""
    return await client.post(
        "/api/v1/connections",
        headers=caller.headers,
        json={
            "name": name,
            "provider": "snowflake",
            "credentials": {"password": "pw"},
            "config": {k: v for k, v in snowflake_config().items() if k != "password"},
        },
    )


async def test_create_returns_pending_source_with_masked_secret(client, admin) -> None:
    resp = await client.post(sources_url(admin), json=body(), headers=source_headers(admin))
    assert resp.status_code == 201
    data = resp.json()
    assert set(data) == SOURCE_KEYS
    uuid.UUID(data["id"])
    assert data["workspace_id"] == str(admin.workspace_id)
    assert data["name"] == "Production Snowflake" and data["source_type"] == "snowflake"
    assert data["config"] == {**snowflake_config(), "password": "********"}
    assert data["connection_id"] is None
    assert (data["status"], data["status_error"]) == ("pending", "")
    assert data["created_by"] == str(admin.user_id)
    assert ISO_Z.match(data["created_at"]) and ISO_Z.match(data["updated_at"])
    assert SECRET not in resp.text


@pytest.mark.parametrize(
    "source_type, masked", [("bigquery", "credentials_json"), ("databricks", "token")]
)
async def test_other_types_mask_their_secret(client, admin, source_type, masked) -> None:
    resp = await client.post(
        sources_url(admin), json=body(source_type), headers=source_headers(admin)
    )
    assert resp.status_code == 201, resp.text
    config = resp.json()["config"]
    assert config[masked] == "********"
    assert SECRET not in resp.text


async def test_key_pair_snowflake_masks_key_and_passphrase(client, admin, runtime) -> None:
    key = pem_key()
    payload = body(
        password=..., private_key=key, private_key_passphrase="pp-" + SECRET, role="CDP_ROLE"
    )
    resp = await client.post(sources_url(admin), json=payload, headers=source_headers(admin))
    assert resp.status_code == 201, resp.text
    config = resp.json()["config"]
    assert config["private_key"] == config["private_key_passphrase"] == "********"
    assert "password" not in config and config["role"] == "CDP_ROLE"
    assert "PRIVATE KEY" not in resp.text and SECRET not in resp.text
    stored = await stored_credentials(runtime, resp.json()["id"])
    assert stored == {"privateKey": key, "privateKeyPassphrase": "pp-" + SECRET}


async def test_source_is_a_core_connection(client, admin, make_source) -> None:
    source = await make_source(admin)
    resp = await client.get(f"/api/v1/connections/{source['id']}", headers=admin.headers)
    assert resp.status_code == 200
    conn = resp.json()
    assert conn["provider"] == "snowflake" and conn["status"] == "needs_verification"
    assert conn["config"] == {k: v for k, v in snowflake_config().items() if k != "password"}
    assert conn["hasCredentials"] is True and conn["visibility"] == "global"
    settings = (
        await client.get(f"/api/v1/connections/{source['id']}/edit-settings", headers=admin.headers)
    ).json()
    assert settings["secretFields"]["password"] == {"configured": True}


async def test_list_is_a_plain_array_of_sources_only(client, admin, make_source) -> None:
    first = await make_source(admin, body(name="A"))
    second = await make_source(admin, body("bigquery", name="B"))
    other = await client.post(
        "/api/v1/connections",
        headers=admin.headers,
        json={
            "name": "pg",
            "provider": "postgres",
            "credentials": {"password": "pw"},
            "config": {"host": "db.example.com", "database": "d", "username": "u"},
        },
    )
    assert other.status_code == 201
    resp = await client.get(sources_url(admin), headers=source_headers(admin))
    assert resp.status_code == 200
    assert [s["id"] for s in resp.json()] == [first["id"], second["id"]]
    assert resp.json()[0] == first
    assert SECRET not in resp.text


async def test_get_and_unknown_ids(client, admin, make_source) -> None:
    source = await make_source(admin)
    resp = await client.get(sources_url(admin, f"/{source['id']}"), headers=source_headers(admin))
    assert resp.status_code == 200 and resp.json() == source
    for missing in (str(uuid.uuid4()), "not-a-uuid"):
        resp = await client.get(sources_url(admin, f"/{missing}"), headers=source_headers(admin))
        assert resp.status_code == 404
        assert resp.json() == {"error": "Source not found"}


async def test_a_plain_connection_is_not_a_source(client, admin) -> None:
    conn = await plain_snowflake(client, admin, "sf")
    resp = await client.get(
        sources_url(admin, f"/{conn.json()['id']}"), headers=source_headers(admin)
    )
    assert resp.status_code == 404


BAD_BODIES: list[tuple[Any, str]] = [
    ({k: v for k, v in body().items() if k != "name"}, "name is required"),
    ({**body(), "name": ""}, "name must not be empty"),
    ({**body(), "name": "   "}, "name must not be blank"),
    ({**body(), "name": "n" * 256}, "name is too long"),
    ({**body(), "name": 7}, "name must be a string"),
    ({k: v for k, v in body().items() if k != "source_type"}, "source_type is required"),
    (
        {**body(), "source_type": "postgres"},
        "source_type must be one of: snowflake, bigquery, databricks",
    ),
    ({k: v for k, v in body().items() if k != "config"}, "config is required"),
    ({**body(), "config": "account=x"}, "config must be an object"),
    (body(account=...), "config.account is required"),
    (body(warehouse=""), "config.warehouse is required"),
    (body("bigquery", project_id=...), "config.project_id is required"),
    (body("bigquery", credentials_json=...), "config.credentials_json is required"),
    (
        body("bigquery", credentials_json="not json " + SECRET),
        "config.credentials_json must be a JSON object",
    ),
    (body("databricks", token=...), "config.token is required"),
    (body("databricks", http_path=...), "config.http_path is required"),
    (body(port="eighty"), "config.port must be an integer"),
    (body(password=12345), "config.password must be a string"),
    (body(surprise="x"), "config.surprise is not a snowflake setting"),
    (body(**{"bad key!": 1}), "config has a key that is not a snowflake setting"),
    (body(projectId="x"), "config.projectId is not a snowflake setting"),
    ({**body(), "connection_id": "nope"}, "connection_id must be a UUID"),
    ([1, 2], "Request body must be a JSON object"),
]


@pytest.mark.parametrize("payload, message", BAD_BODIES)
async def test_create_validation_is_400_with_error(client, admin, payload, message) -> None:
    resp = await client.post(sources_url(admin), json=payload, headers=source_headers(admin))
    assert resp.status_code == 400, resp.text
    assert resp.json() == {"error": message}
    assert SECRET not in resp.text
    listing = await client.get(sources_url(admin), headers=source_headers(admin))
    assert listing.json() == []


async def test_snowflake_needs_exactly_one_auth_form(client, admin) -> None:
    expected = (
        "config must contain exactly one of: config.password, or config.private_key "
        "(optionally with config.private_key_passphrase)"
    )
    for payload in (
        body(password=...),
        body(private_key=pem_key()),
        body(password="********"),
    ):  # the mask is not a password
        resp = await client.post(sources_url(admin), json=payload, headers=source_headers(admin))
        assert resp.status_code == 400
        assert resp.json() == {"error": expected}
        assert "PRIVATE KEY" not in resp.text


async def test_malformed_json_is_400(client, admin) -> None:
    resp = await client.post(
        sources_url(admin),
        content=b'{"name": ',
        headers={**source_headers(admin), "Content-Type": "application/json"},
    )
    assert resp.status_code == 400
    assert resp.json() == {"error": "Request body is not valid JSON"}


async def test_connection_id_reference(client, admin, make_source) -> None:
    unknown = await client.post(
        sources_url(admin),
        headers=source_headers(admin),
        json={**body(), "connection_id": str(uuid.uuid4())},
    )
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "connection_id does not name a connection in this workspace"}

    shared = await plain_snowflake(client, admin, "shared")
    shared_id = shared.json()["id"]
    source = await make_source(admin, {**body(), "connection_id": shared_id})
    assert source["connection_id"] == shared_id
    # The shared connection now has the source as a dependent and cannot be deleted.
    deps = (
        await client.get(f"/api/v1/connections/{shared_id}/dependents", headers=admin.headers)
    ).json()["dependents"]
    assert [(d["kind"], d["ref"]) for d in deps] == [("source", source["id"])]
    refused = await client.delete(f"/api/v1/connections/{shared_id}", headers=admin.headers)
    assert refused.status_code == 409

    # PUT connection_id: null drops the reference and its dependent.
    resp = await client.put(
        sources_url(admin, f"/{source['id']}"),
        headers=source_headers(admin),
        json={"connection_id": None},
    )
    assert resp.status_code == 200 and resp.json()["connection_id"] is None
    deps = (
        await client.get(f"/api/v1/connections/{shared_id}/dependents", headers=admin.headers)
    ).json()["dependents"]
    assert deps == []
    # And back, then delete the source: its reference goes with it.
    resp = await client.put(
        sources_url(admin, f"/{source['id']}"),
        headers=source_headers(admin),
        json={"connection_id": shared_id},
    )
    assert resp.json()["connection_id"] == shared_id
    assert resp.json()["status"] == "pending"
    deleted = await client.delete(
        sources_url(admin, f"/{source['id']}"), headers=source_headers(admin)
    )
    assert deleted.status_code == 200
    assert (
        await client.delete(f"/api/v1/connections/{shared_id}", headers=admin.headers)
    ).status_code == 204


async def test_connection_id_of_another_workspace_is_404(client, admin, make_caller) -> None:
    stranger = await make_caller(Role.admin)
    theirs = await plain_snowflake(client, stranger, "theirs")
    resp = await client.post(
        sources_url(admin),
        headers=source_headers(admin),
        json={**body(), "connection_id": theirs.json()["id"]},
    )
    assert resp.status_code == 404


async def test_source_cannot_refer_to_itself(client, admin, make_source) -> None:
    source = await make_source(admin)
    resp = await client.put(
        sources_url(admin, f"/{source['id']}"),
        headers=source_headers(admin),
        json={"connection_id": source["id"]},
    )
    assert resp.status_code == 400
    assert resp.json() == {"error": "connection_id cannot be the source itself"}


async def test_put_name_only_keeps_status_and_secrets(client, admin, make_source, runtime) -> None:
    source = await make_source(admin)
    await set_status(runtime, source["id"], "active")
    resp = await client.put(
        sources_url(admin, f"/{source['id']}"),
        headers=source_headers(admin),
        json={"name": "Renamed"},
    )
    assert resp.status_code == 200
    data = resp.json()
    assert data["name"] == "Renamed" and data["status"] == "connected"
    assert data["config"] == source["config"]
    assert data["updated_at"] > source["updated_at"]
    assert await stored_credentials(runtime, source["id"]) == {"password": SECRET}


async def test_put_masked_form_unchanged_keeps_status(client, admin, make_source, runtime) -> None:
    """An edit form saved as is (secrets as the mask, same type) changes nothing."""
    source = await make_source(admin)
    await set_status(runtime, source["id"], "active")
    resp = await client.put(
        sources_url(admin, f"/{source['id']}"),
        headers=source_headers(admin),
        json={**source, "name": source["name"]},
    )
    assert resp.status_code == 200
    assert resp.json()["status"] == "connected"
    assert await stored_credentials(runtime, source["id"]) == {"password": SECRET}


async def test_put_config_change_resets_status_and_keeps_omitted_secret(
    client, admin, make_source, runtime
) -> None:
    source = await make_source(admin)
    await set_status(runtime, source["id"], "error", "Authentication failed: nope")
    got = (
        await client.get(sources_url(admin, f"/{source['id']}"), headers=source_headers(admin))
    ).json()
    assert (got["status"], got["status_error"]) == ("error", "Authentication failed: nope")
    new_config = {
        k: v for k, v in snowflake_config(warehouse="LARGE_WH").items() if k != "password"
    }
    resp = await client.put(
        sources_url(admin, f"/{source['id']}"),
        headers=source_headers(admin),
        json={"config": new_config},
    )
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert (data["status"], data["status_error"]) == ("pending", "")
    assert data["config"]["warehouse"] == "LARGE_WH" and data["config"]["password"] == "********"
    assert await stored_credentials(runtime, source["id"]) == {"password": SECRET}


async def test_put_config_replaces_non_secret_fields(client, admin, make_source) -> None:
    source = await make_source(admin, body(role="CDP_ROLE"))
    assert source["config"]["role"] == "CDP_ROLE"
    config = {k: v for k, v in source["config"].items() if k != "role"}
    resp = await client.put(
        sources_url(admin, f"/{source['id']}"),
        headers=source_headers(admin),
        json={"config": config},
    )
    assert "role" not in resp.json()["config"]
    missing = {k: v for k, v in config.items() if k != "account"}
    resp = await client.put(
        sources_url(admin, f"/{source['id']}"),
        headers=source_headers(admin),
        json={"config": missing},
    )
    assert resp.status_code == 400
    assert resp.json() == {"error": "config.account is required"}


async def test_put_new_secret_replaces_it(client, admin, make_source, runtime) -> None:
    source = await make_source(admin)
    resp = await client.put(
        sources_url(admin, f"/{source['id']}"),
        headers=source_headers(admin),
        json={"config": {**source["config"], "password": "new-" + SECRET}},
    )
    assert resp.status_code == 200
    assert "new-" not in resp.text and resp.json()["config"]["password"] == "********"
    assert await stored_credentials(runtime, source["id"]) == {"password": "new-" + SECRET}


async def test_put_switch_to_key_pair(client, admin, make_source, runtime) -> None:
    source = await make_source(admin)
    key = pem_key()
    both = await client.put(
        sources_url(admin, f"/{source['id']}"),
        headers=source_headers(admin),
        json={"config": {**source["config"], "private_key": key}},
    )
    assert both.status_code == 400  # password kept + key = two auth forms
    assert "exactly one of" in both.json()["error"]
    resp = await client.put(
        sources_url(admin, f"/{source['id']}"),
        headers=source_headers(admin),
        json={"config": {**source["config"], "private_key": key, "password": None}},
    )
    assert resp.status_code == 200, resp.text
    config = resp.json()["config"]
    assert config["private_key"] == "********" and "password" not in config
    assert await stored_credentials(runtime, source["id"]) == {"privateKey": key}
    neither = await client.put(
        sources_url(admin, f"/{source['id']}"),
        headers=source_headers(admin),
        json={"config": {**config, "private_key": None}},
    )
    assert neither.status_code == 400


async def test_put_source_type_is_immutable(client, admin, make_source) -> None:
    source = await make_source(admin)
    resp = await client.put(
        sources_url(admin, f"/{source['id']}"),
        headers=source_headers(admin),
        json={"source_type": "bigquery"},
    )
    assert resp.status_code == 400
    assert resp.json() == {"error": "source_type cannot be changed"}
    same = await client.put(
        sources_url(admin, f"/{source['id']}"),
        headers=source_headers(admin),
        json={"source_type": "snowflake", "name": "Same type"},
    )
    assert same.status_code == 200 and same.json()["name"] == "Same type"


async def test_put_validation_and_unknown(client, admin, make_source) -> None:
    source = await make_source(admin)
    url = sources_url(admin, f"/{source['id']}")
    for payload, message in [
        ({"name": ""}, "name must not be empty"),
        ({"config": []}, "config must be an object"),
        ({"config": {**source["config"], "port": 0}}, "config.port must be at least 1"),
    ]:
        resp = await client.put(url, headers=source_headers(admin), json=payload)
        assert resp.status_code == 400 and resp.json() == {"error": message}
    resp = await client.put(
        sources_url(admin, f"/{uuid.uuid4()}"), headers=source_headers(admin), json={"name": "x"}
    )
    assert resp.status_code == 404


async def test_delete(client, admin, make_source) -> None:
    source = await make_source(admin)
    resp = await client.delete(
        sources_url(admin, f"/{source['id']}"), headers=source_headers(admin)
    )
    assert resp.status_code == 200 and resp.json() == {"status": "deleted"}
    again = await client.delete(
        sources_url(admin, f"/{source['id']}"), headers=source_headers(admin)
    )
    assert again.status_code == 404 and again.json() == {"error": "Source not found"}
    core = await client.get(f"/api/v1/connections/{source['id']}", headers=admin.headers)
    assert core.status_code == 404


async def test_delete_with_dependents_is_409_and_deletes_nothing(
    client, admin, make_source
) -> None:
    source = await make_source(admin)
    dep = await client.put(
        f"/api/v1/connections/{source['id']}/dependents/model/m-1", headers=admin.headers
    )
    assert dep.status_code == 201
    for _ in range(2):
        resp = await client.delete(
            sources_url(admin, f"/{source['id']}"), headers=source_headers(admin)
        )
        assert resp.status_code == 409
        assert resp.json() == {"error": "source has dependent models or syncs"}
    assert (
        await client.get(sources_url(admin, f"/{source['id']}"), headers=source_headers(admin))
    ).status_code == 200
    core = await client.delete(f"/api/v1/connections/{source['id']}", headers=admin.headers)
    assert core.status_code == 409 and core.json()["code"] == "has_dependents"
    await client.delete(
        f"/api/v1/connections/{source['id']}/dependents/model/m-1", headers=admin.headers
    )
    resp = await client.delete(
        sources_url(admin, f"/{source['id']}"), headers=source_headers(admin)
    )
    assert resp.status_code == 200


async def test_status_mapping_of_core_states(client, admin, make_source, runtime) -> None:
    source = await make_source(admin)
    url = sources_url(admin, f"/{source['id']}")
    cases = [
        ("active", None, "connected", ""),
        ("needs_verification", None, "pending", ""),
        ("error", "Timed out", "error", "Timed out"),
        ("expired", None, "error", "The credentials have expired"),
        ("disabled", None, "error", "The connection is disabled"),
    ]
    for core, error, status, status_error in cases:
        await set_status(runtime, source["id"], core, error)
        got = (await client.get(url, headers=source_headers(admin))).json()
        assert (got["status"], got["status_error"]) == (status, status_error), core


async def test_no_rate_limit_headers_when_disabled(client: httpx.AsyncClient, admin) -> None:
    resp = await client.get(sources_url(admin), headers=source_headers(admin))
    assert "x-ratelimit-limit" not in resp.headers
