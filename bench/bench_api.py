"""Connections API throughput and latency against a bare endpoint on the same server.

Seeds 1,000 connections, serves the real app with one uvicorn worker, and drives it with wrk
(16 connections, one load thread) for: a bare FastAPI hello endpoint, the list endpoint (limit 50)
and get-by-id. Then seeds 100,000 connections in a second store served the same way and
compares cursor-mode paging p99 there with the 1,000 case. Prints req/s, p99 and the ratios
against the targets; each comparison is measured in interleaved rounds (medians reported,
every round shown).

    .venv/bin/python bench/bench_api.py [--store postgres|sqlite|both] [--seconds 10] [--rounds 3]
                                        [--rate-limit off|on]

Both stores by default, PostgreSQL (production) first. Rate limiting is off in the servers
(``CONNHUB_RATE_LIMIT_ENABLED=false``): wrk's load would be refused with 429s after the first
burst, and the figures are the endpoints'. ``--rate-limit on`` keeps it on with limits no run
reaches, to measure what the limiter adds to each request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
from harness import make_tenant, served  # bench/harness.py (bench/ is on the path)
from sqlalchemy import create_engine, insert

from connhub.config import Settings
from connhub.kit import migrate
from connhub.kit.db import sync_url
from connhub.models import Connection

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
UNREACHABLE_LIMIT = str(10**9)  # per minute and per second, for --rate-limit on


def seed(url: str, workspace_id: uuid.UUID, user_id: uuid.UUID, n: int) -> list[uuid.UUID]:
    engine = create_engine(sync_url(url))
    now = datetime.now(UTC)
    ids = []
    rows = []
    providers = ["postgres", "mysql", "snowflake", "s3", "shopify"]
    for i in range(n):
        cid = uuid.uuid4()
        ids.append(cid)
        rows.append(
            {
                "id": cid,
                "workspace_id": workspace_id,
                "name": f"Connection {i:06d}",
                "slug": f"connection-{i:06d}",
                "provider": providers[i % 5],
                "config": {
                    "host": f"db{i}.example.com",
                    "port": 5432,
                    "database": "analytics",
                    "username": "svc",
                },
                "credential_keys": ["password"],
                "status": "active" if i % 3 else "error",
                "visibility": "global" if i % 2 else "private",
                "is_default": False,
                "is_from_template": False,
                "created_by": user_id,
                "updated_by": user_id,
                "created_at": now - timedelta(seconds=i),
                "updated_at": now,
                "last_verified_at": now if i % 2 else None,
                "verification_details": {
                    "checkedAt": now.isoformat(),
                    "durationMs": 12,
                    "checks": [{"name": "connectivity", "status": "passed", "message": "ok"}],
                    "identity": {},
                },
                "face_data": {},
            }
        )
    with engine.begin() as conn:
        for start in range(0, n, 5000):
            conn.execute(insert(Connection), rows[start : start + 5000])
    # What autovacuum / a maintained SQLite file would have done: fresh statistics, and (on
    # PostgreSQL) a visibility map so counts are index-only.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE")
    engine.dispose()
    return ids


def wrk(url: str, token: str, seconds: int, script: str | None = None) -> tuple[float, float]:
    cmd = [
        "wrk",
        "-t1",  # one load thread: the 2 cores go to the server and its store
        "-c16",
        f"-d{seconds}s",
        "--latency",
        "-H",
        f"Authorization: Bearer {token}",
    ]
    if script:
        cmd += ["-s", script]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99_raw = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99_raw, out
    value, unit = float(p99_raw.group(1)), p99_raw.group(2)
    p99_ms = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"wrk saw {non2xx.group(1)} error responses for {url}")
    return rps, p99_ms


def cursor_paths(base: str, token: str, limit: int, pages: int) -> list[str]:
    """Walk the list in cursor mode and keep ``pages`` cursors spread over the whole walk."""
    paths, cursor = [], ""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as c:
        while cursor is not None:
            paths.append(f"/api/v1/connections?limit={limit}&cursor={cursor}")
            cursor = c.get("/api/v1/connections", params={"limit": 100, "cursor": cursor}).json()[
                "nextCursor"
            ]
    step = max(1, len(paths) // pages)
    return paths[::step][:pages]


def lua_rotating(paths: list[str], path: Path) -> str:
    quoted = ",\n".join(json.dumps(p) for p in paths)
    path.write_text(
        f"paths = {{\n{quoted}\n}}\ncounter = 0\nrequest = function()\n"
        "  counter = counter + 1\n"
        "  return wrk.format(nil, paths[(counter % #paths) + 1])\nend\n"
    )
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate-limit", choices=["off", "on"], default="off")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    rate_limit = args.rate_limit == "on"
    if rate_limit:
        print(f"rate limiting ON (limits {UNREACHABLE_LIMIT}/min, /s: never reached)")
    else:
        print("rate limiting disabled (CONNHUB_RATE_LIMIT_ENABLED=false): endpoint figures only")
    # PostgreSQL first: the production store, where the targets are meant to hold.
    for store in ("postgres", "sqlite") if args.store == "both" else (args.store,):
        bench_store(store, args.seconds, args.big, args.rounds, rate_limit)


@contextmanager
def store_for(store: str) -> Iterator[tuple[Path, str]]:
    """A fresh, migrated store in a temp home: ``(home, database URL)``; dropped afterwards."""
    home = Path(tempfile.mkdtemp(prefix="connhub-bench-"))
    pg_db = None
    if store == "postgres":
        pg_db = f"connhub_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(ADMIN, autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{pg_db}"')
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{pg_db}"
    else:
        url = f"sqlite+aiosqlite:///{home / 'connhub.db'}"
    migrate.upgrade(url)
    try:
        yield home, url
    finally:
        shutil.rmtree(home, ignore_errors=True)
        if pg_db:
            with psycopg.connect(ADMIN, autocommit=True) as c:
                c.execute(f'DROP DATABASE "{pg_db}" WITH (FORCE)')


def server_env(home: Path, url: str, rate_limit: bool) -> dict[str, str]:
    limits = (
        {
            "CONNHUB_RATE_LIMIT_ENABLED": "true",
            "CONNHUB_RATE_LIMIT_PER_MINUTE": UNREACHABLE_LIMIT,
            "CONNHUB_RATE_LIMIT_BURST_PER_SECOND": UNREACHABLE_LIMIT,
            "CONNHUB_CONNECTIONS_RATE_LIMIT_PER_MINUTE": UNREACHABLE_LIMIT,
            "CONNHUB_CONNECTIONS_RATE_LIMIT_BURST_PER_SECOND": UNREACHABLE_LIMIT,
        }
        if rate_limit
        else {"CONNHUB_RATE_LIMIT_ENABLED": "false"}
    )
    return {
        **os.environ,
        "CONNHUB_HOME": str(home),
        "CONNHUB_DATABASE_URL": url,
        "CONNHUB_LOG_LEVEL": "WARNING",
        **limits,
    }


def bench_store(store: str, seconds: int, big_rows: int, rounds: int, rate_limit: bool) -> None:
    with store_for(store) as (home, url):
        settings = Settings(home=home, database_url=url)
        small_token, small_ws, small_user = asyncio.run(make_tenant(settings, "small"))
        ids = seed(url, small_ws, small_user, 1000)
        with served(server_env(home, url, rate_limit)) as (base, _pid):
            endpoints_vs_bare(store, base, small_token, ids, seconds, rounds)
            small_paths = cursor_paths(base, small_token, 50, 20)
            with store_for(store) as (big_home, big_url):
                big_settings = Settings(home=big_home, database_url=big_url)
                big_token, big_ws, big_user = asyncio.run(make_tenant(big_settings, "big"))
                started = time.perf_counter()
                seed(big_url, big_ws, big_user, big_rows)
                print(f"  seeded {big_rows} connections in {time.perf_counter() - started:.1f} s")
                with served(server_env(big_home, big_url, rate_limit)) as (big_base, _big_pid):
                    big_paths = cursor_paths(big_base, big_token, 50, 200)
                    cursor_small_vs_big(
                        (base, small_token, small_paths),
                        (big_base, big_token, big_paths),
                        big_rows,
                        seconds,
                        rounds,
                    )


def endpoints_vs_bare(
    store: str, base: str, token: str, ids: list[uuid.UUID], seconds: int, rounds: int
) -> None:
    s = seconds
    print(f"store={store}  one uvicorn worker (uvloop, httptools), wrk -t1 -c16 -d{s}s")
    endpoints = [
        ("bare hello", "/bench/hello"),
        ("list limit=50", "/api/v1/connections?limit=50"),
        ("get by id", f"/api/v1/connections/{ids[500]}"),
    ]
    for _label, path in endpoints:
        wrk(base + path, token, 2)  # warm-up
    # This VM's speed drifts by a third from one minute to the next, so the three are
    # measured in interleaved rounds and each figure is the median over the rounds.
    runs: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in endpoints}
    for round_no in range(1, rounds + 1):
        for label, path in endpoints:
            runs[label].append(wrk(base + path, token, s))
        print(
            f"  round {round_no}: "
            + "   ".join(
                f"{label} {rps:.0f} req/s p99 {p99:.1f} ms"
                for label, (rps, p99) in ((k, v[-1]) for k, v in runs.items())
            )
        )
    results = {
        label: (statistics.median(r for r, _ in got), statistics.median(p for _, p in got))
        for label, got in runs.items()
    }
    for label, (rps, p99) in results.items():
        print(f"  {label:<16} {rps:9.0f} req/s   p99 {p99:7.2f} ms   (median of {rounds})")
    hello = results["bare hello"][0]
    list_ratio = results["list limit=50"][0] / hello
    get_ratio = results["get by id"][0] / hello
    list_p99 = results["list limit=50"][1]
    print(f"  list / bare  = {list_ratio:6.1%}   (target >= 8%: {_verdict(list_ratio >= 0.08)})")
    print(f"  get  / bare  = {get_ratio:6.1%}   (target >= 20%: {_verdict(get_ratio >= 0.2)})")
    print(f"  list p99     = {list_p99:.2f} ms (target < 50 ms: {_verdict(list_p99 < 50)})")


def cursor_small_vs_big(
    small: tuple[str, str, list[str]],
    big: tuple[str, str, list[str]],
    big_rows: int,
    seconds: int,
    rounds: int,
) -> None:
    """Cursor-mode paging on a 1,000-connection store and on a ``big_rows`` one.

    Each store has its own server (same settings), and the two are driven in alternating
    rounds, so both see the same stretches of this VM's drifting speed; medians reported.
    """
    tmp = Path(tempfile.mkdtemp())
    sides = {"1,000 rows": small, f"{big_rows:,} rows": big}
    scripts = {
        label: lua_rotating(paths, tmp / f"{i}.lua")
        for i, (label, (_base, _token, paths)) in enumerate(sides.items())
    }
    for label, (base, token, _paths) in sides.items():
        wrk(base + "/", token, 2, scripts[label])  # warm-up
    runs: dict[str, list[tuple[float, float]]] = {label: [] for label in sides}
    for round_no in range(1, rounds + 1):
        order = list(sides) if round_no % 2 else list(sides)[::-1]
        for label in order:
            base, token, _paths = sides[label]
            runs[label].append(wrk(base + "/", token, seconds, scripts[label]))
        print(
            f"  cursor round {round_no}: "
            + "   ".join(
                f"{label} {runs[label][-1][0]:.0f} req/s p99 {runs[label][-1][1]:.1f} ms"
                for label in sides
            )
        )
    medians = {
        label: (statistics.median(r for r, _ in got), statistics.median(p for _, p in got))
        for label, got in runs.items()
    }
    for label, (rps, p99) in medians.items():
        print(f"  cursor paging, {label:<13} {rps:7.0f} req/s  p99 {p99:6.2f} ms")
    small_label, big_label = sides
    ratio = medians[big_label][1] / medians[small_label][1]
    print(f"  p99 ratio big/small = {ratio:.2f}x (target <= 1.5x: {_verdict(ratio <= 1.5)})")


def _verdict(met: bool) -> str:
    return "ok" if met else "MISSED"


if __name__ == "__main__":
    main()
