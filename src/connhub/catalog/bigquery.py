"""BigQuery catalog: the configured dataset's ``INFORMATION_SCHEMA`` views, one query per call.

BigQuery has no database-wide ``information_schema``: the views hang off a dataset
(`` `project`.`dataset`.INFORMATION_SCHEMA.TABLES ``) or a region. A connection names one
project and one dataset (API.md section 4), so the listing is that dataset; the qualifiers come
from the stored config and are quoted by sqlglot, never pasted. Parameters use the DB-API
``pyformat`` style of ``google.cloud.bigquery.dbapi``. Primary keys (unenforced in BigQuery)
come from ``TABLE_CONSTRAINTS``/``KEY_COLUMN_USAGE``.

Tested end to end against the local BigQuery fake, which runs these queries on DuckDB
(tests/catalog/test_bigquery_catalog_live.py); views and real permission errors are not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlglot import exp

from connhub.catalog import generic
from connhub.catalog.model import ColumnInfo, Query, TableInfo
from connhub.errors import BadRequest

# The provider definition's own patterns, checked again: these names become SQL text.
_PROJECT = re.compile(r"(?:[a-z][a-z0-9.-]*:)?[a-z][a-z0-9-]{4,28}[a-z0-9]")
_DATASET = re.compile(r"[A-Za-z0-9_]{1,1024}")


def _views(config: Mapping[str, Any] | None) -> str:
    project = (config or {}).get("projectId")
    dataset = (config or {}).get("dataset")
    if not (
        isinstance(project, str)
        and _PROJECT.fullmatch(project)
        and isinstance(dataset, str)
        and _DATASET.fullmatch(dataset)
    ):
        raise BadRequest(
            "config.projectId and config.dataset are needed to browse BigQuery",
            code="invalid_config",
        )
    quoted = ".".join(
        exp.to_identifier(part, quoted=True).sql(dialect="bigquery") for part in (project, dataset)
    )
    return f"{quoted}.INFORMATION_SCHEMA"


def tables_query(include_system: bool, config: Mapping[str, Any] | None = None) -> Query:
    # The qualifier is quoted by sqlglot (_views); the rest is constant text.
    return Query(
        f"SELECT table_schema, table_name, table_type FROM {_views(config)}.TABLES "  # noqa: S608
        "ORDER BY table_schema, table_name"
    )


def tables(rows: Sequence[Sequence[Any]]) -> list[TableInfo]:
    return generic.tables(rows)


def columns_query(schema: str, table: str, config: Mapping[str, Any] | None = None) -> Query:
    views = _views(config)  # quoted by sqlglot; schema and table are bound parameters
    return Query(
        f"""SELECT c.column_name, c.data_type, c.is_nullable, k.column_name
        FROM {views}.TABLES t
        LEFT JOIN {views}.COLUMNS c
               ON c.table_schema = t.table_schema AND c.table_name = t.table_name
        LEFT JOIN (
            SELECT u.table_schema, u.table_name, u.column_name
            FROM {views}.TABLE_CONSTRAINTS tc
            JOIN {views}.KEY_COLUMN_USAGE u
              ON u.constraint_name = tc.constraint_name AND u.table_name = tc.table_name
            WHERE tc.constraint_type = 'PRIMARY KEY'
        ) k ON k.table_schema = c.table_schema AND k.table_name = c.table_name
           AND k.column_name = c.column_name
        WHERE t.table_schema = %(schema)s AND t.table_name = %(table)s
        ORDER BY c.ordinal_position""",  # noqa: S608
        {"schema": schema, "table": table},
    )


def columns(rows: Sequence[Sequence[Any]]) -> list[ColumnInfo] | None:
    return generic.columns(rows)
