"""Schema browsing and read-only queries against the raw driver, on the machine's PostgreSQL.

    .venv/bin/python bench/bench_schema.py [--tables 10000] [--rows 1000000] [--runs 20]

Setup (psycopg directly): a customer database with ``--tables`` tables in schema ``bench``
(created by one DO block that commits every 500 tables) and ``bench.big`` with ``--rows``
rows (id, label, amount numeric, created timestamptz, meta jsonb). The real app is served by
one uvicorn worker in a subprocess (SQLite store in a temp home), a connection is created and
verified through the API, then, in one run:

1. ``POST /schema/query`` ``SELECT * FROM bench.big`` with the default cap (1,000 rows),
   ``--runs`` times. Peak memory growth of the server process: VmHWM after minus VmRSS
   before (the peak is reset through ``/proc/<pid>/clear_refs`` first). Target <= 30 MB.
   Rows/s against the raw driver fetching the same 1,000 rows (``LIMIT 1001``) and
   JSON-encoding them with orjson (Decimal as str), interleaved. Target >= 50 %.
2. ``GET /schema/tables`` against the raw catalog query (the same ``pg_catalog`` SQL run by
   psycopg on an open connection), interleaved. Target: median < 0.5 s and <= 1.5x raw.

Only 127.0.0.1 is contacted. Everything created is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
from harness import make_tenant, served  # bench/harness.py (bench/ is on the path)

from connhub.catalog import postgres as pg_catalog
from connhub.config import Settings
from connhub.kit import migrate

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def build_customer(name: str, tables: int, rows: int) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    started = time.perf_counter()
    with psycopg.connect(ADMIN.rsplit("/", 1)[0] + f"/{name}", autocommit=True) as conn:
        conn.execute("CREATE SCHEMA bench")
        conn.execute(
            f"""DO $$ BEGIN
                  FOR i IN 1..{tables} LOOP
                    EXECUTE format('CREATE TABLE bench.t_%s (id int, name text, amount numeric)',
                                   i);
                    IF i % 500 = 0 THEN COMMIT; END IF;
                  END LOOP;
                END $$"""
        )
        made = time.perf_counter()
        conn.execute(
            f"""CREATE TABLE bench.big AS
                SELECT g AS id, md5(g::text) AS label, (g * 1.25)::numeric(12, 2) AS amount,
                       now() - g * interval '1 second' AS created,
                       jsonb_build_object('n', g, 'even', g % 2 = 0) AS meta
                FROM generate_series(1, {rows}) AS g"""
        )
        conn.execute("VACUUM ANALYZE bench.big")
    print(
        f"setup: {tables} tables in {made - started:.1f} s, "
        f"{rows:,} rows in {time.perf_counter() - made:.1f} s"
    )


def drop_customer(name: str) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def memory_kb(pid: int) -> dict[str, int]:
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def reset_peak(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def timed(call: Any) -> float:
    started = time.perf_counter()
    resp = call()
    assert resp.status_code == 200, resp.text
    return time.perf_counter() - started


def raw_fetch(conn: psycopg.Connection[Any], limit: int) -> int:
    """What a hand-written endpoint would do: fetch, make dicts, JSON-encode."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT * FROM bench.big LIMIT {limit + 1}")  # noqa: S608 (int)
        names = [d.name for d in cur.description or ()]
        rows = cur.fetchmany(limit + 1)
    body = orjson.dumps([dict(zip(names, row, strict=True)) for row in rows[:limit]], default=str)
    return len(body)


def raw_catalog(conn: psycopg.Connection[Any]) -> int:
    query = pg_catalog.tables_query(False)
    with conn.cursor() as cur:
        cur.execute(query.sql, query.params)  # type: ignore[arg-type]
        return len(cur.fetchall())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tables", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    customer = f"connhub_bench_schema_{uuid.uuid4().hex[:8]}"
    home = Path(tempfile.mkdtemp(prefix="connhub-bench-schema-"))
    url = f"sqlite+aiosqlite:///{home / 'connhub.db'}"
    settings = Settings(home=home, database_url=url)
    try:
        build_customer(customer, args.tables, args.rows)
        migrate.upgrade(url)
        token, _ws, _user = asyncio.run(make_tenant(settings, "bench"))
        env = {
            **os.environ,
            "CONNHUB_HOME": str(home),
            "CONNHUB_DATABASE_URL": url,
            "CONNHUB_LOG_LEVEL": "WARNING",
            "CONNHUB_EGRESS_ALLOW": "127.0.0.1",
            "CONNHUB_RATE_LIMIT_ENABLED": "false",
        }
        with served(env) as (base, pid):
            run(base, token, pid, customer, args)
    finally:
        shutil.rmtree(home, ignore_errors=True)
        drop_customer(customer)


def run(base: str, token: str, pid: int, customer: str, args: argparse.Namespace) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    body = {
        "name": "bench",
        "provider": "postgres",
        "config": {"host": "127.0.0.1", "port": 5432, "database": customer, "username": "postgres"},
        "credentials": {"password": "unused-under-trust"},
    }
    raw = psycopg.connect(ADMIN.rsplit("/", 1)[0] + f"/{customer}", autocommit=True)
    with httpx.Client(base_url=base, headers=headers, timeout=60) as api:
        cid = api.post("/api/v1/connections", json=body).json()["id"]
        status = api.post(f"/api/v1/connections/{cid}/verify").json()["status"]
        assert status == "active", status
        query = f"/api/v1/connections/{cid}/schema/query"
        sql = {"sql": "SELECT * FROM bench.big"}

        # 1. the big query: memory and rows/s -------------------------------------------------
        for _ in range(3):
            warm = api.post(query, json={"sql": "SELECT 1"})
            assert warm.status_code == 200, warm.text
            raw_fetch(raw, 1000)
        peak_reset = reset_peak(pid)
        before = memory_kb(pid)
        ours_s: list[float] = []
        raw_s: list[float] = []
        for _ in range(args.runs):
            started = time.perf_counter()
            resp = api.post(query, json=sql)
            ours_s.append(time.perf_counter() - started)
            data = resp.json()
            assert resp.status_code == 200 and data["rowCount"] == 1000 and data["truncated"]
            started = time.perf_counter()
            raw_fetch(raw, 1000)
            raw_s.append(time.perf_counter() - started)
        after = memory_kb(pid)
        growth_mb = (after["VmHWM"] - before["VmRSS"]) / 1024
        ours_rps = 1000 / statistics.median(ours_s)
        raw_rps = 1000 / statistics.median(raw_s)
        print(f"query over {args.rows:,} rows, default cap 1,000 rows, {args.runs} runs:")
        print(
            f"  server RSS before {before['VmRSS'] / 1024:.1f} MB, peak after "
            f"{after['VmHWM'] / 1024:.1f} MB (peak reset: {peak_reset})"
        )
        print(f"  peak memory growth   {growth_mb:7.1f} MB   (target <= 30 MB)")
        print(
            f"  endpoint median      {statistics.median(ours_s) * 1000:7.1f} ms "
            f"-> {ours_rps:9.0f} rows/s"
        )
        print(
            f"  raw fetch+JSON median{statistics.median(raw_s) * 1000:7.1f} ms "
            f"-> {raw_rps:9.0f} rows/s"
        )
        print(f"  endpoint / raw       {ours_rps / raw_rps:7.1%}   (target >= 50%)")
        one = [timed(lambda: api.post(query, json={**sql, "maxRows": 1})) for _ in range(args.runs)]
        get = [timed(lambda: api.get(f"/api/v1/connections/{cid}")) for _ in range(args.runs)]
        print(
            f"  (same query with maxRows=1: {statistics.median(one) * 1000:.1f} ms; "
            f"GET /connections/{{id}}: {statistics.median(get) * 1000:.1f} ms)"
        )

        # 2. the tables listing -----------------------------------------------------------------
        tables = f"/api/v1/connections/{cid}/schema/tables"
        for _ in range(3):
            assert len(api.get(tables).json()["tables"]) == args.tables + 1
            raw_catalog(raw)
        ours_t: list[float] = []
        raw_t: list[float] = []
        for _ in range(args.runs):
            started = time.perf_counter()
            resp = api.get(tables)
            ours_t.append(time.perf_counter() - started)
            assert resp.status_code == 200
            started = time.perf_counter()
            raw_catalog(raw)
            raw_t.append(time.perf_counter() - started)
        med_ours, med_raw = statistics.median(ours_t), statistics.median(raw_t)
        print(f"tables endpoint, {args.tables + 1:,} tables, {args.runs} runs:")
        print(f"  endpoint median      {med_ours * 1000:7.1f} ms   (target < 500 ms)")
        print(f"  raw catalog median   {med_raw * 1000:7.1f} ms")
        print(f"  endpoint / raw       {med_ours / med_raw:7.2f}x  (target <= 1.5x)")
    raw.close()


if __name__ == "__main__":
    main()
