"""All SQL for dependents."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from connhub.models import Dependent


async def get(
    session: AsyncSession, connection_id: uuid.UUID, kind: str, ref: str
) -> Dependent | None:
    return await session.get(Dependent, (connection_id, kind, ref))


async def list_for(session: AsyncSession, connection_id: uuid.UUID) -> Sequence[Dependent]:
    stmt = (
        select(Dependent)
        .where(Dependent.connection_id == connection_id)
        .order_by(Dependent.kind, Dependent.ref)
    )
    return (await session.execute(stmt)).scalars().all()


async def remove(session: AsyncSession, connection_id: uuid.UUID, kind: str, ref: str) -> bool:
    """Delete one dependent; whether it existed."""
    result = await session.execute(
        delete(Dependent)
        .where(
            Dependent.connection_id == connection_id, Dependent.kind == kind, Dependent.ref == ref
        )
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))
