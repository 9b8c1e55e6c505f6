"""Request bodies and the wire shape of the Warehouse face (API.md section 1).

Every field is checked by one "before" validator that raises the final DRF message
(``PydanticCustomError``), so the renderer has nothing to translate: null, a non-string,
blank, and the Snowflake identifier rule each have their own sentence. Names are stripped and
upper-cased here; ``warehouse.setup_script`` checks them again before they reach SQL.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from connhub.models import Connection
from connhub.warehouse import setup_script
from connhub.warehouse.service import (
    DEFAULTS,
    IMMUTABLE,
    OVERRIDE_FIELDS,
    TYPE,
    TestResult,
    WarehouseConfig,
    face_status,
    iso_z,
    last_test,
)

# Same rule as the snowflake provider definition's ``host`` pattern: a bare name or IP.
_HOST = re.compile(r"(?:[A-Za-z0-9_](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*)")
_MAX_ECHO = 40


def _invalid(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


def _echo(value: str) -> str:
    return value if len(value) <= _MAX_ECHO else value[: _MAX_ECHO - 3] + "..."


def _text(value: Any) -> str:
    """A present, non-null, non-blank string, stripped (DRF ``CharField`` semantics)."""
    if value is None:
        raise _invalid("null", "This field may not be null.")
    if not isinstance(value, str):
        raise _invalid("string_type", "Not a valid string.")
    text: str = value.strip()
    if not text:
        raise _invalid("blank", "This field may not be blank.")
    return text


def _identifier(value: Any) -> str:
    try:
        return setup_script.identifier(_text(value))
    except ValueError as exc:
        raise _invalid("snowflake_identifier", str(exc)) from None


def _account(value: Any) -> str:
    try:
        return setup_script.account_identifier(_text(value))
    except ValueError as exc:
        raise _invalid("account_identifier", str(exc)) from None


def _type(value: Any) -> str:
    text = _text(value)
    if text != TYPE:
        raise _invalid("invalid_choice", f'"{_echo(text)}" is not a valid choice.')
    return text


def _same_type(value: Any) -> str:
    """PUT: the stored type is ``snowflake``; anything else would change it."""
    if _text(value) != TYPE:
        raise _invalid("immutable", IMMUTABLE)
    return TYPE


def _immutable(value: Any) -> None:
    """PATCH: sending ``type`` or ``account_identifier`` at all is refused."""
    raise _invalid("immutable", IMMUTABLE)


def _host(value: Any) -> str | None:
    if value is None:
        return None
    text = _text(value)
    if len(text) > 253 or not _HOST.fullmatch(text):
        raise _invalid("host", "Enter a host name or IP address only (no scheme, port or path).")
    return text


def _port(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid("int_type", "A valid integer is required.")
    if not 1 <= value <= 65535:
        raise _invalid("port_range", "Ensure this value is between 1 and 65535.")
    return value


def _protocol(value: Any) -> str | None:
    if value is None:
        return None
    text = _text(value).lower()
    if text not in ("https", "http"):
        raise _invalid("invalid_choice", f'"{_echo(text)}" is not a valid choice.')
    return text


Name = Annotated[str, BeforeValidator(_identifier)]
OptionalName = Annotated[str | None, BeforeValidator(_identifier)]
Account = Annotated[str, BeforeValidator(_account)]
Host = Annotated[str | None, BeforeValidator(_host)]
Port = Annotated[int | None, BeforeValidator(_port)]
Protocol = Annotated[str | None, BeforeValidator(_protocol)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WarehouseCreate(_Body):
    """POST body. No credential fields: the server generates the key pair."""

    type: Annotated[Literal["snowflake"], BeforeValidator(_type)]
    account_identifier: Account = Field(examples=["xy12345.us-east-1"])
    warehouse: Name = DEFAULTS["warehouse"]
    database: Name = DEFAULTS["database"]
    schema_: Name = Field(DEFAULTS["schema"], alias="schema")
    role: Name = DEFAULTS["role"]
    user: Name = DEFAULTS["user"]
    host: Host = None
    port: Port = None
    protocol: Protocol = None

    def to_config(self) -> WarehouseConfig:
        return WarehouseConfig(
            account_identifier=self.account_identifier,
            warehouse=self.warehouse,
            database=self.database,
            schema=self.schema_,
            role=self.role,
            user=self.user,
            host=self.host,
            port=self.port,
            protocol=self.protocol,
        )


class WarehouseReplace(WarehouseCreate):
    """PUT body: as POST; omitted optional fields revert to their defaults."""

    type: Annotated[Literal["snowflake"], BeforeValidator(_same_type)]


class WarehousePatch(_Body):
    """PATCH body: any subset of the editable fields; ``type``/``account_identifier`` → 400."""

    type: Annotated[None, BeforeValidator(_immutable)] = None
    account_identifier: Annotated[None, BeforeValidator(_immutable)] = None
    warehouse: OptionalName = None
    database: OptionalName = None
    schema_: OptionalName = Field(None, alias="schema")
    role: OptionalName = None
    user: OptionalName = None
    host: Host = None
    port: Port = None
    protocol: Protocol = None

    def changes(self) -> dict[str, Any]:
        """Only the fields that were sent, by ``WarehouseConfig`` attribute name."""
        sent = self.model_fields_set
        out: dict[str, Any] = {}
        for attr, name in (
            ("warehouse", "warehouse"),
            ("database", "database"),
            ("schema_", "schema"),
            ("role", "role"),
            ("user", "user"),
            *((f, f) for f in OVERRIDE_FIELDS),
        ):
            if attr in sent:
                out[name] = getattr(self, attr)
        return out


# --- responses --------------------------------------------------------------------------


class WarehouseConfigOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    account_identifier: str
    warehouse: str
    database: str
    schema_: str = Field(alias="schema")
    role: str
    user: str
    host: str | None = Field(None, description="Only present when set")
    port: int | None = Field(None, description="Only present when set")
    protocol: str | None = Field(None, description="Only present when set")


class WarehouseConnectionOut(BaseModel):
    """Documentation of the wire shape (responses are built by :func:`to_wire`)."""

    id: str
    type: Literal["snowflake"]
    status: Literal["pending_customer_setup", "connected", "error"]
    config: WarehouseConfigOut
    public_key: str
    setup_script: str
    created_at: str
    last_tested_at: str | None
    last_error: str | None


class TestResultOut(BaseModel):
    __test__ = False  # not a pytest class, despite the name

    success: bool
    tested_at: str
    error: str | None = Field(None, description="Only present when success is false")


def config_to_wire(config: WarehouseConfig) -> dict[str, Any]:
    out: dict[str, Any] = {
        "account_identifier": config.account_identifier,
        "warehouse": config.warehouse,
        "database": config.database,
        "schema": config.schema,
        "role": config.role,
        "user": config.user,
    }
    for name in OVERRIDE_FIELDS:
        value = getattr(config, name)
        if value is not None:
            out[name] = value
    return out


def to_wire(conn: Connection) -> dict[str, Any]:
    """The connection object. Built from an allow-list: the private key is not on the row
    and nothing else from the core (credential names, verification details) is copied."""
    data = conn.face_data or {}
    last_tested_at, last_error = last_test(conn)
    return {
        "id": str(conn.id),
        "type": TYPE,
        "status": face_status(conn).value,
        "config": config_to_wire(WarehouseConfig.from_core(conn.config)),
        "public_key": data.get("public_key"),
        "setup_script": data.get("setup_script"),
        "created_at": iso_z(conn.created_at),
        "last_tested_at": last_tested_at,
        "last_error": last_error,
    }


def result_to_wire(result: TestResult) -> dict[str, Any]:
    out: dict[str, Any] = {"success": result.success, "tested_at": iso_z(result.tested_at)}
    if not result.success:
        out["error"] = result.error
    return out
