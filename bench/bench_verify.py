"""Verification overhead against the raw driver, and budget accuracy against a black hole.

    .venv/bin/python bench/bench_verify.py [--runs 50] [--budget 5]

1. ``verification.service.verify`` on the machine's PostgreSQL (127.0.0.1:5432, postgres,
   trust) versus raw ``psycopg.connect`` + ``SELECT 1`` + close, interleaved in one run so
   both see the same machine load. Target: median verify <= 1.3x median raw.
2. A loopback host that accepts TCP and never answers, verified with a budget of 5 s.
   Target: the run returns within 10 % of the budget.

Only loopback is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import time

import psycopg

from connhub.config import Settings
from connhub.kit.egress import EgressPolicy
from connhub.verification.service import verify

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


async def overhead(runs: int, settings: Settings, egress: EgressPolicy) -> None:
    async def one_verify() -> float:
        started = time.perf_counter()
        outcome = await verify("postgres", PG, CREDS, settings=settings, egress=egress)
        elapsed = time.perf_counter() - started
        if not outcome.success:
            raise SystemExit(f"verification failed: {outcome.code}: {outcome.message}")
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
        one_raw(probe=True)
    verified: list[float] = []
    raw: list[float] = []
    probed: list[float] = []
    for _ in range(runs):  # interleaved: same machine load for all three
        verified.append(await one_verify())
        raw.append(one_raw())
        probed.append(one_raw(probe=True))
    med_v, med_r, med_p = (statistics.median(x) for x in (verified, raw, probed))
    for label, samples in (
        ("verify (service, 3 steps)     ", verified),
        ("raw psycopg connect+SELECT 1  ", raw),
        ("TCP probe + raw (design floor)", probed),
    ):
        print(
            f"{label} n={len(samples)}  median {statistics.median(samples) * 1000:7.2f} ms"
            f"  p95 {p95(samples) * 1000:7.2f} ms"
        )
    ratio = med_v / med_r
    verdict = "ok" if ratio <= 1.3 else "MISSED"
    print(f"ratio median verify / raw          {ratio:.2f}x  (target <= 1.30x: {verdict})")
    print(f"ratio median verify / probe+raw    {med_v / med_p:.2f}x")


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
    await overhead(args.runs, settings, egress)
    await blackhole(args.budget, settings, egress)


if __name__ == "__main__":
    asyncio.run(main())
