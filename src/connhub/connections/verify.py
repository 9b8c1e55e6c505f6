"""Verify a stored connection: open its secret, run the checks, record the outcome.

The store is not held during the network checks: credentials are read in one short unit of
work, the verification runs with no session open, and the outcome is written in another.
Every face (Connections ``/verify``, Sources SSE tests, Warehouse ``test/``) goes through here.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from typing import Any, cast

from connhub.connections import repository as repo
from connhub.connections import service
from connhub.connections.schemas import Status
from connhub.connections.service import ForUse
from connhub.errors import InvalidState
from connhub.kit.db import commit
from connhub.models import Connection
from connhub.runtime import Runtime
from connhub.verification import service as verification
from connhub.verification.result import StepResult, VerificationOutcome
from connhub.verification.runner import OnStep
from connhub.workspaces.principal import Principal, Role


async def prepare(
    runtime: Runtime, principal: Principal, connection_id: uuid.UUID, *, role: Role = Role.member
) -> ForUse:
    """Load what a verification needs: 404 unless the caller can see the connection, 403
    below ``role``; a disabled connection cannot be used (400)."""
    await service.require_on_read(runtime.reader(), principal, role, connection_id)
    conn = await service.for_use(runtime.reader(), runtime.envelope, principal, connection_id)
    if conn.status == Status.disabled.value:
        raise InvalidState("Connection is disabled; reactivate it first")
    return conn


def outcome_values(outcome: VerificationOutcome) -> dict[str, Any]:
    """The columns a verification outcome sets."""
    return {
        "status": Status.active.value if outcome.success else Status.error.value,
        "last_verified_at": outcome.checked_at,
        "verification_error": None if outcome.success else outcome.message,
        "verification_error_code": None if outcome.success else outcome.code,
        "verification_details": outcome.details(),
    }


def apply_outcome(conn: Connection, outcome: VerificationOutcome) -> None:
    for name, value in outcome_values(outcome).items():
        setattr(conn, name, value)


async def record(
    runtime: Runtime,
    principal: Principal,
    verified: ForUse,
    outcome: VerificationOutcome,
    *,
    face_updates: dict[str, Any] | None = None,
) -> Connection:
    """Store the outcome of verifying ``verified``; returns the row.

    Not stored when the connection was disabled meanwhile, or edited since ``verified`` was
    read (new credentials or settings need their own verification: the edit left the status
    at needs_verification, and an outcome about the old ones must not overwrite it).
    """
    if not face_updates:
        # The usual case in one statement (UPDATE ... RETURNING), no ORM load and flush.
        async with runtime.reader() as statements:
            row = await repo.update_unless_disabled(
                statements,
                principal,
                verified.id,
                outcome_values(outcome),
                unchanged_since=verified.updated_at,
            )
        if row is not None:
            return cast(Connection, row)  # a row of every column: read like the model
        # Not updated: disabled or edited meanwhile, or gone (the path below says which).
    async with runtime.sessions() as session:
        conn = await service.get(session, principal, verified.id, for_update=True)
        if conn.status != Status.disabled.value and conn.updated_at == verified.updated_at:
            apply_outcome(conn, outcome)
            if face_updates:
                conn.face_data = {**(conn.face_data or {}), **face_updates}
        await commit(session)
        return conn


async def verify_stored(
    runtime: Runtime,
    principal: Principal,
    connection_id: uuid.UUID,
    *,
    on_step: OnStep | None = None,
    role: Role = Role.member,
) -> tuple[Connection, VerificationOutcome]:
    prepared = await prepare(runtime, principal, connection_id, role=role)
    outcome = await check(runtime, prepared, on_step=on_step)
    conn = await record(runtime, principal, prepared, outcome)
    return conn, outcome


async def check(
    runtime: Runtime, prepared: ForUse, *, on_step: OnStep | None = None
) -> VerificationOutcome:
    """Run the provider's checks on a prepared connection with the runtime's settings."""
    return await verification.verify(
        prepared.provider,
        prepared.config,
        prepared.credentials,
        settings=runtime.settings,
        egress=runtime.egress,
        on_step=on_step,
        registry=runtime.registry,
    )


async def stream_stored(
    runtime: Runtime,
    principal: Principal,
    connection_id: uuid.UUID,
    *,
    prepared: ForUse | None = None,
) -> AsyncGenerator[StepResult | tuple[VerificationOutcome, Connection], None]:
    """Each step as it finishes, then ``(outcome, updated connection)``.

    Closing the generator early (client gone) cancels the running check; nothing is recorded.
    """
    prepared = prepared or await prepare(runtime, principal, connection_id)
    stream = verification.verify_stream(
        prepared.provider,
        prepared.config,
        prepared.credentials,
        settings=runtime.settings,
        egress=runtime.egress,
        registry=runtime.registry,
    )
    try:
        async for item in stream:
            if isinstance(item, StepResult):
                yield item
            else:
                conn = await record(runtime, principal, prepared, item)
                yield item, conn
    finally:
        await stream.aclose()
