"""Pure-ASGI request context: request id, body-size cap, one access log line per request.

Pure ASGI rather than BaseHTTPMiddleware: it costs almost nothing per request and does not
buffer streamed (SSE) responses.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connhub.kit.logs import request_id
from connhub.kit.responses import dumps

log = logging.getLogger("connhub.access")


class _TooLarge(Exception):
    pass


def _too_large_body(path: str, limit: int) -> bytes:
    message = f"Request body exceeds {limit} bytes"
    if path.startswith("/api/v1/workspaces/"):
        return dumps({"error": message})
    return dumps({"detail": message, "code": "payload_too_large"})


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _incoming_request_id(scope) or uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500
        received = 0
        limit = self.max_body

        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _send_413(send, scope["path"], limit, rid)
            log.info("request", extra=_access(scope, 413, started))
            request_id.reset(token)
            return

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        except _TooLarge:
            if not response_started:
                status = 413
                await _send_413(send, scope["path"], limit, rid)
        finally:
            log.info("request", extra=_access(scope, status, started))
            request_id.reset(token)


def _incoming_request_id(scope: Scope) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"x-request-id":
            text: str = value.decode("latin-1")[:64]
            if text and all(c.isalnum() or c in "-_." for c in text):
                return text
    return None


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_413(send: Send, path: str, limit: int, rid: str) -> None:
    body = _too_large_body(path, limit)
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", rid.encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _access(scope: Scope, status: int, started: float) -> dict[str, Any]:
    return {
        "method": scope.get("method"),
        "path": scope.get("path"),
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
    }
