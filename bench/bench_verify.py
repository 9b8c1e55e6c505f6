"""Verification overhead against the raw driver, and budget accuracy against a black hole.

    .venv/bin/python bench/bench_verify.py [--runs 50] [--budget 5]

1. Verifying a stored PostgreSQL connection (the machine's, 127.0.0.1:5432, postgres, trust)
   versus raw ``psycopg.connect`` + ``SELECT 1`` + close, interleaved in one run so both see
   the same machine load. Two figures: the verification itself
   (``verification.service.verify``, what the target is about) and the whole stored path
   (``connections.verify.verify_stored``: read and decrypt the credentials from the store,
   verify, write the outcome back), on an embedded SQLite store in a temp home and on a
   PostgreSQL store (a temporary database), as in production.
   Target: median verify <= 1.3x median raw. On a PostgreSQL store it also prints the
   store's floor: a ``SELECT 1`` after as long an idle as a verification's checks.
2. A loopback host that accepts TCP and never answers, verified with a budget of 5 s.
   Target: the run returns within 10 % of the budget.

Runs on uvloop, as the service does under uvicorn. Only loopback is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import psycopg
import uvloop
from harness import make_tenant  # bench/harness.py (bench/ is on the path)

from connhub.config import Settings
from connhub.connections import service as connections
from connhub.connections.verify import check, prepare, record
from connhub.kit import migrate
from connhub.kit.db import commit
from connhub.kit.egress import EgressPolicy
from connhub.kit.statement_pool import StatementPool
from connhub.runtime import Runtime, build_runtime
from connhub.verification.service import verify
from connhub.workspaces import service as workspaces

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG = {"host": "127.0.0.1", "port": 5432, "database": "postgres", "username": "postgres"}
CREDS = {"password": "unused-under-trust"}
WARMUP = 5


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def tcp_probe() -> None:
    """What the connectivity step adds on the wire: one TCP open and close (PostgreSQL's
    postmaster forks a backend for it, which is most of its cost on a busy machine)."""
    socket.create_connection(("127.0.0.1", 5432), timeout=5).close()


def raw_connect() -> None:
    with psycopg.connect(
        host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=5
    ) as conn:
        conn.execute("SELECT 1").fetchone()


async def overhead(runs: int, label: str, run_verify: Callable[[], Awaitable[bool]]) -> float:
    """Print verify against raw; returns the raw driver's median (seconds)."""

    async def one_verify() -> float:
        started = time.perf_counter()
        success = await run_verify()
        elapsed = time.perf_counter() - started
        if not success:
            raise SystemExit("verification failed")
        return elapsed

    def one_raw(probe: bool = False) -> float:
        started = time.perf_counter()
        if probe:
            tcp_probe()
        raw_connect()
        return time.perf_counter() - started

    for _ in range(WARMUP):
        await one_verify()
        one_raw()
    verified: list[float] = []
    raw: list[float] = []
    # Interleaved so both see the same machine load, in alternating order: each connection
    # leaves a PostgreSQL backend exiting for a moment after close, which slows whatever
    # connects next, so neither side may always go second.
    for i in range(runs):
        if i % 2:
            raw.append(one_raw())
            verified.append(await one_verify())
        else:
            verified.append(await one_verify())
            raw.append(one_raw())
    # Context, measured apart (its extra backend would slow the pair above): the floor a
    # design that probes TCP before every login would have.
    probed = [one_raw(probe=True) for _ in range(runs)]
    med_v, med_r, med_p = (statistics.median(x) for x in (verified, raw, probed))
    print(f"{label}:")
    for name, samples in (
        ("verify (3 steps)              ", verified),
        ("raw psycopg connect+SELECT 1  ", raw),
        ("TCP probe + raw (design floor)", probed),
    ):
        print(
            f"  {name} n={len(samples)}  median {statistics.median(samples) * 1000:7.2f} ms"
            f"  p95 {p95(samples) * 1000:7.2f} ms"
        )
    ratio = med_v / med_r
    verdict = "ok" if ratio <= 1.3 else "MISSED"
    print(f"  ratio median verify / raw        {ratio:.2f}x  (target <= 1.30x: {verdict})")
    print(f"  ratio median verify / probe+raw  {med_v / med_p:.2f}x")
    return med_r


async def idle_round_trip(pool: StatementPool, idle_s: float, runs: int) -> float:
    """Median of one ``SELECT 1`` on the store's statement pool after ``idle_s`` of quiet.

    The stored path's two store statements each come after milliseconds of waiting on the
    network checks (or the caller), when the store's backend has gone idle; on small VMs an
    idle backend answers several times slower than a busy one. This is their floor.
    """
    samples = []
    for _ in range(runs):
        await asyncio.sleep(idle_s)
        async with pool.connection() as connection:
            started = time.perf_counter()
            await connection.fetchval("SELECT 1")
            samples.append(time.perf_counter() - started)
    return statistics.median(samples)


async def blackhole(budget: float, settings: Settings, egress: EgressPolicy) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)  # the kernel completes handshakes; nobody ever answers
        cfg = {**PG, "port": sock.getsockname()[1]}
        started = time.perf_counter()
        outcome = await verify(
            "postgres", cfg, CREDS, settings=settings, egress=egress, budget_s=budget
        )
        elapsed = time.perf_counter() - started
    over = (elapsed - budget) / budget * 100
    print(
        f"blackhole budget {budget:.1f} s  elapsed {elapsed:.3f} s  ({over:+.1f} % vs budget; "
        f"code={outcome.code}; target within 10 %: {'ok' if abs(over) <= 10 else 'MISSED'})"
    )
    print("  steps: " + ", ".join(f"{s.name}={s.status}/{s.duration_ms}ms" for s in outcome.steps))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--budget", type=float, default=5.0)
    args = parser.parse_args()
    settings = Settings(egress_allow=["127.0.0.1"], verify_budget_s=5.0)
    egress = EgressPolicy.from_settings(settings)

    async def engine_only() -> bool:
        outcome = await verify("postgres", PG, CREDS, settings=settings, egress=egress)
        return outcome.success

    await overhead(args.runs, "verification (verification.service.verify)", engine_only)

    for store in ("sqlite", "postgres"):
        home = Path(tempfile.mkdtemp(prefix="connhub-bench-verify-"))
        database = f"connhub_bench_verify_{uuid.uuid4().hex[:8]}" if store == "postgres" else None
        try:
            runtime, stored, phases = await stored_verifier(home, database)
            try:
                label = f"stored connection, {store} store (read + decrypt, verify, record)"
                med_raw = await overhead(args.runs, label, stored)
                print(
                    "  where it goes (medians): "
                    + ", ".join(
                        f"{name} {statistics.median(samples[-args.runs :]) * 1000:.2f} ms"
                        for name, samples in phases.items()
                    )
                )
                if runtime.statement_pool is not None:
                    floor = await idle_round_trip(runtime.statement_pool, med_raw, args.runs)
                    print(
                        f"  store floor: SELECT 1 after {med_raw * 1000:.1f} ms idle, median "
                        f"{floor * 1000:.2f} ms; the path makes two: {2 * floor * 1000:.2f} ms"
                        f" = {2 * floor / med_raw * 100:.0f} % of raw"
                    )
            finally:
                await runtime.close()
        finally:
            shutil.rmtree(home, ignore_errors=True)
            if database is not None:
                with psycopg.connect(ADMIN, autocommit=True) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    await blackhole(args.budget, settings, egress)


async def stored_verifier(
    home: Path, database: str | None
) -> tuple[Runtime, Callable[[], Awaitable[bool]], dict[str, list[float]]]:
    """A connection stored through the service, a call that verifies it by id, and that
    call's time per phase. The call is ``verify_stored``'s three phases (prepare, check,
    record), timed one by one.

    The store is an embedded SQLite file in ``home``, or the PostgreSQL ``database`` (made
    here) as in production.
    """
    url = f"sqlite+aiosqlite:///{home / 'connhub.db'}"
    if database is not None:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{database}"')
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}"
    settings = Settings(
        home=home, database_url=url, egress_allow=["127.0.0.1"], verify_budget_s=5.0
    )
    migrate.upgrade(url)
    runtime: Runtime = await build_runtime(settings)
    token, _ws, _user = await make_tenant(settings, "bench")
    async with runtime.sessions() as session:
        async with runtime.reader() as reader:
            principal = await workspaces.resolve_principal(
                reader, token=token, workspace_header=None
            )
        conn = await connections.create(
            session,
            principal,
            registry=runtime.registry,
            envelope=runtime.envelope,
            name="bench",
            provider="postgres",
            credentials=CREDS,
            config=PG,
        )
        await commit(session)
    connection_id = conn.id

    phases: dict[str, list[float]] = {"read + decrypt": [], "checks": [], "record": []}

    async def run() -> bool:
        started = time.perf_counter()
        prepared = await prepare(runtime, principal, connection_id)
        read = time.perf_counter()
        outcome = await check(runtime, prepared)
        checked = time.perf_counter()
        await record(runtime, principal, prepared, outcome)
        recorded = time.perf_counter()
        for name, elapsed in zip(
            phases, (read - started, checked - read, recorded - checked), strict=True
        ):
            phases[name].append(elapsed)
        return outcome.success

    return runtime, run, phases


if __name__ == "__main__":
    # The loop the service runs on: uvicorn picks uvloop (``uvicorn[standard]``), and
    # asyncpg and psycopg's async connections cost less on it than on asyncio's own loop.
    uvloop.run(main())
