"""The connections domain: every face creates, reads and changes connections through here.

Services never commit; the caller's unit of work does (kit.db.commit), so a failed request
leaves the store as it was.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from connhub.connections import cursor as cursors
from connhub.connections import repository as repo
from connhub.connections.schemas import (
    ConnectionPatch,
    ListQuery,
    Page,
    Status,
    UserProfile,
    Visibility,
)
from connhub.errors import BadRequest, Conflict, Forbidden, ImmutableField, InvalidState, NotFound
from connhub.kit.crypto import Envelope
from connhub.kit.db import Reader
from connhub.kit.slugs import CONNECTION_SLUG_PATTERN, slugify
from connhub.models import Connection
from connhub.models.base import utcnow
from connhub.providers.registry import ProviderRegistry
from connhub.secrets import service as secrets
from connhub.workspaces.principal import Principal, Role

_SLUG_RE = re.compile(CONNECTION_SLUG_PATTERN)


def require(principal: Principal, role: Role) -> None:
    """403 unless the caller has ``role``: for actions on no object yet (creates)."""
    if not principal.can(role):
        raise Forbidden(f"This action needs the {role.value} role")


async def require_on_read(
    reader: Reader, principal: Principal, role: Role, connection_id: uuid.UUID
) -> None:
    """``require`` for an action on one connection through a ``Reader`` (verify): 404 unless
    the caller can see it (as for any role), then 403. Checked before the credentials are
    opened, so a viewer's attempt decrypts nothing; the look-up runs only when the role falls
    short. Closes the reader."""
    if principal.can(role):
        return
    async with reader:
        await view(reader, principal, connection_id=connection_id)
    require(principal, role)


async def list_connections(reader: Reader, principal: Principal, query: ListQuery) -> Page:
    after = None
    if query.cursor:
        after = cursors.decode(query.cursor, sort_by=query.sort_by.value, order=query.order.value)
    cursor_mode = query.cursor is not None
    rows = list(await repo.page(reader, principal, query, after, with_total=not cursor_mode))
    has_next = len(rows) > query.limit
    items = rows[: query.limit]
    total = None
    if not cursor_mode:
        total = rows[0].total_count if rows else await repo.count(reader, principal, query)
    next_cursor = None
    if has_next and items:
        last = items[-1]
        next_cursor = cursors.encode(
            query.sort_by.value, query.order.value, repo.sort_value(last, query.sort_by), last.id
        )
    users: dict[uuid.UUID, UserProfile] = {}
    for row in items:  # a page has one or two distinct users: look each up once
        uid = row.created_by
        if uid is not None and uid not in users:
            users[uid] = UserProfile(
                uid, row.creator_first_name, row.creator_last_name, row.creator_profile_picture_url
            )
        uid = row.updated_by
        if uid is not None and uid not in users:
            users[uid] = UserProfile(
                uid, row.updater_first_name, row.updater_last_name, row.updater_profile_picture_url
            )
    return Page(
        items=items,
        limit=query.limit,
        offset=0 if cursor_mode else query.offset,
        total=total,
        has_next=has_next,
        next_cursor=next_cursor,
        users=users,
    )


async def view(
    reader: Reader,
    principal: Principal,
    *,
    connection_id: uuid.UUID | None = None,
    slug: str | None = None,
) -> Any:
    """A read-only view of one connection (attribute access like the model)."""
    row = await repo.view(reader, principal, connection_id=connection_id, slug=slug)
    if row is None:
        raise NotFound("Connection not found")
    return row


async def get(
    session: AsyncSession,
    principal: Principal,
    connection_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> Connection:
    conn = await repo.get_visible(
        session, principal, connection_id=connection_id, for_update=for_update
    )
    if conn is None:
        raise NotFound("Connection not found")
    return conn


async def _free_slug(
    session: AsyncSession, workspace_id: uuid.UUID, name: str, tried: set[str]
) -> str:
    """The name's slug, or ``-2``, ``-3``... past those taken or already lost to a race."""
    base = slugify(name, max_length=200)
    taken = await repo.slugs_like(session, workspace_id, base) | tried
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


async def create(
    session: AsyncSession,
    principal: Principal,
    *,
    registry: ProviderRegistry,
    envelope: Envelope,
    name: str,
    provider: str,
    credentials: Mapping[str, Any],
    config: Mapping[str, Any] | None = None,
    visibility: Visibility = Visibility.private,
    slug: str | None = None,
    template_id: str | None = None,
    face: str | None = None,
    face_data: Mapping[str, Any] | None = None,
) -> Connection:
    require(principal, Role.member)
    spec = registry.get(provider)
    clean_config = spec.validate_config(config or {})
    clean_credentials = spec.validate_credentials(credentials)
    spec.check_selected_auth(clean_config, clean_credentials)
    if slug is not None:
        if not _SLUG_RE.fullmatch(slug):
            raise BadRequest(
                "Slug must be lower-case letters, digits and dashes",
                code="invalid_slug",
                field="slug",
            )
        if await repo.slug_exists(session, principal.workspace_id, slug):
            raise Conflict(f"Slug '{slug}' is already used in this workspace", field="slug")
    now = utcnow()
    tried: set[str] = set()
    attempts = 1 if slug is not None else 25
    for attempt in range(attempts):
        conn = Connection(
            id=uuid.uuid4(),
            workspace_id=principal.workspace_id,
            name=name,
            slug=slug or await _free_slug(session, principal.workspace_id, name, tried),
            provider=spec.name,
            config=clean_config,
            credential_keys=sorted(clean_credentials),
            status=Status.needs_verification.value,
            visibility=visibility.value,
            is_default=False,
            is_from_template=template_id is not None,
            template_id=template_id,
            created_by=principal.user_id,
            updated_by=principal.user_id,
            created_at=now,
            updated_at=now,
            verification_details={},
            face=face,
            face_data=dict(face_data or {}),
        )
        try:
            async with session.begin_nested():
                session.add(conn)
                await session.flush()
        except IntegrityError as exc:
            if attempt == attempts - 1 or "slug" not in str(exc.orig):
                raise Conflict(
                    "A connection with this slug (or singleton) already exists", field="slug"
                ) from exc
            tried.add(conn.slug)  # an auto slug lost a race: pick the next free one
            continue
        break
    await secrets.store(
        session,
        envelope,
        workspace_id=principal.workspace_id,
        connection_id=conn.id,
        credentials=clean_credentials,
    )
    await repo.claim_default_if_none(session, conn)
    return conn


def _touch(conn: Connection, principal: Principal) -> None:
    conn.updated_at = utcnow()
    conn.updated_by = principal.user_id


def _needs_verification(conn: Connection) -> None:
    if conn.status != Status.disabled.value:
        conn.status = Status.needs_verification.value
    conn.verification_error = None
    conn.verification_error_code = None


_RETIRED = "connhub.retired_connections"


def _retire_sessions(session: AsyncSession, connection_id: uuid.UUID) -> None:
    """Mark the connection's pooled query sessions for closing when this unit of work ends.

    For a connection deleted, disabled, or given other settings: the sessions open on the
    customer's database must not wait to idle out. ``deps.get_session`` closes them after
    the commit; a rolled-back unit of work closes nothing.
    """
    session.info.setdefault(_RETIRED, set()).add(connection_id)


def retired(session: AsyncSession) -> set[uuid.UUID]:
    """Connections whose pooled query sessions this unit of work retired."""
    found: set[uuid.UUID] = session.info.get(_RETIRED, set())
    return found


async def update(
    session: AsyncSession,
    principal: Principal,
    connection_id: uuid.UUID,
    patch: ConnectionPatch,
    *,
    registry: ProviderRegistry,
    envelope: Envelope,
) -> Connection:
    conn = await get(session, principal, connection_id, for_update=True)
    require(principal, Role.member)  # after the look-up: unseen is 404 for any role
    spec = registry.get(conn.provider)
    if patch.provider is not None and patch.provider != conn.provider:
        raise ImmutableField("provider cannot be changed", field="provider")
    if patch.name is not None:
        conn.name = patch.name
    if patch.visibility is not None:
        conn.visibility = patch.visibility.value
    if patch.config is not None:
        merged = dict(conn.config)
        for key, value in patch.config.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        conn.config = spec.validate_config(merged)
        _needs_verification(conn)
    stored: dict[str, str] | None = None
    if patch.credentials is not None:
        spec.validate_credentials(patch.credentials, partial=True)
        stored = await secrets.load(
            session, envelope, workspace_id=conn.workspace_id, connection_id=conn.id
        )
        for key, value in patch.credentials.items():
            if value is None or value == "":
                stored.pop(key, None)
            else:
                stored[key] = value
        spec.check_complete_credentials(stored)
        await secrets.store(
            session,
            envelope,
            workspace_id=conn.workspace_id,
            connection_id=conn.id,
            credentials=stored,
        )
        conn.credential_keys = sorted(stored)
        _needs_verification(conn)
    if spec.selects_auth and (patch.config is not None or stored is not None):
        if stored is None:
            stored = await secrets.load(
                session, envelope, workspace_id=conn.workspace_id, connection_id=conn.id
            )
        spec.check_selected_auth(conn.config, stored)
    if patch.config is not None or patch.credentials is not None:
        _retire_sessions(session, conn.id)
    _touch(conn, principal)
    await session.flush()
    return conn


async def delete(session: AsyncSession, principal: Principal, connection_id: uuid.UUID) -> None:
    conn = await get(session, principal, connection_id, for_update=True)
    require(principal, Role.member)  # after the look-up: unseen is 404 for any role
    deps = await repo.dependents(session, conn.id)
    if deps:
        kinds = ", ".join(sorted({d.kind for d in deps}))
        raise Conflict(
            f"Connection has {len(deps)} dependent(s) ({kinds}); remove them first",
            code="has_dependents",
        )
    try:
        async with session.begin_nested():
            await repo.delete_connection(session, conn.id)
    except IntegrityError as exc:  # a dependent arrived between the check and the delete
        raise Conflict(
            "Connection has dependents; remove them first", code="has_dependents"
        ) from exc
    session.expunge(conn)
    _retire_sessions(session, connection_id)


async def disable(
    session: AsyncSession, principal: Principal, connection_id: uuid.UUID
) -> Connection:
    conn = await get(session, principal, connection_id, for_update=True)
    require(principal, Role.member)  # after the look-up: unseen is 404 for any role
    if conn.status != Status.disabled.value:
        conn.status = Status.disabled.value
        _touch(conn, principal)
        _retire_sessions(session, connection_id)
    return conn


async def reactivate(
    session: AsyncSession, principal: Principal, connection_id: uuid.UUID
) -> Connection:
    conn = await get(session, principal, connection_id, for_update=True)
    require(principal, Role.member)  # after the look-up: unseen is 404 for any role
    if conn.status != Status.disabled.value:
        raise InvalidState("Only a disabled connection can be reactivated")
    conn.status = Status.needs_verification.value
    _touch(conn, principal)
    return conn


async def set_default(
    session: AsyncSession, principal: Principal, connection_id: uuid.UUID
) -> Connection:
    conn = await get(session, principal, connection_id)
    require(principal, Role.member)  # after the look-up: unseen is 404 for any role
    if conn.status == Status.disabled.value:
        raise InvalidState("A disabled connection cannot be the default")
    await repo.lock_provider_defaults(session, conn.workspace_id, conn.provider)
    await repo.clear_defaults(session, conn.workspace_id, conn.provider, except_id=conn.id)
    await session.flush()
    conn.is_default = True
    _touch(conn, principal)
    await session.flush()
    return conn


@dataclass(frozen=True)
class ForUse:
    """A visible connection with its credentials opened: what using it needs, nothing more.

    The credentials live only as long as the request that loaded them (and stay out of the
    repr). ``updated_at`` is the edit they come from: a verification's outcome is recorded
    only while it is still the latest.
    """

    id: uuid.UUID
    provider: str
    status: str
    config: dict[str, Any]
    last_used_at: datetime | None
    updated_at: datetime
    credentials: dict[str, str] = field(repr=False)


async def for_use(
    reader: Reader, envelope: Envelope, principal: Principal, connection_id: uuid.UUID
) -> ForUse:
    """One prebuilt read (connection and sealed secret) on a plain connection, then decrypt.

    Every use of a connection starts here (verify, schema, query), often once per click.
    """
    async with reader:
        row = await repo.with_secret(reader, principal, connection_id)
    if row is None:
        raise NotFound("Connection not found")
    credentials: dict[str, str] = {}
    if row.sealed is not None:
        # The secret row names its owner; the envelope's associated data checks it too.
        owner = (row.secret_workspace_id, row.secret_connection_id)
        if owner != (principal.workspace_id, connection_id):
            raise NotFound("Connection not found")
        credentials = await secrets.open_sealed(
            envelope, row.sealed, workspace_id=principal.workspace_id, connection_id=connection_id
        )
    return ForUse(
        connection_id,
        row.provider,
        row.status,
        dict(row.config),
        row.last_used_at,
        row.updated_at,
        credentials,
    )


async def load_credentials(
    session: AsyncSession, envelope: Envelope, conn: Connection
) -> dict[str, str]:
    return await secrets.load(
        session, envelope, workspace_id=conn.workspace_id, connection_id=conn.id
    )
