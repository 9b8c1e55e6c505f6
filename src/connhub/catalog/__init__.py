"""Schema browsing: which tables a SQL connection has, and a table's columns.

One catalog query per call and per engine (``postgres.py``: ``pg_catalog``; ``mysql.py``:
``information_schema`` with MySQL's system schemas; ``bigquery.py``: the configured dataset's
``INFORMATION_SCHEMA``; ``generic.py``: ``information_schema`` for Snowflake and the rest),
never one query per table. Each module turns its own rows into
:class:`TableInfo` / :class:`ColumnInfo`; ``query/service.py`` runs the queries on a pooled,
read-only session and ``names.py`` adds ``normalizedName`` and ``spec``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any, cast

from connhub.catalog import bigquery, generic, mysql, postgres
from connhub.catalog.model import ColumnInfo, Query, TableInfo

__all__ = ["ColumnInfo", "Query", "TableInfo", "for_dialect", "Catalog"]

_MODULES: dict[str, ModuleType] = {"postgres": postgres, "mysql": mysql, "bigquery": bigquery}


class Catalog:
    """The catalog queries of one dialect, for one connection's config (BigQuery's dataset)."""

    def __init__(self, module: ModuleType, config: Mapping[str, Any] | None = None) -> None:
        self._module = module
        self._config = config

    def tables_query(self, include_system: bool) -> Query:
        return cast(Query, self._module.tables_query(include_system, self._config))

    def tables(self, rows: Sequence[Sequence[Any]]) -> list[TableInfo]:
        parse = cast(Callable[[Sequence[Sequence[Any]]], list[TableInfo]], self._module.tables)
        return parse(rows)

    def table_names(self, rows: Sequence[Sequence[Any]]) -> tuple[Sequence[str], Sequence[str]]:
        """Schemas and tables as two columns, without a ``TableInfo`` per row (big catalogs)."""
        names = getattr(self._module, "table_names", None)
        if names is not None:
            return cast(
                Callable[[Sequence[Sequence[Any]]], tuple[Sequence[str], Sequence[str]]], names
            )(rows)
        tables = self.tables(rows)
        return [t.schema for t in tables], [t.table for t in tables]

    def columns_query(self, schema: str, table: str) -> Query:
        return cast(Query, self._module.columns_query(schema, table, self._config))

    def columns(self, rows: Sequence[Sequence[Any]]) -> list[ColumnInfo] | None:
        parse = cast(
            Callable[[Sequence[Sequence[Any]]], list[ColumnInfo] | None], self._module.columns
        )
        return parse(rows)


def for_dialect(dialect: str, config: Mapping[str, Any] | None = None) -> Catalog:
    return Catalog(_MODULES.get(dialect, generic), config)
