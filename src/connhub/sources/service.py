"""Sources use cases over the core connections services (API.md section 2).

Like the core services these never commit; the face commits the unit of work.

Decisions the contract leaves open (ours):

* ``PUT`` ``config`` is the source's whole new config, as an edit form submits it: non-secret
  keys left out are removed (so a required one left out is a 400), while secrets left out or
  sent as the mask are kept; ``null``/``""`` clears a secret (to switch Snowflake from password
  to key pair send ``private_key`` and ``"password": null``). Only a real change goes to the
  core, so saving an unchanged form does not reset ``status`` to ``pending``.
* ``connection_id`` must name a connection the caller can see in the workspace (else 404).
  The source registers itself as a dependent (kind ``source``) of that connection, so the
  shared connection cannot be deleted while a source refers to it.
* Sources are created with ``visibility: global``: every member of the workspace sees them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connhub.connections import service as connections
from connhub.connections import verify as stored_verification
from connhub.connections.schemas import ConnectionPatch, Visibility
from connhub.connections.service import ForUse
from connhub.dependents import repository as dependents_repo
from connhub.dependents import service as dependents
from connhub.errors import BadRequest, Conflict, ImmutableField, NotFound
from connhub.kit.crypto import Envelope
from connhub.models import Connection
from connhub.providers.registry import ProviderRegistry
from connhub.providers.spec import ProviderSpec
from connhub.runtime import Runtime
from connhub.sources import repository as repo
from connhub.sources.mapping import FACE, check_source_type, sources_terms, split, to_source
from connhub.verification import service as verification
from connhub.verification.result import StepResult
from connhub.workspaces.principal import Principal, Role

REFERENCE_KIND = "source"  # the dependent a source registers on its shared connection
DEPENDENTS_MESSAGE = "source has dependent models or syncs"

Event = tuple[str, Any]


@dataclass(frozen=True)
class Unsaved:
    """A validated config to test without saving (core names, secrets included)."""

    provider: str
    config: dict[str, Any]
    credentials: dict[str, str]


@dataclass(frozen=True)
class SourceChanges:
    """A PUT body; ``None`` means "not sent" (``connection_id`` uses ``connection_id_sent``)."""

    name: str | None = None
    source_type: str | None = None
    config: Mapping[str, Any] | None = None
    connection_id_sent: bool = False
    connection_id: uuid.UUID | None = None


def _check_name(name: str) -> str:
    if not name.strip():
        raise BadRequest("name must not be blank", field="name")
    return name


def _spec(registry: ProviderRegistry, source_type: str) -> ProviderSpec:
    check_source_type(source_type)
    return registry.get(source_type)


def validate_new(
    registry: ProviderRegistry, source_type: str, config: Mapping[str, Any]
) -> Unsaved:
    """Check a create/test body's ``source_type`` and ``config`` (400 naming the field)."""
    spec = _spec(registry, source_type)
    parts = split(spec, config)
    with sources_terms(spec):
        clean_config = spec.validate_config(parts.config)
        clean_credentials = spec.validate_credentials(
            {k: v for k, v in parts.credentials.items() if v is not None}
        )
    return Unsaved(spec.name, clean_config, clean_credentials)


async def list_sources(session: AsyncSession, principal: Principal) -> list[Connection]:
    return list(await repo.list_sources(session, principal))


async def get(
    session: AsyncSession, principal: Principal, source_id: uuid.UUID, *, for_update: bool = False
) -> Connection:
    conn = await repo.get_source(session, principal, source_id, for_update=for_update)
    if conn is None:
        raise NotFound("Source not found")
    return conn


async def _shared_connection(
    session: AsyncSession, principal: Principal, connection_id: uuid.UUID
) -> Connection:
    try:
        return await connections.get(session, principal, connection_id)
    except NotFound:
        raise NotFound("connection_id does not name a connection in this workspace") from None


async def _refer(
    session: AsyncSession, principal: Principal, source_id: uuid.UUID, connection_id: uuid.UUID
) -> None:
    if connection_id == source_id:
        raise BadRequest("connection_id cannot be the source itself", field="connection_id")
    await dependents.put(session, principal, connection_id, REFERENCE_KIND, str(source_id))


async def _unrefer(session: AsyncSession, source: Connection) -> None:
    reference = (source.face_data or {}).get("connection_id")
    if reference:
        await dependents_repo.remove(session, uuid.UUID(reference), REFERENCE_KIND, str(source.id))


async def create(
    session: AsyncSession,
    principal: Principal,
    *,
    registry: ProviderRegistry,
    envelope: Envelope,
    name: str,
    source_type: str,
    config: Mapping[str, Any],
    connection_id: uuid.UUID | None = None,
) -> Connection:
    """A new source, ``pending``; nothing is contacted (clients test first)."""
    connections.require(principal, Role.member)
    _check_name(name)
    unsaved = validate_new(registry, source_type, config)
    if connection_id is not None:
        await _shared_connection(session, principal, connection_id)
    face_data = {"connection_id": str(connection_id) if connection_id else None}
    conn = await connections.create(
        session,
        principal,
        registry=registry,
        envelope=envelope,
        name=name,
        provider=unsaved.provider,
        credentials=unsaved.credentials,
        config=unsaved.config,
        visibility=Visibility.global_,
        face=FACE,
        face_data=face_data,
    )
    if connection_id is not None:
        await _refer(session, principal, conn.id, connection_id)
    return conn


def _config_patch(
    spec: ProviderSpec, conn: Connection, config: Mapping[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, str | None] | None]:
    """What really changed, as core patches (``None`` values remove a key / clear a secret)."""
    parts = split(spec, config, for_update=True)
    with sources_terms(spec):
        wanted = spec.validate_config(parts.config)
    old = dict(conn.config or {})
    patch: dict[str, Any] = {k: v for k, v in wanted.items() if old.get(k) != v}
    patch.update({k: None for k in old if k not in wanted})
    return patch or None, dict(parts.credentials) or None


async def update(
    session: AsyncSession,
    principal: Principal,
    source_id: uuid.UUID,
    changes: SourceChanges,
    *,
    registry: ProviderRegistry,
    envelope: Envelope,
) -> Connection:
    conn = await get(session, principal, source_id, for_update=True)
    connections.require(principal, Role.member)  # after the look-up: unseen is 404
    if changes.source_type is not None and changes.source_type != conn.provider:
        raise ImmutableField("source_type cannot be changed", field="source_type")
    spec = registry.get(conn.provider)
    config_patch = credentials_patch = None
    if changes.config is not None:
        config_patch, credentials_patch = _config_patch(spec, conn, changes.config)
    name = _check_name(changes.name) if changes.name is not None else None
    if changes.connection_id_sent:
        await _move_reference(session, principal, conn, changes.connection_id)
    with sources_terms(spec):
        conn = await connections.update(
            session,
            principal,
            conn.id,
            ConnectionPatch(name=name, config=config_patch, credentials=credentials_patch),
            registry=registry,
            envelope=envelope,
        )
    return conn


async def _move_reference(
    session: AsyncSession, principal: Principal, conn: Connection, connection_id: uuid.UUID | None
) -> None:
    current = (conn.face_data or {}).get("connection_id")
    wanted = str(connection_id) if connection_id is not None else None
    if wanted == current:
        return
    if connection_id is not None:
        await _shared_connection(session, principal, connection_id)
        await _refer(session, principal, conn.id, connection_id)
    await _unrefer(session, conn)
    conn.face_data = {**(conn.face_data or {}), "connection_id": wanted}


async def delete(session: AsyncSession, principal: Principal, source_id: uuid.UUID) -> None:
    """Delete, unless models or syncs depend on it (409, and nothing is deleted)."""
    conn = await get(session, principal, source_id, for_update=True)
    connections.require(principal, Role.member)  # after the look-up: unseen is 404
    await _unrefer(session, conn)
    try:
        await connections.delete(session, principal, conn.id)
    except Conflict as exc:
        if exc.code != "has_dependents":
            raise
        raise Conflict(DEPENDENTS_MESSAGE, code="has_dependents") from None


# --- streamed tests --------------------------------------------------------------------------


def require_tester(principal: Principal) -> None:
    """Tests make the server contact a customer system with the caller's input: members only."""
    connections.require(principal, Role.member)


async def prepare_stored_test(
    runtime: Runtime, principal: Principal, source_id: uuid.UUID
) -> ForUse:
    """Errors (404, 403, 400 disabled) surface here, as JSON, before the stream starts."""
    async with runtime.sessions() as session:
        await get(session, principal, source_id)
    require_tester(principal)
    return await stored_verification.prepare(runtime, principal, source_id)


def unsaved_test_events(runtime: Runtime, unsaved: Unsaved) -> AsyncGenerator[Event, None]:
    """``step`` per check as it finishes, then ``done`` ``{success, steps}``; saves nothing.

    Closing the returned generator closes the verification stream, which cancels the check.
    """
    stream = verification.verify_stream(
        unsaved.provider,
        unsaved.config,
        unsaved.credentials,
        settings=runtime.settings,
        egress=runtime.egress,
        registry=runtime.registry,
    )
    return verification.sse_events(stream)


async def stored_test_events(
    runtime: Runtime, principal: Principal, prepared: ForUse
) -> AsyncGenerator[Event, None]:
    """``step`` per check, then ``done`` ``{success, source, steps}`` once it is recorded.

    Closing this early (client gone) closes ``stream_stored``, which cancels the check; the
    outcome of a cancelled check is never recorded, so the source keeps its previous status.
    """
    stream = stored_verification.stream_stored(runtime, principal, prepared.id, prepared=prepared)
    try:
        async for item in stream:
            if isinstance(item, StepResult):
                yield "step", item.to_public()
            else:
                outcome, conn = item
                yield (
                    "done",
                    {
                        "success": outcome.success,
                        "source": to_source(conn),
                        "steps": [step.to_public() for step in outcome.steps],
                    },
                )
    finally:
        await stream.aclose()
