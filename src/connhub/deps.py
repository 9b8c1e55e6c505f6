"""FastAPI dependencies as ``Annotated`` aliases: the runtime, a session, the caller; and
what every face's rate limit shares (``count_request``, ``rate_quota``, ``quota_headers``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from connhub.connections import service as connections
from connhub.errors import Unauthorized
from connhub.query import pool
from connhub.ratelimit import Quota, RateLimiter
from connhub.runtime import Runtime
from connhub.workspaces.principal import Principal
from connhub.workspaces.service import hash_token, resolve_principal

_SCHEMES = ("bearer", "token", "api-key")


async def get_runtime(request: Request) -> Runtime:
    # async on purpose: FastAPI runs plain ``def`` dependencies in a worker thread.
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(request: Request, runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    async with runtime.sessions() as session:
        yield session
        retired = connections.retired(session)
    # Reached only when the endpoint returned (it commits): connections it deleted, disabled
    # or re-configured close their pooled query sessions now, whichever face changed them.
    for connection_id in retired:
        pool.forget(request.app.state, connection_id)


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def bearer_token(request: Request) -> str | None:
    """``Authorization: Bearer|Token|Api-Key <t>``, ``X-API-Key: <t>`` or the vai_token cookie."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() in _SCHEMES and value.strip():
            return value.strip()
        raise Unauthorized("Unsupported Authorization scheme (use Bearer)")
    api_key = request.headers.get("x-api-key")
    if api_key:
        return api_key.strip()
    return request.cookies.get("vai_token") or None


async def cached_principal(runtime: Runtime, token: str, workspace_ref: str | None) -> Principal:
    """The token's principal in ``workspace_ref`` (id or slug; None: the token's own), from
    the short-lived in-process cache, whose concurrent misses share one lookup."""

    async def resolve() -> Principal:
        # Its own short read: endpoints that talk to customer systems must not hold a store
        # connection.
        async with runtime.reader() as reader:
            return await resolve_principal(reader, token=token, workspace_header=workspace_ref)

    return await runtime.principals.get_or_load((hash_token(token), workspace_ref), resolve)


async def get_principal(request: Request, runtime: RuntimeDep) -> Principal:
    token = bearer_token(request)
    if not token:
        raise Unauthorized("Authentication required: send Authorization: Bearer <token>")
    return await cached_principal(runtime, token, request.headers.get("x-workspace-id"))


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def count_request(request: Request, bucket: str, *, limiter: str = "rate_limiter") -> None:
    """Count the request against ``bucket`` (e.g. ``sources:{workspace_id}``) with the app's
    limiter of that name (each face has its own limits).

    Raises ``RateLimited`` (429 with ``Retry-After`` and ``X-RateLimit-*``) once the bucket's
    allowance is spent; otherwise keeps the quota on the request (``rate_quota``) for the
    response's ``X-RateLimit-*`` headers. Does nothing when rate limiting is off.
    """
    counter: RateLimiter | None = getattr(request.app.state, limiter, None)
    if counter is not None:
        request.state.rate_quota = await counter.hit(bucket)


def rate_quota(scope: Mapping[str, Any]) -> Quota | None:
    """The quota ``count_request`` kept for this request (its ASGI scope), if it counted it."""
    state: dict[str, Any] | None = scope.get("state")
    quota: Quota | None = state.get("rate_quota") if state else None
    return quota


def quota_headers(request: Request, response: Response) -> Response:
    """``response`` with the request's ``X-RateLimit-*`` headers, if it was counted."""
    quota = rate_quota(request.scope)
    if quota is not None:
        response.headers.update(quota.headers())
    return response
