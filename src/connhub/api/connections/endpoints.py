"""Connections API routes (API.md section 3): thin mapping onto connections.service."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import Field, TypeAdapter, ValidationError
from starlette.datastructures import QueryParams

from connhub.api.connections.limits import CallerDep, LimitedRoute
from connhub.api.connections.schemas import (
    ConnectionCreate,
    ConnectionList,
    ConnectionOut,
    ConnectionUpdate,
    EditSettings,
    StatusName,
    page_to_wire,
    to_wire,
)
from connhub.connections import service
from connhub.connections import verify as verification
from connhub.connections.schemas import ConnectionPatch, ListQuery, Order, SortBy
from connhub.deps import RuntimeDep, SessionDep
from connhub.kit.db import commit
from connhub.kit.responses import JSONResponse

router = APIRouter(prefix="/api/v1/connections", tags=["connections"], route_class=LimitedRoute)

ConnectionId = Annotated[uuid.UUID, "connection id"]

MAX_PROVIDERS = 100
MAX_STATUSES = 10

# The PHP/Rails array style of the list filters (``status[]=active``), as the contract writes
# it. Not endpoint parameters, so a request without them pays nothing for them: read from the
# query string only when sent, validated like their plain twins (same values, same maximum
# count; 422 at ``["query", "status[]", ...]``), and documented through ``openapi_extra``.
_ALIASES: dict[str, TypeAdapter[list[Any]]] = {
    "provider[]": TypeAdapter(Annotated[list[str], Field(max_length=MAX_PROVIDERS)]),
    "status[]": TypeAdapter(Annotated[list[StatusName], Field(max_length=MAX_STATUSES)]),
}
_ALIAS_DOCS: dict[str, Any] = {
    "parameters": [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": f"Same as `{name[:-2]}` (array style); both may be sent",
            "schema": adapter.json_schema(),
        }
        for name, adapter in _ALIASES.items()
    ]
}


def _alias(params: QueryParams, name: str) -> list[Any]:
    """The values of the bracket alias ``name``, validated (422 when invalid)."""
    try:
        return _ALIASES[name].validate_python(params.getlist(name))
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        raise RequestValidationError(
            [{**err, "loc": ("query", name, *err["loc"])} for err in errors]
        ) from None


@router.get("", response_model=ConnectionList, include_in_schema=False)
@router.get(
    "/", response_model=ConnectionList, summary="List Connections", openapi_extra=_ALIAS_DOCS
)
async def list_connections(
    request: Request,
    runtime: RuntimeDep,
    principal: CallerDep,
    q: Annotated[str | None, Query(max_length=255, description="Search by name or slug")] = None,
    provider: Annotated[list[str] | None, Query(max_length=MAX_PROVIDERS)] = None,
    status: Annotated[list[StatusName] | None, Query(max_length=MAX_STATUSES)] = None,
    sort_by: SortBy = SortBy.name,
    order: Order = Order.asc,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    cursor: Annotated[
        str | None, Query(max_length=1024, description="If present, switches to cursor mode")
    ] = None,
) -> Response:
    params = request.query_params
    providers = list(provider or [])
    if "provider[]" in params:
        providers += _alias(params, "provider[]")
    statuses = list(status or [])
    if "status[]" in params:
        statuses += _alias(params, "status[]")
    query = ListQuery(
        q=q or None,
        providers=tuple(providers),
        statuses=tuple(statuses),
        sort_by=sort_by,
        order=order,
        limit=limit,
        offset=offset,
        cursor=cursor,
    )
    # Reads open their store connection inline, not as a yield dependency: FastAPI's exit
    # stack for those cost more than the page query on this endpoint.
    async with runtime.reader() as reader:
        page = await service.list_connections(reader, principal, query)
    return JSONResponse(page_to_wire(page))


@router.post("", response_model=ConnectionOut, status_code=201, include_in_schema=False)
@router.post("/", response_model=ConnectionOut, status_code=201, summary="Create Connection")
async def create_connection(
    body: ConnectionCreate, session: SessionDep, principal: CallerDep, runtime: RuntimeDep
) -> Response:
    conn = await service.create(
        session,
        principal,
        registry=runtime.registry,
        envelope=runtime.envelope,
        name=body.name,
        provider=body.provider,
        credentials=body.credentials,
        config=body.config,
        visibility=body.visibility,
        slug=body.slug,
        template_id=body.templateId,
    )
    await commit(session, conflict="A connection with this slug already exists")
    return JSONResponse(to_wire(conn), status_code=201)


@router.get("/slug/{slug}", response_model=ConnectionOut, summary="Get Connection By Slug")
async def get_by_slug(
    slug: Annotated[str, "slug"], runtime: RuntimeDep, principal: CallerDep
) -> Response:
    async with runtime.reader() as reader:
        conn = await service.view(reader, principal, slug=slug)
    return JSONResponse(to_wire(conn))


@router.get("/{connection_id}", response_model=ConnectionOut, summary="Get Connection")
async def get_connection(
    connection_id: uuid.UUID, runtime: RuntimeDep, principal: CallerDep
) -> Response:
    async with runtime.reader() as reader:
        conn = await service.view(reader, principal, connection_id=connection_id)
    return JSONResponse(to_wire(conn))


@router.patch("/{connection_id}", response_model=ConnectionOut, summary="Update Connection")
async def update_connection(
    connection_id: uuid.UUID,
    body: ConnectionUpdate,
    session: SessionDep,
    principal: CallerDep,
    runtime: RuntimeDep,
) -> Response:
    patch = ConnectionPatch(
        name=body.name,
        config=body.config,
        credentials=body.credentials,
        visibility=body.visibility,
        provider=body.provider,
    )
    conn = await service.update(
        session,
        principal,
        connection_id,
        patch,
        registry=runtime.registry,
        envelope=runtime.envelope,
    )
    await commit(session)
    return JSONResponse(to_wire(conn))


@router.delete(
    "/{connection_id}", status_code=204, response_class=Response, summary="Delete Connection"
)
async def delete_connection(
    connection_id: uuid.UUID, session: SessionDep, principal: CallerDep
) -> Response:
    await service.delete(session, principal, connection_id)
    await commit(session, conflict="Connection has dependents; remove them first")
    return Response(status_code=204)


@router.post("/{connection_id}/disable", response_model=ConnectionOut, summary="Disable Connection")
async def disable(connection_id: uuid.UUID, session: SessionDep, principal: CallerDep) -> Response:
    conn = await service.disable(session, principal, connection_id)
    await commit(session)
    return JSONResponse(to_wire(conn))


@router.post(
    "/{connection_id}/reactivate", response_model=ConnectionOut, summary="Reactivate Connection"
)
async def reactivate(
    connection_id: uuid.UUID, session: SessionDep, principal: CallerDep
) -> Response:
    conn = await service.reactivate(session, principal, connection_id)
    await commit(session)
    return JSONResponse(to_wire(conn))


@router.post(
    "/{connection_id}/set-default", response_model=ConnectionOut, summary="Set Default Connection"
)
async def set_default(
    connection_id: uuid.UUID, session: SessionDep, principal: CallerDep
) -> Response:
    conn = await service.set_default(session, principal, connection_id)
    await commit(session, conflict="Another default was set concurrently; retry")
    return JSONResponse(to_wire(conn))


@router.get(
    "/{connection_id}/edit-settings",
    response_model=EditSettings,
    summary="Get Connection Edit Settings",
)
async def edit_settings(
    connection_id: uuid.UUID, session: SessionDep, principal: CallerDep, runtime: RuntimeDep
) -> Response:
    conn = await service.get(session, principal, connection_id)
    spec = runtime.registry.get(conn.provider)
    configured = set(conn.credential_keys or [])
    return JSONResponse(
        {
            "config": conn.config,
            "secretFields": {
                f.name: {"configured": f.name in configured} for f in spec.credentials
            },
        }
    )


@router.post("/{connection_id}/verify", response_model=ConnectionOut, summary="Verify Connection")
async def verify(connection_id: uuid.UUID, principal: CallerDep, runtime: RuntimeDep) -> Response:
    """Run the live, read-only checks; 200 with the updated connection even when they fail."""
    conn, _ = await verification.verify_stored(runtime, principal, connection_id)
    return JSONResponse(to_wire(conn))
