"""Seal and open a connection's credentials.

Credentials are one JSON object per connection, sealed with a fresh data key
(kit/crypto.Envelope); the associated data names the workspace and the connection, so a
ciphertext copied onto another row does not open. Plaintext exists only at the point of use.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from connhub.kit.crypto import Envelope, SealedSecret, secret_aad
from connhub.models import ConnectionSecret
from connhub.models.base import utcnow


def _aad(workspace_id: uuid.UUID, connection_id: uuid.UUID) -> bytes:
    return secret_aad(str(workspace_id), str(connection_id))


async def store(
    session: AsyncSession,
    envelope: Envelope,
    *,
    workspace_id: uuid.UUID,
    connection_id: uuid.UUID,
    credentials: Mapping[str, str],
) -> None:
    """Replace the stored credentials (an empty mapping deletes them)."""
    row = await session.get(ConnectionSecret, connection_id)
    if not credentials:
        if row is not None:
            await session.delete(row)
        return
    sealed = envelope.seal_json(dict(credentials), aad=_aad(workspace_id, connection_id))
    if row is None:
        session.add(
            ConnectionSecret(
                connection_id=connection_id,
                workspace_id=workspace_id,
                key_id=sealed.key_id,
                sealed=sealed.to_json(),
            )
        )
    else:
        row.key_id = sealed.key_id
        row.sealed = sealed.to_json()
        row.updated_at = utcnow()


async def load(
    session: AsyncSession, envelope: Envelope, *, workspace_id: uuid.UUID, connection_id: uuid.UUID
) -> dict[str, str]:
    row = await session.get(ConnectionSecret, connection_id)
    if row is None:
        return {}
    return open_sealed(envelope, row.sealed, workspace_id=workspace_id, connection_id=connection_id)


def open_sealed(
    envelope: Envelope, sealed: str, *, workspace_id: uuid.UUID, connection_id: uuid.UUID
) -> dict[str, str]:
    """Open a stored secret; the associated data fails it unless it belongs to exactly this
    workspace's connection."""
    return envelope.open_json(SealedSecret.from_json(sealed), aad=_aad(workspace_id, connection_id))


async def any_sealed(session: AsyncSession) -> ConnectionSecret | None:
    """One stored secret, used at start-up to prove the key material still opens them."""
    return (await session.execute(select(ConnectionSecret).limit(1))).scalar()


def open_row(envelope: Envelope, row: ConnectionSecret) -> dict[str, str]:
    return open_sealed(
        envelope, row.sealed, workspace_id=row.workspace_id, connection_id=row.connection_id
    )


async def rewrap_all(session: AsyncSession, envelope: Envelope) -> int:
    """Re-wrap every data key under the active key-encryption key (rotation, no downtime)."""
    rows = (await session.execute(select(ConnectionSecret))).scalars().all()
    count = 0
    for row in rows:
        sealed = SealedSecret.from_json(row.sealed)
        new = envelope.rewrap(sealed, aad=_aad(row.workspace_id, row.connection_id))
        if new.key_id != sealed.key_id or new.wrapped_key != sealed.wrapped_key:
            row.sealed, row.key_id = new.to_json(), new.key_id
            count += 1
    return count
