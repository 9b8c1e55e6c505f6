"""Pooling through the API on the real PostgreSQL: reuse, bounds, invalidation, shutdown."""

from __future__ import annotations

import asyncio

import psycopg

from query.api_helpers import BASE, activated, app_client, eventually, run_sql
from query.fixtures import CustomerDb, pg_customer  # noqa: F401 (fixture)


def backends(db: CustomerDb) -> set[int]:
    """PIDs of connhub sessions on the customer database."""
    with psycopg.connect(db.admin_dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'connhub' AND pid <> pg_backend_pid()"
        ).fetchall()
    return {int(r[0]) for r in rows}


async def pid(client, caller, cid: str) -> int:
    resp = await run_sql(client, caller, cid, "SELECT pg_backend_pid() AS pid")
    assert resp.status_code == 200, resp.text
    return int(resp.json()["rows"][0]["pid"])


async def test_browsing_reuses_one_session(client, admin, pg_customer) -> None:
    cid = await activated(client, admin, pg_customer.body())
    first = await pid(client, admin, cid)
    await client.get(f"{BASE}/{cid}/schema/tables", headers=admin.headers)
    await client.get(
        f"{BASE}/{cid}/schema/columns",
        params={"schema": "shop", "table": "orders"},
        headers=admin.headers,
    )
    assert await pid(client, admin, cid) == first


async def test_concurrent_queries_stay_within_the_pool_size(
    client, admin, pg_customer, settings
) -> None:
    cid = await activated(client, admin, pg_customer.body())
    sql = "SELECT pg_backend_pid() AS pid, pg_sleep(0.2) AS s"
    responses = await asyncio.gather(*(run_sql(client, admin, cid, sql) for _ in range(6)))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    pids = {r.json()["rows"][0]["pid"] for r in responses}
    assert 1 <= len(pids) <= settings.pool_size_per_connection


async def test_patch_of_config_replaces_the_sessions(client, admin, pg_customer) -> None:
    cid = await activated(client, admin, pg_customer.body())
    old = await pid(client, admin, cid)
    patched = await client.patch(
        f"{BASE}/{cid}", json={"config": {"sslMode": "disable"}}, headers=admin.headers
    )
    assert patched.json()["status"] == "needs_verification"
    refused = await run_sql(client, admin, cid, "SELECT 1")
    assert refused.status_code == 400 and refused.json()["code"] == "invalid_state"
    await client.post(f"{BASE}/{cid}/verify", headers=admin.headers)
    new = await pid(client, admin, cid)
    assert new != old
    assert await eventually(lambda: old not in backends(pg_customer))


async def test_disable_and_delete_close_the_sessions_at_once(client, admin, pg_customer) -> None:
    """Not when they would next idle out: a removed connection leaves nothing open."""
    cid = await activated(client, admin, pg_customer.body())
    first = await pid(client, admin, cid)
    disabled = await client.post(f"{BASE}/{cid}/disable", headers=admin.headers)
    assert disabled.status_code == 200
    assert await eventually(lambda: first not in backends(pg_customer))

    other = await activated(client, admin, pg_customer.body())
    second = await pid(client, admin, other)
    assert (await client.delete(f"{BASE}/{other}", headers=admin.headers)).status_code == 204
    assert await eventually(lambda: second not in backends(pg_customer))


async def test_dropped_session_is_replaced_transparently(client, admin, pg_customer) -> None:
    cid = await activated(client, admin, pg_customer.body())
    old = await pid(client, admin, cid)
    with psycopg.connect(pg_customer.admin_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (old,))
    assert await eventually(lambda: old not in backends(pg_customer))
    new = await pid(client, admin, cid)  # one retry on a fresh session, no error
    assert new != old


async def test_idle_sessions_close_and_shutdown_closes_all(
    settings, runtime, make_caller, pg_customer
) -> None:
    admin = await make_caller()
    quick = settings.model_copy(update={"pool_idle_s": 0.3})
    async with app_client(quick) as (_app, client):
        cid = await activated(client, admin, pg_customer.body())
        first = await pid(client, admin, cid)
        assert first in backends(pg_customer)
        assert await eventually(lambda: first not in backends(pg_customer))
    slow = settings.model_copy(update={"pool_idle_s": 300})
    async with app_client(slow) as (_app, client):
        held = await pid(client, admin, cid)
        assert held in backends(pg_customer)
    assert await eventually(lambda: held not in backends(pg_customer))


async def test_upstream_failure_is_502_and_redacted(client, admin, pg_customer, settings) -> None:
    cid = await activated(client, admin, pg_customer.body())
    await pid(client, admin, cid)
    held = backends(pg_customer)
    server = pg_customer.admin_dsn.rsplit("/", 1)[0] + "/postgres"
    # Make every new session fail: the database stops accepting connections, then ours die.
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{pg_customer.database}" ALLOW_CONNECTIONS false')
        for p in held:
            conn.execute("SELECT pg_terminate_backend(%s)", (p,))
    try:
        resp = await run_sql(client, admin, cid, "SELECT 1")
        assert resp.status_code == 502, resp.text
        assert resp.json()["code"] in ("invalid_config", "provider_error", "network_unreachable")
        assert "unused-under-trust" not in resp.text
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{pg_customer.database}" ALLOW_CONNECTIONS true')
