"""normalizedName and spec: identifiers a tool can use, references an engine accepts."""

from __future__ import annotations

import orjson
import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st

from connhub.catalog.names import (
    normalized_column_name,
    normalized_table_name,
    spec,
    table_listing,
    table_listing_json,
)


@pytest.mark.parametrize(
    ("schema", "table", "expected"),
    [
        ("public", "orders", "public_orders"),
        ("Sales", "OrderItems", "sales_order_items"),
        ("shop", "Weird Table", "shop_weird_table"),
        (None, "2024 sales", "_2024_sales"),
        ("x", "Été-Prix", "x_ete_prix"),
        ("", "---", "table"),
    ],
)
def test_normalized_table_name(schema: str | None, table: str, expected: str) -> None:
    assert normalized_table_name(schema, table) == expected


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ("order_id", "order_id"),
        ("Order ID", "order_id"),
        ("orderID", "order_id"),
        ("HTTPStatus", "http_status"),
        ("__x__", "x"),
        ("???", "column"),
    ],
)
def test_normalized_column_name(column: str, expected: str) -> None:
    assert normalized_column_name(column) == expected


@pytest.mark.parametrize(
    ("dialect", "schema", "table", "expected"),
    [
        ("postgres", "public", "orders", "public.orders"),
        ("postgres", "public", "Orders", 'public."Orders"'),
        ("postgres", "shop", "Weird Table", 'shop."Weird Table"'),
        ("postgres", "public", 'a"b', 'public."a""b"'),
        ("mysql", "db", "Weird Table", "db.`Weird Table`"),
        ("mysql", "db", "select", "db.`select`"),
        ("snowflake", "PUBLIC", "ORDERS", "PUBLIC.ORDERS"),
        ("snowflake", "PUBLIC", "orders", 'PUBLIC."orders"'),
    ],
)
def test_spec(dialect: str, schema: str, table: str, expected: str) -> None:
    assert spec(schema, table, dialect) == expected


@pytest.mark.parametrize("dialect", ["postgres", "mysql", "snowflake", "bigquery", "tsql"])
@pytest.mark.parametrize("table", ["orders", "Orders", "Weird Table", "select", 'a"b`c]d'])
def test_spec_parses_back_to_the_same_table(dialect: str, table: str) -> None:
    parsed = sqlglot.parse_one(f"SELECT * FROM {spec('Sch', table, dialect)}", read=dialect)
    found = parsed.find(sqlglot.exp.Table)
    assert found is not None and (found.db, found.name) == ("Sch", table)


@pytest.mark.parametrize("dialect", ["postgres", "mysql", "snowflake", "bigquery"])
def test_table_listing_matches_the_per_table_functions(dialect: str) -> None:
    pairs = [
        ("public", "orders"),
        ("shop", "Weird Table"),
        ("Sales", "OrderItems"),
        ("public", "select"),
        ("PUBLIC", "ITEMS"),
        ("public", "t_1"),
        ("x", "2024_sales"),
    ]
    listing = table_listing(pairs, dialect)
    assert [(e["schema"], e["table"]) for e in listing] == pairs
    assert [e["spec"] for e in listing] == [spec(s, t, dialect) for s, t in pairs]
    assert [e["normalizedName"] for e in listing] == [normalized_table_name(s, t) for s, t in pairs]


def test_table_listing_keeps_normalized_names_unique() -> None:
    listing = table_listing(
        [
            ("public", "orders"),
            ("public_orders", "x"),
            ("Public", "Orders"),
            ("public", "orders_2"),
        ],
        "postgres",
    )
    assert [e["normalizedName"] for e in listing] == [
        "public_orders",
        "public_orders_x",
        "public_orders_2",
        "public_orders_2_2",
    ]


def test_bigquery_catalog_is_scoped_to_the_configured_dataset() -> None:
    from connhub.catalog import for_dialect
    from connhub.errors import BadRequest

    catalog = for_dialect("bigquery", {"projectId": "my-proj", "dataset": "sales"})
    tables = catalog.tables_query(False)
    assert "`my-proj`.`sales`.INFORMATION_SCHEMA.TABLES" in tables.sql
    parsed = sqlglot.parse_one(tables.sql, read="bigquery")
    assert isinstance(parsed, sqlglot.exp.Select)
    columns = catalog.columns_query("sales", "orders")
    assert columns.params == {"schema": "sales", "table": "orders"}
    assert isinstance(
        sqlglot.parse_one(
            columns.sql.replace("%(schema)s", "'s'").replace("%(table)s", "'t'"), read="bigquery"
        ),
        sqlglot.exp.Select,
    )
    for bad in ({}, {"projectId": "my-proj", "dataset": "sales`; DROP"}):
        with pytest.raises(BadRequest):
            for_dialect("bigquery", bad).tables_query(False)


def columns(pairs: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    return [schema for schema, _ in pairs], [table for _, table in pairs]


# Names that sit on every edge of the bulk path's checks: snake_case and not, reserved words,
# leading digits and underscores, "__", trailing "_", empty, quotes, unicode, schema prefixes.
_NAMES = st.one_of(
    st.from_regex(r"[a-z][a-z0-9]{0,3}(_[a-z0-9]{1,3}){0,2}", fullmatch=True),
    st.sampled_from(["select", "from", "order", "a__b", "a_", "_a", "1a", "", "a\nb", "x"]),
    st.sampled_from(["Orders", 'q"t', "b`k", "caf\u00e9", "a b", "a_b", "a_b_c", "b_c"]),
)


@pytest.mark.parametrize("dialect", ["postgres", "mysql", "snowflake", "bigquery", "tsql"])
@settings(max_examples=150, deadline=None)
@given(pairs=st.lists(st.tuples(_NAMES, _NAMES), max_size=12, unique=True))
def test_table_listing_json_is_the_listing_as_json(
    dialect: str, pairs: list[tuple[str, str]]
) -> None:
    """The bulk path (JSON written directly) and the general path agree on every input."""
    listing = table_listing_json(*columns(pairs), dialect)
    assert orjson.loads(orjson.dumps(listing)) == table_listing(pairs, dialect)


def test_table_listing_json_takes_the_bulk_path_for_a_plain_catalog(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from connhub.catalog import names

    pairs = [("bench", f"t_{i}") for i in range(1, 2001)] + [("public", "big")]
    expected = table_listing(pairs, "postgres")

    def general_path(*_args: object) -> None:
        raise AssertionError("a plain catalog must not take the per-table path")

    monkeypatch.setattr(names, "table_listing", general_path)
    listing = table_listing_json(*columns(pairs), "postgres")
    assert orjson.loads(orjson.dumps(listing)) == expected
    # ... and a name that needs quoting does take it.
    with pytest.raises(AssertionError, match="per-table path"):
        table_listing_json(*columns([*pairs, ("public", "Orders")]), "postgres")
