"""Errors the core raises; each face renders them in its own contract's shape.

    ConnhubError                    500 internal_error
    ├── BadRequest                  400 bad_request
    │   ├── InvalidProviderFields   400 invalid_fields      (unknown/missing provider keys)
    │   ├── ImmutableField          400 immutable_field
    │   ├── InvalidState            400 invalid_state       (e.g. disabled connection)
    │   └── QueryRefused            400 <reason code>       (read-only SQL guard)
    ├── Unauthorized                401 unauthorized
    ├── Forbidden                   403 forbidden
    ├── NotFound                    404 not_found
    ├── Conflict                    409 conflict
    ├── PayloadTooLarge             413 payload_too_large
    ├── RateLimited                 429 rate_limited        (carries retry_after)
    ├── UpstreamError               502 upstream_error      (customer system failed)
    └── ConfigurationError          500 configuration_error (start-up refusals)

``field`` names the offending input where there is one, so a face can render
``{"<field>": ["message"]}`` (DRF) or ``{"error": "config.x is required"}``.
"""

from __future__ import annotations


class ConnhubError(Exception):
    status_code: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class BadRequest(ConnhubError):
    status_code = 400
    code = "bad_request"


class InvalidProviderFields(BadRequest):
    code = "invalid_fields"


class ImmutableField(BadRequest):
    code = "immutable_field"


class InvalidState(BadRequest):
    code = "invalid_state"


class QueryRefused(BadRequest):
    code = "query_refused"


class Unauthorized(ConnhubError):
    status_code = 401
    code = "unauthorized"


class Forbidden(ConnhubError):
    status_code = 403
    code = "forbidden"


class NotFound(ConnhubError):
    status_code = 404
    code = "not_found"


class Conflict(ConnhubError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(ConnhubError):
    status_code = 413
    code = "payload_too_large"


class RateLimited(ConnhubError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float, limit: int, remaining: int = 0) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.limit = limit
        self.remaining = remaining


class UpstreamError(ConnhubError):
    status_code = 502
    code = "upstream_error"


class ConfigurationError(ConnhubError):
    code = "configuration_error"
