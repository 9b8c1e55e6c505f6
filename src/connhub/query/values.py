"""Database values made JSON-safe, fast enough for a thousand rows per request.

The choices, and why:

- ``Decimal`` becomes a JSON number when a float carries it exactly (its shortest float
  spelling reads back as the same decimal: ``9.5``, ``0.1``; integral values up to 2**53 as
  integers: ``42``), otherwise a string
  (``12345678901234567890.12``, ``NaN``): clients keep every digit and never get a silently
  rounded amount;
- ``float`` NaN and infinities become the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``
  (JSON has no such numbers; orjson would write ``null`` and lose the difference);
- ``bytes`` (bytea, BLOB, BINARY) become base64 text;
- ``timedelta`` (PostgreSQL ``interval``, MySQL ``TIME``) becomes an ISO 8601 duration;
- dates, times and datetimes stay as they are: orjson writes them in ISO 8601 (aware UTC
  values with ``Z``); UUIDs likewise become their canonical text;
- JSON documents and arrays keep their shape, their members converted the same way;
- anything else (ranges, network addresses, driver-specific objects) becomes ``str(value)``.

Converters are chosen per Python type once and cached, so most values (int, str, None)
cost one dict lookup.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

Converter = Callable[[Any], Any]
_MAX_EXACT_INT = 2**53


def _same(value: Any) -> Any:
    return value


def _decimal(value: Decimal) -> int | float | str:
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):  # "n" (NaN), "N" (sNaN) or "F" (infinity)
        return "NaN" if value.is_nan() else ("Infinity" if value > 0 else "-Infinity")
    if len(digits) <= 15:
        # Up to 15 significant digits a double holds any decimal exactly enough that its
        # shortest spelling reads back as the same value: a JSON number loses nothing.
        if exponent >= 0 or not any(digits[exponent:]):
            return int(value)  # SUM(bigint), numeric(12,0), 100.00
        return float(value)
    number = float(value)
    if math.isfinite(number) and Decimal(repr(number)) == value:
        if number.is_integer() and abs(number) <= _MAX_EXACT_INT:
            return int(number)
        return number
    return str(value)


def decimal_text(text: bytes) -> int | float | str:
    """``_decimal`` for a numeric's text form (``-123.45``, ``NaN``, ``Infinity``)."""
    # At most 16 characters with a final digit: at most 15 digits beside sign and point, and
    # never NaN/Infinity; PostgreSQL writes numerics without exponents.
    if len(text) <= 16 and text[-1:].isdigit() and b"e" not in text and b"E" not in text:
        if b"." not in text:
            return int(text)
        whole, _, fraction = text.partition(b".")
        if not fraction.rstrip(b"0"):
            return int(whole)  # 100.00
        return float(text)  # at most 15 digits: exact as far as JSON can tell
    return _decimal(Decimal(text.decode("ascii")))


def _float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _bytes(value: bytes | bytearray | memoryview) -> str:
    return base64.b64encode(bytes(value)).decode("ascii")


def _timedelta(value: dt.timedelta) -> str:
    """ISO 8601 duration: ``P1DT2H3M4.5S``; negative durations get a leading ``-``."""
    sign = "-" if value < dt.timedelta(0) else ""
    value = abs(value)
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{hours}H" if hours else "", f"{minutes}M" if minutes else ""]
    if value.microseconds:
        parts.append(f"{seconds}.{value.microseconds:06d}".rstrip("0") + "S")
    elif seconds:
        parts.append(f"{seconds}S")
    time = "".join(parts)
    days = f"{value.days}D" if value.days else ""
    if not days and not time:
        return "PT0S"
    return f"{sign}P{days}{'T' + time if time else ''}"


def _list(value: Sequence[Any]) -> list[Any]:
    return [jsonable(item) for item in value]


def _dict(value: dict[Any, Any]) -> dict[str, Any]:
    return {str(key): jsonable(item) for key, item in value.items()}


_CONVERTERS: dict[type, Converter] = {
    str: _same,
    int: _same,
    bool: _same,
    type(None): _same,
    float: _float,
    Decimal: _decimal,
    bytes: _bytes,
    bytearray: _bytes,
    memoryview: _bytes,
    dt.datetime: _same,
    dt.date: _same,
    dt.time: _same,
    dt.timedelta: _timedelta,
    uuid.UUID: str,
    list: _list,
    tuple: _list,
    set: lambda value: _list(sorted(value, key=str)),
    frozenset: lambda value: _list(sorted(value, key=str)),
    dict: _dict,
}


def converter_for(kind: type) -> Converter:
    """The converter for values of type ``kind`` (subclasses resolved once, then cached)."""
    found = _CONVERTERS.get(kind)
    if found is not None:
        return found
    for base, conv in list(_CONVERTERS.items()):
        if base is not type(None) and issubclass(kind, base):
            if base in (str, int) and kind is not bool:
                # str/int subclasses (psycopg enums, IntEnum) keep their plain value.
                found = str if base is str else int
            else:
                found = conv
            break
    else:
        found = str
    _CONVERTERS[kind] = found
    return found


def jsonable(value: Any) -> Any:
    return converter_for(type(value))(value)


def rows_to_dicts(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], *, native: Sequence[bool] = ()
) -> list[dict[str, Any]]:
    """``[{column: value}]`` with every value JSON-safe.

    A column's converter is picked from its first non-NULL value (a column has one type), and
    columns whose values need nothing (int, text, timestamps...) are not touched per row;
    ``native[i]`` marks columns already JSON-native (json/jsonb decoded by the driver). A
    value of another type than its column's first one still gets its own converter.
    """
    width = len(columns)
    todo: list[tuple[int, str, type, Converter]] = []
    for index, name in enumerate(columns):
        if index < len(native) and native[index]:
            continue
        first = next((row[index] for row in rows if row[index] is not None), None)
        if first is None:
            continue
        kind = type(first)
        conv = _CONVERTERS.get(kind) or converter_for(kind)
        # Containers are checked too: a numeric[] or a nested Decimal must be converted.
        if conv is not _same or kind in (list, tuple, dict):
            todo.append((index, name, kind, conv))
    out: list[dict[str, Any]] = []
    for row in rows:
        if len(row) != width:
            raise ValueError("row width does not match the columns")
        record = dict(zip(columns, row, strict=True))
        for index, name, kind, conv in todo:
            value = row[index]
            if value is not None:
                record[name] = conv(value) if type(value) is kind else jsonable(value)
        out.append(record)
    return out


def unique_names(names: Sequence[str]) -> list[str]:
    """Result column names made unique (``a``, ``a_2``...), so no value is lost in a row dict."""
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            candidate = f"{name}_{n}"
        seen.add(candidate)
        out.append(candidate)
    return out
