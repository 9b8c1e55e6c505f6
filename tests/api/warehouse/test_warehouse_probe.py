"""``POST …/{id}/test/`` against fakesnow's server with the real snowflake connector, and
the status transitions of API.md section 1.

fakesnow accepts any key-pair JWT, so "success" proves the stored key is decrypted, turned
into a JWT login, and that ``SELECT 1``/``LIST @DB.SCHEMA.FLAGSMITH_STAGE`` run in the
configured scope; a rejected key is the adapter's tests' business.
"""

from __future__ import annotations

import re

import httpx
import pytest
from wh_support import base, body, item, probe_url

from connhub.runtime import Runtime
from connhub.workspaces.principal import Role
from support.fakesnow_server import (
    FakesnowServer,
    closed_port,
    create_objects,
    fakesnow_server_fixture,  # noqa: F401 - registers the fixture
    unique_name,
)

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def on_fakesnow(server: FakesnowServer, database: str) -> dict:
    return body(
        account_identifier="fakeacct",
        database=database,
        host=server.host,
        port=server.port,
        protocol="http",
    )


async def create(wh: httpx.AsyncClient, caller, payload: dict) -> dict:  # type: ignore[no-untyped-def]
    resp = await wh.post(base(caller.workspace_slug), json=payload, headers=caller.headers)
    assert resp.status_code == 201, resp.text
    return resp.json()


async def probe(wh: httpx.AsyncClient, caller, cid: str, **kw) -> httpx.Response:  # type: ignore[no-untyped-def]
    return await wh.post(probe_url(caller.workspace_slug, cid), headers=caller.headers, **kw)


@pytest.fixture
def ready_database(fakesnow_server: FakesnowServer) -> str:
    """What the setup script would have made: database, schema and FLAGSMITH_STAGE."""
    name = unique_name()
    create_objects(fakesnow_server, name, "ANALYTICS", stages=["FLAGSMITH_STAGE"])
    return name


async def test_success_once_the_stage_exists(wh, admin, fakesnow_server, ready_database) -> None:
    created = await create(wh, admin, on_fakesnow(fakesnow_server, ready_database))
    resp = await probe(wh, admin, created["id"], json={})
    assert resp.status_code == 200, resp.text
    result = resp.json()
    assert result["success"] is True and list(result) == ["success", "tested_at"]
    assert ISO_Z.match(result["tested_at"])
    after = (await wh.get(item(admin.workspace_slug, created["id"]), headers=admin.headers)).json()
    assert after["status"] == "connected"
    assert after["last_error"] is None
    assert after["last_tested_at"] == result["tested_at"]


async def test_missing_stage_returns_the_raw_snowflake_error(wh, admin, fakesnow_server) -> None:
    database = unique_name()
    create_objects(fakesnow_server, database, "ANALYTICS")  # the script was not run fully
    created = await create(wh, admin, on_fakesnow(fakesnow_server, database))
    resp = await probe(wh, admin, created["id"])  # empty body is fine too
    assert resp.status_code == 200
    result = resp.json()
    assert result["success"] is False and ISO_Z.match(result["tested_at"])
    assert (
        f"Stage '{database}.ANALYTICS.FLAGSMITH_STAGE' does not exist or not authorized"
        in result["error"]
    )
    assert result["error"].startswith("002003 (02000): SQL compilation error")  # driver's words
    after = (await wh.get(item(admin.workspace_slug, created["id"]), headers=admin.headers)).json()
    assert after["status"] == "error"
    assert after["last_error"] == result["error"]
    assert after["last_tested_at"] == result["tested_at"]


async def test_unreachable_account_is_a_failed_test_not_a_5xx(wh, admin) -> None:
    created = await create(
        wh,
        admin,
        body(account_identifier="fakeacct", host="127.0.0.1", port=closed_port(), protocol="http"),
    )
    resp = await probe(wh, admin, created["id"], json={})
    assert resp.status_code == 200
    result = resp.json()
    assert result["success"] is False
    assert result["error"]  # the raw socket error, e.g. "ConnectionRefusedError: ..."
    assert "refused" in result["error"].lower() or "connect call failed" in result["error"].lower()
    after = (await wh.get(item(admin.workspace_slug, created["id"]), headers=admin.headers)).json()
    assert after["status"] == "error" and after["last_error"] == result["error"]


async def test_status_transitions(
    wh, admin, fakesnow_server, ready_database, runtime: Runtime
) -> None:
    """API.md's table, with the core status kept in step (Connections API view)."""
    created = await create(wh, admin, on_fakesnow(fakesnow_server, ready_database))
    url = item(admin.workspace_slug, created["id"])
    core_url = f"/api/v1/connections/{created['id']}"

    async def state() -> tuple[str, str | None, str | None, str]:
        face = (await wh.get(url, headers=admin.headers)).json()
        core = (await wh.get(core_url, headers=admin.headers)).json()
        return face["status"], face["last_tested_at"], face["last_error"], core["status"]

    assert await state() == ("pending_customer_setup", None, None, "needs_verification")

    ok = (await probe(wh, admin, created["id"])).json()
    assert await state() == ("connected", ok["tested_at"], None, "active")

    # PATCH: pending again, last_error cleared, last_tested_at kept
    resp = await wh.patch(url, json={"schema": "MISSING_SCHEMA"}, headers=admin.headers)
    assert resp.status_code == 200
    assert await state() == ("pending_customer_setup", ok["tested_at"], None, "needs_verification")

    failed = (await probe(wh, admin, created["id"])).json()
    assert failed["success"] is False and failed["error"]
    assert await state() == ("error", failed["tested_at"], failed["error"], "error")

    # PUT from error: pending, last_error null, last_tested_at kept
    resp = await wh.put(
        url, json=on_fakesnow(fakesnow_server, ready_database), headers=admin.headers
    )
    assert resp.status_code == 200
    assert await state() == (
        "pending_customer_setup",
        failed["tested_at"],
        None,
        "needs_verification",
    )

    # a test may run from any status; the key pair survived the edits
    again = (await probe(wh, admin, created["id"])).json()
    assert again["success"] is True
    assert await state() == ("connected", again["tested_at"], None, "active")
    assert (await wh.get(url, headers=admin.headers)).json()["public_key"] == created["public_key"]


async def test_probe_request_errors(wh, admin, make_caller) -> None:
    missing = "00000000-0000-0000-0000-000000000000"
    assert (await probe(wh, admin, missing)).status_code == 404
    created = await create(wh, admin, body())
    resp = await probe(wh, admin, created["id"], json={"force": True})
    assert resp.status_code == 400 and resp.json() == {"force": ["Unknown field."]}
    viewer = await make_caller(Role.viewer, workspace=admin.workspace_slug)
    assert (await probe(wh, viewer, created["id"])).status_code == 403


async def test_a_verification_from_the_connections_api_moves_the_face_too(
    wh, admin, fakesnow_server
) -> None:
    """One connection, three faces: a Connections API verify or disable shows here."""
    database = unique_name()
    create_objects(fakesnow_server, database, "ANALYTICS")  # no stage yet: the check fails
    created = await create(wh, admin, on_fakesnow(fakesnow_server, database))
    url = item(admin.workspace_slug, created["id"])
    core_url = f"/api/v1/connections/{created['id']}"

    verified = await wh.post(f"{core_url}/verify", headers=admin.headers)
    assert verified.status_code == 200 and verified.json()["status"] == "error"
    face = (await wh.get(url, headers=admin.headers)).json()
    assert face["status"] == "error"
    assert face["last_error"] == verified.json()["verificationError"]  # the core's message
    assert ISO_Z.match(face["last_tested_at"])

    create_objects(fakesnow_server, database, "ANALYTICS", stages=["FLAGSMITH_STAGE"])
    verified = await wh.post(f"{core_url}/verify", headers=admin.headers)
    assert verified.json()["status"] == "active"
    face = (await wh.get(url, headers=admin.headers)).json()
    assert (face["status"], face["last_error"]) == ("connected", None)
    checked_at = verified.json()["lastVerifiedAt"]
    assert face["last_tested_at"] == checked_at[:19] + "Z"

    disabled = await wh.post(f"{core_url}/disable", headers=admin.headers)
    assert disabled.status_code == 200, disabled.text
    face = (await wh.get(url, headers=admin.headers)).json()
    assert (face["status"], face["last_error"]) == ("error", "Connection is disabled")
