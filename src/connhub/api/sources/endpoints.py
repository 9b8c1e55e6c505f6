"""Sources API routes (API.md section 2): a thin mapping onto ``connhub.sources.service``.

Every route takes ``Authorization: Bearer <token>`` and ``X-Workspace-ID``. The workspace is
the path's: a header naming another one is 403, and so is a workspace the caller is not a
member of, whether or not it exists (this face answers 403 where the Connections API would
404, as the contract asks; nothing tells a caller which workspace ids exist). Requests of
members count against the workspace's rate limit; callers refused before that do not.

The two ``test`` routes answer ``text/event-stream``. Everything that can be refused (body,
role, unknown or disabled source) is refused as JSON before the stream starts. Each ``step``
is sent as its check finishes (the middleware is pure ASGI and ``X-Accel-Buffering: no`` asks
nginx not to buffer). A client that hangs up cancels the running check within one poll of
``kit.sse`` (0.25 s) or at once when the server sees the disconnect; a stored source's status
then stays as it was: only a check that ran to its end is recorded (if the client leaves
while that record is being written, the write may still land; nothing half-done is stored).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from connhub.api.sources.schemas import (
    SSE_RESPONSE,
    Deleted,
    ErrorOut,
    SourceCreate,
    SourceOut,
    SourceTest,
    SourceUpdate,
)
from connhub.deps import RuntimeDep, SessionDep, bearer_token, count_request, quota_headers
from connhub.errors import BadRequest, Forbidden, NotFound, Unauthorized
from connhub.kit.db import commit
from connhub.kit.responses import JSONResponse
from connhub.kit.sse import sse_response, sse_stream
from connhub.sources import service
from connhub.sources.mapping import to_source
from connhub.workspaces import repository as workspaces_repo
from connhub.workspaces.principal import Principal, Role
from connhub.workspaces.service import hash_token

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 429)
}
router = APIRouter(
    prefix="/api/v1/workspaces/{workspace_id}/sources", tags=["sources"], responses=_ERRORS
)


def _uuid_or_none(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


async def workspace_member(request: Request, workspace_id: str, runtime: RuntimeDep) -> Principal:
    """The caller as a member of the path's workspace (401, 400, 403 otherwise)."""
    token = bearer_token(request)
    if not token:
        raise Unauthorized("Authentication required: send Authorization: Bearer <token>")
    # A short read: the test routes talk to customer systems for seconds.
    async with runtime.reader() as reader:
        rows = await workspaces_repo.token_memberships(reader, hash_token(token))
    if not rows:
        raise Unauthorized("Invalid or revoked token")
    header = request.headers.get("x-workspace-id")
    if not header:
        raise BadRequest("X-Workspace-ID header is required", field="X-Workspace-ID")
    wanted = _uuid_or_none(workspace_id)
    if header.strip().lower() != workspace_id.lower() and (
        wanted is None or _uuid_or_none(header.strip()) != wanted
    ):
        raise Forbidden("X-Workspace-ID does not match the workspace in the path")
    row = next((r for r in rows if wanted is not None and r.workspace_id == wanted), None)
    if row is None:
        raise Forbidden("not a workspace member")
    return Principal(
        user_id=row.user_id, workspace_id=row.workspace_id, role=Role(row.role), email=row.email
    )


async def sources_caller(
    request: Request, principal: Annotated[Principal, Depends(workspace_member)]
) -> Principal:
    """The member, once their request has been counted against the workspace's limit."""
    await count_request(request, f"sources:{principal.workspace_id}")
    return principal


CallerDep = Annotated[Principal, Depends(sources_caller)]


def _json(request: Request, content: Any, status_code: int = 200) -> Response:
    return quota_headers(request, JSONResponse(content, status_code=status_code))


def _stream(request: Request, events: AsyncIterator[tuple[str, Any]]) -> Response:
    return quota_headers(request, sse_response(sse_stream(events, request)))


def _source_id(text: str) -> uuid.UUID:
    """A source id that is not a UUID names no source: 404 like any unknown one."""
    parsed = _uuid_or_none(text)
    if parsed is None:
        raise NotFound("Source not found")
    return parsed


@router.get("", response_model=list[SourceOut], summary="List Sources")
async def list_sources(request: Request, session: SessionDep, principal: CallerDep) -> Response:
    rows = await service.list_sources(session, principal)
    return _json(request, [to_source(conn) for conn in rows])


@router.post("", response_model=SourceOut, status_code=201, summary="Create Source")
async def create_source(
    request: Request,
    body: SourceCreate,
    session: SessionDep,
    principal: CallerDep,
    runtime: RuntimeDep,
) -> Response:
    conn = await service.create(
        session,
        principal,
        registry=runtime.registry,
        envelope=runtime.envelope,
        name=body.name,
        source_type=body.source_type,
        config=body.config,
        connection_id=body.connection_id,
    )
    source = to_source(conn)
    await commit(session, conflict="The workspace changed concurrently; retry")
    return _json(request, source, status_code=201)


@router.post("/test", responses=SSE_RESPONSE, summary="Test New Connection (SSE)")
async def test_new_source(
    request: Request, body: SourceTest, principal: CallerDep, runtime: RuntimeDep
) -> Response:
    """Run the checks on an unsaved config; nothing is stored."""
    service.require_tester(principal)
    unsaved = service.validate_new(runtime.registry, body.source_type, body.config)
    return _stream(request, service.unsaved_test_events(runtime, unsaved))


@router.get("/{source_id}", response_model=SourceOut, summary="Get Source")
async def get_source(
    request: Request, source_id: str, session: SessionDep, principal: CallerDep
) -> Response:
    conn = await service.get(session, principal, _source_id(source_id))
    return _json(request, to_source(conn))


@router.put("/{source_id}", response_model=SourceOut, summary="Update Source")
async def update_source(
    request: Request,
    source_id: str,
    body: SourceUpdate,
    session: SessionDep,
    principal: CallerDep,
    runtime: RuntimeDep,
) -> Response:
    changes = service.SourceChanges(
        name=body.name,
        source_type=body.source_type,
        config=body.config,
        connection_id_sent="connection_id" in body.model_fields_set,
        connection_id=body.connection_id,
    )
    conn = await service.update(
        session,
        principal,
        _source_id(source_id),
        changes,
        registry=runtime.registry,
        envelope=runtime.envelope,
    )
    source = to_source(conn)
    await commit(session)
    return _json(request, source)


@router.delete("/{source_id}", response_model=Deleted, summary="Delete Source")
async def delete_source(
    request: Request, source_id: str, session: SessionDep, principal: CallerDep
) -> Response:
    await service.delete(session, principal, _source_id(source_id))
    await commit(session, conflict=service.DEPENDENTS_MESSAGE)
    return _json(request, {"status": "deleted"})


@router.post("/{source_id}/test", responses=SSE_RESPONSE, summary="Test Source (SSE)")
async def test_source(
    request: Request, source_id: str, principal: CallerDep, runtime: RuntimeDep
) -> Response:
    """Run the checks with the stored credentials; the outcome becomes the source's status."""
    prepared = await service.prepare_stored_test(runtime, principal, _source_id(source_id))
    return _stream(request, service.stored_test_events(runtime, principal, prepared))
