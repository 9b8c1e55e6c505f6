"""Read a server-sent event stream over a real socket, timing each event's arrival."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Event:
    name: str
    data: Any
    at: float  # seconds since the request was sent


@dataclass
class Stream:
    status: int
    headers: httpx.Headers
    events: list[Event] = field(default_factory=list)
    body: str = ""

    def named(self, name: str) -> list[Event]:
        return [e for e in self.events if e.name == name]

    @property
    def done(self) -> Any:
        (event,) = self.named("done")
        return event.data

    @property
    def steps(self) -> list[Any]:
        return [e.data for e in self.named("step")]


def parse_event(block: str) -> tuple[str, Any]:
    name, data = "message", []
    for line in block.split("\n"):
        if line.startswith("event:"):
            name = line[len("event:") :].strip()
        elif line.startswith("data:"):
            data.append(line[len("data:") :].strip())
    return name, json.loads("\n".join(data))


async def read_events(
    client: httpx.AsyncClient,
    url: str,
    *,
    headers: dict[str, str],
    json_body: Any = None,
    stop_after: int | None = None,
) -> Stream:
    """POST and collect events as they arrive; ``stop_after`` closes early (a client leaving)."""
    started = time.monotonic()
    async with client.stream("POST", url, headers=headers, json=json_body) as resp:
        stream = Stream(resp.status_code, resp.headers)
        if "text/event-stream" not in resp.headers.get("content-type", ""):
            stream.body = (await resp.aread()).decode()
            return stream
        buffer = ""
        async for chunk in resp.aiter_text():
            buffer += chunk
            while "\n\n" in buffer:
                block, buffer = buffer.split("\n\n", 1)
                name, data = parse_event(block)
                stream.events.append(Event(name, data, time.monotonic() - started))
                if stop_after is not None and len(stream.events) >= stop_after:
                    return stream
    return stream
