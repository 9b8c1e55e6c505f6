"""Sources API streamed tests: time to the first ``step`` event and to ``done``, real socket.

    .venv/bin/python bench/bench_sources_sse.py [--runs 10] [--hole-runs 3] [--budget 5]

A real server (``connhub serve`` in its own process, embedded SQLite store in a temporary
home, verification budget ``--budget``) is asked ``POST /api/v1/workspaces/{id}/sources/test``
by an httpx client reading the event stream as it arrives, for two targets:

1. fakesnow's Snowflake server (the real connector logs in over HTTP on loopback): the
   whole check should finish well inside the budget;
2. a loopback host that accepts TCP and never answers: ``connectivity`` passes at once, so
   the first ``step`` should arrive in milliseconds while ``done`` arrives when the budget
   runs out (target: within 10 % of it).

Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.fakesnow_server import (  # noqa: E402 - needs the path above
    create_objects,
    free_port,
    running_fakesnow,
    silent_server,
    unique_name,
)

WARMUP = 2


def cli(env: dict[str, str], *args: str) -> dict[str, Any]:
    out = subprocess.run(  # noqa: S603 - our own interpreter and CLI
        [sys.executable, "-m", "connhub.cli", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def start_server(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "connhub.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("connhub serve exited during start-up")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("connhub serve did not start")


async def one_test(
    http: httpx.AsyncClient, url: str, headers: dict[str, str], payload: dict[str, Any]
) -> tuple[float, float, bool, str]:
    """Seconds to the first ``step`` and to ``done``, ``done``'s success, the failed check."""
    started = time.perf_counter()
    first = done = None
    success = False
    failed = ""
    async with http.stream("POST", url, headers=headers, json=payload) as resp:
        if resp.status_code != 200:
            raise SystemExit(f"HTTP {resp.status_code}: {(await resp.aread()).decode()}")
        buffer = ""
        async for chunk in resp.aiter_text():
            buffer += chunk
            while "\n\n" in buffer:
                block, buffer = buffer.split("\n\n", 1)
                now = time.perf_counter() - started
                if block.startswith("event: step") and first is None:
                    first = now
                elif block.startswith("event: done"):
                    done = now
                    data = block.split("data: ", 1)[1]
                    result = json.loads(data)
                    success = bool(result["success"])
                    failed = ", ".join(
                        f"{step['name']}: {step.get('code')}"
                        for step in result["steps"]
                        if step["status"] == "failed"
                    )
    if first is None or done is None:
        raise SystemExit("stream ended without step/done events")
    return first, done, success, failed


def report(label: str, samples: list[tuple[float, float, bool, str]]) -> None:
    firsts = [s[0] * 1000 for s in samples]
    dones = [s[1] * 1000 for s in samples]
    ok = sum(s[2] for s in samples)
    failures = sorted({s[3] for s in samples if s[3]})
    print(
        f"{label} ({len(samples)} runs, success {ok}/{len(samples)})"
        + (f"  failed: {'; '.join(failures)}" if failures else "")
    )
    for name, values in (("first step", firsts), ("done      ", dones)):
        print(
            f"  {name}  median {statistics.median(values):8.1f} ms   "
            f"min {min(values):8.1f}   max {max(values):8.1f}"
        )


async def bench(
    url: str,
    headers: dict[str, str],
    snow_config: dict[str, Any],
    hole_config: dict[str, Any],
    runs: int,
    hole_runs: int,
    budget: float,
) -> None:
    async with httpx.AsyncClient(timeout=budget + 30) as http:
        snow = {"source_type": "snowflake", "config": snow_config}
        for _ in range(WARMUP):
            await one_test(http, url, headers, snow)
        samples = [await one_test(http, url, headers, snow) for _ in range(runs)]
        report("fakesnow (3 steps pass)", samples)
        hole = {"source_type": "snowflake", "config": hole_config}
        samples = [await one_test(http, url, headers, hole) for _ in range(hole_runs)]
        report(f"black hole (login never answers, budget {budget:g} s)", samples)
        worst = max(s[1] for s in samples)
        print(f"  slowest done at {100 * worst / budget:.1f} % of the budget")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--hole-runs", type=int, default=3)
    parser.add_argument("--budget", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="connhub-bench-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONNHUB_")}
        env.update(
            {
                "CONNHUB_HOME": home,
                "CONNHUB_EGRESS_ALLOW": "127.0.0.1",
                "CONNHUB_VERIFY_BUDGET_S": str(args.budget),
                "CONNHUB_LOG_LEVEL": "WARNING",
                "CONNHUB_RATE_LIMIT_ENABLED": "false",
            }
        )
        workspace = cli(env, "workspaces", "create", "Bench")
        token = cli(
            env,
            "tokens",
            "create",
            "--workspace",
            workspace["slug"],
            "--email",
            "bench@example.com",
            "--role",
            "admin",
        )["token"]
        headers = {"Authorization": f"Bearer {token}", "X-Workspace-ID": workspace["id"]}
        proc, base = start_server(env)
        try:
            url = f"{base}/api/v1/workspaces/{workspace['id']}/sources/test"
            with running_fakesnow() as snow, silent_server() as hole_port:
                database = unique_name("BENCH")
                create_objects(snow, database, "ANALYTICS")
                common = {
                    "account": "fakeacct",
                    "warehouse": "COMPUTE_WH",
                    "database": database,
                    "schema": "ANALYTICS",
                    "username": "BENCH",
                    "password": "bench-pw",
                    "protocol": "http",
                    "host": "127.0.0.1",
                }
                asyncio.run(
                    bench(
                        url,
                        headers,
                        {**common, "port": snow.port},
                        {**common, "port": hole_port},
                        args.runs,
                        args.hole_runs,
                        args.budget,
                    )
                )
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
