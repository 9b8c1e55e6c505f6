"""Workspaces, users and API tokens: created by the operator CLI, resolved on every request."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from connhub.errors import BadRequest, Conflict, NotFound, Unauthorized
from connhub.kit.db import Reader
from connhub.kit.slugs import SLUG_PATTERN, slugify
from connhub.models import ApiToken, Membership, User, Workspace
from connhub.workspaces import repository as repo
from connhub.workspaces.principal import Principal, Role

TOKEN_PREFIX = "chub_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_workspace(
    session: AsyncSession, *, name: str, slug: str | None = None
) -> Workspace:
    name = name.strip()
    if not name or len(name) > 255:
        raise BadRequest("Workspace name must be 1-255 characters", field="name")
    if slug is not None:
        if not re.fullmatch(SLUG_PATTERN, slug) or len(slug) > 63:
            raise BadRequest(
                "Slug must be lower-case kebab-case, at most 63 characters", field="slug"
            )
        if await repo.slug_taken(session, slug):
            raise Conflict(f"Workspace slug '{slug}' is taken", field="slug")
    else:
        base = slugify(name, max_length=55, fallback="workspace")
        slug, n = base, 1
        while await repo.slug_taken(session, slug):
            n += 1
            slug = f"{base}-{n}"
    workspace = Workspace(id=uuid.uuid4(), name=name, slug=slug)
    session.add(workspace)
    await session.flush()
    return workspace


async def create_token(
    session: AsyncSession,
    *,
    workspace_ref: str,
    email: str,
    role: Role,
    first_name: str | None = None,
    last_name: str | None = None,
) -> tuple[str, User, Workspace]:
    """Make (or reuse) the user, set their role in the workspace, mint a token shown once."""
    workspace = await repo.workspace_by_id_or_slug(session, workspace_ref)
    if workspace is None:
        raise NotFound(f"Workspace '{workspace_ref}' not found")
    email = email.strip().lower()
    if "@" not in email or len(email) > 320:
        raise BadRequest("A valid email is required", field="email")
    user = await repo.user_by_email(session, email)
    if user is None:
        local = email.split("@", 1)[0]
        user = User(
            id=uuid.uuid4(), email=email, first_name=first_name or local, last_name=last_name
        )
        session.add(user)
        await session.flush()
    member = await repo.membership(session, workspace.id, user.id)
    if member is None:
        session.add(Membership(workspace_id=workspace.id, user_id=user.id, role=role.value))
    else:
        member.role = role.value
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            id=uuid.uuid4(),
            token_hash=hash_token(token),
            prefix=token[:12],
            user_id=user.id,
            workspace_id=workspace.id,
        )
    )
    await session.flush()
    return token, user, workspace


async def resolve_principal(
    reader: Reader, *, token: str, workspace_header: str | None
) -> Principal:
    """Token → user → workspace (header, else the only membership, else the token's own)."""
    rows = await repo.token_memberships(reader, hash_token(token))
    if not rows:
        raise Unauthorized("Invalid or revoked token")
    memberships = {row.workspace_id: row for row in rows if row.workspace_id is not None}
    first = rows[0]
    if workspace_header:
        try:
            wanted = uuid.UUID(workspace_header)
        except ValueError:
            found = await repo.workspace_id_by_slug(reader, workspace_header)
            if found is None:
                raise NotFound("Workspace not found") from None
            wanted = found
        row = memberships.get(wanted)
        if row is None:
            raise NotFound("Workspace not found")
    elif len(memberships) == 1:
        row = next(iter(memberships.values()))
    elif first.token_workspace in memberships:
        row = memberships[first.token_workspace]
    elif not memberships:
        raise Unauthorized("Token has no workspace membership")
    else:
        raise BadRequest(
            "X-Workspace-ID is required: the token belongs to several workspaces",
            code="workspace_required",
        )
    return Principal(
        user_id=row.user_id, workspace_id=row.workspace_id, role=Role(row.role), email=row.email
    )
