"""Database values to JSON: exact numbers stay numbers, the rest keeps every digit."""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import uuid
from decimal import Decimal

import orjson
import pytest

from connhub.kit.responses import dumps
from connhub.query.values import decimal_text, jsonable, rows_to_dicts, unique_names


class Colour(enum.StrEnum):
    red = "red"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("9.5"), 9.5),
        (Decimal("0.1"), 0.1),
        (Decimal("500500"), 500500),
        (Decimal("100.00"), 100),
        (Decimal("12345678901234567890.12"), "12345678901234567890.12"),
        (Decimal("123456789012345678901234567890"), "123456789012345678901234567890"),
        (Decimal("1E-30"), 1e-30),
        (Decimal("NaN"), "NaN"),
        (Decimal("-Infinity"), "-Infinity"),
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (0.25, 0.25),
        (b"\x00\xff", "AP8="),
        (memoryview(b"ab"), "YWI="),
        (bytearray(b"ab"), "YWI="),
        (dt.timedelta(days=1, hours=2, minutes=3, seconds=4, microseconds=500000), "P1DT2H3M4.5S"),
        (dt.timedelta(0), "PT0S"),
        (-dt.timedelta(minutes=5), "-PT5M"),
        (dt.timedelta(days=2), "P2D"),
        (uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        ([Decimal("1.5"), None, b"a"], [1.5, None, "YQ=="]),
        ({"a": [Decimal("2")], 3: "x"}, {"a": [2], "3": "x"}),
        ({"b", "a"}, ["a", "b"]),
        (ipaddress.ip_address("10.0.0.1"), "10.0.0.1"),
        (Colour.red, "red"),
        (True, True),
        (None, None),
    ],
)
def test_jsonable(value: object, expected: object) -> None:
    got = jsonable(value)
    assert got == expected and type(got) is type(expected)


def test_datetimes_are_left_to_orjson() -> None:
    aware = dt.datetime(2024, 5, 1, 10, 30, tzinfo=dt.UTC)
    row = rows_to_dicts(["a", "b", "c"], [(aware, dt.date(2024, 5, 1), dt.time(1, 2))])
    assert orjson.loads(dumps(row)) == [
        {"a": "2024-05-01T10:30:00Z", "b": "2024-05-01", "c": "01:02:00"}
    ]


def test_rows_and_unique_names() -> None:
    names = unique_names(["a", "a", "b", "a_2"])
    assert names == ["a", "a_2", "b", "a_2_2"]
    assert rows_to_dicts(["x", "y"], [(1, Decimal("2.5"))]) == [{"x": 1, "y": 2.5}]


@pytest.mark.parametrize(
    "text",
    [
        b"9.50",
        b"100.00",
        b"-0.5",
        b"0",
        b"-12.000",
        b"123456789012345",
        b"1234567890123456",
        b"0.000001",
        b"-1.2345678901234",
        b"12345678901234567890.12",
        b"NaN",
        b"Infinity",
        b"-Infinity",
        b"99999999999999999999",
    ],
)
def test_numeric_text_matches_decimal_conversion(text: bytes) -> None:
    fast, slow = decimal_text(text), jsonable(Decimal(text.decode()))
    assert fast == slow and type(fast) is type(slow)
