"""The one query the core does not have: every source of a workspace, oldest first."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from connhub.connections.repository import visible_to
from connhub.models import Connection
from connhub.sources.mapping import FACE
from connhub.workspaces.principal import Principal


async def list_sources(session: AsyncSession, principal: Principal) -> Sequence[Connection]:
    stmt = (
        select(Connection)
        .where(visible_to(principal), Connection.face == FACE)
        .order_by(Connection.created_at, Connection.id)
    )
    return (await session.execute(stmt)).scalars().all()


async def get_source(
    session: AsyncSession, principal: Principal, source_id: uuid.UUID, *, for_update: bool = False
) -> Connection | None:
    stmt = select(Connection).where(
        visible_to(principal), Connection.face == FACE, Connection.id == source_id
    )
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar()
