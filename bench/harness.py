"""What the benchmarks share: a free loopback port, a tenant with a token, and the real app
served by one uvicorn worker in a subprocess (``serve_for_bench.py``)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from connhub.config import Settings
from connhub.kit.db import commit, make_engine, make_sessionmaker
from connhub.workspaces import service as workspaces
from connhub.workspaces.principal import Role

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def make_tenant(settings: Settings, name: str) -> tuple[str, uuid.UUID, uuid.UUID]:
    """A workspace with an admin token: ``(token, workspace id, user id)``."""
    engine = make_engine(settings.resolved_database_url)
    async with make_sessionmaker(engine)() as session:
        ws = await workspaces.create_workspace(session, name=name)
        token, user, ws = await workspaces.create_token(
            session, workspace_ref=ws.slug, email=f"bench-{name}@example.com", role=Role.admin
        )
        await commit(session)
    await engine.dispose()
    return token, ws.id, user.id


@contextmanager
def served(env: Mapping[str, str]) -> Iterator[tuple[str, int]]:
    """The app on a free port with ``env``, ready (``/readyz``): ``(base URL, server pid)``."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(HERE / "serve_for_bench.py")], env={**env, "BENCH_PORT": str(port)}
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            raise SystemExit("the benchmark server did not become ready")
        yield base, server.pid
    finally:
        server.terminate()
        server.wait(10)
