"""normalizedName and spec: identifiers a tool can use, references an engine accepts."""

from __future__ import annotations

import pytest
import sqlglot

from connhub.catalog.names import normalized_column_name, normalized_table_name, spec


@pytest.mark.parametrize(("schema", "table", "expected"), [
    ("public", "orders", "public_orders"),
    ("Sales", "OrderItems", "sales_order_items"),
    ("shop", "Weird Table", "shop_weird_table"),
    (None, "2024 sales", "_2024_sales"),
    ("x", "Été-Prix", "x_ete_prix"),
    ("", "---", "table"),
])
def test_normalized_table_name(schema: str | None, table: str, expected: str) -> None:
    assert normalized_table_name(schema, table) == expected


@pytest.mark.parametrize(("column", "expected"), [
    ("order_id", "order_id"), ("Order ID", "order_id"), ("orderID", "order_id"),
    ("HTTPStatus", "http_status"), ("__x__", "x"), ("???", "column"),
])
def test_normalized_column_name(column: str, expected: str) -> None:
    assert normalized_column_name(column) == expected


@pytest.mark.parametrize(("dialect", "schema", "table", "expected"), [
    ("postgres", "public", "orders", "public.orders"),
    ("postgres", "public", "Orders", 'public."Orders"'),
    ("postgres", "shop", "Weird Table", 'shop."Weird Table"'),
    ("postgres", "public", 'a"b', 'public."a""b"'),
    ("mysql", "db", "Weird Table", "db.`Weird Table`"),
    ("mysql", "db", "select", "db.`select`"),
    ("snowflake", "PUBLIC", "ORDERS", "PUBLIC.ORDERS"),
    ("snowflake", "PUBLIC", "orders", 'PUBLIC."orders"'),
])
def test_spec(dialect: str, schema: str, table: str, expected: str) -> None:
    assert spec(schema, table, dialect) == expected


@pytest.mark.parametrize("dialect", ["postgres", "mysql", "snowflake", "bigquery", "tsql"])
@pytest.mark.parametrize("table", ["orders", "Orders", "Weird Table", "select", 'a"b`c]d'])
def test_spec_parses_back_to_the_same_table(dialect: str, table: str) -> None:
    parsed = sqlglot.parse_one(f"SELECT * FROM {spec('Sch', table, dialect)}", read=dialect)
    found = parsed.find(sqlglot.exp.Table)
    assert found is not None and (found.db, found.name) == ("Sch", table)
