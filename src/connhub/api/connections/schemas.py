"""Wire shapes of the Connections API (API.md section 3): camelCase JSON."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from connhub.connections.schemas import Page, Visibility
from connhub.kit.slugs import CONNECTION_SLUG_PATTERN
from connhub.models import Connection

ProviderName = Literal[
    "shopify",
    "http_api",
    "flexiroam",
    "starlink",
    "s3",
    "google_drive",
    "msft_sharepoint",
    "klaviyo",
    "amazon_sp",
    "salesforce",
    "netsuite",
    "sqlserver",
    "postgres",
    "mlflow",
    "sftp",
    "gmail_inbox",
    "dropbox",
    "rydership",
    "gorgias",
    "redo",
    "bullhorn",
    "snowflake",
    "bigquery",
    "databricks",
    "mysql",
]
StatusName = Literal["needs_verification", "active", "error", "expired", "disabled"]


class ConnectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    provider: ProviderName
    credentials: dict[str, str]
    config: dict[str, Any] | None = None
    visibility: Visibility = Visibility.private
    templateId: str | None = Field(default=None, max_length=255)
    slug: str | None = Field(
        default=None, min_length=1, max_length=255, pattern=CONNECTION_SLUG_PATTERN
    )


class ConnectionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=255)
    config: dict[str, Any] | None = None
    credentials: dict[str, str | None] | None = None
    visibility: Visibility | None = None
    provider: str | None = None


class ConnectionOut(BaseModel):
    id: uuid.UUID
    name: str
    slug: str
    provider: str
    config: dict[str, Any]
    hasCredentials: bool
    status: StatusName
    visibility: Visibility
    isDefault: bool
    isFromTemplate: bool
    lastVerifiedAt: datetime | None
    lastUsedAt: datetime | None
    verificationError: str | None
    verificationErrorCode: str | None
    verificationDetails: dict[str, Any]
    createdAt: datetime
    updatedAt: datetime
    createdBy: uuid.UUID | None
    updatedBy: uuid.UUID | None


class UserOut(BaseModel):
    id: uuid.UUID
    firstName: str | None
    lastName: str | None
    profilePictureUrl: str | None


class ConnectionList(BaseModel):
    connections: list[ConnectionOut]
    hasNext: bool
    limit: int
    offset: int
    total: int | None
    nextCursor: str | None
    users: dict[str, UserOut]


class SecretFieldState(BaseModel):
    configured: bool


class EditSettings(BaseModel):
    config: dict[str, Any]
    secretFields: dict[str, SecretFieldState]


# (wire name, attribute) pairs: the one place the camelCase shape is spelled out.
_FIELDS = (
    ("id", "id"),
    ("name", "name"),
    ("slug", "slug"),
    ("provider", "provider"),
    ("config", "config"),
    ("hasCredentials", "credential_keys"),
    ("status", "status"),
    ("visibility", "visibility"),
    ("isDefault", "is_default"),
    ("isFromTemplate", "is_from_template"),
    ("lastVerifiedAt", "last_verified_at"),
    ("lastUsedAt", "last_used_at"),
    ("verificationError", "verification_error"),
    ("verificationErrorCode", "verification_error_code"),
    ("verificationDetails", "verification_details"),
    ("createdAt", "created_at"),
    ("updatedAt", "updated_at"),
    ("createdBy", "created_by"),
    ("updatedBy", "updated_by"),
)


_RAW = frozenset({"config", "verification_details", "credential_keys"})
_IDS = frozenset({"id", "created_by", "updated_by"})


def _finish(out: dict[str, Any]) -> dict[str, Any]:
    out["hasCredentials"] = bool(out["hasCredentials"])
    out["verificationDetails"] = out["verificationDetails"] or {}
    return out


def to_wire(conn: Connection | Any) -> dict[str, Any]:
    """One connection (model or row) in the contract's shape."""
    return _finish({wire: getattr(conn, attr) for wire, attr in _FIELDS})


def rows_to_wire(rows: list[Any]) -> list[dict[str, Any]]:
    """Many page rows by position: the list endpoint renders 50 of these per call.

    The page query returns the JSON columns as text; they are embedded verbatim.
    """
    if not rows:
        return []
    index = {name: i for i, name in enumerate(rows[0]._fields)}
    plan = [(wire, index[attr]) for wire, attr in _FIELDS if attr not in _RAW | _IDS]
    ids = [(wire, index[attr]) for wire, attr in _FIELDS if attr in _IDS]
    config, details, keys = (
        index[name] for name in ("config", "verification_details", "credential_keys")
    )
    out = []
    for row in rows:
        item = {wire: row[i] for wire, i in plan}
        # orjson writes uuid.UUID itself; asyncpg's own UUID class would cost it a
        # ``default`` call each, so those become str here.
        for wire, i in ids:
            value = row[i]
            item[wire] = value if value is None or type(value) is uuid.UUID else str(value)
        item["config"] = orjson.Fragment(row[config] or "{}")
        item["verificationDetails"] = orjson.Fragment(row[details] or "{}")
        item["hasCredentials"] = (row[keys] or "[]").replace(" ", "") != "[]"
        out.append(item)
    return out


def page_to_wire(page: Page) -> dict[str, Any]:
    items = page.items
    connections = (
        rows_to_wire(items)
        if items and hasattr(items[0], "_fields")
        else [to_wire(c) for c in items]
    )
    return {
        "connections": connections,
        "hasNext": page.has_next,
        "limit": page.limit,
        "offset": page.offset,
        "total": page.total,
        "nextCursor": page.next_cursor,
        "users": {
            str(uid): {
                "id": str(uid),
                "firstName": u.first_name,
                "lastName": u.last_name,
                "profilePictureUrl": u.profile_picture_url,
            }
            for uid, u in page.users.items()
        },
    }
