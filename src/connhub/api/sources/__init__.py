"""The Sources API face (API.md section 2): ``/api/v1/workspaces/{id}/sources``."""

from __future__ import annotations

from fastapi import FastAPI

from connhub.api import errors
from connhub.api.sources.endpoints import router
from connhub.api.sources.render import PREFIX, SourcesRenderer


def install(app: FastAPI) -> None:
    """Mount the routes and render errors under the prefix as ``{"error": ...}``.

    The renderer registry is process-wide, so it is registered once however many apps a
    process builds (the test suite builds several).
    """
    if not isinstance(errors.renderer_for(PREFIX), SourcesRenderer):
        errors.register_face(PREFIX, SourcesRenderer())
    app.include_router(router)


__all__ = ["install", "router"]
