"""Schema browsing, samples and read-only SQL on a BigQuery connection, over the HTTP API.

The path is the product's: the schema endpoints, ``SchemaService``, the connection pool, the
BigQuery adapter and the real, unpatched google-cloud-bigquery DB-API, talking REST to the
loopback fake (tests/support/bigquery_fake.py), which evaluates the catalog's GoogleSQL on
DuckDB with its INFORMATION_SCHEMA views and bound query parameters. What the fake cannot
show: BigQuery's own SQL semantics beyond what sqlglot's transpilation to DuckDB keeps.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
from typing import Any

import httpx
import pytest
from google.api_core import exceptions as gexc
from google.cloud.bigquery import dbapi

from connhub.providers.custom.bigquery import ADAPTER
from connhub.providers.kinds.sql_driver import ConnectRequest
from query.api_helpers import BASE, activated, run_sql, sample_rows
from support.bigquery_fake import (
    BigQueryFake,
    _bigquery_fake_server,  # noqa: F401 - registers the session fixture
    bigquery_fake_fixture,  # noqa: F401 - registers the fixture
)

PROJECT = "acme-analytics"
DATASET = "marts"


@pytest.fixture
def marts(bigquery_fake: BigQueryFake) -> BigQueryFake:
    """Dataset ``marts`` with plain, mixed-case and quoted-name tables; ``staging`` beside it."""
    fake = bigquery_fake
    fake.create_table(
        PROJECT,
        DATASET,
        "orders",
        [
            ("id", "INT64", False),
            ("region", "STRING", False),
            ("total", "NUMERIC(12, 2)", True),
            ("tags", "ARRAY<STRING>", True),
            ("created", "TIMESTAMP", True),
            ("raw", "BYTES", True),
        ],
        primary_key=["id"],
        rows=[
            (
                1,
                "eu",
                decimal.Decimal("9.50"),
                ["red", "blue"],
                dt.datetime(2024, 5, 1, 10, 30, tzinfo=dt.UTC),
                b"\x00\xff",
            ),
            (2, "us", None, None, None, None),
        ],
    )
    fake.create_table(
        PROJECT,
        DATASET,
        "OrderItems",
        [("order_id", "INT64", False), ("line_no", "INTEGER", False), ("qty", "INT64", True)],
        primary_key=["order_id", "line_no"],
        rows=[(1, 1, 2), (1, 2, 1), (2, 1, 5)],
    )
    fake.create_table(
        PROJECT,
        DATASET,
        "Weird Table",
        [("Order ID", "INT64", False), ("select", "STRING", True)],
        primary_key=["Order ID"],
        rows=[(7, "x")],
    )
    fake.create_table(PROJECT, "staging", "raw_events", [("id", "INT64", True)])
    return fake


def body(fake: BigQueryFake) -> dict[str, Any]:
    return {
        "name": "warehouse",
        "provider": "bigquery",
        "config": {"projectId": PROJECT, "dataset": DATASET, "apiEndpoint": fake.endpoint},
        "credentials": {"credentialsJson": fake.credentials_json()},
    }


async def columns(client: httpx.AsyncClient, caller: Any, cid: str, table: str) -> httpx.Response:
    return await client.get(
        f"{BASE}/{cid}/schema/columns",
        params={"schema": DATASET, "table": table},
        headers=caller.headers,
    )


def catalog_requests(fake: BigQueryFake, view: str) -> list[dict[str, Any]]:
    return [q for q in fake.queries if f"INFORMATION_SCHEMA.{view}" in q["query"]]


async def test_listing_is_the_configured_dataset(
    client: httpx.AsyncClient, admin: Any, marts: BigQueryFake
) -> None:
    cid = await activated(client, admin, body(marts))
    resp = await client.get(f"{BASE}/{cid}/schema/tables", headers=admin.headers)
    assert resp.status_code == 200, resp.text
    # Byte order, as BigQuery sorts strings; staging.raw_events is another dataset.
    assert resp.json()["tables"] == [
        {
            "schema": "marts",
            "table": "OrderItems",
            "normalizedName": "marts_order_items",
            "spec": "marts.`OrderItems`",
        },
        {
            "schema": "marts",
            "table": "Weird Table",
            "normalizedName": "marts_weird_table",
            "spec": "marts.`Weird Table`",
        },
        {
            "schema": "marts",
            "table": "orders",
            "normalizedName": "marts_orders",
            "spec": "marts.orders",
        },
    ]
    [listing] = catalog_requests(marts, "TABLES")
    assert "`acme-analytics`.`marts`.INFORMATION_SCHEMA.TABLES" in listing["query"]
    # Each spec is what a user types: it runs as written, through the query endpoint.
    counts = {}
    for table in resp.json()["tables"]:
        result = await run_sql(client, admin, cid, f"SELECT COUNT(*) AS n FROM {table['spec']}")
        assert result.status_code == 200, result.text
        counts[table["table"]] = result.json()["rows"]
    assert counts == {"OrderItems": [{"n": 3}], "Weird Table": [{"n": 1}], "orders": [{"n": 2}]}


async def test_columns_types_nullability_and_keys(
    client: httpx.AsyncClient, admin: Any, marts: BigQueryFake
) -> None:
    cid = await activated(client, admin, body(marts))
    resp = await columns(client, admin, cid, "orders")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "schema": "marts",
        "table": "orders",
        "columns": [
            {
                "name": "id",
                "normalizedName": "id",
                "dataType": "INT64",
                "nullable": False,
                "primaryKey": True,
            },
            {
                "name": "region",
                "normalizedName": "region",
                "dataType": "STRING",
                "nullable": False,
                "primaryKey": False,
            },
            {
                "name": "total",
                "normalizedName": "total",
                "dataType": "NUMERIC(12, 2)",
                "nullable": True,
                "primaryKey": False,
            },
            {
                "name": "tags",
                "normalizedName": "tags",
                "dataType": "ARRAY<STRING>",
                "nullable": True,
                "primaryKey": False,
            },
            {
                "name": "created",
                "normalizedName": "created",
                "dataType": "TIMESTAMP",
                "nullable": True,
                "primaryKey": False,
            },
            {
                "name": "raw",
                "normalizedName": "raw",
                "dataType": "BYTES",
                "nullable": True,
                "primaryKey": False,
            },
        ],
    }
    items = (await columns(client, admin, cid, "OrderItems")).json()["columns"]
    assert [(c["name"], c["dataType"], c["primaryKey"]) for c in items] == [
        ("order_id", "INT64", True),
        ("line_no", "INT64", True),  # INTEGER is INT64's alias
        ("qty", "INT64", False),
    ]
    weird = (await columns(client, admin, cid, "Weird Table")).json()["columns"]
    assert [(c["name"], c["normalizedName"], c["nullable"], c["primaryKey"]) for c in weird] == [
        ("Order ID", "order_id", False, True),
        ("select", "select", True, False),
    ]
    # The names travel as bound parameters, never in the SQL text.
    last = catalog_requests(marts, "COLUMNS")[-1]
    assert "Weird Table" not in last["query"]
    assert "= @`table`" in last["query"]  # the DB-API quotes the reserved word
    assert {p["name"]: p["parameterValue"]["value"] for p in last["queryParameters"]} == {
        "schema": "marts",
        "table": "Weird Table",
    }


@pytest.mark.parametrize(
    ("schema", "table"),
    [
        (DATASET, "nope"),
        (DATASET, "weird table"),  # BigQuery table names are case-sensitive
        ("staging", "raw_events"),  # another dataset than the connection's
    ],
)
async def test_unknown_table_is_404(
    client: httpx.AsyncClient, admin: Any, marts: BigQueryFake, schema: str, table: str
) -> None:
    cid = await activated(client, admin, body(marts))
    missing = await client.get(
        f"{BASE}/{cid}/schema/columns",
        params={"schema": schema, "table": table},
        headers=admin.headers,
    )
    assert missing.status_code == 404, missing.text
    assert table in missing.json()["detail"]
    sample = await sample_rows(client, admin, cid, schema, table)
    assert sample.status_code == 404, sample.text


async def test_sample_rows_are_json_safe(
    client: httpx.AsyncClient, admin: Any, marts: BigQueryFake
) -> None:
    cid = await activated(client, admin, body(marts))
    resp = await sample_rows(client, admin, cid, DATASET, "orders")
    assert resp.status_code == 200, resp.text
    sample = resp.json()
    assert (sample["rowCount"], sample["truncated"]) == (2, False)
    assert [c["name"] for c in sample["columns"]] == [
        "id",
        "region",
        "total",
        "tags",
        "created",
        "raw",
    ]
    first, second = sorted(sample["rows"], key=lambda row: row["id"])
    assert first["total"] == 9.5 and first["tags"] == ["red", "blue"]
    assert first["created"] == "2024-05-01T10:30:00Z"
    assert base64.b64decode(first["raw"]) == b"\x00\xff"
    assert second["total"] is None and second["tags"] == []  # BigQuery has no NULL arrays
    weird = (await sample_rows(client, admin, cid, DATASET, "Weird Table", maxRows=1)).json()
    assert weird["rows"] == [{"Order ID": 7, "select": "x"}]
    items = (await sample_rows(client, admin, cid, DATASET, "OrderItems", maxRows=2)).json()
    assert (items["rowCount"], items["truncated"]) == (2, True)


async def test_read_only_query(client: httpx.AsyncClient, admin: Any, marts: BigQueryFake) -> None:
    cid = await activated(client, admin, body(marts))
    resp = await run_sql(
        client,
        admin,
        cid,
        "SELECT o.region, SUM(i.qty) AS qty, 1.5 * COUNT(*) AS score "
        "FROM marts.orders AS o JOIN marts.`OrderItems` AS i ON i.order_id = o.id "
        "GROUP BY o.region ORDER BY o.region",
    )
    assert resp.status_code == 200, resp.text
    result = resp.json()
    assert result["columns"] == ["region", "qty", "score"]
    assert result["rows"] == [
        {"region": "eu", "qty": 3, "score": 3.0},
        {"region": "us", "qty": 5, "score": 1.5},
    ]
    assert result["tableRefs"] == [
        {"schema": "marts", "table": "orders"},
        {"schema": "marts", "table": "OrderItems"},
    ]
    limited = (await run_sql(client, admin, cid, "SELECT id FROM marts.orders", maxRows=1)).json()
    assert (limited["rowCount"], limited["truncated"]) == (1, True)


async def test_a_statement_bigquery_refuses_is_the_callers_400(
    client: httpx.AsyncClient, admin: Any, marts: BigQueryFake
) -> None:
    """BigQuery's errors carry no SQLSTATE: a 400 (bad SQL) or 404 (no such table) about the
    statement is the caller's to fix, as PostgreSQL's and MySQL's refusals are, not a 502."""
    cid = await activated(client, admin, body(marts))
    for sql, words in (
        ("SELECT nosuch FROM marts.orders", "nosuch"),
        ("SELECT * FROM marts.nope", "Not found: Table acme-analytics:marts.nope"),
    ):
        resp = await run_sql(client, admin, cid, sql)
        assert resp.status_code == 400, (sql, resp.text)
        assert resp.json()["code"] == "query_failed"
        assert words in resp.json()["detail"]
    marts.forbidden.add((PROJECT, "staging"))  # the fixture resets the fake for each test
    resp = await run_sql(client, admin, cid, "SELECT id FROM staging.raw_events")
    assert (resp.status_code, resp.json()["code"]) == (400, "permission_denied"), resp.text


def test_sql_the_fake_cannot_run_is_a_bigquery_400(marts: BigQueryFake) -> None:
    """Refusals reach the client as BigQuery errors (reason ``invalidQuery``), not crashes."""
    config = {"projectId": PROJECT, "dataset": DATASET, "apiEndpoint": marts.endpoint}
    conn = ADAPTER.connect(
        ConnectRequest(
            config=config,
            credentials={"credentialsJson": marts.credentials_json()},
            target=ADAPTER.target(config),
            address="127.0.0.1",
            timeout_s=10,
        )
    )
    try:
        for sql in ("SELEC 1", "SELECT nosuch FROM marts.orders", "DELETE FROM marts.orders"):
            with pytest.raises(dbapi.DatabaseError) as info:
                conn.cursor().execute(sql)
            cause = info.value.__cause__ or info.value.args[0]
            assert isinstance(cause, gexc.BadRequest), (sql, cause)
            assert cause.errors[0]["reason"] == "invalidQuery", sql
        with pytest.raises(dbapi.DatabaseError) as missing:
            conn.cursor().execute("SELECT * FROM marts.nope")
        assert "Not found: Table acme-analytics:marts.nope" in str(missing.value)
        cursor = conn.cursor()
        cursor.execute("SELECT 1")  # the verification's probe still answers
        assert [tuple(row) for row in cursor.fetchall()] == [(1,)]
    finally:
        conn.close()
