"""JSON responses rendered with orjson (timestamps as RFC 3339 with ``Z``)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


_UUID_TYPES: tuple[type, ...] = ()
try:  # asyncpg hands back its own UUID class, which orjson does not know
    from asyncpg.pgproto.pgproto import UUID as _PgUUID

    _UUID_TYPES = (_PgUUID,)
except ImportError:  # pragma: no cover - asyncpg is a dependency
    pass


def _fallback(value: Any) -> str:
    if isinstance(value, _UUID_TYPES):
        return str(value)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def dumps(content: Any) -> bytes:
    return orjson.dumps(content, option=_OPTIONS, default=_fallback)


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)
