"""All SQL for workspaces, users, memberships and tokens."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

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


async def token_memberships(session: AsyncSession, token_hash: str) -> Sequence[Any]:
    """Every (token, user, membership) row for a live token: one round trip per request."""
    stmt = (
        select(
            ApiToken.workspace_id.label("token_workspace"),
            User.id.label("user_id"),
            User.email,
            Membership.workspace_id,
            Membership.role,
        )
        .join(User, User.id == ApiToken.user_id)
        .join(Membership, Membership.user_id == User.id, isouter=True)
        .where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None))
    )
    return (await session.execute(stmt)).all()
