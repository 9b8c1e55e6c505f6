"""kit.db.Reader: the statement pool on PostgreSQL gives the same rows as the SQLAlchemy path."""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest

from connhub.connections import repository as repo
from connhub.kit.db import Reader
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

    principal = Principal(
        user_id=admin.user_id,
        workspace_id=admin.workspace_id,
        role=Role.admin,
        email="reader@example.com",
    )
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


@pytest.mark.skipif(STORE == "postgres", reason="the embedded store has no statement pool")
def test_the_embedded_store_reads_through_sqlalchemy(runtime: Runtime) -> None:
    assert runtime.statement_pool is None


@pytest.mark.skipif(STORE != "postgres", reason="only PostgreSQL stores have a statement pool")
async def test_pool_sessions_skip_the_wal_flush_wait_and_hold_no_transaction(
    runtime: Runtime,
) -> None:
    """Its statements are reads and bookkeeping writes (verification outcomes) only."""
    async with runtime.reader() as reader:
        driver = await reader.driver()
        assert await driver.fetchval("SHOW synchronous_commit") == "off"
        assert not driver.is_in_transaction()
