"""Register, list and remove dependents of a connection (tenancy and roles as for the rest).

``put`` is idempotent: registering the same (kind, ref) twice keeps the first ``created_at``,
and two concurrent registrations both succeed (the loser of the primary-key race re-reads).
Kind and ref are checked here, not only by a face, because they end up in error messages
and logs.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from connhub.connections import service as connections
from connhub.dependents import repository as repo
from connhub.errors import BadRequest, Conflict, NotFound
from connhub.models import Dependent
from connhub.models.base import utcnow
from connhub.workspaces.principal import Principal, Role

KIND_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"
REF_MAX = 255
_KIND = re.compile(KIND_PATTERN)


def check(kind: str, ref: str) -> None:
    if not _KIND.fullmatch(kind):
        raise BadRequest(
            "kind must be lower-case letters, digits, '_' or '-' (at most 64)", field="kind"
        )
    if not ref or len(ref) > REF_MAX or not ref.isprintable():
        raise BadRequest(f"ref must be 1-{REF_MAX} printable characters", field="ref")


async def list_for(
    session: AsyncSession, principal: Principal, connection_id: uuid.UUID
) -> Sequence[Dependent]:
    conn = await connections.get(session, principal, connection_id)
    return await repo.list_for(session, conn.id)


async def put(
    session: AsyncSession, principal: Principal, connection_id: uuid.UUID, kind: str, ref: str
) -> tuple[Dependent, bool]:
    """Register (kind, ref) on the connection; returns it and whether it is new."""
    check(kind, ref)
    conn = await connections.get(session, principal, connection_id)
    connections.require(principal, Role.member)
    existing = await repo.get(session, conn.id, kind, ref)
    if existing is not None:
        return existing, False
    dependent = Dependent(connection_id=conn.id, kind=kind, ref=ref, created_at=utcnow())
    try:
        async with session.begin_nested():
            session.add(dependent)
            await session.flush()
    except IntegrityError as exc:
        # Either the same dependent was registered concurrently (fine: idempotent) or the
        # connection was deleted meanwhile (the foreign key refused it).
        if dependent in session:
            session.expunge(dependent)
        existing = await repo.get(session, conn.id, kind, ref)
        if existing is None:
            raise Conflict("The connection changed concurrently; retry") from exc
        return existing, False
    return dependent, True


async def remove(
    session: AsyncSession, principal: Principal, connection_id: uuid.UUID, kind: str, ref: str
) -> None:
    check(kind, ref)
    conn = await connections.get(session, principal, connection_id)
    connections.require(principal, Role.member)
    if not await repo.remove(session, conn.id, kind, ref):
        raise NotFound("Dependent not found")
