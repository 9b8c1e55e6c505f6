"""Catalog queries straight on the real databases (one query per call, read-only session)."""

from __future__ import annotations

from connhub.catalog import for_dialect
from connhub.kit.egress import EgressPolicy
from connhub.providers.kinds.sql import open_session
from connhub.query.runner import executor_for
from query.fixtures import CustomerDb, maria_customer, pg_customer  # noqa: F401 (fixtures)


async def _tables(db: CustomerDb, include_system: bool) -> list[tuple[str, str, str]]:
    body = db.body()
    conn = await open_session(
        db.provider,
        body["config"],
        body["credentials"],
        egress=EgressPolicy(["127.0.0.1"]),
        timeout_s=5,
    )
    try:
        executor = executor_for(db.provider)
        executor.prepare(conn, 5)
        catalog = for_dialect(db.provider)
        query = catalog.tables_query(include_system)
        rows = executor.catalog(conn, query.sql, query.params, 5)
        return [(t.schema, t.table, t.kind) for t in catalog.tables(rows)]
    finally:
        conn.close()


async def test_pg_partitions_kinds_and_system_schemas(pg_customer) -> None:
    tables = await _tables(pg_customer, include_system=False)
    names = {(s, t): k for s, t, k in tables}
    assert names[("shop", "events")] == "table" and ("shop", "events_2024") not in names
    assert names[("shop", "big_orders")] == "view"
    assert names[("shop", "order_counts")] == "materialized_view"
    assert tables == sorted(tables)
    assert not any(s.startswith("pg_") or s == "information_schema" for s, _, _ in tables)
    with_system = await _tables(pg_customer, include_system=True)
    assert ("pg_catalog", "pg_class", "table") in with_system


async def test_maria_system_schemas(maria_customer) -> None:
    tables = await _tables(maria_customer, include_system=False)
    assert {s for s, _, _ in tables} == {maria_customer.database}
    with_system = await _tables(maria_customer, include_system=True)
    assert "information_schema" in {s for s, _, _ in with_system}
