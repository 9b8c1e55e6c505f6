"""Service endpoints: health, readiness and the provider catalogue."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from connhub.deps import RuntimeDep
from connhub.kit.responses import JSONResponse
from connhub.runtime import store_ready

router = APIRouter()


@router.get("/healthz", tags=["service"])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", tags=["service"])
async def readyz(runtime: RuntimeDep) -> Response:
    ready = await store_ready(runtime)
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "store": ready},
        status_code=200 if ready else 503,
    )


@router.get("/api/v1/providers", tags=["providers"])
async def list_providers(runtime: RuntimeDep) -> dict[str, Any]:
    """Every provider with its config and credential JSON Schemas (enough to build a form)."""
    return {"providers": [spec.public_schema() for spec in runtime.registry.all()]}
