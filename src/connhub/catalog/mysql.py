"""MySQL / MariaDB catalog: one ``information_schema`` query per call.

The server already limits ``information_schema`` to what the account may see. Schemas
(= databases) ``mysql``, ``information_schema``, ``performance_schema`` and ``sys`` are system
schemas. Primary keys come from the ``PRIMARY`` index in ``information_schema.statistics``
(``COLUMN_KEY = 'PRI'`` would also mark a unique NOT NULL key when a table has no primary
key), so every column of a composite key is marked and nothing else is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from connhub.catalog.model import Query, TableInfo, columns_from_rows

SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys")
_KINDS = {"BASE TABLE": "table", "VIEW": "view", "SYSTEM VIEW": "view", "SEQUENCE": "sequence"}

_TABLES = """
SELECT table_schema, table_name, table_type
FROM information_schema.tables
WHERE %s OR table_schema NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
ORDER BY table_schema, table_name
"""

# The LEFT JOIN from tables keeps "table exists" apart from "no columns visible".
_COLUMNS = """
SELECT c.column_name, c.column_type, c.is_nullable = 'YES', s.index_name IS NOT NULL
FROM information_schema.tables t
LEFT JOIN information_schema.columns c
       ON c.table_schema = t.table_schema AND c.table_name = t.table_name
LEFT JOIN information_schema.statistics s
       ON s.table_schema = c.table_schema AND s.table_name = c.table_name
      AND s.column_name = c.column_name AND s.index_name = 'PRIMARY'
WHERE t.table_schema = %s AND t.table_name = %s
ORDER BY c.ordinal_position
"""


def tables_query(include_system: bool, config: Mapping[str, Any] | None = None) -> Query:
    return Query(_TABLES, (1 if include_system else 0,))


def tables(rows: Sequence[Sequence[Any]]) -> list[TableInfo]:
    return [
        TableInfo(str(s), str(t), _KINDS.get(str(k).upper(), "table"))
        for s, t, k in rows
        if str(k).upper() != "SEQUENCE"
    ]


def columns_query(schema: str, table: str, config: Mapping[str, Any] | None = None) -> Query:
    return Query(_COLUMNS, (schema, table))


columns = columns_from_rows
