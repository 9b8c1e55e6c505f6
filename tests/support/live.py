"""A real uvicorn server on a loopback port, sharing the suite's store and key file."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import uvicorn

from connhub.app import create_app
from connhub.config import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    url: str
    server: uvicorn.Server


async def start_server(settings: Settings) -> tuple[LiveServer, asyncio.Task[None]]:
    port = free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return LiveServer(url=f"http://127.0.0.1:{port}", server=server), task


async def stop_server(live: LiveServer, task: asyncio.Task[None]) -> None:
    live.server.should_exit = True
    await asyncio.wait_for(task, 10)


@pytest.fixture
async def live_server(settings: Settings, runtime: object) -> AsyncIterator[LiveServer]:
    """Depends on ``runtime`` so the suite's per-test table cleanup applies to it too."""
    live, task = await start_server(settings)
    try:
        yield live
    finally:
        await stop_server(live, task)
