"""Warehouse connections (API.md section 1): one Snowflake connection per organisation.

A warehouse connection is an ordinary core ``Connection`` (provider ``snowflake``, face
``warehouse``) so that it is also listed, verified and deleted through the Connections API,
its private key is sealed by the core secret store, and the singleton rule is the database's
partial unique index ``uq_connections_one_warehouse`` rather than a check that two requests
could both pass. What only this face shows (the setup script, the public key, the raw
driver text of its own last test) lives in ``face_data``.

The face's ``status`` and ``last_tested_at`` are the core's, in this face's words
(``face_status``, ``last_test``): a verification run from any face (Connections API
``/verify``, Sources test, this face's ``test/``) moves all of them at once.

Status mapping (face ← event → core):

=========================  ========================  ===================================
event                      face ``status``           core status (via the core paths)
=========================  ========================  ===================================
create                     pending_customer_setup    needs_verification
test passes                connected                 active
test fails                 error                     error
PUT / PATCH                pending_customer_setup    needs_verification
disabled (Connections API) error                     disabled
=========================  ========================  ===================================

Units of work: reads and edits take the caller's session and never commit (like
``connections.service``). ``create`` and ``test`` run their own short units of work, because
key generation (seconds of CPU) and the live Snowflake test must not hold the store's
connection: the embedded SQLite store has exactly one.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from connhub.connections import repository as core_repo
from connhub.connections import service as core
from connhub.connections import verify as core_verify
from connhub.connections.schemas import ConnectionPatch, Status, Visibility
from connhub.errors import Conflict, ImmutableField, NotFound
from connhub.kit.crypto import Envelope
from connhub.kit.db import commit
from connhub.models import Connection
from connhub.providers.registry import ProviderRegistry
from connhub.runtime import Runtime
from connhub.warehouse import keypair, setup_script
from connhub.workspaces.principal import Principal, Role

FACE = "warehouse"
TYPE = "snowflake"
NAME = "Snowflake warehouse"  # auto slug "snowflake-warehouse" (or -2... if a name is taken)
ALREADY_EXISTS = "This organisation already has an active warehouse connection."
IMMUTABLE = "This field cannot be changed."

#: API.md section 1 (the original's ``SNOWFLAKE_DEFAULTS``).
DEFAULTS: dict[str, str] = {
    "warehouse": "COMPUTE_WH",
    "database": "FLAGSMITH",
    "schema": "ANALYTICS",
    "role": "FLAGSMITH_LOADER",
    "user": "FLAGSMITH_SERVICE",
}
NAME_FIELDS = tuple(DEFAULTS)
OVERRIDE_FIELDS = ("host", "port", "protocol")
EDITABLE_FIELDS = NAME_FIELDS + OVERRIDE_FIELDS


class FaceStatus(StrEnum):
    pending_customer_setup = "pending_customer_setup"
    connected = "connected"
    error = "error"


@dataclass(frozen=True)
class WarehouseConfig:
    """The face's settings, already validated (names upper-cased) by the face's schemas."""

    account_identifier: str
    warehouse: str = DEFAULTS["warehouse"]
    database: str = DEFAULTS["database"]
    schema: str = DEFAULTS["schema"]
    role: str = DEFAULTS["role"]
    user: str = DEFAULTS["user"]
    host: str | None = None
    port: int | None = None
    protocol: str | None = None

    def core_config(self) -> dict[str, Any]:
        """The core snowflake config (API.md section 4 names); overrides only when set.

        ``stage`` makes the core's permissions step ``LIST @<db>.<schema>.FLAGSMITH_STAGE``,
        the stage the setup script creates.
        """
        config: dict[str, Any] = {
            "account": self.account_identifier,
            "warehouse": self.warehouse,
            "database": self.database,
            "schema": self.schema,
            "username": self.user,
            "role": self.role,
            "stage": setup_script.STAGE,
        }
        for name in OVERRIDE_FIELDS:
            value = getattr(self, name)
            if value is not None:
                config[name] = value
        return config

    def core_patch(self) -> dict[str, Any]:
        """:meth:`core_config` for ``connections.service.update``: ``None`` drops an override."""
        return {**{name: None for name in OVERRIDE_FIELDS}, **self.core_config()}

    @classmethod
    def from_core(cls, config: Mapping[str, Any]) -> WarehouseConfig:
        """Read a stored config back. Names someone cleared through the Connections API fall
        back to the defaults, which is what the setup script created."""

        def name(field: str, key: str) -> str:
            return str(config.get(key) or DEFAULTS[field])

        port = config.get("port")
        return cls(
            account_identifier=str(config.get("account") or ""),
            warehouse=name("warehouse", "warehouse"),
            database=name("database", "database"),
            schema=name("schema", "schema"),
            role=name("role", "role"),
            user=name("user", "username"),
            host=config.get("host") or None,
            port=int(port) if port not in (None, "") else None,
            protocol=config.get("protocol") or None,
        )


@dataclass(frozen=True)
class TestResult:
    """What ``POST …/test/`` answers: ``error`` is the raw Snowflake text of the failure."""

    __test__ = False  # not a pytest class, despite the name

    success: bool
    tested_at: datetime
    error: str | None


def iso_z(moment: datetime) -> str:
    """ISO-8601 UTC with ``Z`` and whole seconds, as the contract's examples write them."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_FACE_STATUS = {
    Status.needs_verification.value: FaceStatus.pending_customer_setup,
    Status.active.value: FaceStatus.connected,
}


def face_status(conn: Connection) -> FaceStatus:
    """The core status in this face's vocabulary (the table above)."""
    return _FACE_STATUS.get(conn.status, FaceStatus.error)


def last_test(conn: Connection) -> tuple[str | None, str | None]:
    """``(last_tested_at, last_error)`` of the latest verification, whichever face ran it.

    ``last_error`` only while the status is ``error``: the driver's raw text when this face's
    own test was the latest, else the core's message.
    """
    tested = iso_z(conn.last_verified_at) if conn.last_verified_at is not None else None
    if face_status(conn) is not FaceStatus.error:
        return tested, None
    if conn.status == Status.disabled.value:
        return tested, "Connection is disabled"
    data = conn.face_data or {}
    own = data.get("last_error") if data.get("last_tested_at") == tested else None
    return tested, own or conn.verification_error or "Verification failed"


def render_script(product_name: str, config: WarehouseConfig, public_key: str) -> str:
    return setup_script.render(
        product_name=product_name,
        warehouse=config.warehouse,
        database=config.database,
        schema=config.schema,
        role=config.role,
        user=config.user,
        public_key=public_key,
    )


# --- reads ------------------------------------------------------------------------------


async def find(session: AsyncSession, principal: Principal) -> Connection | None:
    """The organisation's warehouse connection, if any (the index allows at most one)."""
    stmt = select(Connection).where(core_repo.visible_to(principal), Connection.face == FACE)
    return (await session.execute(stmt)).scalar()


async def get(
    session: AsyncSession, principal: Principal, connection_id: str, *, for_update: bool = False
) -> Connection:
    """The warehouse connection with this id; any other id (or connection) is a 404."""
    try:
        cid = uuid.UUID(connection_id)
    except ValueError:
        raise NotFound("Not found.") from None
    conn = await core.get(session, principal, cid, for_update=for_update)
    if conn.face != FACE:
        raise NotFound("Not found.")
    return conn


# --- writes -----------------------------------------------------------------------------


async def create(runtime: Runtime, principal: Principal, config: WarehouseConfig) -> Connection:
    """Generate the key pair, render the script, insert the connection; 409 if one exists.

    The early existence check only spares a second key generation; the guarantee is the
    unique index, which turns a lost race into ``Conflict`` inside ``connections.service``.
    """
    core.require(principal, Role.admin)
    async with runtime.sessions() as session:
        if await find(session, principal) is not None:
            raise Conflict(ALREADY_EXISTS)
    pair = await keypair.generate_async(runtime.settings.warehouse_key_bits)
    face_data = {
        "public_key": pair.public_key,
        "setup_script": render_script(runtime.settings.product_name, config, pair.public_key),
    }
    async with runtime.sessions() as session:
        try:
            conn = await core.create(
                session,
                principal,
                registry=runtime.registry,
                envelope=runtime.envelope,
                name=NAME,
                provider=TYPE,
                credentials={"privateKey": pair.private_pem},
                config=config.core_config(),
                visibility=Visibility.global_,
                face=FACE,
                face_data=face_data,
            )
            await commit(session, conflict=ALREADY_EXISTS)
        except Conflict as exc:  # the singleton index (or, in theory, slug exhaustion)
            raise Conflict(ALREADY_EXISTS) from exc
    return conn


async def replace(
    session: AsyncSession,
    principal: Principal,
    connection_id: str,
    config: WarehouseConfig,
    *,
    registry: ProviderRegistry,
    envelope: Envelope,
    product_name: str,
) -> Connection:
    """PUT: every editable field from ``config`` (omitted ones already defaulted)."""
    core.require(principal, Role.admin)
    conn = await get(session, principal, connection_id, for_update=True)
    current = WarehouseConfig.from_core(conn.config)
    # Account identifiers are case-insensitive in Snowflake: a change of case is no change.
    if config.account_identifier.casefold() != current.account_identifier.casefold():
        raise ImmutableField(IMMUTABLE, field="account_identifier")
    config = dataclasses.replace(config, account_identifier=current.account_identifier)
    return await _apply(
        session,
        principal,
        conn,
        config,
        registry=registry,
        envelope=envelope,
        product_name=product_name,
    )


async def patch(
    session: AsyncSession,
    principal: Principal,
    connection_id: str,
    changes: Mapping[str, Any],
    *,
    registry: ProviderRegistry,
    envelope: Envelope,
    product_name: str,
) -> Connection:
    """PATCH: only the given editable fields change (``None`` drops a host/port override)."""
    core.require(principal, Role.admin)
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ImmutableField(IMMUTABLE, field=sorted(unknown)[0])
    conn = await get(session, principal, connection_id, for_update=True)
    config = dataclasses.replace(WarehouseConfig.from_core(conn.config), **changes)
    return await _apply(
        session,
        principal,
        conn,
        config,
        registry=registry,
        envelope=envelope,
        product_name=product_name,
    )


async def _apply(
    session: AsyncSession,
    principal: Principal,
    conn: Connection,
    config: WarehouseConfig,
    *,
    registry: ProviderRegistry,
    envelope: Envelope,
    product_name: str,
) -> Connection:
    """Store the config through the core, which marks it needs_verification: the face shows
    pending again and no earlier test's error. The key pair is kept: the customer registered
    that public key with their Snowflake user."""
    public_key = str((conn.face_data or {}).get("public_key") or "")
    script = render_script(product_name, config, public_key)
    conn = await core.update(
        session,
        principal,
        conn.id,
        ConnectionPatch(config=config.core_patch()),
        registry=registry,
        envelope=envelope,
    )
    conn.face_data = {**(conn.face_data or {}), "setup_script": script}
    await session.flush()
    return conn


async def delete(session: AsyncSession, principal: Principal, connection_id: str) -> None:
    """Remove the connection; the core delete takes its sealed private key with it."""
    core.require(principal, Role.admin)
    conn = await get(session, principal, connection_id)
    await core.delete(session, principal, conn.id)


# --- test -------------------------------------------------------------------------------


async def run_test(runtime: Runtime, principal: Principal, connection_id: str) -> TestResult:
    """Run the core checks (connectivity, key-pair login, ``SELECT 1`` in the configured
    scope, ``LIST`` the stage) with no store session held, then record the outcome on the
    core row and the face fields in one unit of work. A failed check is a result."""
    core.require(principal, Role.admin)
    async with runtime.sessions() as session:
        conn_id = (await get(session, principal, connection_id)).id
    prepared = await core_verify.prepare(runtime, principal, conn_id, role=Role.admin)
    outcome = await core_verify.check(runtime, prepared)
    error = None if outcome.success else _driver_text(outcome.raw_error or outcome.message)
    # The core row gets the outcome; the face keeps the driver's raw text, keyed by the time.
    await core_verify.record(
        runtime,
        principal,
        prepared,
        outcome,
        face_updates={"last_tested_at": iso_z(outcome.checked_at), "last_error": error},
    )
    return TestResult(success=outcome.success, tested_at=outcome.checked_at, error=error)


_EXC_PREFIX = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception): ")


def _driver_text(text: str) -> str:
    """The driver's own words, as the contract's ``last_error`` shows them (no class name)."""
    return _EXC_PREFIX.sub("", text, count=1)
