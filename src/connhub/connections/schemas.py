"""Core (face-neutral) types of the connections domain."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    needs_verification = "needs_verification"
    active = "active"
    error = "error"
    expired = "expired"
    disabled = "disabled"


class Visibility(StrEnum):
    private = "private"
    global_ = "global"


class SortBy(StrEnum):
    name = "name"
    created_at = "created_at"
    updated_at = "updated_at"
    last_verified_at = "last_verified_at"
    status = "status"
    provider = "provider"


class Order(StrEnum):
    asc = "asc"
    desc = "desc"


@dataclass(frozen=True)
class ListQuery:
    q: str | None = None
    providers: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    sort_by: SortBy = SortBy.name
    order: Order = Order.asc
    limit: int = 50
    offset: int = 0
    cursor: str | None = None  # None: offset mode; "" or a token: cursor mode


@dataclass(frozen=True)
class UserProfile:
    id: uuid.UUID
    first_name: str | None
    last_name: str | None
    profile_picture_url: str | None


@dataclass
class Page:
    items: list[Any]  # rows or models: anything with the Connection attributes
    limit: int
    offset: int
    total: int | None
    has_next: bool
    next_cursor: str | None
    users: dict[uuid.UUID, UserProfile] = field(default_factory=dict)


@dataclass(frozen=True)
class ConnectionPatch:
    """A partial update; ``None`` means "not sent" (credential values of None mean "clear")."""

    name: str | None = None
    config: dict[str, Any] | None = None
    credentials: dict[str, str | None] | None = None
    visibility: Visibility | None = None
    provider: str | None = None
