"""Prebuilt SQLAlchemy statements run on the store's own driver, without SQLAlchemy's
execution and result machinery.

Hot paths (list, get, a connection and its secret for use, a verification's outcome) run a
handful of statements that are built once with bind parameters. On those, SQLAlchemy's
per-execution and per-row work cost more than the store's own: each statement is compiled
here once per dialect into a *plan* (SQL text, parameter order, literal values, a row class),
and rows come back as tuples with attribute access by column name, like a ``Row``.

- PostgreSQL: asyncpg, which already returns aware timestamps, UUIDs and decoded JSON.
- SQLite: the standard library's driver, with the few conversions SQLAlchemy would make
  (hex UUIDs, naive UTC timestamps, 0/1 booleans, JSON text), done per column kind.

Statements with expanding (``IN``) parameters are not planned: their SQL depends on the
values. Callers keep SQLAlchemy for those.
"""

from __future__ import annotations

import functools
import operator
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Uuid
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Convert = Callable[[Any], Any]


class RecordRow(tuple[Any, ...]):
    """A driver row with the attribute access of a SQLAlchemy ``Row`` (by column name).

    Subclasses made per statement give each column a C-level property (``itemgetter``): a
    ``__getattr__`` fallback would raise and swallow an AttributeError on every access.
    """

    __slots__ = ()
    _fields: tuple[str, ...] = ()


def _row_class(fields: tuple[str, ...]) -> type[RecordRow]:
    columns = {name: property(operator.itemgetter(i)) for i, name in enumerate(fields)}
    return type("RecordRow", (RecordRow,), {"_fields": fields, "__slots__": (), **columns})


@dataclass(frozen=True)
class Plan:
    sql: str
    order: tuple[str, ...]  # parameter names in positional order
    literals: dict[str, Any]  # values of the statement's own literal binds ('global', ...)
    row_class: type[RecordRow]
    binds: dict[str, Convert]  # SQLite: Python value -> stored value, by parameter name
    columns: tuple[tuple[int, Convert], ...]  # SQLite: stored value -> Python, by position

    def values(self, params: dict[str, Any]) -> list[Any]:
        merged = {**self.literals, **params}
        binds = self.binds
        out = []
        for name in self.order:
            value = merged[name]
            convert = binds.get(name)
            out.append(value if convert is None or value is None else convert(value))
        return out


@functools.lru_cache(maxsize=256)
def plan(statement: ClauseElement, dialect: Dialect) -> Plan:
    """Compile a prebuilt statement once for ``dialect``'s driver."""
    compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
    result_columns = compiled._result_columns  # (key, name, objects, type) per column
    fields = tuple(column[0] for column in result_columns)
    literals = {k: v for k, v in compiled.params.items() if v is not None}
    binds: dict[str, Convert] = {}
    columns: tuple[tuple[int, Convert], ...] = ()
    if dialect.name == "sqlite":
        # Expanding binds have tuples of processors; those statements are not planned.
        binds = {
            name: fn
            for name, fn in compiled._bind_processors.items()
            if isinstance(name, str) and callable(fn)
        }
        columns = tuple(
            (i, convert)
            for i, column in enumerate(result_columns)
            if (convert := _sqlite_result(column[3], dialect)) is not None
        )
    return Plan(
        compiled.string,
        tuple(compiled.positiontup or ()),
        literals,
        _row_class(fields),
        binds,
        columns,
    )


_new = object.__new__
_set = object.__setattr__
_UNKNOWN = uuid.SafeUUID.unknown


def _sqlite_uuid(value: str | None) -> uuid.UUID | None:
    """SQLite keeps UUIDs as 32 hex digits. Built the way ``uuid.UUID.__init__`` itself sets
    its two slots, without re-checking the text: 1.2 us instead of 2.9 (150 per list page)."""
    if value is None:
        return None
    made = _new(uuid.UUID)
    _set(made, "int", int(value, 16))
    _set(made, "is_safe", _UNKNOWN)
    return made


def _sqlite_result(type_: Any, dialect: Dialect) -> Convert | None:
    """What SQLAlchemy does to a stored value of ``type_``: directly where its own processor
    is slow (UUIDs; a type with ``from_sqlite_text``, such as ``UTCDateTime``), its
    processor otherwise."""
    direct: Convert | None = getattr(type_, "from_sqlite_text", None)
    if direct is not None:
        return direct
    if isinstance(type_, Uuid) and type_.as_uuid:
        return _sqlite_uuid
    processor: Convert | None = type_._cached_result_processor(dialect, None)
    return processor


def sqlite_rows(plan_: Plan, rows: Sequence[Sequence[Any]]) -> list[RecordRow]:
    """Rows with SQLAlchemy's Python values. Each distinct stored value is converted once
    per call: a page's creator and updater ids, for one, repeat on most rows."""
    row_class = plan_.row_class
    columns = plan_.columns
    if not columns:
        return [row_class(row) for row in rows]
    seen: dict[int, dict[Any, Any]] = {i: {} for i, _ in columns}
    out = []
    for row in rows:
        values = list(row)
        for i, convert in columns:
            stored = values[i]
            memo = seen[i]
            value = memo.get(stored, _MISSING)
            if value is _MISSING:
                value = memo[stored] = convert(stored)
            values[i] = value
        out.append(row_class(values))
    return out


_MISSING = object()


def sqlite_execute(
    connection: sqlite3.Connection, plan_: Plan, params: dict[str, Any]
) -> list[RecordRow]:
    """Run a plan on an autocommit ``sqlite3`` connection (a write commits at once)."""
    cursor = connection.execute(plan_.sql, plan_.values(params))
    try:
        return sqlite_rows(plan_, cursor.fetchall())
    finally:
        cursor.close()
