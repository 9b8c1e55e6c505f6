"""The core model every face maps onto: a connection, its sealed secret, its dependents."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from connhub.models.base import Base, JSONType, UTCDateTime, new_id, utcnow


class Connection(Base):
    __tablename__ = "connections"
    __table_args__ = (
        UniqueConstraint("workspace_id", "slug", name="uq_connections_workspace_slug"),
        # At most one default per provider per workspace, held by the database itself.
        Index(
            "uq_connections_default_per_provider",
            "workspace_id",
            "provider",
            unique=True,
            sqlite_where=text("is_default = 1"),
            postgresql_where=text("is_default"),
        ),
        # The Warehouse face allows one live warehouse connection per organisation.
        Index(
            "uq_connections_one_warehouse",
            "workspace_id",
            unique=True,
            sqlite_where=text("face = 'warehouse'"),
            postgresql_where=text("face = 'warehouse'"),
        ),
        Index("ix_connections_ws_name", "workspace_id", "name", "id"),
        Index("ix_connections_ws_created", "workspace_id", "created_at", "id"),
        Index("ix_connections_ws_updated", "workspace_id", "updated_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    slug: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    credential_keys: Mapped[list[str]] = mapped_column(JSONType, default=list)
    status: Mapped[str] = mapped_column(String(32), default="needs_verification")
    visibility: Mapped[str] = mapped_column(String(16), default="private")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    is_from_template: Mapped[bool] = mapped_column(Boolean, default=False)
    template_id: Mapped[str | None] = mapped_column(String(255))
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verification_error: Mapped[str | None] = mapped_column(Text)
    verification_error_code: Mapped[str | None] = mapped_column(String(32))
    verification_details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Which face created it ('warehouse', 'source' or NULL) and that face's own fields.
    face: Mapped[str | None] = mapped_column(String(16))
    face_data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class ConnectionSecret(Base):
    """The sealed credentials of one connection (see kit/crypto.py for the envelope)."""

    __tablename__ = "connection_secrets"

    connection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True
    )
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    key_id: Mapped[str] = mapped_column(String(64), index=True)
    sealed: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Dependent(Base):
    """Another system's record that something depends on a connection (blocks delete)."""

    __tablename__ = "connection_dependents"

    # RESTRICT: the database itself refuses to delete a connection that has dependents.
    connection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("connections.id", ondelete="RESTRICT"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(64), primary_key=True)
    ref: Mapped[str] = mapped_column(String(255), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RateLimitBucket(Base):
    """Token buckets shared by every server process that uses the same store."""

    __tablename__ = "rate_limit_buckets"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    tokens: Mapped[float]
    updated_at: Mapped[float]
