"""Warehouse connection API routes (API.md section 1): a thin mapping onto
``connhub.warehouse.service``.

The organisation in the path *is* the workspace (id or slug), so the caller is resolved
against it rather than against ``X-Workspace-ID``: a token whose user is not a member of that
workspace gets the same 404 as an unknown one, so ids of other organisations leak nothing.
Reads need membership (viewer is enough); writes and ``test/`` need an admin, checked in a
dependency so a viewer's malformed body is still a 403, as in DRF (permissions before
parsing).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from connhub.api import errors
from connhub.api.warehouse import render
from connhub.api.warehouse.schemas import (
    TestResultOut,
    WarehouseConnectionOut,
    WarehouseCreate,
    WarehousePatch,
    WarehouseReplace,
    result_to_wire,
    to_wire,
)
from connhub.deps import RuntimeDep, SessionDep, bearer_token, cached_principal
from connhub.errors import Forbidden, Unauthorized
from connhub.kit.db import commit
from connhub.kit.responses import JSONResponse
from connhub.warehouse import service
from connhub.workspaces.principal import Principal, Role

BASE = "/api/v1/organisations/{organisation_pk}/integrations/warehouse-connections"

router = APIRouter(prefix=BASE, tags=["warehouse connections"])


async def org_principal(request: Request, organisation_pk: str, runtime: RuntimeDep) -> Principal:
    """The caller as a member of the organisation in the path (401, or 404 if not one)."""
    try:
        token = bearer_token(request)
    except Unauthorized:  # an Authorization scheme we do not take counts as none, as in DRF
        token = None
    if not token:
        raise Unauthorized(render.NOT_AUTHENTICATED)
    # The path's organisation resolves exactly like an ``X-Workspace-ID`` header.
    try:
        return await cached_principal(runtime, token, organisation_pk)
    except Unauthorized:
        raise Unauthorized(render.INVALID_TOKEN) from None


MemberDep = Annotated[Principal, Depends(org_principal)]


async def org_admin(principal: MemberDep) -> Principal:
    if not principal.can(Role.admin):
        raise Forbidden(render.PERMISSION_DENIED)
    return principal


AdminDep = Annotated[Principal, Depends(org_admin)]


M = TypeVar("M", bound=BaseModel)
# Bodies are taken as plain objects and validated here, so that an empty body means ``{}``
# (DRF reports the missing fields) and a non-object body is a "non_field_errors" message; the
# documented request schema is still the model's.
Payload = Annotated[dict[str, Any] | None, Body()]


def _documented(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True)
    return {"requestBody": {"required": False, "content": {"application/json": {"schema": schema}}}}


def _validate(model: type[M], body: dict[str, Any] | None) -> M:
    """An absent or ``null`` body is an empty object: DRF then reports the missing fields."""
    try:
        return model.model_validate(body or {})
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_input=False)]
        ) from None


def _settings_kw(runtime: RuntimeDep) -> dict[str, Any]:
    return {
        "registry": runtime.registry,
        "envelope": runtime.envelope,
        "product_name": runtime.settings.product_name,
    }


@router.get("/", response_model=list[WarehouseConnectionOut], summary="List warehouse connections")
async def list_connections(session: SessionDep, principal: MemberDep) -> Response:
    """``[]`` or the organisation's one connection."""
    conn = await service.find(session, principal)
    return JSONResponse([] if conn is None else [to_wire(conn)])


@router.post(
    "/",
    response_model=WarehouseConnectionOut,
    status_code=201,
    summary="Create the warehouse connection",
    openapi_extra=_documented(WarehouseCreate),
)
async def create_connection(
    principal: AdminDep, runtime: RuntimeDep, body: Payload = None
) -> Response:
    """Generates the key pair; answers with the public key and the setup script."""
    data = _validate(WarehouseCreate, body)
    conn = await service.create(runtime, principal, data.to_config())
    return JSONResponse(to_wire(conn), status_code=201)


@router.get(
    "/{connection_id}/",
    response_model=WarehouseConnectionOut,
    summary="Get the warehouse connection",
)
async def get_connection(connection_id: str, session: SessionDep, principal: MemberDep) -> Response:
    return JSONResponse(to_wire(await service.get(session, principal, connection_id)))


@router.put(
    "/{connection_id}/",
    response_model=WarehouseConnectionOut,
    summary="Replace the warehouse connection's settings",
    openapi_extra=_documented(WarehouseReplace),
)
async def replace_connection(
    connection_id: str,
    session: SessionDep,
    principal: AdminDep,
    runtime: RuntimeDep,
    body: Payload = None,
) -> Response:
    data = _validate(WarehouseReplace, body)
    conn = await service.replace(
        session, principal, connection_id, data.to_config(), **_settings_kw(runtime)
    )
    await commit(session)
    return JSONResponse(to_wire(conn))


@router.patch(
    "/{connection_id}/",
    response_model=WarehouseConnectionOut,
    summary="Change some of the warehouse connection's settings",
    openapi_extra=_documented(WarehousePatch),
)
async def patch_connection(
    connection_id: str,
    session: SessionDep,
    principal: AdminDep,
    runtime: RuntimeDep,
    body: Payload = None,
) -> Response:
    changes = _validate(WarehousePatch, body).changes()
    conn = await service.patch(session, principal, connection_id, changes, **_settings_kw(runtime))
    await commit(session)
    return JSONResponse(to_wire(conn))


@router.delete(
    "/{connection_id}/",
    status_code=204,
    response_class=Response,
    summary="Delete the warehouse connection and its private key",
)
async def delete_connection(
    connection_id: str, session: SessionDep, principal: AdminDep
) -> Response:
    await service.delete(session, principal, connection_id)
    await commit(session, conflict="Connection has dependents; remove them first")
    return Response(status_code=204)


@router.post(
    "/{connection_id}/test/", response_model=TestResultOut, summary="Test the warehouse connection"
)
async def test_connection(
    connection_id: str, principal: AdminDep, runtime: RuntimeDep, body: Payload = None
) -> Response:
    """Always 200 once the test ran; ``error`` carries the raw Snowflake message."""
    if body:
        raise RequestValidationError(
            [
                {"loc": ("body", key), "msg": render.UNKNOWN_FIELD, "type": "extra_forbidden"}
                for key in body
            ]
        )
    result = await service.run_test(runtime, principal, connection_id)
    return JSONResponse(result_to_wire(result))


def install(app: FastAPI) -> None:
    """Mount the routes and render errors under ``/api/v1/organisations/`` the DRF way."""
    if not isinstance(errors.renderer_for(render.PREFIX), render.DrfRenderer):
        errors.register_face(render.PREFIX, render.DrfRenderer())
    app.include_router(router)
