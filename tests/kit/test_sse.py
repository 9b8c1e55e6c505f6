"""kit.sse: event framing, disconnect handling and the streaming response."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from connhub.kit.sse import sse_event, sse_response, sse_stream


def test_event_framing_is_compact_json() -> None:
    frame = sse_event("step", {"name": "connectivity", "status": "passed", "message": "ok"})
    assert frame == (
        b'event: step\ndata: {"name":"connectivity","status":"passed","message":"ok"}\n\n'
    )


def test_line_breaks_in_data_cannot_end_the_event() -> None:
    frame = sse_event("step", {"message": "line one\nline two\r\n\nevent: done"})
    text = frame.decode()
    assert text.count("\n\n") == 1 and text.endswith("\n\n")
    assert text.startswith("event: step\ndata: ")
    data = "".join(line[len("data: ") :] for line in text.splitlines() if line.startswith("data"))
    assert orjson.loads(data) == {"message": "line one\nline two\r\n\nevent: done"}


def test_unicode_and_event_name_checks() -> None:
    assert "é" in sse_event("done", {"m": "café"}).decode()
    with pytest.raises(ValueError):
        sse_event("step\ndata: x", {})


class FakeRequest:
    def __init__(self) -> None:
        self.gone = False

    async def is_disconnected(self) -> bool:
        return self.gone


async def test_stream_frames_every_event_then_stops() -> None:
    async def events() -> AsyncIterator[tuple[str, Any]]:
        yield "step", {"n": 1}
        yield "done", {"success": True}

    frames = [frame async for frame in sse_stream(events(), FakeRequest())]
    assert frames == [sse_event("step", {"n": 1}), sse_event("done", {"success": True})]


async def test_disconnect_stops_the_stream_and_cancels_a_waiting_upstream() -> None:
    request = FakeRequest()
    upstream_closed = asyncio.Event()

    async def events() -> AsyncIterator[tuple[str, Any]]:
        try:
            yield "step", {"n": 1}
            await asyncio.sleep(3600)  # a verification step that takes forever
            yield "step", {"n": 2}
        finally:
            upstream_closed.set()

    stream = sse_stream(events(), request, poll_s=0.02)
    assert await anext(stream) == sse_event("step", {"n": 1})
    started = time.monotonic()
    request.gone = True
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    assert time.monotonic() - started < 0.5
    assert upstream_closed.is_set()


async def test_closing_the_stream_closes_the_upstream() -> None:
    closed = asyncio.Event()

    async def events() -> AsyncIterator[tuple[str, Any]]:
        try:
            while True:
                yield "tick", {}
        finally:
            closed.set()

    stream = sse_stream(events(), None)
    await anext(stream)
    await stream.aclose()
    assert closed.is_set()


async def test_response_headers_and_body_over_asgi() -> None:
    async def endpoint(request: Request) -> Any:
        async def events() -> AsyncIterator[tuple[str, Any]]:
            yield "step", {"name": "connectivity"}
            yield "done", {"success": True}

        return sse_response(sse_stream(events(), request))

    app = Starlette(routes=[Route("/events", endpoint)])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        response = await client.get("/events")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert response.text == (
        'event: step\ndata: {"name":"connectivity"}\n\nevent: done\ndata: {"success":true}\n\n'
    )
