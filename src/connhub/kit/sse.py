"""Server-sent events: framing, disconnect-aware streaming, and the response.

Verification is streamed step by step (API.md section 2, "Test new connection"). The stream
must stop working for a client that went away: otherwise a closed browser tab keeps a
database login in flight. ``sse_stream`` therefore waits for the next event and for the
client's disconnect at the same time, and on either a disconnect or its own end it closes
the upstream iterator, which cancels the running verification.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Protocol

import orjson
from starlette.responses import StreamingResponse

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
POLL_S = 0.25  # how often a quiet stream checks whether its client is still there


class Disconnectable(Protocol):
    """What ``sse_stream`` needs of a request: Starlette's ``Request`` satisfies it."""

    async def is_disconnected(self) -> bool: ...


def sse_event(event: str, data: Any) -> bytes:
    """Frame one event: ``event: <name>`` then the compact JSON of ``data``.

    JSON escapes newlines inside strings, but ``data`` lines are still split defensively so a
    payload can never end an event early or inject one.
    """
    if "\n" in event or "\r" in event:
        raise ValueError("an SSE event name cannot contain a line break")
    payload = orjson.dumps(data).decode()
    lines = payload.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    body = "".join(f"data: {line}\n" for line in lines)
    return f"event: {event}\n{body}\n".encode()


async def _close(events: AsyncIterator[tuple[str, Any]]) -> None:
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()


async def sse_stream(
    events: AsyncIterator[tuple[str, Any]],
    request: Disconnectable | None = None,
    *,
    poll_s: float = POLL_S,
) -> AsyncGenerator[bytes, None]:
    """Frame ``(event, data)`` pairs; stop and close ``events`` once the client disconnects."""
    pending: asyncio.Task[tuple[str, Any]] | None = None
    try:
        while True:
            if request is not None and await request.is_disconnected():
                return
            if pending is None:
                pending = asyncio.ensure_future(anext(events))
            timeout = None if request is None else poll_s
            finished, _ = await asyncio.wait([pending], timeout=timeout)
            if not finished:
                continue  # nothing yet: go and look at the client again
            task, pending = pending, None
            try:
                name, data = task.result()
            except StopAsyncIteration:
                return
            yield sse_event(name, data)
    finally:
        if pending is not None and not pending.done():
            pending.cancel()  # cancels the upstream generator where it waits
            await asyncio.wait([pending])
            if not pending.cancelled():
                pending.exception()  # mark it retrieved: we are stopping anyway
        await _close(events)


def sse_response(stream: AsyncIterator[bytes]) -> StreamingResponse:
    """A ``text/event-stream`` response that proxies (nginx) must not buffer or cache."""
    return StreamingResponse(stream, media_type="text/event-stream", headers=dict(SSE_HEADERS))
