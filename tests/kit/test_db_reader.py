"""kit.db.Reader: the driver paths (the statement pool on PostgreSQL, sqlite3 on the embedded
store) give the same rows as the SQLAlchemy path."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from connhub.connections import repository as repo
from connhub.connections.schemas import ListQuery
from connhub.kit.db import Reader, SqliteStatements
from connhub.runtime import Runtime
from connhub.workspaces.principal import Principal, Role

STORE = os.environ.get("CONNHUB_TEST_STORE", "sqlite")


async def _create(client: httpx.AsyncClient, caller: Any) -> str:
    resp = await client.post(
        "/api/v1/connections",
        headers=caller.headers,
        json={
            "name": "Warehouse",
            "provider": "postgres",
            "config": {"host": "db.example.com", "port": 5432, "database": "a", "username": "u"},
            "credentials": {"password": "reader-test-secret"},
        },
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


@pytest.mark.skipif(STORE != "postgres", reason="only PostgreSQL stores have a statement pool")
async def test_reads_go_through_the_pool_and_match_the_sqlalchemy_path(
    client: httpx.AsyncClient, runtime: Runtime, admin: Any
) -> None:
    pool = runtime.statement_pool
    assert pool is not None
    cid = await _create(client, admin)
    listed = await client.get("/api/v1/connections", headers=admin.headers)
    got = await client.get(f"/api/v1/connections/{cid}", headers=admin.headers)
    assert listed.status_code == got.status_code == 200
    assert listed.json()["connections"][0] == got.json()
    assert pool.get_size() >= 1
    assert pool.get_idle_size() == pool.get_size()  # every checkout was given back

    principal = _principal(admin)
    async with runtime.reader() as pooled, Reader(runtime.reads) as plain:
        via_pool = await repo.view(pooled, principal, slug="warehouse")
        via_engine = await repo.view(plain, principal, slug="warehouse")
        assert via_pool is not None and via_engine is not None
        secret_pool = await repo.with_secret(pooled, principal, via_pool.id)
        secret_engine = await repo.with_secret(plain, principal, via_pool.id)
    assert tuple(via_pool) == tuple(via_engine)
    config = {"host": "db.example.com", "port": 5432, "database": "a", "username": "u"}
    assert via_pool.config == config
    assert secret_pool is not None and secret_engine is not None
    assert tuple(secret_pool) == tuple(secret_engine)


def _principal(admin: Any) -> Principal:
    return Principal(
        user_id=admin.user_id,
        workspace_id=admin.workspace_id,
        role=Role.admin,
        email="reader@example.com",
    )


@pytest.mark.skipif(STORE == "postgres", reason="the embedded store's own statements")
async def test_embedded_reads_run_on_sqlite3_and_match_the_sqlalchemy_path(
    client: httpx.AsyncClient, runtime: Runtime, admin: Any
) -> None:
    """Same rows, same Python types (UUID, aware UTC datetimes, bool, decoded JSON)."""
    assert runtime.statement_pool is None
    direct = runtime.sqlite_statements
    assert direct is not None
    cid = await _create(client, admin)
    principal = _principal(admin)
    async with runtime.reader() as fast, Reader(runtime.reads) as plain:
        assert plain.dialect.name == "sqlite"
        via_direct = await repo.view(fast, principal, slug="warehouse")
        via_engine = await repo.view(plain, principal, slug="warehouse")
        assert fast._connection is None  # never touched the engine's (only) connection
        secret_direct = await repo.with_secret(fast, principal, via_engine.id)
        secret_engine = await repo.with_secret(plain, principal, via_engine.id)
    assert via_direct is not None and via_engine is not None
    assert tuple(via_direct) == tuple(via_engine)
    assert [type(v) for v in via_direct] == [type(v) for v in via_engine]
    assert str(via_direct.id) == cid
    assert via_direct.created_at.utcoffset() == timedelta(0)
    assert via_direct.is_default is True  # the first postgres connection is the default
    assert via_direct.config == {
        "host": "db.example.com",
        "port": 5432,
        "database": "a",
        "username": "u",
    }
    assert secret_direct is not None and tuple(secret_direct) == tuple(secret_engine)


@pytest.mark.skipif(STORE == "postgres", reason="the embedded store's own statements")
async def test_embedded_reads_go_on_while_a_unit_of_work_holds_the_write_lock_and_writes_wait(
    client: httpx.AsyncClient, runtime: Runtime, admin: Any
) -> None:
    """WAL: a read never waits for the writer. A write finding the lock taken does not fail
    or block the loop: it falls back to the engine's connection, which waits its turn."""
    cid = uuid.UUID(await _create(client, admin))
    principal = _principal(admin)
    direct = runtime.sqlite_statements
    assert direct is not None
    holder = sqlite3.connect(runtime.reads.url.database, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("UPDATE connections SET name = 'held' WHERE id = ?", (cid.hex,))
        async with runtime.reader() as reader:
            row = await repo.view(reader, principal, connection_id=cid)
            assert row is not None and row.name == "Warehouse"  # the last committed state
            assert reader._connection is None

        async def write() -> Any:
            async with runtime.reader() as reader:
                return await repo.update_unless_disabled(
                    reader, principal, cid, {"verification_error": "from the fallback"}
                )

        pending = asyncio.ensure_future(write())
        await asyncio.sleep(0.2)
        assert not pending.done()  # waiting on the engine's busy timeout, not failed
        holder.execute("COMMIT")
        updated = await asyncio.wait_for(pending, 10)
    finally:
        holder.close()
    assert updated is not None
    assert (updated.name, updated.verification_error) == ("held", "from the fallback")
    assert isinstance(updated.id, uuid.UUID)


@pytest.mark.skipif(STORE != "postgres", reason="only PostgreSQL stores have a statement pool")
async def test_pool_sessions_skip_the_wal_flush_wait_and_hold_no_transaction(
    runtime: Runtime,
) -> None:
    """Its statements are reads and bookkeeping writes (verification outcomes) only."""
    async with runtime.reader() as reader:
        driver = await reader.driver()
        assert await driver.fetchval("SHOW synchronous_commit") == "off"
        assert await driver.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
        assert not driver.is_in_transaction()


@pytest.mark.skipif(STORE == "postgres", reason="the embedded store's own statements")
async def test_a_statement_past_the_loop_budget_runs_again_in_a_worker_thread(
    client: httpx.AsyncClient, runtime: Runtime, admin: Any
) -> None:
    """A count or a search over a big workspace must not hold the event loop: past its
    budget of SQLite VM steps the statement is interrupted and rerun off the loop."""
    await _create(client, admin)
    principal = _principal(admin)
    query = ListQuery(q="ware")
    path = runtime.reads.url.database
    assert path is not None
    small = SqliteStatements(path)
    tiny = SqliteStatements(path, loop_ops=5)
    try:
        on_loop = await repo.page(
            Reader(runtime.reads, None, small), principal, query, None, with_total=True
        )
        threaded = await repo.page(
            Reader(runtime.reads, None, tiny), principal, query, None, with_total=True
        )
        assert len(small._opened) == 1  # the loop's own connection only
        assert len(tiny._opened) == 2  # and one a worker thread opened
        assert [tuple(row) for row in threaded] == [tuple(row) for row in on_loop]
        assert [row.name for row in threaded] == ["Warehouse"]
        assert threaded[0].total_count == 1
    finally:
        small.close()
        tiny.close()
