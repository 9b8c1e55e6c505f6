"""Dependents routes of the Connections API (core mechanism; camelCase like the rest).

``PUT    /api/v1/connections/{id}/dependents/{kind}/{ref}``  201 new, 200 already there
``DELETE /api/v1/connections/{id}/dependents/{kind}/{ref}``  204, 404 if absent
``GET    /api/v1/connections/{id}/dependents``               200 ``{"dependents": [...]}``

Another system (models, syncs) registers what it builds on a connection so the connection
cannot be deleted under it: ``DELETE`` of the connection (any face) answers 409 while any
dependent remains. ``ref`` may contain ``/`` (it is the rest of the path).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel

from connhub.api.connections.limits import CallerDep, LimitedRoute
from connhub.dependents import service
from connhub.dependents.service import KIND_PATTERN, REF_MAX
from connhub.deps import SessionDep
from connhub.kit.db import commit
from connhub.kit.responses import JSONResponse
from connhub.models import Dependent

router = APIRouter(prefix="/api/v1/connections", tags=["dependents"], route_class=LimitedRoute)

Kind = Annotated[
    str,
    Path(
        pattern=KIND_PATTERN,
        max_length=64,
        description="What depends on the connection, e.g. model, sync",
    ),
]
Ref = Annotated[
    str,
    Path(
        min_length=1,
        max_length=REF_MAX,
        description="Its id in the other system (printable, may contain /)",
    ),
]


class DependentOut(BaseModel):
    kind: str
    ref: str
    createdAt: str


class DependentList(BaseModel):
    dependents: list[DependentOut]


def to_wire(dependent: Dependent) -> dict[str, Any]:
    return {"kind": dependent.kind, "ref": dependent.ref, "createdAt": dependent.created_at}


@router.get(
    "/{connection_id}/dependents",
    response_model=DependentList,
    summary="List Connection Dependents",
)
async def list_dependents(
    connection_id: uuid.UUID, session: SessionDep, principal: CallerDep
) -> Response:
    rows = await service.list_for(session, principal, connection_id)
    return JSONResponse({"dependents": [to_wire(d) for d in rows]})


@router.put(
    "/{connection_id}/dependents/{kind}/{ref:path}",
    response_model=DependentOut,
    responses={201: {"model": DependentOut}},
    summary="Register Connection Dependent",
)
async def put_dependent(
    connection_id: uuid.UUID, kind: Kind, ref: Ref, session: SessionDep, principal: CallerDep
) -> Response:
    dependent, created = await service.put(session, principal, connection_id, kind, ref)
    body = to_wire(dependent)  # read before commit: the row is not reloaded afterwards
    await commit(session, conflict="The connection changed concurrently; retry")
    return JSONResponse(body, status_code=201 if created else 200)


@router.delete(
    "/{connection_id}/dependents/{kind}/{ref:path}",
    status_code=204,
    response_class=Response,
    summary="Remove Connection Dependent",
)
async def delete_dependent(
    connection_id: uuid.UUID, kind: Kind, ref: Ref, session: SessionDep, principal: CallerDep
) -> Response:
    await service.remove(session, principal, connection_id, kind, ref)
    await commit(session)
    return Response(status_code=204)
