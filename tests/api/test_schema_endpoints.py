"""Schema endpoints (API.md section 3) against the machine's real PostgreSQL and MariaDB."""

from __future__ import annotations

import base64
import hashlib

import pytest

from connhub.workspaces.principal import Role
from query.api_helpers import BASE, activated, run_sql, sample_rows
from query.fixtures import (  # noqa: F401 (fixtures)
    BIG_ROWS,
    maria_customer,
    maria_victim_rows,
    pg_customer,
    pg_victim_rows,
)

# --- PostgreSQL ---------------------------------------------------------------------------------


async def test_pg_tables_hide_system_schemas(client, admin, pg_customer) -> None:
    cid = await activated(client, admin, pg_customer.body())
    resp = await client.get(f"{BASE}/{cid}/schema/tables", headers=admin.headers)
    assert resp.status_code == 200, resp.text
    tables = resp.json()["tables"]
    by_name = {(t["schema"], t["table"]): t for t in tables}
    assert by_name[("shop", "orders")] == {
        "schema": "shop",
        "table": "orders",
        "normalizedName": "shop_orders",
        "spec": "shop.orders",
    }
    assert by_name[("public", "big")]["normalizedName"] == "public_big"
    weird = by_name[("shop", "Weird Table")]
    assert weird["spec"] == 'shop."Weird Table"' and weird["normalizedName"] == "shop_weird_table"
    assert {("shop", "big_orders"), ("shop", "order_counts"), ("shop", "no_columns")} <= set(
        by_name
    )
    assert not {t["schema"] for t in tables} & {"pg_catalog", "information_schema"}
    with_system = await client.get(
        f"{BASE}/{cid}/schema/tables?include_system=true", headers=admin.headers
    )
    schemas = {t["schema"] for t in with_system.json()["tables"]}
    assert {"pg_catalog", "information_schema"} <= schemas


async def test_pg_columns_types_and_composite_key(client, admin, pg_customer) -> None:
    cid = await activated(client, admin, pg_customer.body())
    url = f"{BASE}/{cid}/schema/columns"
    resp = await client.get(
        url, params={"schema": "shop", "table": "orders"}, headers=admin.headers
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["schema"], body["table"]) == ("shop", "orders")
    cols = {c["name"]: c for c in body["columns"]}
    assert cols["id"] == {
        "name": "id",
        "normalizedName": "id",
        "dataType": "bigint",
        "nullable": False,
        "primaryKey": True,
    }
    assert cols["total"]["dataType"] == "numeric(12,2)" and cols["total"]["nullable"]
    assert cols["tags"]["dataType"] == "text[]"
    assert cols["feel"]["dataType"] == "shop.mood"
    assert cols["created"]["dataType"] == "timestamp with time zone"
    assert [c["name"] for c in body["columns"]][:3] == ["id", "region", "total"]
    items = (
        await client.get(
            url, params={"schema": "shop", "table": "order_items"}, headers=admin.headers
        )
    ).json()["columns"]
    assert [c["name"] for c in items if c["primaryKey"]] == ["order_id", "line_no"]
    weird = (
        await client.get(
            url, params={"schema": "shop", "table": "Weird Table"}, headers=admin.headers
        )
    ).json()["columns"]
    assert [(c["name"], c["normalizedName"], c["primaryKey"]) for c in weird] == [
        ("Order ID", "order_id", True),
        ("select", "select", False),
    ]
    empty = await client.get(
        url, params={"schema": "shop", "table": "no_columns"}, headers=admin.headers
    )
    assert empty.status_code == 200 and empty.json()["columns"] == []
    missing = await client.get(
        url, params={"schema": "shop", "table": "nope"}, headers=admin.headers
    )
    assert missing.status_code == 404
    for params in ({"schema": "shop"}, {"table": "orders"}, {}):
        assert (await client.get(url, params=params, headers=admin.headers)).status_code == 422


async def test_pg_sample_values_are_json_safe(client, admin, pg_customer) -> None:
    cid = await activated(client, admin, pg_customer.body())
    resp = await sample_rows(client, admin, cid, "shop", "orders")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["maxRows"] == 100 and body["rowCount"] == 2 and body["truncated"] is False
    assert [c["name"] for c in body["columns"]][:2] == ["id", "region"]
    first, second = body["rows"]
    assert first["total"] == 9.5 and first["big_amount"] == "12345678901234567890.12"
    assert first["meta"] == {"a": 1, "b": [1, 2]} and first["tags"] == ["red", "blue"]
    assert first["uid"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert base64.b64decode(first["raw"]) == b"\x00\xff\x10"
    assert first["created"] == "2024-05-01T10:30:00Z"
    assert first["local_ts"] == "2024-05-01T12:30:00" and first["day"] == "2024-05-01"
    assert first["span"] == "P1DT2H3M4.5S" and first["feel"] == "happy"
    assert second["ratio"] == "NaN" and second["total"] is None


async def test_pg_sample_bounds_quoting_and_unknown_tables(client, admin, pg_customer) -> None:
    cid = await activated(client, admin, pg_customer.body())
    url = f"{BASE}/{cid}/schema/sample"
    big = (await sample_rows(client, admin, cid, "public", "big", maxRows=10)).json()
    assert big["rowCount"] == 10 and big["truncated"] is True and big["maxRows"] == 10
    weird = (await sample_rows(client, admin, cid, "shop", "Weird Table")).json()
    assert weird["rows"] == [{"Order ID": 7, "select": "x"}]
    hostile = 'orders"; DROP TABLE shop.victim; --'
    resp = await sample_rows(client, admin, cid, "shop", hostile)
    assert resp.status_code == 404
    assert (await sample_rows(client, admin, cid, "shop", "orders", maxRows=0)).status_code == 422
    assert (
        await client.post(url, json={"table": "orders"}, headers=admin.headers)
    ).status_code == 422


async def test_pg_query_rows_hash_and_table_refs(client, admin, pg_customer) -> None:
    cid = await activated(client, admin, pg_customer.body())
    resp = await run_sql(
        client,
        admin,
        cid,
        "SELECT o.id, o.total, i.sku FROM shop.orders o "
        "JOIN shop.order_items i ON i.order_id = o.id ORDER BY i.line_no",
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["columns"] == ["id", "total", "sku"]
    assert body["rows"] == [
        {"id": 1, "total": 9.5, "sku": "A-1"},
        {"id": 1, "total": 9.5, "sku": "B-7"},
    ]
    assert body["rowCount"] == 2 and body["truncated"] is False and body["maxRows"] == 1000
    assert body["tableRefs"] == [
        {"schema": "shop", "table": "orders"},
        {"schema": "shop", "table": "order_items"},
    ]
    again = await run_sql(
        client,
        admin,
        cid,
        "select o.id, o.total, i.sku\n  from SHOP.ORDERS o -- same query\n"
        "join shop.order_items i on i.order_id = o.id order by i.line_no;",
    )
    assert again.json()["queryHash"] == body["queryHash"]
    assert len(body["queryHash"]) == 64 and body["queryHash"] != hashlib.sha256(b"").hexdigest()
    dupes = (await run_sql(client, admin, cid, "SELECT 1 AS a, 2 AS a")).json()
    assert dupes["columns"] == ["a", "a_2"] and dupes["rows"] == [{"a": 1, "a_2": 2}]


async def test_pg_query_caps_rows(client, admin, pg_customer) -> None:
    cid = await activated(client, admin, pg_customer.body())
    body = (await run_sql(client, admin, cid, "SELECT * FROM big ORDER BY id")).json()
    assert body["rowCount"] == 1000 and body["truncated"] is True and body["maxRows"] == 1000
    assert body["rows"][-1]["id"] == 1000
    small = (await run_sql(client, admin, cid, "SELECT id FROM big ORDER BY id", maxRows=5)).json()
    assert [r["id"] for r in small["rows"]] == [1, 2, 3, 4, 5] and small["truncated"] is True
    exact = (
        await run_sql(client, admin, cid, "SELECT id FROM big WHERE id <= 5", maxRows=5)
    ).json()
    assert exact["rowCount"] == 5 and exact["truncated"] is False
    for bad in ({"maxRows": 0}, {"maxRows": 1001}):
        assert (await run_sql(client, admin, cid, "SELECT 1", **bad)).status_code == 422
    assert (await run_sql(client, admin, cid, "")).status_code == 422
    assert (await run_sql(client, admin, cid, "SELECT 1 " + " " * 10_000)).status_code == 422


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        ("DELETE FROM shop.victim", "statement_not_read_only"),
        (
            "WITH d AS (DELETE FROM shop.victim RETURNING *) SELECT * FROM d",
            "statement_not_read_only",
        ),
        ("SELECT 1; DROP TABLE shop.victim", "multiple_statements"),
        ("SELECT pg_read_file('/etc/passwd')", "denied_function"),
        ("SELECT FROM WHERE", "parse_error"),
    ],
)
async def test_pg_query_refusals(client, admin, pg_customer, sql, code) -> None:
    cid = await activated(client, admin, pg_customer.body())
    resp = await run_sql(client, admin, cid, sql)
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == code and resp.json()["detail"]
    assert pg_victim_rows(pg_customer) == 0


async def test_pg_database_errors_and_writing_functions(client, admin, pg_customer) -> None:
    cid = await activated(client, admin, pg_customer.body())
    missing = await run_sql(client, admin, cid, "SELECT nope FROM shop.orders")
    assert missing.status_code == 400 and missing.json()["code"] == "query_failed"
    assert "nope" in missing.json()["detail"]
    # The parser cannot know shop.writer() inserts: the read-only transaction stops it.
    writer = await run_sql(client, admin, cid, "SELECT shop.writer()")
    assert writer.status_code == 400 and writer.json()["code"] == "statement_not_read_only"
    assert "read-only transaction" in writer.json()["detail"]
    assert pg_victim_rows(pg_customer) == 0
    shown = await run_sql(client, admin, cid, "SHOW default_transaction_read_only")
    assert shown.json()["rows"] == [{"default_transaction_read_only": "on"}]
    plan = await run_sql(client, admin, cid, "EXPLAIN SELECT * FROM shop.orders")
    assert plan.status_code == 200 and plan.json()["rowCount"] >= 1


async def test_pg_limited_role_sees_only_its_tables(client, admin, pg_customer) -> None:
    cid = await activated(client, admin, pg_customer.body(limited=True))
    tables = (await client.get(f"{BASE}/{cid}/schema/tables", headers=admin.headers)).json()
    assert [(t["schema"], t["table"]) for t in tables["tables"]] == [("shop", "orders")]
    denied = await run_sql(client, admin, cid, "SELECT * FROM shop.order_items")
    assert denied.status_code == 400 and denied.json()["code"] == "permission_denied"


async def test_last_used_at_is_recorded(client, admin, pg_customer) -> None:
    cid = await activated(client, admin, pg_customer.body())
    before = (await client.get(f"{BASE}/{cid}", headers=admin.headers)).json()["lastUsedAt"]
    assert before is None
    assert (await run_sql(client, admin, cid, "SELECT 1")).status_code == 200
    after = (await client.get(f"{BASE}/{cid}", headers=admin.headers)).json()["lastUsedAt"]
    assert after is not None


# --- state, provider, roles and tenancy ------------------------------------------------------


async def test_connection_must_be_active(client, admin, pg_customer) -> None:
    resp = await client.post(BASE, json=pg_customer.body(), headers=admin.headers)
    cid = resp.json()["id"]
    for method, path, body in [
        ("GET", "/schema/tables", None),
        ("POST", "/schema/query", {"sql": "SELECT 1"}),
    ]:
        got = await client.request(method, f"{BASE}/{cid}{path}", json=body, headers=admin.headers)
        assert got.status_code == 400 and got.json()["code"] == "invalid_state", got.text
    await client.post(f"{BASE}/{cid}/verify", headers=admin.headers)
    await client.post(f"{BASE}/{cid}/disable", headers=admin.headers)
    got = await run_sql(client, admin, cid, "SELECT 1")
    assert got.status_code == 400 and got.json()["code"] == "invalid_state"


async def test_non_sql_provider_is_400(client, admin) -> None:
    body = {
        "name": "api",
        "provider": "http_api",
        "config": {"baseUrl": "https://api.example.com"},
        "credentials": {"apiKey": "k3y-value-123"},
    }
    created = await client.post(BASE, json=body, headers=admin.headers)
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    got = await client.get(f"{BASE}/{cid}/schema/tables", headers=admin.headers)
    assert got.status_code == 400 and got.json()["code"] == "unsupported_provider"


async def test_viewer_may_browse_and_query_stranger_gets_404(
    client, make_caller, pg_customer
) -> None:
    admin = await make_caller(Role.admin)
    viewer = await make_caller(Role.viewer, workspace=admin.workspace_slug)
    stranger = await make_caller(Role.admin)
    cid = await activated(client, admin, {**pg_customer.body(), "visibility": "global"})
    assert (await run_sql(client, viewer, cid, "SELECT 1 AS one")).json()["rows"] == [{"one": 1}]
    tables = await client.get(f"{BASE}/{cid}/schema/tables", headers=viewer.headers)
    assert tables.status_code == 200
    refused = await run_sql(client, viewer, cid, "DELETE FROM shop.victim")
    assert refused.status_code == 400
    for resp in (
        await run_sql(client, stranger, cid, "SELECT 1"),
        await client.get(f"{BASE}/{cid}/schema/tables", headers=stranger.headers),
    ):
        assert resp.status_code == 404
    private = await activated(client, admin, pg_customer.body(name="private one"))
    assert (await run_sql(client, viewer, private, "SELECT 1")).status_code == 404


# --- MariaDB ------------------------------------------------------------------------------------


async def test_maria_browse_sample_and_query(client, admin, maria_customer) -> None:
    db = maria_customer.database
    cid = await activated(client, admin, maria_customer.body())
    tables = (await client.get(f"{BASE}/{cid}/schema/tables", headers=admin.headers)).json()
    names = {t["table"]: t for t in tables["tables"] if t["schema"] == db}
    assert {"orders", "order_items", "big_orders", "Weird Table", "unique_only"} <= set(names)
    assert names["Weird Table"]["spec"] == f"{db}.`Weird Table`"
    assert not {t["schema"] for t in tables["tables"]} & {"mysql", "information_schema", "sys"}
    url = f"{BASE}/{cid}/schema/columns"
    items = (
        await client.get(url, params={"schema": db, "table": "order_items"}, headers=admin.headers)
    ).json()["columns"]
    assert [c["name"] for c in items if c["primaryKey"]] == ["order_id", "line_no"]
    unique = (
        await client.get(url, params={"schema": db, "table": "unique_only"}, headers=admin.headers)
    ).json()["columns"]
    assert not any(c["primaryKey"] for c in unique)
    assert (
        await client.get(url, params={"schema": db, "table": "nope"}, headers=admin.headers)
    ).status_code == 404
    sample = (await sample_rows(client, admin, cid, db, "orders")).json()
    first = sample["rows"][0]
    assert first["total"] == 9.5 and first["big_amount"] == "12345678901234567890.12"
    assert base64.b64decode(first["raw"]) == b"\x00\xff\x10"
    assert first["created"] == "2024-05-01T12:30:00.250000" and first["span"] == "P1DT2H3M4S"
    weird = (await sample_rows(client, admin, cid, db, "Weird Table")).json()
    assert weird["rows"] == [{"Order ID": 7, "select": "x"}]
    body = (await run_sql(client, admin, cid, "SELECT * FROM big ORDER BY id")).json()
    assert body["rowCount"] == 1000 and body["truncated"] is True
    assert body["tableRefs"] == [{"schema": None, "table": "big"}]
    assert BIG_ROWS > 1000


async def test_maria_large_limit_is_cut_and_session_replaced(client, admin, maria_customer) -> None:
    cid = await activated(client, admin, maria_customer.body())
    cut = (
        await run_sql(client, admin, cid, "SELECT id FROM big ORDER BY id LIMIT 4000", maxRows=3)
    ).json()
    assert [r["id"] for r in cut["rows"]] == [1, 2, 3] and cut["truncated"] is True
    after = await run_sql(client, admin, cid, "SELECT COUNT(*) AS n FROM big")
    assert after.status_code == 200 and after.json()["rows"] == [{"n": BIG_ROWS}]


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        ("INSERT INTO victim VALUES (1)", "statement_not_read_only"),
        ("SELECT * FROM victim INTO OUTFILE '/tmp/connhub-x'", "parse_error"),
        ("SELECT LOAD_FILE('/etc/passwd')", "denied_function"),
        ("SELECT 1 /*!, (SELECT LOAD_FILE('/etc/passwd')) */", "unsupported_syntax"),
        ("SELECT 1; DELETE FROM victim", "multiple_statements"),
    ],
)
async def test_maria_query_refusals(client, admin, maria_customer, sql, code) -> None:
    cid = await activated(client, admin, maria_customer.body())
    resp = await run_sql(client, admin, cid, sql)
    assert resp.status_code == 400 and resp.json()["code"] == code, resp.text
    assert maria_victim_rows(maria_customer) == 0


async def test_maria_limited_user(client, admin, maria_customer) -> None:
    cid = await activated(client, admin, maria_customer.body(limited=True))
    tables = (await client.get(f"{BASE}/{cid}/schema/tables", headers=admin.headers)).json()
    assert [t["table"] for t in tables["tables"]] == ["orders"]
    denied = await run_sql(client, admin, cid, "SELECT * FROM order_items")
    assert denied.status_code == 400 and denied.json()["code"] == "permission_denied"
    assert maria_customer.limited_password not in denied.text
