"""Names for what the catalog returns: snake_case ``normalizedName`` and a qualified ``spec``.

``normalizedName`` is what a tool or a model can use as an identifier anywhere: ASCII
snake_case (``public.OrderItems`` -> ``public_order_items``, ``"Order ID"`` -> ``order_id``),
never empty, never starting with a digit (``2024 sales`` -> ``_2024_sales``).

``spec`` is the table written the way the engine needs it to be typed (``public.orders``), with
quotes only where an unquoted name would mean another table: names that are not plain
identifiers, reserved words, or names the engine would case-fold (``"Orders"`` on
PostgreSQL, ``"orders"`` on Snowflake). Quoting goes through sqlglot, never string pasting.

``table_expression`` is the always-quoted form used to build our own statements (samples).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from itertools import chain, groupby, repeat

import orjson
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
# _SNAKE over many names at once (joined by and wrapped in newlines): allowed characters,
# then what _SNAKE forbids at a name's start; "__" and "_\n" are plain substring tests.
_SNAKE_CHARS = re.compile(r"[a-z0-9_\n]*")
_BAD_START = re.compile(r"\n[0-9_\n]")


def snake(name: str, *, fallback: str = "unnamed") -> str:
    if _SNAKE.fullmatch(name):
        return name  # already snake_case: most catalogs, and the fast path for 10,000 tables
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    words = _NON_WORD.sub("_", _CAMEL.sub("_", ascii_name).lower()).strip("_")
    if not words:
        return fallback
    return f"_{words}" if words[0].isdigit() else words


def normalized_table_name(schema: str | None, table: str) -> str:
    return snake(f"{schema}_{table}" if schema else table, fallback="table")


def normalized_column_name(column: str) -> str:
    return snake(column, fallback="column")


@lru_cache(maxsize=16)
def _reserved(dialect: str) -> frozenset[str]:
    generator = Dialect.get_or_raise(dialect).generator_class
    words = getattr(generator, "RESERVED_KEYWORDS", None) or set()
    tokenizer = Dialect.get_or_raise(dialect).tokenizer_class
    keywords = {k for k in getattr(tokenizer, "KEYWORDS", {}) if _PLAIN.fullmatch(k)}
    return frozenset({w.upper() for w in words} | {k.upper() for k in keywords})


@lru_cache(maxsize=16)
def _reserved_lower(dialect: str) -> frozenset[str]:
    """Snake-case names are lower case: compare them with the reserved words in lower case."""
    return frozenset(word.lower() for word in _reserved(dialect))


@lru_cache(maxsize=16)
def _fold(dialect: str) -> str:
    """How the engine folds unquoted names: "lower", "upper" or "" (kept as typed)."""
    probe = Dialect.get_or_raise(dialect).normalize_identifier(exp.to_identifier("aB")).name
    return {"ab": "lower", "AB": "upper"}.get(probe, "")


def spec_function(dialect: str) -> Callable[[str | None, str], str]:
    """``spec`` for one dialect, with its rules looked up once (10,000 tables per listing)."""
    fold = _fold(dialect)
    reserved = _reserved(dialect)
    plain = _PLAIN.fullmatch
    cache: dict[str, bool] = {}

    def needs_quotes(name: str) -> bool:
        found = cache.get(name)
        if found is None:
            folded = name.lower() if fold == "lower" else name.upper() if fold == "upper" else name
            found = not plain(name) or folded != name or name.upper() in reserved
            if len(cache) < 1024:
                cache[name] = found  # schema names repeat; table names mostly do not
        return found

    def make(schema: str | None, table: str) -> str:
        quote_schema = bool(schema) and needs_quotes(schema or "")
        quote_table = needs_quotes(table)
        if not quote_schema and not quote_table:  # the common case: no rendering needed
            return f"{schema}.{table}" if schema else table
        db = exp.to_identifier(schema, quoted=quote_schema) if schema else None
        return exp.table_(exp.to_identifier(table, quoted=quote_table), db=db).sql(dialect=dialect)

    return make


def table_listing(pairs: Iterable[tuple[str, str]], dialect: str) -> list[dict[str, str]]:
    """The wire entries of a table listing, built for 10,000 rows per call.

    Same results as ``normalized_table_name``/``spec`` per row (unique ``normalizedName``s:
    ``_2`` on a clash), with the common case (snake_case names) costing one regex per table.
    """
    make_spec = spec_function(dialect)
    reserved = _reserved_lower(dialect)
    fast = _fold(dialect) != "upper"  # Snowflake would need quotes on every lower-case name
    is_snake = _SNAKE.fullmatch
    schemas: dict[str, bool] = {}
    taken: set[str] = set()
    out: list[dict[str, str]] = []
    append = out.append
    for schema, table in pairs:
        simple = schemas.get(schema)
        if simple is None:
            simple = schemas[schema] = fast and bool(is_snake(schema)) and schema not in reserved
        if simple and is_snake(table) and table not in reserved:
            name, reference = f"{schema}_{table}", f"{schema}.{table}"
        else:
            name, reference = normalized_table_name(schema, table), make_spec(schema, table)
        size = len(taken)
        taken.add(name)
        if len(taken) == size:  # a clash: public.orders_2 vs a second public_orders
            base, n = name, 2
            while f"{base}_{n}" in taken:
                n += 1
            name = f"{base}_{n}"
            taken.add(name)
        append({"schema": schema, "table": table, "normalizedName": name, "spec": reference})
    return out


def _all_snake(names: Sequence[str]) -> bool:
    """Whether every name fully matches ``_SNAKE``, in a few C-level passes over all of them."""
    text = "\n" + "\n".join(names) + "\n"
    return (
        text.count("\n") == len(names) + 1  # no name has a newline of its own
        and _SNAKE_CHARS.fullmatch(text) is not None
        and _BAD_START.search(text) is None
        and "__" not in text
        and "_\n" not in text
    )


def table_listing_json(
    schemas: Sequence[str], tables: Sequence[str], dialect: str
) -> orjson.Fragment:
    """``table_listing`` of distinct catalog entries (as two columns), as embeddable JSON.

    When every name is plain snake_case, none is reserved and no two ``schema_table`` names
    can clash (nearly every real catalog), the JSON text is written directly: such names need
    neither quoting nor JSON escaping, so no per-table dict is built and serialised. Otherwise
    the general per-table path runs.
    """
    runs = _runs(schemas)
    distinct = {schema for schema, _start, _end in runs}
    reserved = _reserved_lower(dialect)
    if (
        tables
        and _fold(dialect) != "upper"  # Snowflake would need quotes on lower-case names
        and all(_SNAKE.fullmatch(schema) for schema in distinct)
        and reserved.isdisjoint(distinct)
        and reserved.isdisjoint(tables)
        and _all_snake(tables)
        # Distinct pairs give the same "a_b_c" only if one schema is another plus "_..."
        and not any(b.startswith(a + "_") for a in distinct for b in distinct if a != b)
    ):
        # str, not bytes: orjson copies it into the response as it is (a 900 KB copy less)
        return orjson.Fragment(_plain_listing(runs, tables))
    return orjson.Fragment(orjson.dumps(table_listing(zip(schemas, tables, strict=True), dialect)))


def _runs(column: Sequence[str]) -> list[tuple[str, int, int]]:
    """``(value, start, end)`` for each run of equal neighbours (catalogs come sorted)."""
    runs: list[tuple[str, int, int]] = []
    start = 0
    for value, run in groupby(column):
        end = start + len(list(run))
        runs.append((value, start, end))
        start = end
    return runs


def _plain_listing(runs: list[tuple[str, int, int]], tables: Sequence[str]) -> str:
    """The JSON of plain names, built as one list of pieces and joined once.

    Within a run of one schema every entry is the table name three times between fixed
    strings, so a run is ``zip`` of the names and those strings, flattened in C: 10,000
    tables cost about a millisecond, where formatting each entry in a Python loop cost
    several. One final join, because each copy of a 900 KB string costs too.
    """
    pieces = ["["]
    for schema, start, end in runs:
        names = tables[start:end]
        head = f'{{"schema":"{schema}","table":"'
        if len(pieces) > 1:
            pieces.append(",")
        pieces.append(head)
        pieces.extend(
            chain.from_iterable(
                zip(
                    names,
                    repeat(f'","normalizedName":"{schema}_'),
                    names,
                    repeat(f'","spec":"{schema}.'),
                    names,
                    repeat(f'"}},{head}'),
                )
            )
        )
        pieces[-1] = '"}'  # the run's last entry closes without opening another
    pieces.append("]")
    return "".join(pieces)


def spec(schema: str | None, table: str, dialect: str) -> str:
    return spec_function(dialect)(schema, table)


def table_expression(schema: str | None, table: str) -> exp.Table:
    """Always quoted: the exact catalog names, whatever they contain."""
    db = exp.to_identifier(schema, quoted=True) if schema else None
    return exp.table_(exp.to_identifier(table, quoted=True), db=db)
