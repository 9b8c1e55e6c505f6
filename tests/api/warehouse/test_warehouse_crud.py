"""Warehouse connection API (API.md section 1): list, detail, create, PUT, PATCH, DELETE,
validation, the singleton, and the mapping onto the core connection."""

from __future__ import annotations

import base64
import re
import uuid

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import func, select
from wh_support import base, body, item

from connhub.connections import service as core
from connhub.connections.schemas import Visibility
from connhub.errors import Conflict
from connhub.models import Connection, ConnectionSecret
from connhub.runtime import Runtime
from connhub.workspaces.principal import Principal, Role

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
DEFAULT_CONFIG = {
    "warehouse": "COMPUTE_WH",
    "database": "FLAGSMITH",
    "schema": "ANALYTICS",
    "role": "FLAGSMITH_LOADER",
    "user": "FLAGSMITH_SERVICE",
}


async def create(wh: httpx.AsyncClient, caller, **overrides) -> dict:  # type: ignore[no-untyped-def]
    resp = await wh.post(
        base(caller.workspace_slug), json=body(**overrides), headers=caller.headers
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


async def test_list_is_empty_then_holds_the_one_connection(wh, admin) -> None:
    resp = await wh.get(base(admin.workspace_slug), headers=admin.headers)
    assert resp.status_code == 200 and resp.json() == []
    created = await create(wh, admin)
    listing = (await wh.get(base(admin.workspace_slug), headers=admin.headers)).json()
    assert listing == [created]


async def test_create_answers_201_with_the_full_object_and_defaults(wh, admin) -> None:
    data = await create(wh, admin)
    assert list(data) == [
        "id",
        "type",
        "status",
        "config",
        "public_key",
        "setup_script",
        "created_at",
        "last_tested_at",
        "last_error",
    ]
    assert data["type"] == "snowflake"
    assert data["status"] == "pending_customer_setup"
    assert data["config"] == {"account_identifier": "xy12345.us-east-1", **DEFAULT_CONFIG}
    assert ISO_Z.match(data["created_at"])
    assert data["last_tested_at"] is None and data["last_error"] is None
    assert data["setup_script"].startswith("-- Flagsmith Analytics\nUSE ROLE SYSADMIN;\n")
    assert f"RSA_PUBLIC_KEY='{data['public_key']}'" in data["setup_script"]
    assert "\n" not in data["public_key"] and "BEGIN" not in data["public_key"]


async def test_names_are_upper_cased_and_overrides_echoed(wh, admin) -> None:
    data = await create(
        wh,
        admin,
        warehouse="my_wh",
        database="Db1",
        schema="raw$data",
        role="loader",
        user="svc_user",
        host="127.0.0.1",
        port=8080,
        protocol="HTTP",
    )
    assert data["config"] == {
        "account_identifier": "xy12345.us-east-1",
        "warehouse": "MY_WH",
        "database": "DB1",
        "schema": "RAW$DATA",
        "role": "LOADER",
        "user": "SVC_USER",
        "host": "127.0.0.1",
        "port": 8080,
        "protocol": "http",
    }
    assert "CREATE SCHEMA IF NOT EXISTS DB1.RAW$DATA;" in data["setup_script"]


async def test_detail_is_the_list_item_unwrapped(wh, admin) -> None:
    created = await create(wh, admin)
    resp = await wh.get(item(admin.workspace_slug, created["id"]), headers=admin.headers)
    assert resp.status_code == 200 and resp.json() == created
    by_id = await wh.get(item(str(admin.workspace_id), created["id"]), headers=admin.headers)
    assert by_id.json() == created  # organisation_pk may be the workspace id too


async def test_detail_of_unknown_or_malformed_id_is_404(wh, admin) -> None:
    for cid in ("00000000-0000-0000-0000-000000000000", "wc_abc123"):
        resp = await wh.get(item(admin.workspace_slug, cid), headers=admin.headers)
        assert resp.status_code == 404 and resp.json() == {"detail": "Not found."}


async def test_a_non_warehouse_connection_is_not_reachable_here(wh, admin) -> None:
    other = await wh.post(
        "/api/v1/connections",
        headers=admin.headers,
        json={
            "name": "pg",
            "provider": "postgres",
            "visibility": "global",
            "config": {"host": "h.example.com", "database": "d", "username": "u"},
            "credentials": {"password": "pw-123456"},
        },
    )
    assert other.status_code == 201
    resp = await wh.get(item(admin.workspace_slug, other.json()["id"]), headers=admin.headers)
    assert resp.status_code == 404
    assert (await wh.get(base(admin.workspace_slug), headers=admin.headers)).json() == []


# --- validation ---------------------------------------------------------------------------


async def test_missing_account_identifier(wh, admin) -> None:
    resp = await wh.post(
        base(admin.workspace_slug), json={"type": "snowflake"}, headers=admin.headers
    )
    assert resp.status_code == 400
    assert resp.json() == {"account_identifier": ["This field is required."]}


async def test_empty_body_names_every_required_field(wh, admin) -> None:
    for kwargs in ({"content": b""}, {"json": {}}):
        resp = await wh.post(base(admin.workspace_slug), headers=admin.headers, **kwargs)
        assert resp.status_code == 400
        assert resp.json() == {
            "type": ["This field is required."],
            "account_identifier": ["This field is required."],
        }


async def test_unknown_field_is_400(wh, admin) -> None:
    resp = await wh.post(
        base(admin.workspace_slug), json=body(password="x", schema_="y"), headers=admin.headers
    )
    assert resp.status_code == 400
    assert resp.json() == {"password": ["Unknown field."], "schema_": ["Unknown field."]}


async def test_identifier_validation_names_the_field(wh, admin) -> None:
    cases = {
        "warehouse": "COMPUTE WH",
        "database": "1DB",
        "schema": "ANALYTICS; DROP DATABASE X",
        "role": "$ROLE",
        "user": "A" * 256,
    }
    for field, value in cases.items():
        resp = await wh.post(
            base(admin.workspace_slug), json=body(**{field: value}), headers=admin.headers
        )
        assert resp.status_code == 400, (field, resp.text)
        errors = resp.json()
        assert list(errors) == [field]
        assert "Snowflake identifier" in errors[field][0]
    ok = await wh.post(base(admin.workspace_slug), json=body(user="A" * 255), headers=admin.headers)
    assert ok.status_code == 201


async def test_account_type_and_value_shapes(wh, admin) -> None:
    cases = [
        ({"account_identifier": "https://xy12345.snowflakecomputing.com"}, "account_identifier"),
        ({"account_identifier": "xy 12345"}, "account_identifier"),
        ({"account_identifier": ""}, "account_identifier"),
        ({"account_identifier": 12345}, "account_identifier"),
        ({"type": "bigquery"}, "type"),
        ({"warehouse": None}, "warehouse"),
        ({"port": 0}, "port"),
        ({"port": "abc"}, "port"),
        ({"protocol": "ftp"}, "protocol"),
        ({"host": "h.example.com/path"}, "host"),
    ]
    for overrides, field in cases:
        resp = await wh.post(
            base(admin.workspace_slug), json=body(**overrides), headers=admin.headers
        )
        assert resp.status_code == 400, overrides
        assert list(resp.json()) == [field], resp.text
        assert isinstance(resp.json()[field], list)
    assert (
        await wh.post(base(admin.workspace_slug), json=body(type="bigquery"), headers=admin.headers)
    ).json() == {"type": ['"bigquery" is not a valid choice.']}
    assert (
        await wh.post(
            base(admin.workspace_slug), json=body(account_identifier=""), headers=admin.headers
        )
    ).json() == {"account_identifier": ["This field may not be blank."]}


async def test_malformed_bodies_are_400_detail_or_non_field(wh, admin) -> None:
    resp = await wh.post(
        base(admin.workspace_slug),
        content=b"{not json",
        headers={**admin.headers, "content-type": "application/json"},
    )
    assert resp.status_code == 400 and resp.json()["detail"].startswith("JSON parse error")
    resp = await wh.post(base(admin.workspace_slug), json=["a"], headers=admin.headers)
    assert resp.status_code == 400
    assert resp.json() == {"non_field_errors": ["Invalid data. Expected a dictionary."]}


# --- singleton ----------------------------------------------------------------------------


async def test_second_create_is_409_and_leaves_one_row(wh, admin, runtime: Runtime) -> None:
    first = await create(wh, admin)
    resp = await wh.post(base(admin.workspace_slug), json=body(), headers=admin.headers)
    assert resp.status_code == 409
    assert resp.json() == {
        "detail": "This organisation already has an active warehouse connection."
    }
    listing = (await wh.get(base(admin.workspace_slug), headers=admin.headers)).json()
    assert [c["id"] for c in listing] == [first["id"]]
    async with runtime.sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(Connection)
            .where(Connection.workspace_id == admin.workspace_id)
        )
    assert count == 1


async def test_the_index_itself_refuses_a_second_row(wh, admin, runtime: Runtime) -> None:
    """Past the early check (as a racing request would be), core.create raises Conflict."""
    await create(wh, admin)
    principal = Principal(
        user_id=admin.user_id,
        workspace_id=admin.workspace_id,
        role=Role.admin,
        email="x@example.com",
    )
    async with runtime.sessions() as session:
        try:
            await core.create(
                session,
                principal,
                registry=runtime.registry,
                envelope=runtime.envelope,
                name="Snowflake warehouse",
                provider="snowflake",
                credentials={"password": "pw-123456"},
                config={
                    "account": "a",
                    "warehouse": "W",
                    "database": "D",
                    "schema": "S",
                    "username": "U",
                },
                visibility=Visibility.global_,
                face="warehouse",
            )
        except Conflict:
            pass
        else:
            raise AssertionError("a second warehouse row was accepted")


async def test_each_organisation_has_its_own(wh, make_caller) -> None:
    one = await make_caller()
    two = await make_caller()
    await create(wh, one)
    await create(wh, two)


# --- PUT / PATCH --------------------------------------------------------------------------


async def test_put_replaces_and_reverts_omitted_fields_to_defaults(wh, admin) -> None:
    created = await create(wh, admin, warehouse="WH2", role="R2", host="h.example.com")
    url = item(admin.workspace_slug, created["id"])
    resp = await wh.put(url, json=body(database="OTHER"), headers=admin.headers)
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["config"] == {
        "account_identifier": "xy12345.us-east-1",
        **DEFAULT_CONFIG,
        "database": "OTHER",
    }
    assert data["public_key"] == created["public_key"]  # never regenerated
    assert data["id"] == created["id"] and data["created_at"] == created["created_at"]
    assert "CREATE DATABASE IF NOT EXISTS OTHER;" in data["setup_script"]
    assert data["setup_script"] != created["setup_script"]
    assert (await wh.get(url, headers=admin.headers)).json() == data


async def test_put_immutables(wh, admin) -> None:
    created = await create(wh, admin)
    url = item(admin.workspace_slug, created["id"])
    resp = await wh.put(url, json=body(account_identifier="other-account"), headers=admin.headers)
    assert resp.status_code == 400
    assert resp.json() == {"account_identifier": ["This field cannot be changed."]}
    resp = await wh.put(url, json=body(type="bigquery"), headers=admin.headers)
    assert resp.status_code == 400
    assert resp.json() == {"type": ["This field cannot be changed."]}
    resp = await wh.put(url, json={"type": "snowflake"}, headers=admin.headers)
    assert resp.json() == {"account_identifier": ["This field is required."]}
    same = await wh.put(
        url, json=body(account_identifier="XY12345.US-EAST-1"), headers=admin.headers
    )
    assert same.status_code == 200  # a change of case is no change
    assert same.json()["config"]["account_identifier"] == "xy12345.us-east-1"


async def test_patch_changes_only_what_is_sent(wh, admin) -> None:
    created = await create(wh, admin, host="h.example.com", port=8443)
    url = item(admin.workspace_slug, created["id"])
    resp = await wh.patch(url, json={"warehouse": "big_wh", "port": None}, headers=admin.headers)
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["config"] == {
        "account_identifier": "xy12345.us-east-1",
        **DEFAULT_CONFIG,
        "warehouse": "BIG_WH",
        "host": "h.example.com",
    }
    assert data["public_key"] == created["public_key"]
    assert "GRANT USAGE ON WAREHOUSE BIG_WH TO ROLE FLAGSMITH_LOADER;" in data["setup_script"]


async def test_patch_with_type_or_account_identifier_is_400(wh, admin) -> None:
    created = await create(wh, admin)
    url = item(admin.workspace_slug, created["id"])
    for sent in (
        {"type": "snowflake"},
        {"account_identifier": "xy12345.us-east-1"},
        {"type": None},
    ):
        resp = await wh.patch(url, json={**sent, "warehouse": "W"}, headers=admin.headers)
        assert resp.status_code == 400
        assert resp.json() == {next(iter(sent)): ["This field cannot be changed."]}
    bad = await wh.patch(url, json={"role": "no-dashes", "bogus": 1}, headers=admin.headers)
    assert bad.status_code == 400 and set(bad.json()) == {"role", "bogus"}
    unchanged = (await wh.get(url, headers=admin.headers)).json()
    assert unchanged == created


async def test_put_patch_of_missing_connection_is_404(wh, admin) -> None:
    url = item(admin.workspace_slug, "00000000-0000-0000-0000-000000000000")
    assert (await wh.put(url, json=body(), headers=admin.headers)).status_code == 404
    assert (await wh.patch(url, json={}, headers=admin.headers)).status_code == 404


# --- DELETE -------------------------------------------------------------------------------


async def test_delete_is_204_then_404_then_post_works(wh, admin, runtime: Runtime) -> None:
    created = await create(wh, admin)
    url = item(admin.workspace_slug, created["id"])
    resp = await wh.delete(url, headers=admin.headers)
    assert resp.status_code == 204 and resp.content == b""
    async with runtime.sessions() as session:
        secret = await session.get(ConnectionSecret, uuid.UUID(created["id"]))
    assert secret is None  # the private key went with the row
    again = await wh.delete(url, headers=admin.headers)
    assert again.status_code == 404 and again.json() == {"detail": "Not found."}
    assert (await wh.get(url, headers=admin.headers)).status_code == 404
    fresh = await create(wh, admin)
    assert fresh["id"] != created["id"] and fresh["public_key"] != created["public_key"]


# --- key pair -----------------------------------------------------------------------------


async def test_public_key_matches_the_sealed_private_key(wh, admin, runtime: Runtime) -> None:
    created = await create(wh, admin)
    async with runtime.sessions() as session:
        conn = await session.get(Connection, uuid.UUID(created["id"]))
        assert conn is not None
        credentials = await core.load_credentials(session, runtime.envelope, conn)
        sealed = await session.get(ConnectionSecret, conn.id)
    assert list(credentials) == ["privateKey"]
    pem = credentials["privateKey"]
    assert pem.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted inside
    assert sealed is not None and "BEGIN" not in sealed.sealed  # but sealed at rest
    private = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == 2048
    public = serialization.load_der_public_key(base64.b64decode(created["public_key"]))
    assert isinstance(public, rsa.RSAPublicKey)
    message = b"warehouse key pair check"
    signature = private.sign(message, padding.PKCS1v15(), hashes.SHA256())
    public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())  # raises if not


async def test_default_key_size_is_4096(client, admin, runtime: Runtime) -> None:
    """The suite's app runs with default settings: API.md's MIICIjANBgkq... prefix."""
    resp = await client.post(base(admin.workspace_slug), json=body(), headers=admin.headers)
    assert resp.status_code == 201, resp.text
    public_key = resp.json()["public_key"]
    assert public_key.startswith("MIICIjANBgkq")
    public = serialization.load_der_public_key(base64.b64decode(public_key))
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 4096


# --- the core view ------------------------------------------------------------------------


async def test_visible_through_the_connections_api(wh, admin, make_caller) -> None:
    created = await create(wh, admin)
    listing = (await wh.get("/api/v1/connections", headers=admin.headers)).json()
    [conn] = listing["connections"]
    assert conn["id"] == created["id"]
    assert conn["provider"] == "snowflake"
    assert conn["name"] == "Snowflake warehouse" and conn["slug"] == "snowflake-warehouse"
    assert conn["status"] == "needs_verification"
    assert conn["config"]["account"] == "xy12345.us-east-1"
    assert conn["config"]["username"] == "FLAGSMITH_SERVICE"
    assert conn["config"]["stage"] == "FLAGSMITH_STAGE"
    settings = (
        await wh.get(f"/api/v1/connections/{created['id']}/edit-settings", headers=admin.headers)
    ).json()
    assert settings["secretFields"]["privateKey"] == {"configured": True}
    viewer = await make_caller(Role.viewer, workspace=admin.workspace_slug)
    seen = (await wh.get("/api/v1/connections", headers=viewer.headers)).json()
    assert [c["id"] for c in seen["connections"]] == [created["id"]]  # global visibility


async def test_deleted_through_the_connections_api_frees_the_singleton(wh, admin) -> None:
    created = await create(wh, admin)
    resp = await wh.delete(f"/api/v1/connections/{created['id']}", headers=admin.headers)
    assert resp.status_code == 204
    assert (await wh.get(base(admin.workspace_slug), headers=admin.headers)).json() == []
    await create(wh, admin)
