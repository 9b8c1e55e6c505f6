"""All SQL for workspaces, users, memberships and tokens."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import String, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from connhub.kit.db import Reader
from connhub.models import ApiToken, Membership, User, Workspace


async def workspace_by_id_or_slug(session: AsyncSession, ref: str) -> Workspace | None:
    try:
        ws_id = uuid.UUID(ref)
    except ValueError:
        return (await session.execute(select(Workspace).where(Workspace.slug == ref))).scalar()
    return await session.get(Workspace, ws_id)


async def slug_taken(session: AsyncSession, slug: str) -> bool:
    stmt = select(Workspace.id).where(Workspace.slug == slug)
    return (await session.execute(stmt)).first() is not None


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    return (await session.execute(select(User).where(User.email == email))).scalar()


async def membership(
    session: AsyncSession, workspace_id: uuid.UUID, user_id: uuid.UUID
) -> Membership | None:
    return await session.get(Membership, (workspace_id, user_id))


_TOKEN_MEMBERSHIPS = (
    select(
        ApiToken.workspace_id.label("token_workspace"),
        User.id.label("user_id"),
        User.email,
        Membership.workspace_id,
        Membership.role,
    )
    .join(User, User.id == ApiToken.user_id)
    .join(Membership, Membership.user_id == User.id, isouter=True)
    .where(
        ApiToken.token_hash == bindparam("token_hash", type_=String()),
        ApiToken.revoked_at.is_(None),
    )
)
_WORKSPACE_ID_BY_SLUG = select(Workspace.id).where(
    Workspace.slug == bindparam("slug", type_=String())
)


async def token_memberships(reader: Reader, token_hash: str) -> Sequence[Any]:
    """Every (token, user, membership) row for a live token: one prebuilt statement, run
    whenever a token's cached principal expires."""
    return await reader.fetch(_TOKEN_MEMBERSHIPS, {"token_hash": token_hash})


async def workspace_id_by_slug(reader: Reader, slug: str) -> uuid.UUID | None:
    rows = await reader.fetch(_WORKSPACE_ID_BY_SLUG, {"slug": slug})
    return rows[0].id if rows else None
