"""Application factory: ``create_app(settings)`` wires runtime, middleware, faces."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from connhub.api import errors, meta, openapi
from connhub.api.connections.endpoints import router as connections_router
from connhub.api.connections.schema_endpoints import router as schema_router
from connhub.api.dependents import router as dependents_router
from connhub.api.sources import install as install_sources
from connhub.api.warehouse.endpoints import install as install_warehouse
from connhub.config import Settings
from connhub.kit import logs
from connhub.kit.middleware import RequestContextMiddleware
from connhub.query.pool import close_registry as close_query_pools
from connhub.ratelimit import build_limiter
from connhub.runtime import build_runtime

_GC_THRESHOLDS = (20_000, 20, 50)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.runtime = await build_runtime(settings)
        engine, statements = app.state.runtime.engine, app.state.runtime.statement_pool
        app.state.rate_limiter = build_limiter(settings, engine, statements=statements)  # Sources
        app.state.connections_rate_limiter = build_limiter(
            settings,
            engine,
            statements=statements,
            per_minute=settings.connections_rate_limit_per_minute,
            burst_per_second=settings.connections_rate_limit_burst_per_second,
        )
        # Everything built so far lives as long as the process: keep the cyclic GC from
        # re-scanning it on every collection (shorter pauses under load).
        gc.collect()
        gc.freeze()
        # A list page allocates thousands of short-lived, acyclic objects; with the default
        # gen-0 threshold (700) that meant several collections per request, landing as
        # latency spikes at p99. Cycles still get collected, just in fewer, larger batches.
        gc.set_threshold(*_GC_THRESHOLDS)
        try:
            yield
        finally:
            await close_query_pools(app.state)
            await app.state.runtime.close()

    app = FastAPI(
        title="connhub",
        version="0.1.0",
        lifespan=lifespan,
        description="Connections service: one core, three API faces.",
    )
    app.state.settings = settings
    errors.install(app)
    app.include_router(meta.router)
    app.include_router(connections_router)
    app.include_router(schema_router)
    app.include_router(dependents_router)
    install_sources(app)
    install_warehouse(app)
    openapi.install(app)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    return app


def configure_logging(settings: Settings) -> None:
    logs.configure(settings.log_level)
