"""Seal and open a connection's credentials.

Credentials are one JSON object per connection, sealed with a fresh data key
(kit/crypto.Envelope); the associated data names the workspace and the connection, so a
ciphertext copied onto another row does not open. Plaintext exists only at the point of use.
With a key service on the network (KMS), sealing and opening run in a worker thread.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Mapping
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from connhub.kit.crypto import Envelope, SealedSecret, secret_aad
from connhub.kit.threads import run_blocking
from connhub.models import ConnectionSecret
from connhub.models.base import utcnow

T = TypeVar("T")


def _aad(workspace_id: uuid.UUID, connection_id: uuid.UUID) -> bytes:
    return secret_aad(str(workspace_id), str(connection_id))


async def _keys(envelope: Envelope, call: Callable[[], T]) -> T:
    """Run an envelope call: inline for a local key (microseconds), in a worker thread when
    the key-encryption key is a network service, so the event loop never waits on it."""
    if envelope.blocking:
        return await run_blocking(call)
    return call()


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
    aad = _aad(workspace_id, connection_id)
    seal = functools.partial(envelope.seal_json, dict(credentials), aad=aad)
    sealed = await _keys(envelope, seal)
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
    return await open_sealed(
        envelope, row.sealed, workspace_id=workspace_id, connection_id=connection_id
    )


async def open_sealed(
    envelope: Envelope, sealed: str, *, workspace_id: uuid.UUID, connection_id: uuid.UUID
) -> dict[str, str]:
    """Open a stored secret; the associated data fails it unless it belongs to exactly this
    workspace's connection."""
    secret, aad = SealedSecret.from_json(sealed), _aad(workspace_id, connection_id)
    return await _keys(envelope, functools.partial(envelope.open_json, secret, aad=aad))


async def any_sealed(session: AsyncSession) -> ConnectionSecret | None:
    """One stored secret, used at start-up to prove the key material still opens them."""
    return (await session.execute(select(ConnectionSecret).limit(1))).scalar()


async def open_row(envelope: Envelope, row: ConnectionSecret) -> dict[str, str]:
    return await open_sealed(
        envelope, row.sealed, workspace_id=row.workspace_id, connection_id=row.connection_id
    )


async def rewrap_all(session: AsyncSession, envelope: Envelope) -> int:
    """Re-wrap every data key under the active key-encryption key (rotation, or a move to
    another key holder, with no downtime)."""
    rows = (await session.execute(select(ConnectionSecret))).scalars().all()
    count = 0
    for row in rows:
        sealed, aad = SealedSecret.from_json(row.sealed), _aad(row.workspace_id, row.connection_id)
        new = await _keys(envelope, functools.partial(envelope.rewrap, sealed, aad=aad))
        if new.key_id != sealed.key_id or new.wrapped_key != sealed.wrapped_key:
            row.sealed, row.key_id = new.to_json(), new.key_id
            count += 1
    return count
