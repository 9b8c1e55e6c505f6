"""Wire shapes of the Sources API (API.md section 2): snake_case JSON.

Bodies ignore unknown top-level keys (clients echo whole source objects back); ``config``
stays a free-form object here because its keys depend on ``source_type`` and are checked by
the provider's definition (``sources.mapping``), which names fields without their values.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SourceType = Literal["snowflake", "bigquery", "databricks"]
SourceStatus = Literal["pending", "connected", "error"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SourceCreate(_Body):
    name: str = Field(min_length=1, max_length=255)
    source_type: str = Field(max_length=64, description="snowflake, bigquery or databricks")
    config: dict[str, Any]
    connection_id: uuid.UUID | None = None


class SourceUpdate(_Body):
    """Every field optional; ``connection_id: null`` removes the reference."""

    name: str | None = Field(default=None, min_length=1, max_length=255)
    source_type: str | None = Field(default=None, max_length=64)
    config: dict[str, Any] | None = None
    connection_id: uuid.UUID | None = None


class SourceTest(_Body):
    source_type: str = Field(max_length=64)
    config: dict[str, Any]


class SourceOut(BaseModel):
    id: uuid.UUID
    workspace_id: uuid.UUID
    name: str
    source_type: SourceType
    config: dict[str, Any] = Field(description='Secret fields that are set show as "********"')
    connection_id: uuid.UUID | None
    status: SourceStatus
    status_error: str
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class Deleted(BaseModel):
    status: Literal["deleted"]


class ErrorOut(BaseModel):
    error: str


SSE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-sent events: `step` per check as it finishes, then `done`",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
}
