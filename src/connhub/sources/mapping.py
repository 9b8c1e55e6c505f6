"""How a core connection looks through the Sources API (API.md sections 2 and 4).

The Sources API has one snake_case ``config`` object per source; the core keeps camelCase
``config`` (returned) and sealed ``credentials`` (never returned). This module converts
between the two, masks secrets on the way out, maps statuses, and rewrites the core's field
names in validation messages (``credentials.privateKey`` -> ``config.private_key``) so a
client is told about the fields it actually sent. Messages never contain submitted values.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connhub.connections.schemas import Status
from connhub.errors import BadRequest
from connhub.models import Connection
from connhub.providers.spec import ProviderSpec, to_snake

FACE = "source"
SOURCE_TYPES = ("snowflake", "bigquery", "databricks")
MASK = "********"

_CORE_PATH = re.compile(r"\b(?:config|credentials)\.([A-Za-z][A-Za-z0-9]*)")
_SAFE_KEY = re.compile(r"[A-Za-z0-9_]{1,64}")
_STATUS = {
    Status.needs_verification.value: "pending",
    Status.active.value: "connected",
}
_ERROR_FALLBACK = {
    Status.expired.value: "The credentials have expired",
    Status.disabled.value: "The connection is disabled",
    Status.error.value: "The last connection test failed",
}


def check_source_type(source_type: str) -> None:
    if source_type not in SOURCE_TYPES:
        raise BadRequest(
            f"source_type must be one of: {', '.join(SOURCE_TYPES)}", field="source_type"
        )


def status_of(conn: Connection) -> tuple[str, str]:
    """(``status``, ``status_error``): expired and disabled connections are errors here."""
    status = _STATUS.get(conn.status)
    if status is not None:
        return status, ""
    return "error", conn.verification_error or _ERROR_FALLBACK.get(conn.status, "Unavailable")


def public_config(conn: Connection) -> dict[str, Any]:
    """Non-secret config in snake_case plus the secrets that are set, masked."""
    out = {to_snake(key): value for key, value in (conn.config or {}).items()}
    out.update({to_snake(key): MASK for key in (conn.credential_keys or [])})
    return out


def iso(moment: datetime) -> str:
    """RFC 3339 UTC with ``Z``, the same in JSON bodies and in SSE ``done`` payloads."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def to_source(conn: Connection) -> dict[str, Any]:
    status, status_error = status_of(conn)
    reference = (conn.face_data or {}).get("connection_id")
    return {
        "id": str(conn.id),
        "workspace_id": str(conn.workspace_id),
        "name": conn.name,
        "source_type": conn.provider,
        "config": public_config(conn),
        "connection_id": reference,
        "status": status,
        "status_error": status_error,
        "created_by": str(conn.created_by) if conn.created_by else None,
        "created_at": iso(conn.created_at),
        "updated_at": iso(conn.updated_at),
    }


@dataclass(frozen=True)
class SplitConfig:
    """A Sources ``config`` in core terms. ``credentials`` values are ``None`` for "clear"."""

    config: dict[str, Any]
    credentials: dict[str, str | None]


def split(
    spec: ProviderSpec, config: Mapping[str, Any], *, for_update: bool = False
) -> SplitConfig:
    """Route each snake_case key to core ``config`` or ``credentials`` (camelCase).

    A secret sent as the mask means "unchanged": it is dropped (on create that makes it
    missing, on update the stored value is kept). On update ``null``/``""`` clears a secret.
    """
    if not isinstance(config, Mapping):
        raise BadRequest("config must be an object", field="config")
    config_names = {to_snake(f.name): f.name for f in spec.config}
    secret_names = {to_snake(f.name): f.name for f in spec.credentials}
    core: dict[str, Any] = {}
    secrets: dict[str, str | None] = {}
    for key, value in config.items():
        if key in config_names:
            core[config_names[key]] = value
        elif key in secret_names:
            if value == MASK:
                continue
            if value is None or value == "":
                if for_update:
                    secrets[secret_names[key]] = None
                continue
            secrets[secret_names[key]] = value
        elif isinstance(key, str) and _SAFE_KEY.fullmatch(key):
            raise BadRequest(f"config.{key} is not a {spec.name} setting", field=f"config.{key}")
        else:
            raise BadRequest(f"config has a key that is not a {spec.name} setting", field="config")
    return SplitConfig(core, secrets)


def auth_choices(spec: ProviderSpec) -> str:
    """``password, or private_key (optionally with private_key_passphrase)``."""
    parts = []
    for mode in spec.auth_modes:
        text = " + ".join(f"config.{to_snake(name)}" for name in mode.credentials)
        if mode.optional:
            optional = ", ".join(f"config.{to_snake(name)}" for name in mode.optional)
            text += f" (optionally with {optional})"
        parts.append(text)
    return ", or ".join(parts)


def _face_message(spec: ProviderSpec | None, exc: BadRequest) -> str:
    if exc.field == "credentials" and spec is not None and spec.auth_modes:
        return f"config must contain exactly one of: {auth_choices(spec)}"
    if exc.field == "credentials":
        return "config has missing or invalid secret fields"
    return _CORE_PATH.sub(lambda m: "config." + to_snake(m.group(1)), exc.message)


def _face_field(field: str | None) -> str | None:
    if field is None:
        return None
    match = _CORE_PATH.fullmatch(field)
    return "config." + to_snake(match.group(1)) if match else field


@contextmanager
def sources_terms(spec: ProviderSpec | None) -> Iterator[None]:
    """Re-raise the core's field errors in the Sources API's terms."""
    try:
        yield
    except BadRequest as exc:
        if exc.field is None or not exc.field.startswith(("config", "credentials")):
            raise
        renamed = type(exc)(_face_message(spec, exc), field=_face_field(exc.field))
        renamed.code = exc.code
        raise renamed from None
