"""What every engine's catalog module returns, and the queries it hands to the runner."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Query:
    """One catalog statement and its bound parameters (never user text pasted in)."""

    sql: str
    params: Mapping[str, Any] | Sequence[Any] | None = None


@dataclass(frozen=True)
class TableInfo:
    schema: str
    table: str
    kind: str  # table, view, materialized_view, foreign_table


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    data_type: str
    nullable: bool
    primary_key: bool


def columns_from_rows(rows: Sequence[Sequence[Any]]) -> list[ColumnInfo] | None:
    """``(name, type, nullable, primary)`` rows with real booleans; None for no rows (no such
    table). A table without columns yields one all-NULL row, hence the ``name`` filter."""
    if not rows:
        return None
    return [
        ColumnInfo(str(name), str(data_type), bool(nullable), bool(primary))
        for name, data_type, nullable, primary in rows
        if name is not None
    ]
