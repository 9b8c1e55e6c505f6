"""Listing: search, filters, sorting, offset and cursor paging, the users map."""

from __future__ import annotations

import httpx

from connhub.workspaces.principal import Role


async def seed(client: httpx.AsyncClient, caller, names: list[str], provider: str = "postgres"):  # type: ignore[no-untyped-def]
    made = []
    for name in names:
        if provider == "postgres":
            body = {
                "name": name,
                "provider": "postgres",
                "config": {"host": "h.example.com", "database": "d", "username": "u"},
                "credentials": {"password": "pw-123456"},
            }
        else:
            body = {
                "name": name,
                "provider": "mysql",
                "config": {"host": "h.example.com", "database": "d", "username": "u"},
                "credentials": {"password": "pw-123456"},
            }
        resp = await client.post("/api/v1/connections", json=body, headers=caller.headers)
        assert resp.status_code == 201, resp.text
        made.append(resp.json())
    return made


async def test_offset_mode_shape_and_paging(client, admin) -> None:
    await seed(client, admin, [f"conn {i:02d}" for i in range(7)])
    resp = await client.get(
        "/api/v1/connections", params={"limit": 3, "offset": 0}, headers=admin.headers
    )
    data = resp.json()
    assert set(data) == {
        "connections",
        "hasNext",
        "limit",
        "offset",
        "total",
        "users",
        "nextCursor",
    }
    assert data["total"] == 7 and data["hasNext"] is True and data["limit"] == 3
    assert [c["name"] for c in data["connections"]] == ["conn 00", "conn 01", "conn 02"]
    last = await client.get(
        "/api/v1/connections", params={"limit": 3, "offset": 6}, headers=admin.headers
    )
    assert last.json()["hasNext"] is False and last.json()["nextCursor"] is None
    assert [c["name"] for c in last.json()["connections"]] == ["conn 06"]
    assert str(admin.user_id) in data["users"]
    assert set(data["users"][str(admin.user_id)]) == {
        "id",
        "firstName",
        "lastName",
        "profilePictureUrl",
    }


async def test_cursor_mode_walks_everything_stably_under_inserts(client, admin) -> None:
    await seed(client, admin, [f"c{i:02d}" for i in range(10)])
    seen: list[str] = []
    cursor = ""
    inserted = False
    while True:
        resp = await client.get(
            "/api/v1/connections", params={"limit": 4, "cursor": cursor}, headers=admin.headers
        )
        data = resp.json()
        assert data["total"] is None
        seen += [c["name"] for c in data["connections"]]
        if not inserted:  # rows inserted before the cursor position do not shift the walk
            await seed(client, admin, ["a-first", "b-first"])
            inserted = True
        if not data["nextCursor"]:
            assert data["hasNext"] is False
            break
        cursor = data["nextCursor"]
    assert seen == [f"c{i:02d}" for i in range(10)]


async def test_cursor_desc_and_sort_by_fields(client, admin) -> None:
    await seed(client, admin, ["b", "a", "c"])
    await seed(client, admin, ["m"], provider="mysql")
    for sort_by in ["name", "created_at", "updated_at", "last_verified_at", "status", "provider"]:
        names: list[str] = []
        cursor = ""
        while cursor is not None:
            data = (
                await client.get(
                    "/api/v1/connections",
                    headers=admin.headers,
                    params={"limit": 1, "cursor": cursor, "sort_by": sort_by, "order": "desc"},
                )
            ).json()
            names += [c["name"] for c in data["connections"]]
            cursor = data["nextCursor"]
        assert sorted(names) == ["a", "b", "c", "m"], sort_by
    desc = (
        await client.get("/api/v1/connections", params={"order": "desc"}, headers=admin.headers)
    ).json()
    assert [c["name"] for c in desc["connections"]] == ["m", "c", "b", "a"]
    by_provider = (
        await client.get(
            "/api/v1/connections", params={"sort_by": "provider"}, headers=admin.headers
        )
    ).json()
    assert by_provider["connections"][0]["provider"] == "mysql"


async def test_cursor_for_other_sort_is_400(client, admin) -> None:
    await seed(client, admin, ["a", "b"])
    data = (
        await client.get(
            "/api/v1/connections", params={"limit": 1, "cursor": ""}, headers=admin.headers
        )
    ).json()
    resp = await client.get(
        "/api/v1/connections",
        headers=admin.headers,
        params={"limit": 1, "cursor": data["nextCursor"], "order": "desc"},
    )
    assert resp.status_code == 400 and resp.json()["code"] == "invalid_cursor"
    resp = await client.get(
        "/api/v1/connections", params={"cursor": "%%%garbage"}, headers=admin.headers
    )
    assert resp.status_code == 400


async def test_search_and_filters(client, admin) -> None:
    await seed(client, admin, ["Sales DB", "Marketing DB", "100%_done"])
    await seed(client, admin, ["Sales MySQL"], provider="mysql")
    q = (
        await client.get("/api/v1/connections", params={"q": "sALes"}, headers=admin.headers)
    ).json()
    assert {c["name"] for c in q["connections"]} == {"Sales DB", "Sales MySQL"}
    like = (
        await client.get("/api/v1/connections", params={"q": "%_"}, headers=admin.headers)
    ).json()
    assert [c["name"] for c in like["connections"]] == ["100%_done"]
    slug = (
        await client.get("/api/v1/connections", params={"q": "marketing-db"}, headers=admin.headers)
    ).json()
    assert slug["total"] == 1
    prov = (await client.get("/api/v1/connections?provider=mysql", headers=admin.headers)).json()
    assert [c["name"] for c in prov["connections"]] == ["Sales MySQL"]
    both = (
        await client.get(
            "/api/v1/connections?provider[]=mysql&provider[]=postgres", headers=admin.headers
        )
    ).json()
    assert both["total"] == 4
    status = (await client.get("/api/v1/connections?status=active", headers=admin.headers)).json()
    assert status["total"] == 0
    status = (
        await client.get("/api/v1/connections?status=needs_verification", headers=admin.headers)
    ).json()
    assert status["total"] == 4


async def test_bad_list_params_are_422(client, admin) -> None:
    for params in (
        {"limit": 0},
        {"limit": 101},
        {"offset": -1},
        {"sort_by": "secret"},
        {"order": "sideways"},
        {"status": "weird"},
    ):
        resp = await client.get("/api/v1/connections", params=params, headers=admin.headers)
        assert resp.status_code == 422, params


async def test_bracket_aliases_are_validated_like_the_plain_params(client, admin) -> None:
    """``status[]``/``provider[]`` (the contract's array style) take the same values and the
    same maximum counts as ``status``/``provider``, and fail with the same 422 at their name."""

    async def detail(query: str) -> list[dict[str, object]]:
        resp = await client.get(f"/api/v1/connections?{query}", headers=admin.headers)
        assert resp.status_code == 422, query
        items: list[dict[str, object]] = resp.json()["detail"]
        assert all(set(item) == {"loc", "msg", "type"} for item in items), items
        return items

    plain = await detail("status=active&status=weird")
    assert plain[0]["loc"] == ["query", "status", 1] and plain[0]["type"] == "literal_error"
    assert await detail("status[]=active&status[]=weird") == [
        {**plain[0], "loc": ["query", "status[]", 1]}
    ]
    assert await detail("status[]=weird") == [{**plain[0], "loc": ["query", "status[]", 0]}]
    for name, most in (("status", 10), ("provider", 100)):
        value = "active" if name == "status" else "s3"
        too_many = [
            await detail("&".join([f"{key}={value}"] * (most + 1))) for key in (name, f"{name}[]")
        ]
        assert too_many[0] == [
            {
                "loc": ["query", name],
                "msg": f"List should have at most {most} items after validation, not {most + 1}",
                "type": "too_long",
            }
        ]
        assert too_many[1] == [{**too_many[0][0], "loc": ["query", f"{name}[]"]}]
    # At most that many each: both spellings together may carry twice as many.
    both = "&".join(["status=active"] * 10 + ["status[]=needs_verification"] * 10)
    assert (await client.get(f"/api/v1/connections?{both}", headers=admin.headers)).is_success


async def test_bracket_aliases_filter(client, admin) -> None:
    await seed(client, admin, ["a", "b"])
    await seed(client, admin, ["c"], provider="mysql")

    async def total(params: dict[str, object]) -> int:
        resp = await client.get("/api/v1/connections", params=params, headers=admin.headers)
        assert resp.status_code == 200, resp.text
        found: int = resp.json()["total"]
        return found

    assert await total({"status[]": "needs_verification"}) == 3
    assert await total({"status[]": ["active", "error"]}) == 0
    assert await total({"status": "active", "status[]": "needs_verification"}) == 3
    assert await total({"provider[]": "mysql", "status[]": "needs_verification"}) == 1
    assert await total({"provider": "mysql", "provider[]": "postgres"}) == 3


async def test_bracket_aliases_are_documented(client) -> None:
    spec = (await client.get("/openapi.json")).json()
    params = {p["name"]: p for p in spec["paths"]["/api/v1/connections/"]["get"]["parameters"]}
    assert params["status[]"]["in"] == "query"
    assert params["status[]"]["schema"] == {
        "type": "array",
        "items": {
            "type": "string",
            "enum": ["needs_verification", "active", "error", "expired", "disabled"],
        },
        "maxItems": 10,
    }
    assert params["provider[]"]["schema"] == {
        "type": "array",
        "items": {"type": "string"},
        "maxItems": 100,
    }


async def test_users_map_covers_updaters(client, make_caller) -> None:
    admin = await make_caller(Role.admin)
    member = await make_caller(Role.member, workspace=admin.workspace_slug)
    made = await seed(client, admin, ["x"])
    await client.patch(
        f"/api/v1/connections/{made[0]['id']}", json={"visibility": "global"}, headers=admin.headers
    )
    await client.patch(
        f"/api/v1/connections/{made[0]['id']}", json={"name": "y"}, headers=member.headers
    )
    data = (await client.get("/api/v1/connections", headers=admin.headers)).json()
    assert set(data["users"]) == {str(admin.user_id), str(member.user_id)}


async def test_list_items_equal_the_single_get(client, admin, runtime) -> None:
    """The page renders JSON columns verbatim; it must say exactly what GET says."""
    made = await seed(client, admin, ["one", "two"])
    cid = made[0]["id"]
    from connhub.models import Connection

    async with runtime.sessions() as session:  # a verified connection has details to show
        conn = await session.get(Connection, __import__("uuid").UUID(cid))
        conn.verification_details = {
            "checks": [{"name": "connectivity", "status": "passed"}],
            "identity": {"user": "ü"},
            "durationMs": 3,
        }
        await session.commit()
    listing = (await client.get("/api/v1/connections", headers=admin.headers)).json()
    for item in listing["connections"]:
        single = (
            await client.get(f"/api/v1/connections/{item['id']}", headers=admin.headers)
        ).json()
        assert item == single
    assert listing["connections"][0]["verificationDetails"]["identity"] == {"user": "ü"}


async def test_search_folds_case_beyond_ascii(client, admin) -> None:
    """SQLite's own lower() folds ASCII only; the search must match PostgreSQL's."""
    await seed(client, admin, ["Café Étoile", "ÜNÏCÖDÉ Warehouse", "Plain"])
    for q, expected in (
        ("étoile", {"Café Étoile"}),
        ("ÉTOILE", {"Café Étoile"}),
        ("ünïcödé", {"ÜNÏCÖDÉ Warehouse"}),
        ("plain", {"Plain"}),
    ):
        found = await client.get("/api/v1/connections", params={"q": q}, headers=admin.headers)
        assert {c["name"] for c in found.json()["connections"]} == expected, q
        assert found.json()["total"] == len(expected)
