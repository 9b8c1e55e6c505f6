"""kit.prebuilt: SQLite's stored values come back as SQLAlchemy would return them."""

from __future__ import annotations

import pickle
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import Boolean, Column, MetaData, String, Table, Uuid, bindparam, select
from sqlalchemy.dialects import sqlite

from connhub.kit import prebuilt
from connhub.models.base import JSONType, UTCDateTime


def test_uuids_built_from_stored_hex_are_ordinary_uuids() -> None:
    original = uuid.uuid4()
    made = prebuilt._sqlite_uuid(original.hex)
    assert type(made) is uuid.UUID
    assert made == original and hash(made) == hash(original) and str(made) == str(original)
    assert pickle.loads(pickle.dumps(made)) == original
    assert made.is_safe is uuid.SafeUUID.unknown
    assert prebuilt._sqlite_uuid(None) is None


def test_stored_timestamps_read_as_aware_utc() -> None:
    read = UTCDateTime.from_sqlite_text
    assert read("2026-01-02 03:04:05.000006") == datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert read("2026-01-02 03:04:05") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    offset = read("2026-01-02 03:04:05+02:00")
    assert offset == datetime(2026, 1, 2, 1, 4, 5, tzinfo=UTC)
    assert offset is not None and offset.utcoffset() == timedelta(0)
    assert read(None) is None


def test_rows_round_trip_through_sqlite3_like_sqlalchemy() -> None:
    """Bind processing on the way in, conversion on the way out, repeated values included."""
    table = Table(
        "things",
        MetaData(),
        Column("id", Uuid, primary_key=True),
        Column("owner", Uuid),
        Column("at", UTCDateTime),
        Column("flag", Boolean),
        Column("doc", JSONType),
        Column("name", String),
    )
    dialect = sqlite.dialect()
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.execute(
        "CREATE TABLE things (id CHAR(32), owner CHAR(32), at DATETIME, flag BOOLEAN, "
        "doc JSON, name VARCHAR)"
    )
    owner = uuid.uuid4()
    at = datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
    insert = table.insert().values(
        id=bindparam("id"),
        owner=bindparam("owner"),
        at=bindparam("at"),
        flag=bindparam("flag"),
        doc=bindparam("doc"),
        name=bindparam("name"),
    )
    ids = [uuid.uuid4() for _ in range(3)]
    plan = prebuilt.plan(insert, dialect)
    for i, cid in enumerate(ids):
        params = {"id": cid, "owner": owner, "at": at, "flag": i == 1, "doc": {"n": i}, "name": "x"}
        db.execute(plan.sql, plan.values(params))
    db.execute(
        plan.sql,
        plan.values(
            {"id": uuid.uuid4(), "owner": None, "at": None, "flag": None, "doc": None, "name": None}
        ),
    )
    query = (
        select(table).where(table.c.owner == bindparam("owner", type_=Uuid())).order_by(table.c.doc)
    )
    rows = prebuilt.sqlite_execute(db, prebuilt.plan(query, dialect), {"owner": owner})
    assert [row.id for row in rows] == ids
    assert {row.owner for row in rows} == {owner}
    assert all(row.at == at and row.at.tzinfo is UTC for row in rows)
    assert [row.flag for row in rows] == [False, True, False]
    assert [row.doc for row in rows] == [{"n": 0}, {"n": 1}, {"n": 2}]
    everything = prebuilt.sqlite_execute(db, prebuilt.plan(select(table), dialect), {})
    empty = [row for row in everything if row.owner is None]
    assert len(empty) == 1 and (empty[0].at, empty[0].flag, empty[0].doc) == (None, None, None)
