"""Opaque keyset cursors: the last row's sort value and id, plus the ordering they belong to.

A keyset cursor stays valid while rows are inserted or deleted, unlike an offset.
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any

import orjson

from connhub.errors import BadRequest


def encode(sort_by: str, order: str, value: Any, row_id: uuid.UUID) -> str:
    if isinstance(value, datetime):
        value = {"t": value.isoformat()}
    raw = orjson.dumps([sort_by, order, value, str(row_id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str, *, sort_by: str, order: str) -> tuple[Any, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        c_sort, c_order, value, row_id = orjson.loads(raw)
        if isinstance(value, dict):
            value = datetime.fromisoformat(value["t"])
        parsed_id = uuid.UUID(row_id)
    except Exception as exc:  # any malformed cursor is the client's error, never a 500
        raise BadRequest("Invalid cursor", code="invalid_cursor", field="cursor") from exc
    if c_sort != sort_by or c_order != order:
        raise BadRequest(
            "Cursor was issued for another sort_by/order", code="invalid_cursor", field="cursor"
        )
    if not isinstance(value, (str, datetime, int, float)):
        raise BadRequest("Invalid cursor", code="invalid_cursor", field="cursor")
    return value, parsed_id
