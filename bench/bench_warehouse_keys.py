"""What the key size costs a warehouse-connection create, end to end and raw.

    .venv/bin/python bench/bench_warehouse_keys.py [--runs 10] [--sizes 2048,3072,4096]

For each RSA size: ``--runs`` creates (``POST …/warehouse-connections/``) through the real
app over ASGI on a throw-away SQLite store, deleting the connection between creates, plus
``--runs`` bare ``rsa.generate_private_key`` calls for comparison. Prints median and p95 in
milliseconds. RSA generation time has a long tail (it searches for primes), so p95 moves
between runs far more than the median; quote medians, and the run count with any p95.

Nothing leaves the process (no network at all).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from connhub.app import create_app
from connhub.config import Settings
from connhub.kit import migrate
from connhub.kit.db import commit
from connhub.workspaces import service as workspaces
from connhub.workspaces.principal import Role

BODY = {"type": "snowflake", "account_identifier": "xy12345.us-east-1"}


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def row(label: str, samples: list[float]) -> str:
    ms = [s * 1000 for s in samples]
    return (
        f"  {label:<28} median {statistics.median(ms):8.1f} ms   p95 {p95(ms):8.1f} ms"
        f"   min {min(ms):8.1f}   max {max(ms):8.1f}"
    )


async def creates(home: Path, bits: int, runs: int) -> list[float]:
    settings = Settings(
        home=home,
        database_url=f"sqlite+aiosqlite:///{home / 'bench.db'}",
        key_file=home / "master.key",
        warehouse_key_bits=bits,
        rate_limit_enabled=False,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        async with runtime.sessions() as session:
            ws = await workspaces.create_workspace(session, name=f"bench {bits}")
            token, _, _ = await workspaces.create_token(
                session, workspace_ref=ws.slug, email=f"bench-{bits}@example.com", role=Role.admin
            )
            await commit(session)
        url = f"/api/v1/organisations/{ws.slug}/integrations/warehouse-connections/"
        headers = {"Authorization": f"Token {token}"}
        transport = httpx.ASGITransport(app=app)
        samples: list[float] = []
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers=headers, timeout=60
        ) as client:
            for _ in range(runs + 1):  # the first is a warm-up (imports, first queries)
                started = time.perf_counter()
                resp = await client.post(url, json=BODY)
                elapsed = time.perf_counter() - started
                if resp.status_code != 201:
                    raise SystemExit(f"create failed: {resp.status_code} {resp.text}")
                samples.append(elapsed)
                deleted = await client.delete(f"{url}{resp.json()['id']}/")
                if deleted.status_code != 204:
                    raise SystemExit(f"delete failed: {deleted.status_code} {deleted.text}")
    return samples[1:]


def raw(bits: int, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        rsa.generate_private_key(public_exponent=65537, key_size=bits)
        samples.append(time.perf_counter() - started)
    return samples


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--sizes", default="2048,3072,4096")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"warehouse-connection create vs raw RSA generation, {args.runs} runs per size")
    with tempfile.TemporaryDirectory(prefix="connhub-bench-") as tmp:
        home = Path(tmp)
        migrate.upgrade(f"sqlite+aiosqlite:///{home / 'bench.db'}")
        for bits in sizes:
            api = await creates(home, bits, args.runs)
            gen = raw(bits, args.runs)
            print(f"{bits} bits")
            print(row("POST create (ASGI, SQLite)", api))
            print(row("rsa.generate_private_key", gen))
            overhead = statistics.median(api) - statistics.median(gen)
            print(f"  {'median create - median raw':<28} {overhead * 1000:8.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
