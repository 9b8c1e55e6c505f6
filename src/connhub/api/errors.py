"""Render core errors in the shape of whichever face the request came through.

Each face registers a renderer for its path prefix; the Connections API shape
(``{"detail": ...}``, FastAPI 422) is the default. Validation errors never carry the
submitted ``input`` (Pydantic echoes it, and it may be a credential).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from connhub.errors import ConnhubError, RateLimited
from connhub.kit.responses import JSONResponse

log = logging.getLogger("connhub.errors")


@dataclass(frozen=True)
class FieldError:
    loc: tuple[str | int, ...]
    msg: str
    type: str

    @property
    def dotted(self) -> str:
        parts = [str(p) for p in self.loc if p not in ("body", "query", "path", "header")]
        return ".".join(parts) or "body"


class Renderer(Protocol):
    def error(self, exc: ConnhubError) -> tuple[int, Any]: ...
    def validation(self, errors: Sequence[FieldError]) -> tuple[int, Any]: ...


class DetailRenderer:
    """Connections API: ``{"detail": "...", "code": "..."}``; validation 422 FastAPI-style."""

    def error(self, exc: ConnhubError) -> tuple[int, Any]:
        return exc.status_code, {"detail": exc.message, "code": exc.code}

    def validation(self, errors: Sequence[FieldError]) -> tuple[int, Any]:
        return 422, {"detail": [{"loc": list(e.loc), "msg": e.msg, "type": e.type} for e in errors]}


_renderers: list[tuple[str, Renderer]] = []
_default: Renderer = DetailRenderer()


def register_face(prefix: str, renderer: Renderer) -> None:
    _renderers.append((prefix, renderer))
    _renderers.sort(key=lambda item: len(item[0]), reverse=True)


def renderer_for(path: str) -> Renderer:
    for prefix, renderer in _renderers:
        if path.startswith(prefix):
            return renderer
    return _default


def clean_errors(raw: Sequence[Any]) -> list[FieldError]:
    out = []
    for err in raw:
        msg = str(err.get("msg", "Invalid value"))
        out.append(
            FieldError(
                loc=tuple(err.get("loc", ())), msg=msg, type=str(err.get("type", "value_error"))
            )
        )
    return out


def _headers(exc: ConnhubError) -> dict[str, str]:
    if isinstance(exc, RateLimited):
        retry = str(max(1, int(exc.retry_after + 0.999)))
        return {
            "Retry-After": retry,
            "X-RateLimit-Limit": str(exc.limit),
            "X-RateLimit-Remaining": str(exc.remaining),
            "X-RateLimit-Reset": retry,
        }
    return {}


_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    401: "unauthorized",
    400: "bad_request",
    413: "payload_too_large",
}


def install(app: FastAPI) -> None:
    @app.exception_handler(ConnhubError)
    async def _connhub(request: Request, exc: ConnhubError) -> Response:
        if exc.status_code >= 500:
            log.error("request failed: %s", exc.code, extra={"error": exc.message})
        status, body = renderer_for(request.url.path).error(exc)
        return JSONResponse(body, status_code=status, headers=_headers(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        status, body = renderer_for(request.url.path).validation(clean_errors(exc.errors()))
        return JSONResponse(body, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        err = ConnhubError(str(exc.detail), code=code)
        err.status_code = exc.status_code
        status, body = renderer_for(request.url.path).error(err)
        return JSONResponse(body, status_code=status, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        err = ConnhubError("Internal server error")
        status, body = renderer_for(request.url.path).error(err)
        return JSONResponse(body, status_code=status)
