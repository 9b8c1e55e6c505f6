"""Wire shapes of the Connections API (API.md section 3): camelCase JSON."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from connhub.connections.schemas import Page, Visibility
from connhub.models import Connection

ProviderName = Literal[
    "shopify", "http_api", "flexiroam", "starlink", "s3", "google_drive", "msft_sharepoint",
    "klaviyo", "amazon_sp", "salesforce", "netsuite", "sqlserver", "postgres", "mlflow", "sftp",
    "gmail_inbox", "dropbox", "rydership", "gorgias", "redo", "bullhorn", "snowflake",
    "bigquery", "databricks", "mysql",
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
    slug: str | None = Field(default=None, min_length=1, max_length=255,
                             pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


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


def to_wire(conn: Connection | Any) -> dict[str, Any]:
    """Hand-built dict (not a model dump): the list endpoint renders 50 of these per call."""
    return {
        "id": conn.id,
        "name": conn.name,
        "slug": conn.slug,
        "provider": conn.provider,
        "config": conn.config,
        "hasCredentials": bool(conn.credential_keys),
        "status": conn.status,
        "visibility": conn.visibility,
        "isDefault": conn.is_default,
        "isFromTemplate": conn.is_from_template,
        "lastVerifiedAt": conn.last_verified_at,
        "lastUsedAt": conn.last_used_at,
        "verificationError": conn.verification_error,
        "verificationErrorCode": conn.verification_error_code,
        "verificationDetails": conn.verification_details or {},
        "createdAt": conn.created_at,
        "updatedAt": conn.updated_at,
        "createdBy": conn.created_by,
        "updatedBy": conn.updated_by,
    }


def page_to_wire(page: Page) -> dict[str, Any]:
    return {
        "connections": [to_wire(c) for c in page.items],
        "hasNext": page.has_next,
        "limit": page.limit,
        "offset": page.offset,
        "total": page.total,
        "nextCursor": page.next_cursor,
        "users": {
            str(uid): {"id": uid, "firstName": u.first_name, "lastName": u.last_name,
                       "profilePictureUrl": u.profile_picture_url}
            for uid, u in page.users.items()
        },
    }
