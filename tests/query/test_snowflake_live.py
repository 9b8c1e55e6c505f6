"""Schema endpoints on Snowflake, through the real connector against fakesnow (loopback HTTP).

fakesnow serves information_schema from DuckDB; it lacks ``ALTER SESSION`` (so the statement
timeout here is the connector's per-statement ``timeout``) and lists no views in
``information_schema.tables``. Read-only on Snowflake rests on the role and the guard; the
guard's Snowflake refusals are exercised here end to end.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from query.api_helpers import BASE, activated, run_sql
from support.fakesnow_server import (  # noqa: F401 - registers the fixture
    FakesnowServer,
    create_objects,
    fakesnow_server_fixture,
    non_loopback_traffic,
    unique_name,
)


@pytest.fixture(scope="module")
def snow_db(fakesnow_server: FakesnowServer) -> Iterator[str]:
    database = unique_name("SHOP")
    create_objects(fakesnow_server, database)
    conn = fakesnow_server.connect()
    try:
        cur = conn.cursor()
        cur.execute(
            f"CREATE TABLE {database}.PUBLIC.ORDERS "
            "(ID INT PRIMARY KEY, TOTAL NUMBER(12, 2), NOTE VARCHAR)"
        )
        cur.execute(f"INSERT INTO {database}.PUBLIC.ORDERS VALUES (1, 9.5, 'a'), (2, 3.25, 'b')")
        cur.execute(
            f'CREATE TABLE {database}.PUBLIC."Line Items" '
            '("Order ID" INT, LINE INT, PRIMARY KEY ("Order ID", LINE))'
        )
    finally:
        conn.close()
    yield database


def body(server: FakesnowServer, database: str) -> dict[str, object]:
    return {
        "name": "snow",
        "provider": "snowflake",
        "config": server.config(database),
        "credentials": {"password": "fakesnow-accepts-any"},
    }


async def test_snowflake_browse_sample_query(client, admin, fakesnow_server, snow_db) -> None:
    with non_loopback_traffic() as outside:
        cid = await activated(client, admin, body(fakesnow_server, snow_db))
        tables = (await client.get(f"{BASE}/{cid}/schema/tables", headers=admin.headers)).json()
        by_name = {t["table"]: t for t in tables["tables"]}
        assert by_name["ORDERS"]["spec"] == "PUBLIC.ORDERS"
        assert by_name["ORDERS"]["normalizedName"] == "public_orders"
        assert by_name["Line Items"]["spec"] == 'PUBLIC."Line Items"'
        assert "INFORMATION_SCHEMA" not in {t["schema"] for t in tables["tables"]}
        columns = (
            await client.get(
                f"{BASE}/{cid}/schema/columns",
                params={"schema": "PUBLIC", "table": "Line Items"},
                headers=admin.headers,
            )
        ).json()["columns"]
        assert [(c["name"], c["normalizedName"], c["primaryKey"]) for c in columns] == [
            ("Order ID", "order_id", True),
            ("LINE", "line", True),
        ]
        missing = await client.get(
            f"{BASE}/{cid}/schema/columns",
            params={"schema": "PUBLIC", "table": "NOPE"},
            headers=admin.headers,
        )
        assert missing.status_code == 404
        sample = (
            await client.post(
                f"{BASE}/{cid}/schema/sample",
                json={"schema": "PUBLIC", "table": "ORDERS", "maxRows": 1},
                headers=admin.headers,
            )
        ).json()
        assert sample["rowCount"] == 1 and sample["truncated"] is True
        assert sample["rows"][0]["TOTAL"] in (9.5, 3.25)
        result = (
            await run_sql(client, admin, cid, "SELECT ID, TOTAL FROM ORDERS ORDER BY ID")
        ).json()
        assert result["rows"] == [{"ID": 1, "TOTAL": 9.5}, {"ID": 2, "TOTAL": 3.25}]
        assert result["tableRefs"] == [{"schema": None, "table": "ORDERS"}]
    assert outside == []


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        ("PUT file:///etc/passwd @~", "statement_not_read_only"),
        ("COPY INTO @~/x FROM (SELECT * FROM ORDERS)", "statement_not_read_only"),
        ("SELECT SYSTEM$WAIT(1)", "denied_function"),
        ("DELETE FROM ORDERS", "statement_not_read_only"),
    ],
)
async def test_snowflake_refusals(client, admin, fakesnow_server, snow_db, sql, code) -> None:
    cid = await activated(client, admin, body(fakesnow_server, snow_db))
    resp = await run_sql(client, admin, cid, sql)
    assert resp.status_code == 400 and resp.json()["code"] == code, resp.text
    count = (await run_sql(client, admin, cid, "SELECT COUNT(*) AS N FROM ORDERS")).json()
    assert count["rows"] == [{"N": 2}]
