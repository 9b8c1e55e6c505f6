"""Rate limits of the Connections API (API.md section 3: ``429`` with ``X-RateLimit-*``).

Every route under ``/api/v1/connections`` (this package's routers and the dependents router)
is a :class:`LimitedRoute` and takes its caller as :data:`CallerDep`:

* ``CallerDep`` resolves the caller exactly as ``PrincipalDep`` does and then counts the
  request against the caller's workspace, in its own bucket (``connections:{workspace_id}``,
  apart from the Sources face's ``sources:{workspace_id}``), with this face's limiter
  (``app.state.connections_rate_limiter``: ``connections_rate_limit_*`` settings; ``None``
  when ``rate_limit_enabled`` is off). It stands in
  for ``PrincipalDep`` rather than adding a dependency: one more FastAPI dependency costs
  about 7 us a request, more than a take from the memory buckets (about 4). Callers refused
  before that (401, a workspace they do not belong to) are not counted; a member's request
  that fails validation (422) is, as dependencies are resolved before the parameters.
* ``LimitedRoute`` puts the counted request's ``X-RateLimit-*`` headers on whatever the route
  answers, error responses included (404, 409, 422...), at the ASGI level: the exception
  handlers render errors inside the route, so one hook sees every response. The 429 itself
  carries them, with ``Retry-After``, from the error handler (``api.errors``).
* A route of this face that does not take ``CallerDep`` is refused at import (``TypeError``),
  so a new endpoint cannot silently go unlimited.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.types import Message, Receive, Scope, Send

from connhub.deps import RuntimeDep, count_request, get_principal, rate_quota
from connhub.workspaces.principal import Principal

BUCKET_PREFIX = "connections:"


async def connections_caller(request: Request, runtime: RuntimeDep) -> Principal:
    """The caller (as ``PrincipalDep``), once the request is counted against its workspace."""
    principal = await get_principal(request, runtime)
    await count_request(
        request, BUCKET_PREFIX + str(principal.workspace_id), limiter="connections_rate_limiter"
    )
    return principal


CallerDep = Annotated[Principal, Depends(connections_caller)]


def _takes_caller(dependant: Dependant) -> bool:
    return any(
        sub.call is connections_caller or _takes_caller(sub) for sub in dependant.dependencies
    )


class LimitedRoute(APIRoute):
    """A Connections API route: counted (``CallerDep``), ``X-RateLimit-*`` on its answers."""

    def __init__(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        if not _takes_caller(self.dependant):
            raise TypeError(
                f"{endpoint.__qualname__}: Connections API routes take the caller as "
                "CallerDep (connhub.api.connections.limits), which counts the request"
            )

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_quota(message: Message) -> None:
            if message["type"] == "http.response.start":
                quota = rate_quota(scope)
                if quota is not None:
                    message["headers"] = [
                        *message.get("headers", ()),
                        *(
                            (name.lower().encode("latin-1"), value.encode("latin-1"))
                            for name, value in quota.headers().items()
                        ),
                    ]
            await send(message)

        await super().handle(scope, receive, send_with_quota)
