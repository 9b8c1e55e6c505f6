"""Sources API access: token (401), X-Workspace-ID (400/403), membership (403), roles (403)."""

from __future__ import annotations

import uuid

import pytest
from sources_support import body, source_headers, sources_url

from connhub.workspaces.principal import Role

ROUTES = [
    ("GET", ""),
    ("POST", ""),
    ("POST", "/test"),
    ("GET", "/{sid}"),
    ("PUT", "/{sid}"),
    ("DELETE", "/{sid}"),
    ("POST", "/{sid}/test"),
]


def _path(template: str, sid: str) -> str:
    return template.replace("{sid}", sid)


async def test_missing_or_bad_token_is_401(client, admin) -> None:
    sid = str(uuid.uuid4())
    for method, template in ROUTES:
        url = sources_url(admin, _path(template, sid))
        ws = {"X-Workspace-ID": str(admin.workspace_id)}
        resp = await client.request(method, url, headers=ws, json=body())
        assert resp.status_code == 401, (method, template)
        assert resp.json() == {
            "error": "Authentication required: send Authorization: Bearer <token>"
        }
        resp = await client.request(
            method, url, json=body(), headers={**ws, "Authorization": "Bearer chub_nope"}
        )
        assert resp.status_code == 401
        assert resp.json() == {"error": "Invalid or revoked token"}


async def test_missing_workspace_header_is_400(client, admin) -> None:
    resp = await client.get(sources_url(admin), headers=admin.headers)
    assert resp.status_code == 400
    assert resp.json() == {"error": "X-Workspace-ID header is required"}


async def test_header_not_matching_path_is_403(client, admin, make_caller) -> None:
    # Even when the caller is a member of both workspaces.
    other = await make_caller(Role.admin, email="twice@example.com")
    both = await make_caller(Role.admin, workspace=admin.workspace_slug, email="twice@example.com")
    sid = str(uuid.uuid4())
    for method, template in ROUTES:
        resp = await client.request(
            method,
            sources_url(admin, _path(template, sid)),
            json=body(),
            headers={**both.headers, "X-Workspace-ID": str(other.workspace_id)},
        )
        assert resp.status_code == 403, (method, template)
        assert resp.json() == {"error": "X-Workspace-ID does not match the workspace in the path"}
    # The same caller, header matching the path: allowed.
    ok = await client.get(
        sources_url(admin),
        headers={**both.headers, "X-Workspace-ID": str(admin.workspace_id).upper()},
    )
    assert ok.status_code == 200


async def test_non_member_is_403_whether_or_not_the_workspace_exists(
    client, admin, make_caller
) -> None:
    stranger = await make_caller(Role.admin)
    for workspace in (str(admin.workspace_id), str(uuid.uuid4()), "not-a-uuid"):
        url = f"/api/v1/workspaces/{workspace}/sources"
        resp = await client.get(url, headers={**stranger.headers, "X-Workspace-ID": workspace})
        assert resp.status_code == 403, workspace
        assert resp.json() == {"error": "not a workspace member"}


async def test_other_workspace_sources_are_invisible(
    client, admin, make_caller, make_source
) -> None:
    source = await make_source(admin)
    stranger = await make_caller(Role.admin)
    resp = await client.get(
        sources_url(stranger, f"/{source['id']}"), headers=source_headers(stranger)
    )
    assert resp.status_code == 404
    listing = await client.get(sources_url(stranger), headers=source_headers(stranger))
    assert listing.json() == []


async def test_viewer_reads_member_writes(client, admin, make_caller, make_source) -> None:
    viewer = await make_caller(Role.viewer, workspace=admin.workspace_slug)
    member = await make_caller(Role.member, workspace=admin.workspace_slug)
    source = await make_source(admin)
    url = sources_url(viewer, f"/{source['id']}")
    assert (await client.get(sources_url(viewer), headers=source_headers(viewer))).json() == [
        source
    ]
    assert (await client.get(url, headers=source_headers(viewer))).status_code == 200
    for method, payload in (("PUT", {"name": "x"}), ("DELETE", None)):
        resp = await client.request(method, url, headers=source_headers(viewer), json=payload)
        assert resp.status_code == 403
        assert resp.json() == {"error": "This action needs the member role"}
    resp = await client.post(sources_url(viewer), headers=source_headers(viewer), json=body())
    assert resp.status_code == 403
    # A member sees and changes a source someone else created (sources are workspace-wide).
    resp = await client.put(
        sources_url(member, f"/{source['id']}"),
        headers=source_headers(member),
        json={"name": "By member"},
    )
    assert resp.status_code == 200 and resp.json()["created_by"] == str(admin.user_id)
    created = await client.post(sources_url(member), headers=source_headers(member), json=body())
    assert created.status_code == 201


@pytest.mark.parametrize("path", ["/nope/deeper", ""])
async def test_unknown_routes_use_the_error_shape(client, admin, path) -> None:
    resp = await client.patch(sources_url(admin, path), headers=source_headers(admin))
    assert resp.status_code in (404, 405)
    assert set(resp.json()) == {"error"}


async def test_body_too_large_is_413_in_face_shape(client, admin) -> None:
    big = body(username="u" * (1024 * 1024 + 10))
    resp = await client.post(sources_url(admin), json=big, headers=source_headers(admin))
    assert resp.status_code == 413
    assert set(resp.json()) == {"error"}


async def test_viewer_writes_on_unseen_sources_are_404(
    client, admin, make_caller, make_source
) -> None:
    """Visibility before role: another workspace's source, a shared connection that is no
    source, or an unknown id is a 404 for a viewer as for a member; a source of their own
    workspace is a 403 (see above)."""
    viewer = await make_caller(Role.viewer, workspace=admin.workspace_slug)
    member = await make_caller(Role.member, workspace=admin.workspace_slug)
    stranger = await make_caller(Role.admin)
    foreign = await make_source(stranger)
    shared = await client.post(
        "/api/v1/connections",
        json={
            "name": "Shared",
            "provider": "postgres",
            "config": {"host": "h.example.com", "database": "d", "username": "u"},
            "credentials": {"password": "pw-123456"},
            "visibility": "global",
        },
        headers=admin.headers,
    )
    assert shared.status_code == 201
    own = await make_source(admin)
    writes = [("PUT", "", {"name": "x"}), ("DELETE", "", None), ("POST", "/test", None)]
    for method, suffix, payload in writes:
        for sid in (foreign["id"], shared.json()["id"], str(uuid.uuid4())):
            url = sources_url(viewer, f"/{sid}{suffix}")
            resp = await client.request(method, url, headers=source_headers(viewer), json=payload)
            assert resp.status_code == 404, (method, suffix, sid, resp.text)
            as_member = await client.request(
                method, url, headers=source_headers(member), json=payload
            )
            assert as_member.status_code == 404 and resp.json() == as_member.json()
        url = sources_url(viewer, f"/{own['id']}{suffix}")
        resp = await client.request(method, url, headers=source_headers(viewer), json=payload)
        assert resp.status_code == 403, (method, suffix)
        assert resp.json() == {"error": "This action needs the member role"}
    after = await client.get(
        sources_url(stranger, f"/{foreign['id']}"), headers=source_headers(stranger)
    )
    assert after.json() == foreign
    # The 403s changed nothing either.
    kept = await client.get(sources_url(admin, f"/{own['id']}"), headers=source_headers(admin))
    assert kept.json() == own
