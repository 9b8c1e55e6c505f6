"""Tokens, workspace selection, roles and visibility."""

from __future__ import annotations

import uuid

import httpx
import pytest

from connhub.workspaces.principal import Role

BODY = {
    "name": "Files",
    "provider": "postgres",
    "config": {"host": "h.example.com", "database": "d", "username": "u"},
    "credentials": {"password": "pw-123456"},
}


async def test_no_token_401(client: httpx.AsyncClient) -> None:
    resp = await client.get("/api/v1/connections")
    assert resp.status_code == 401
    assert resp.json()["code"] == "unauthorized"


@pytest.mark.parametrize(
    "header",
    [
        {"Authorization": "Bearer chub_not-a-real-token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"X-API-Key": "nope"},
    ],
)
async def test_bad_token_401(client, header) -> None:
    assert (await client.get("/api/v1/connections", headers=header)).status_code == 401


async def test_token_schemes_accepted(client, admin) -> None:
    for headers in (
        {"Authorization": f"Bearer {admin.token}"},
        {"Authorization": f"Token {admin.token}"},
        {"X-API-Key": admin.token},
    ):
        assert (await client.get("/api/v1/connections", headers=headers)).status_code == 200
    client.cookies.set("vai_token", admin.token)
    try:
        assert (await client.get("/api/v1/connections")).status_code == 200
    finally:
        client.cookies.clear()


async def test_other_workspace_objects_are_404(client, make_caller) -> None:
    alice = await make_caller(Role.admin)
    mallory = await make_caller(Role.admin)
    resp = await client.post(
        "/api/v1/connections", json={**BODY, "visibility": "global"}, headers=alice.headers
    )
    conn_id = resp.json()["id"]
    for method, path in [
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/disable"),
        ("GET", "/edit-settings"),
        ("POST", "/set-default"),
    ]:
        resp = await client.request(
            method,
            f"/api/v1/connections/{conn_id}{path}",
            headers=mallory.headers,
            json={} if method == "PATCH" else None,
        )
        assert resp.status_code == 404, (method, path)
    slug = await client.get("/api/v1/connections/slug/files", headers=mallory.headers)
    assert slug.status_code == 404
    listing = await client.get("/api/v1/connections", headers=mallory.headers)
    assert listing.json()["connections"] == []


async def test_workspace_header_selects_and_foreign_header_is_404(client, make_caller) -> None:
    alice = await make_caller(Role.admin)
    other = await make_caller(Role.admin)
    # alice joins a second workspace: now the header is needed
    second = await make_caller(
        Role.viewer, workspace=other.workspace_slug, email=f"{alice.user_id}@example.com"
    )
    del second
    both = await make_caller(Role.member, workspace=alice.workspace_slug, email="two@example.com")
    await make_caller(Role.admin, workspace=other.workspace_slug, email="two@example.com")
    resp = await client.get("/api/v1/connections", headers=both.headers)
    assert resp.status_code == 200  # falls back to the token's own workspace
    resp = await client.post(
        "/api/v1/connections",
        json=BODY,
        headers={**both.headers, "X-Workspace-ID": str(other.workspace_id)},
    )
    assert resp.status_code == 201  # admin there
    stranger = await make_caller(Role.admin)
    resp = await client.get(
        "/api/v1/connections",
        headers={**both.headers, "X-Workspace-ID": str(stranger.workspace_id)},
    )
    assert resp.status_code == 404
    resp = await client.get(
        "/api/v1/connections", headers={**both.headers, "X-Workspace-ID": other.workspace_slug}
    )
    assert resp.status_code == 200 and resp.json()["total"] == 1


async def test_private_visible_to_creator_and_admins_only(client, make_caller) -> None:
    admin = await make_caller(Role.admin)
    m1 = await make_caller(Role.member, workspace=admin.workspace_slug)
    m2 = await make_caller(Role.member, workspace=admin.workspace_slug)
    private = (await client.post("/api/v1/connections", json=BODY, headers=m1.headers)).json()
    public = (
        await client.post(
            "/api/v1/connections", json={**BODY, "visibility": "global"}, headers=m1.headers
        )
    ).json()
    seen_by_m2 = {
        c["id"]
        for c in (await client.get("/api/v1/connections", headers=m2.headers)).json()["connections"]
    }
    assert seen_by_m2 == {public["id"]}
    assert (
        await client.get(f"/api/v1/connections/{private['id']}", headers=m2.headers)
    ).status_code == 404
    seen_by_admin = (await client.get("/api/v1/connections", headers=admin.headers)).json()
    assert seen_by_admin["total"] == 2
    # admin manages others' private connections
    resp = await client.patch(
        f"/api/v1/connections/{private['id']}", json={"name": "by admin"}, headers=admin.headers
    )
    assert resp.status_code == 200 and resp.json()["updatedBy"] == str(admin.user_id)
    # members edit global connections
    resp = await client.patch(
        f"/api/v1/connections/{public['id']}", json={"name": "by m2"}, headers=m2.headers
    )
    assert resp.status_code == 200


async def test_member_can_create_viewer_reads(client, make_caller) -> None:
    admin = await make_caller(Role.admin)
    member = await make_caller(Role.member, workspace=admin.workspace_slug)
    viewer = await make_caller(Role.viewer, workspace=admin.workspace_slug)
    resp = await client.post(
        "/api/v1/connections", json={**BODY, "visibility": "global"}, headers=member.headers
    )
    assert resp.status_code == 201
    listing = await client.get("/api/v1/connections", headers=viewer.headers)
    assert listing.json()["total"] == 1


# Every write on one connection (and its dependents), with the body it takes.
WRITES = [
    ("PATCH", "", {"name": "renamed"}),
    ("DELETE", "", None),
    ("POST", "/verify", None),
    ("POST", "/disable", None),
    ("POST", "/reactivate", None),
    ("POST", "/set-default", None),
    ("PUT", "/dependents/model/m1", None),
    ("DELETE", "/dependents/model/m1", None),
]


async def test_viewer_writes_are_404_unless_visible_then_403(client, make_caller) -> None:
    """Visibility before role: a connection the viewer cannot see is a 404 exactly as a
    member gets it (nothing revealed); one they can see is a 403 (role too low)."""
    admin = await make_caller(Role.admin)
    creator = await make_caller(Role.member, workspace=admin.workspace_slug)
    member = await make_caller(Role.member, workspace=admin.workspace_slug)
    viewer = await make_caller(Role.viewer, workspace=admin.workspace_slug)
    stranger = await make_caller(Role.admin)

    async def make(caller, **extra: str) -> str:
        resp = await client.post(
            "/api/v1/connections", json={**BODY, **extra}, headers=caller.headers
        )
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])

    foreign = await make(stranger, visibility="global")
    private = await make(creator)
    shared = await make(admin, visibility="global")
    for cid in (private, shared):
        await client.put(f"/api/v1/connections/{cid}/dependents/model/m1", headers=admin.headers)
    unseen = {
        "another workspace's": foreign,
        "another user's private": private,
        "unknown": str(uuid.uuid4()),
    }
    for method, path, payload in WRITES:
        for case, cid in unseen.items():
            url = f"/api/v1/connections/{cid}{path}"
            resp = await client.request(method, url, headers=viewer.headers, json=payload)
            assert resp.status_code == 404, (method, path, case, resp.text)
            as_member = await client.request(method, url, headers=member.headers, json=payload)
            assert as_member.status_code == 404, (method, path, case)
            assert resp.json() == as_member.json(), (method, path, case)
        url = f"/api/v1/connections/{shared}{path}"
        resp = await client.request(method, url, headers=viewer.headers, json=payload)
        assert resp.status_code == 403, (method, path, resp.text)
        assert resp.json()["detail"] == "This action needs the member role"
    # Reads stay reads: edit-settings needs no role, but the same visibility.
    for cid in unseen.values():
        resp = await client.get(f"/api/v1/connections/{cid}/edit-settings", headers=viewer.headers)
        assert resp.status_code == 404
    resp = await client.get(f"/api/v1/connections/{shared}/edit-settings", headers=viewer.headers)
    assert resp.status_code == 200
    # Nothing the viewer sent changed anything.
    for caller, cid in ((stranger, foreign), (creator, private), (admin, shared)):
        got = (await client.get(f"/api/v1/connections/{cid}", headers=caller.headers)).json()
        assert got["name"] == BODY["name"] and got["status"] == "needs_verification"
    for cid in (private, shared):
        deps = await client.get(f"/api/v1/connections/{cid}/dependents", headers=admin.headers)
        assert [d["ref"] for d in deps.json()["dependents"]] == ["m1"]


async def test_viewer_create_is_still_403(client, make_caller) -> None:
    admin = await make_caller(Role.admin)
    viewer = await make_caller(Role.viewer, workspace=admin.workspace_slug)
    resp = await client.post("/api/v1/connections", json=BODY, headers=viewer.headers)
    assert resp.status_code == 403
    assert resp.json()["detail"] == "This action needs the member role"
