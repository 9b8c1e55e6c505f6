"""``information_schema`` catalog for engines that have one (Snowflake, SQL Server, Databricks).

Snowflake: ``information_schema`` is per database (the configured one) and names are stored
upper case when created unquoted; ``INFORMATION_SCHEMA`` itself is the system schema.
Primary keys come from ``table_constraints``/``key_column_usage`` where the engine has them;
Snowflake does not enforce them, and on engines without them every column reads ``false``.

Parameters are written ``%s`` (snowflake-connector and python-tds use ``pyformat``); the
runner rewrites them for drivers with another style (Databricks: ``named``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from connhub.catalog.model import ColumnInfo, Query, TableInfo

SYSTEM_SCHEMAS = ("INFORMATION_SCHEMA", "information_schema", "sys", "SYS")

_TABLES = """
SELECT table_schema, table_name, table_type
FROM information_schema.tables
WHERE %s = 1 OR UPPER(table_schema) NOT IN ('INFORMATION_SCHEMA', 'SYS')
ORDER BY table_schema, table_name
"""

_COLUMNS = """
SELECT c.column_name, c.data_type, c.is_nullable, k.column_name
FROM information_schema.tables t
LEFT JOIN information_schema.columns c
       ON c.table_schema = t.table_schema AND c.table_name = t.table_name
LEFT JOIN (
    SELECT u.table_schema, u.table_name, u.column_name
    FROM information_schema.table_constraints tc
    JOIN information_schema.key_column_usage u
      ON u.constraint_name = tc.constraint_name AND u.table_schema = tc.table_schema
     AND u.table_name = tc.table_name
    WHERE tc.constraint_type = 'PRIMARY KEY'
) k ON k.table_schema = c.table_schema AND k.table_name = c.table_name
   AND k.column_name = c.column_name
WHERE t.table_schema = %s AND t.table_name = %s
ORDER BY c.ordinal_position
"""

_YES = frozenset({"YES", "Y", "TRUE", "1"})
_KINDS = {
    "BASE TABLE": "table",
    "VIEW": "view",
    "MATERIALIZED VIEW": "materialized_view",
    "EXTERNAL TABLE": "foreign_table",
}


def tables_query(include_system: bool, config: Mapping[str, Any] | None = None) -> Query:
    return Query(_TABLES, (1 if include_system else 0,))


def tables(rows: Sequence[Sequence[Any]]) -> list[TableInfo]:
    return [TableInfo(str(s), str(t), _KINDS.get(str(k).upper(), "table")) for s, t, k in rows]


def columns_query(schema: str, table: str, config: Mapping[str, Any] | None = None) -> Query:
    return Query(_COLUMNS, (schema, table))


def columns(rows: Sequence[Sequence[Any]]) -> list[ColumnInfo] | None:
    """Booleans are made here: T-SQL has no boolean expressions in a select list."""
    if not rows:
        return None
    return [
        ColumnInfo(str(name), str(data_type), str(nullable).upper() in _YES, key is not None)
        for name, data_type, nullable, key in rows
        if name is not None
    ]
