"""PostgreSQL catalog: one ``pg_catalog`` query per call, never per-table reflection.

``pg_catalog`` rather than ``information_schema``: the latter's views are built for
portability and are slow on large catalogs (``information_schema.tables`` checks privileges
row by row through several joins); ``pg_class`` with ``pg_namespace`` lists 10,000 tables in
a few milliseconds.

Listed: tables, partitioned tables (not their partitions), views, materialized views and
foreign tables the session may ``SELECT`` from or see columns of (as
``information_schema`` would show them). System schemas (``pg_catalog``,
``information_schema``, ``pg_toast*``, ``pg_temp_*``) only with ``include_system``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

from connhub.catalog.model import Query, TableInfo, columns_from_rows

_KINDS = {"r": "table", "p": "table", "v": "view", "m": "materialized_view", "f": "foreign_table"}

_TABLES = """
SELECT n.nspname, c.relname, c.relkind
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND NOT c.relispartition
  AND (%(system)s OR (n.nspname NOT IN ('pg_catalog', 'information_schema')
                      AND n.nspname NOT LIKE 'pg\\_toast%%'
                      AND n.nspname NOT LIKE 'pg\\_temp\\_%%'))
  AND (pg_catalog.has_table_privilege(c.oid, 'SELECT')
       OR pg_catalog.has_any_column_privilege(c.oid, 'SELECT'))
ORDER BY n.nspname, c.relname
"""

# One row per column; a table without columns still yields one row (all NULLs), so "no rows"
# means "no such table". Composite keys: every column whose attnum is in the primary index.
_COLUMNS = """
SELECT a.attname,
       pg_catalog.format_type(a.atttypid, a.atttypmod),
       NOT a.attnotnull,
       COALESCE(a.attnum = ANY (i.indkey), false)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_attribute a
       ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary
WHERE n.nspname = %(schema)s AND c.relname = %(table)s
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY a.attnum
"""


def tables_query(include_system: bool, config: Mapping[str, Any] | None = None) -> Query:
    return Query(_TABLES, {"system": include_system})


def tables(rows: Sequence[Sequence[Any]]) -> list[TableInfo]:
    return [TableInfo(str(s), str(t), _KINDS.get(str(k), "table")) for s, t, k in rows]


def table_names(rows: Sequence[Sequence[Any]]) -> tuple[Sequence[str], Sequence[str]]:
    """The two name columns, picked in C (psycopg hands back ``str`` for name columns)."""
    return list(map(itemgetter(0), rows)), list(map(itemgetter(1), rows))


def columns_query(schema: str, table: str, config: Mapping[str, Any] | None = None) -> Query:
    return Query(_COLUMNS, {"schema": schema, "table": table})


columns = columns_from_rows
