"""The Sources API's error shape: ``{"error": "human-readable message"}`` for every status.

Validation problems are 400 (not FastAPI's 422) and name the field, never its value:
``{"error": "config.account is required"}``, ``{"error": "name must be a string"}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connhub.api.errors import FieldError
from connhub.errors import ConnhubError

PREFIX = "/api/v1/workspaces/"

_BY_TYPE = {
    "missing": "{field} is required",
    "string_type": "{field} must be a string",
    "dict_type": "{field} must be an object",
    "model_type": "{field} must be an object",
    "uuid_parsing": "{field} must be a UUID",
    "uuid_type": "{field} must be a UUID",
    "string_too_short": "{field} must not be empty",
    "string_too_long": "{field} is too long",
}


def describe(error: FieldError) -> str:
    """One line for one validation problem, built from its location and type only."""
    if error.type == "json_invalid":
        return "Request body is not valid JSON"
    field = error.dotted
    if field == "body":
        return (
            "Request body is required"
            if error.type == "missing"
            else ("Request body must be a JSON object")
        )
    template = _BY_TYPE.get(error.type)
    if template is not None:
        return template.format(field=field)
    return f"{field} is invalid: {error.msg}"


class SourcesRenderer:
    def error(self, exc: ConnhubError) -> tuple[int, Any]:
        return exc.status_code, {"error": exc.message}

    def validation(self, errors: Sequence[FieldError]) -> tuple[int, Any]:
        if not errors:
            return 400, {"error": "Invalid request"}
        return 400, {"error": describe(errors[0])}
