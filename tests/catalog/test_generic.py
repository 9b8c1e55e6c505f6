"""The information_schema catalog shared by Snowflake, SQL Server and Databricks."""

from __future__ import annotations

import pytest
import sqlglot

from connhub.catalog import for_dialect, generic
from connhub.query.runner import named_params


@pytest.mark.parametrize("dialect", ["snowflake", "tsql", "databricks"])
def test_generic_queries_parse_in_each_dialect(dialect: str) -> None:
    catalog = for_dialect(dialect)
    for query in (catalog.tables_query(False), catalog.columns_query("S", "T")):
        sql = query.sql.replace("%s", "'x'")
        assert isinstance(sqlglot.parse_one(sql, read=dialect), sqlglot.exp.Select)


def test_generic_columns_make_booleans_in_python() -> None:
    rows = [("ID", "NUMBER", "NO", "ID"), ("NOTE", "TEXT", "YES", None)]
    cols = generic.columns(rows)
    assert cols is not None
    assert [(c.name, c.nullable, c.primary_key) for c in cols] == [
        ("ID", False, True),
        ("NOTE", True, False),
    ]
    assert generic.columns([]) is None
    assert generic.columns([(None, None, None, None)]) == []


def test_named_params_for_databricks() -> None:
    query = generic.columns_query("sales", "orders")
    sql, params = named_params(query.sql, query.params)  # type: ignore[arg-type]
    assert "%s" not in sql and ":p0" in sql and ":p1" in sql
    assert params == {"p0": "sales", "p1": "orders"}
    with pytest.raises(ValueError):
        named_params("SELECT %s", ())
