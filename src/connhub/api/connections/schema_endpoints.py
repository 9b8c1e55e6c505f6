"""Connections API schema endpoints (API.md section 3): tables, columns, sample, query.

Thin: validate the wire shapes, call ``query.service.SchemaService``, render JSON. The
service owns tenancy, state and capability checks, the SQL guard, pooling and error mapping
(400 refused/invalid state, 404 unknown connection or table, 502 upstream).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from connhub.api.connections.limits import CallerDep, LimitedRoute
from connhub.deps import RuntimeDep
from connhub.kit.responses import JSONResponse
from connhub.query import pool
from connhub.query.service import SAMPLE_DEFAULT_ROWS, SchemaService
from connhub.runtime import Runtime

router = APIRouter(prefix="/api/v1/connections", tags=["connections"], route_class=LimitedRoute)

MAX_SQL_CHARS = 10_000
MAX_QUERY_ROWS = 1000
_NAME = Field(min_length=1, max_length=255)


class SampleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_: str = Field(alias="schema", min_length=1, max_length=255)
    table: str = _NAME
    maxRows: int = Field(default=SAMPLE_DEFAULT_ROWS, ge=1, le=MAX_QUERY_ROWS)


class QueryBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sql: str = Field(min_length=1, max_length=MAX_SQL_CHARS)
    maxRows: int | None = Field(default=None, ge=1, le=MAX_QUERY_ROWS)


def _service(request: Request, runtime: Runtime) -> SchemaService:
    settings = runtime.settings
    registry = pool.registry_for(
        request.app.state, size=settings.pool_size_per_connection, idle_s=settings.pool_idle_s
    )
    return SchemaService(runtime, registry)


@router.get("/{connection_id}/schema/tables", summary="List Tables")
async def list_tables(
    connection_id: uuid.UUID,
    request: Request,
    principal: CallerDep,
    runtime: RuntimeDep,
    include_system: Annotated[bool, Query(description="Include system schemas")] = False,
) -> Response:
    """Tables and views of a SQL connection, from one catalog query."""
    result = await _service(request, runtime).tables(
        principal, connection_id, include_system=include_system
    )
    return JSONResponse(result)


@router.get("/{connection_id}/schema/columns", summary="List Columns")
async def list_columns(
    connection_id: uuid.UUID,
    request: Request,
    principal: CallerDep,
    runtime: RuntimeDep,
    schema: Annotated[str, Query(min_length=1, max_length=255)],
    table: Annotated[str, Query(min_length=1, max_length=255)],
) -> Response:
    """A table's columns (composite primary keys included); unknown table -> 404."""
    result = await _service(request, runtime).columns(
        principal, connection_id, schema=schema, table=table
    )
    return JSONResponse(result)


@router.post("/{connection_id}/schema/sample", summary="Sample Table")
async def sample_table(
    connection_id: uuid.UUID,
    body: SampleBody,
    request: Request,
    principal: CallerDep,
    runtime: RuntimeDep,
) -> Response:
    """The first ``maxRows`` (default 100) rows of a table, with its columns."""
    result = await _service(request, runtime).sample(
        principal, connection_id, schema=body.schema_, table=body.table, max_rows=body.maxRows
    )
    return JSONResponse(result)


@router.post("/{connection_id}/schema/query", summary="Run Read-Only Query")
async def run_query(
    connection_id: uuid.UUID,
    body: QueryBody,
    request: Request,
    principal: CallerDep,
    runtime: RuntimeDep,
) -> Response:
    """One read-only statement; at most ``maxRows`` rows (``truncated`` says if more existed)."""
    result = await _service(request, runtime).query(
        principal, connection_id, sql=body.sql, max_rows=body.maxRows
    )
    return JSONResponse(result)
