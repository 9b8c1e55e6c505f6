"""Who may do what: 401 without a (valid) token, 404 outside the organisation, 403 for
non-admin writes; every accepted token scheme works."""

from __future__ import annotations

from wh_support import base, body, item, probe_url

from connhub.workspaces.principal import Role

MISSING = "00000000-0000-0000-0000-000000000000"


def every_route(org: str, cid: str) -> list[tuple[str, str, dict | None]]:
    return [
        ("GET", base(org), None),
        ("POST", base(org), body()),
        ("GET", item(org, cid), None),
        ("PUT", item(org, cid), body()),
        ("PATCH", item(org, cid), {"warehouse": "W"}),
        ("DELETE", item(org, cid), None),
        ("POST", probe_url(org, cid), {}),
    ]


async def test_no_or_bad_credentials_are_401(wh, admin) -> None:
    for method, url, payload in every_route(admin.workspace_slug, MISSING):
        resp = await wh.request(method, url, json=payload)
        assert resp.status_code == 401, (method, url)
        assert resp.json() == {"detail": "Authentication credentials were not provided."}
        resp = await wh.request(
            method, url, json=payload, headers={"Authorization": "Token not-a-real-token"}
        )
        assert resp.status_code == 401 and resp.json() == {"detail": "Invalid token."}


async def test_token_api_key_and_bearer_schemes(wh, admin) -> None:
    for scheme in ("Token", "Api-Key", "Bearer"):
        resp = await wh.get(
            base(admin.workspace_slug), headers={"Authorization": f"{scheme} {admin.token}"}
        )
        assert resp.status_code == 200, scheme


async def test_other_or_unknown_organisation_is_404(wh, make_caller) -> None:
    owner = await make_caller(Role.admin)
    stranger = await make_caller(Role.admin)
    created = await wh.post(base(owner.workspace_slug), json=body(), headers=owner.headers)
    cid = created.json()["id"]
    for org in (owner.workspace_slug, str(owner.workspace_id), "no-such-org", MISSING):
        for method, url, payload in every_route(org, cid):
            resp = await wh.request(method, url, json=payload, headers=stranger.headers)
            assert resp.status_code == 404, (method, url, resp.text)
            assert resp.json() == {"detail": "Not found."}
    # nor can the stranger reach it through their own organisation's path
    own = item(stranger.workspace_slug, cid)
    assert (await wh.get(own, headers=stranger.headers)).status_code == 404
    assert (await wh.delete(own, headers=stranger.headers)).status_code == 404
    still = await wh.get(item(owner.workspace_slug, cid), headers=owner.headers)
    assert still.status_code == 200


async def test_viewers_and_members_read_but_do_not_write(wh, make_caller) -> None:
    owner = await make_caller(Role.admin)
    created = (await wh.post(base(owner.workspace_slug), json=body(), headers=owner.headers)).json()
    for role in (Role.viewer, Role.member):
        caller = await make_caller(role, workspace=owner.workspace_slug)
        listing = await wh.get(base(owner.workspace_slug), headers=caller.headers)
        assert listing.status_code == 200 and listing.json() == [created]
        detail = await wh.get(item(owner.workspace_slug, created["id"]), headers=caller.headers)
        assert detail.json() == created
        for method, url, payload in every_route(owner.workspace_slug, created["id"]):
            if method == "GET":
                continue
            resp = await wh.request(method, url, json=payload, headers=caller.headers)
            assert resp.status_code == 403, (role, method, url)
            assert resp.json() == {"detail": "You do not have permission to perform this action."}
        # permissions come before parsing: a viewer's bad body is still a 403
        bad = await wh.post(base(owner.workspace_slug), json={"bogus": 1}, headers=caller.headers)
        assert bad.status_code == 403


async def test_no_fastapi_shapes_leak_into_this_face(wh, admin) -> None:
    resp = await wh.get(f"{base(admin.workspace_slug)}{MISSING}/nowhere/", headers=admin.headers)
    assert resp.status_code == 404 and resp.json() == {"detail": "Not found."}
    resp = await wh.delete(base(admin.workspace_slug), headers=admin.headers)
    assert resp.status_code == 405 and set(resp.json()) == {"detail"}
