"""Errors in the Warehouse face's shape: Django REST Framework's.

The original is a DRF service, and its dashboard reads errors the DRF way: field errors as
``{"<field>": ["message", ...]}`` and everything else as ``{"detail": "message"}``, with
DRF's stock texts for 401/403/404. Validation failures are ``400`` here (never FastAPI's
422), and unknown body fields are errors ("Unknown field."), not silently dropped.

Core errors name fields in core terms (``config.account``); they are translated to the
face's names (``account_identifier``) so the client can put the message beside its input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connhub.api.errors import FieldError
from connhub.errors import ConnhubError

PREFIX = "/api/v1/organisations/"

NOT_AUTHENTICATED = "Authentication credentials were not provided."
INVALID_TOKEN = "Invalid token."  # noqa: S105 - a message, not a credential
PERMISSION_DENIED = "You do not have permission to perform this action."
NOT_FOUND = "Not found."
SERVER_ERROR = "A server error occurred."
REQUIRED = "This field is required."
UNKNOWN_FIELD = "Unknown field."

_STOCK = {403: PERMISSION_DENIED, 404: NOT_FOUND, 405: "Method not allowed."}
# Core config/credential names → this face's body names.
_FACE_NAMES = {"account": "account_identifier", "username": "user"}
# Pydantic's own error types that can reach us (ours carry their final DRF message).
_MESSAGES = {
    "missing": REQUIRED,
    "extra_forbidden": UNKNOWN_FIELD,
    "string_type": "Not a valid string.",
    "int_type": "A valid integer is required.",
    "int_parsing": "A valid integer is required.",
}
_BODY_TYPES = {"model_attributes_type", "dict_type", "model_type"}


def face_field(field: str) -> str:
    """``config.account`` → ``account_identifier``; ``config.warehouse`` → ``warehouse``."""
    name = field.split(".", 1)[1] if field.startswith(("config.", "credentials.")) else field
    return _FACE_NAMES.get(name, name)


class DrfRenderer:
    """``connhub.api.errors.Renderer`` for every route under ``/api/v1/organisations/``."""

    def error(self, exc: ConnhubError) -> tuple[int, Any]:
        status = exc.status_code
        if status == 400 and exc.field:
            return status, {face_field(exc.field): [exc.message]}
        if status in _STOCK:
            return status, {"detail": _STOCK[status]}
        if status >= 500:
            return status, {"detail": SERVER_ERROR}
        return status, {"detail": exc.message}

    def validation(self, errors: Sequence[FieldError]) -> tuple[int, Any]:
        fields: dict[str, list[str]] = {}
        for err in errors:
            if err.type == "json_invalid":
                return 400, {"detail": f"JSON parse error - {err.msg}"}
            loc = [str(p) for p in err.loc if p not in ("body", "query", "path", "header")]
            if loc:
                key, message = loc[0], _MESSAGES.get(err.type, err.msg)
            elif err.type in _BODY_TYPES:  # the body is JSON but not an object
                key, message = "non_field_errors", "Invalid data. Expected a dictionary."
            else:
                key, message = "non_field_errors", _MESSAGES.get(err.type, err.msg)
            messages = fields.setdefault(key, [])
            if message not in messages:
                messages.append(message)
        return 400, fields
