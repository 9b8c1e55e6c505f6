"""POST /connections/{id}/verify against the machine's real PostgreSQL and MariaDB."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import orjson
import pytest

from connhub.workspaces.principal import Role
from support.fakesnow_server import silent_server


def pg(database: str = "postgres", **config: object) -> dict[str, object]:
    return {
        "name": "local pg",
        "provider": "postgres",
        "config": {
            "host": "127.0.0.1",
            "port": 5432,
            "database": database,
            "username": "postgres",
            **config,
        },
        "credentials": {"password": "unused-under-trust"},
    }


async def make(client, caller, body):  # type: ignore[no-untyped-def]
    resp = await client.post("/api/v1/connections", json=body, headers=caller.headers)
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


async def test_a_provider_without_checks_yet_is_a_400_and_changes_nothing(client, admin) -> None:
    """Files and HTTP providers have no verification yet: the contract's "not valid for this
    provider" 400, and the connection stays as it was."""
    body = {
        "name": "exports",
        "provider": "s3",
        "config": {"bucket": "acme-exports", "region": "us-east-1"},
        "credentials": {"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "s3-secret-value"},
    }
    cid = await make(client, admin, body)
    resp = await client.post(f"/api/v1/connections/{cid}/verify", headers=admin.headers)
    assert resp.status_code == 400
    assert resp.json()["code"] == "not_supported"
    after = (await client.get(f"/api/v1/connections/{cid}", headers=admin.headers)).json()
    assert after["status"] == "needs_verification" and after["lastVerifiedAt"] is None


async def test_verify_success_marks_active(client, admin) -> None:
    cid = await make(client, admin, pg())
    resp = await client.post(f"/api/v1/connections/{cid}/verify", headers=admin.headers)
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["status"] == "active"
    assert data["verificationError"] is None and data["verificationErrorCode"] is None
    assert data["lastVerifiedAt"] is not None
    checks = data["verificationDetails"]["checks"]
    assert [c["name"] for c in checks] == ["connectivity", "authentication", "permissions"]
    assert all(c["status"] == "passed" for c in checks)


async def test_verify_failure_is_200_with_error_code(client, admin) -> None:
    cid = await make(client, admin, pg(database="no_such_db_here"))
    resp = await client.post(f"/api/v1/connections/{cid}/verify", headers=admin.headers)
    assert resp.status_code == 200
    data = resp.json()
    assert data["status"] == "error"
    assert data["verificationErrorCode"] == "invalid_config"
    assert data["verificationError"]
    statuses = [c["status"] for c in data["verificationDetails"]["checks"]]
    assert statuses == ["passed", "failed", "skipped"]


async def test_wrong_password_is_invalid_credentials(client, admin, scram_postgres) -> None:
    body = pg()
    body["config"] = {
        "host": "127.0.0.1",
        "port": scram_postgres.port,
        "database": scram_postgres.database,
        "username": "alice",
    }
    body["credentials"] = {"password": "definitely-wrong-pw"}
    cid = await make(client, admin, body)
    data = (await client.post(f"/api/v1/connections/{cid}/verify", headers=admin.headers)).json()
    assert data["verificationErrorCode"] == "invalid_credentials"
    assert "definitely-wrong-pw" not in str(data)
    await client.patch(
        f"/api/v1/connections/{cid}",
        headers=admin.headers,
        json={"credentials": {"password": scram_postgres.users["alice"]}},
    )
    data = (await client.post(f"/api/v1/connections/{cid}/verify", headers=admin.headers)).json()
    assert data["status"] == "active", data


async def test_verify_mysql_on_mariadb(client, admin, mariadb_users) -> None:
    body = {
        "name": "maria",
        "provider": "mysql",
        "config": {
            "host": "127.0.0.1",
            "port": 3306,
            "database": mariadb_users.database,
            "username": mariadb_users.reader,
        },
        "credentials": {"password": mariadb_users.users[mariadb_users.reader]},
    }
    cid = await make(client, admin, body)
    data = (await client.post(f"/api/v1/connections/{cid}/verify", headers=admin.headers)).json()
    assert data["status"] == "active", data["verificationDetails"]


async def test_verify_disabled_is_400(client, admin) -> None:
    cid = await make(client, admin, pg())
    await client.post(f"/api/v1/connections/{cid}/disable", headers=admin.headers)
    resp = await client.post(f"/api/v1/connections/{cid}/verify", headers=admin.headers)
    assert resp.status_code == 400


async def test_verify_needs_member_and_tenancy(client, make_caller) -> None:
    admin = await make_caller(Role.admin)
    viewer = await make_caller(Role.viewer, workspace=admin.workspace_slug)
    stranger = await make_caller(Role.admin)
    cid = await make(client, admin, {**pg(), "visibility": "global"})
    assert (
        await client.post(f"/api/v1/connections/{cid}/verify", headers=viewer.headers)
    ).status_code == 403
    assert (
        await client.post(f"/api/v1/connections/{cid}/verify", headers=stranger.headers)
    ).status_code == 404


@pytest.fixture
def blackhole() -> Iterator[int]:
    """Accepts TCP (in user space, holding each connection) and never answers."""
    with silent_server() as port:
        yield port


async def test_blackhole_times_out_within_budget(client, admin, blackhole, settings) -> None:
    cid = await make(client, admin, pg(port=blackhole))
    started = time.perf_counter()
    data = (await client.post(f"/api/v1/connections/{cid}/verify", headers=admin.headers)).json()
    elapsed = time.perf_counter() - started
    assert data["verificationErrorCode"] == "timeout"
    assert elapsed < settings.verify_budget_s + 1.5


async def test_egress_policy_blocks_metadata_address(client, admin) -> None:
    body = pg()
    body["config"]["host"] = "169.254.169.254"
    cid = await make(client, admin, body)
    data = (await client.post(f"/api/v1/connections/{cid}/verify", headers=admin.headers)).json()
    assert data["verificationErrorCode"] == "network_unreachable"
    assert "egress" in data["verificationError"].lower()


async def _principal(runtime, caller):  # type: ignore[no-untyped-def]
    from connhub.workspaces.service import resolve_principal

    async with runtime.reader() as reader:
        return await resolve_principal(reader, token=caller.token, workspace_header=None)


async def test_outcome_is_not_recorded_on_a_connection_disabled_meanwhile(
    client, admin, runtime
) -> None:
    """A verification that ends after the connection was disabled leaves it as it is."""
    from connhub.connections.verify import prepare, record
    from connhub.verification.service import verify

    cid = await make(client, admin, pg())
    principal = await _principal(runtime, admin)
    prepared = await prepare(runtime, principal, uuid.UUID(cid))
    outcome = await verify(
        prepared.provider,
        prepared.config,
        prepared.credentials,
        settings=runtime.settings,
        egress=runtime.egress,
    )
    assert outcome.success
    resp = await client.post(f"/api/v1/connections/{cid}/disable", headers=admin.headers)
    assert resp.status_code == 200
    conn = await record(runtime, principal, prepared, outcome)
    assert conn.status == "disabled" and conn.last_verified_at is None
    stored = (await client.get(f"/api/v1/connections/{cid}", headers=admin.headers)).json()
    assert stored["status"] == "disabled" and stored["lastVerifiedAt"] is None


async def test_outcome_is_not_recorded_over_an_edit_made_meanwhile(client, admin, runtime) -> None:
    """New credentials saved while the old ones were being verified stay needs_verification:
    the outcome was about the old ones. Verifying again records as usual."""
    from connhub.connections.verify import check, prepare, record, verify_stored

    cid = await make(client, admin, pg())
    principal = await _principal(runtime, admin)
    verified = await verify_stored(runtime, principal, uuid.UUID(cid))
    assert verified[0].status == "active"
    first_check = verified[0].last_verified_at

    prepared = await prepare(runtime, principal, uuid.UUID(cid))
    outcome = await check(runtime, prepared)
    assert outcome.success
    resp = await client.patch(
        f"/api/v1/connections/{cid}",
        json={"credentials": {"password": "rotated-meanwhile"}},
        headers=admin.headers,
    )
    assert resp.status_code == 200 and resp.json()["status"] == "needs_verification"
    conn = await record(runtime, principal, prepared, outcome)
    assert conn.status == "needs_verification" and conn.last_verified_at == first_check
    stored = (await client.get(f"/api/v1/connections/{cid}", headers=admin.headers)).json()
    assert stored["status"] == "needs_verification"

    again = await client.post(f"/api/v1/connections/{cid}/verify", headers=admin.headers)
    assert again.status_code == 200 and again.json()["status"] == "active"


async def test_recorded_outcome_is_the_stored_row(client, admin, runtime) -> None:
    """The row the recording returns is what a later GET shows (one statement, RETURNING)."""
    from connhub.api.connections.schemas import to_wire
    from connhub.connections.verify import verify_stored
    from connhub.kit.responses import dumps

    cid = await make(client, admin, pg())
    principal = await _principal(runtime, admin)
    conn, outcome = await verify_stored(runtime, principal, uuid.UUID(cid))
    assert outcome.success and conn.status == "active"
    stored = (await client.get(f"/api/v1/connections/{cid}", headers=admin.headers)).json()
    assert orjson.loads(dumps(to_wire(conn))) == stored


async def test_member_cannot_verify_a_private_connection_of_another_user(
    client, admin, make_caller
) -> None:
    cid = await make(client, admin, pg())  # private by default
    member = await make_caller(Role.member, workspace=admin.workspace_slug)
    resp = await client.post(f"/api/v1/connections/{cid}/verify", headers=member.headers)
    assert resp.status_code == 404
