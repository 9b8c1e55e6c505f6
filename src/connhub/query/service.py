"""Schema browsing and read-only SQL on a stored connection: the core behind the endpoints.

Each call:

1. reads the connection in one short store session (tenancy and visibility as everywhere:
   someone else's connection is a 404), requires a SQL provider with the capability
   (``schema_browsing`` or ``query``; otherwise 400) in status ``active`` (otherwise 400
   ``invalid_state``), and opens its credentials; the store session is closed before any
   network traffic;
2. for queries, runs the guard (``guard.check``) before touching the customer's database;
3. leases a session from the connection's pool (opened through ``open_session``, so through
   the egress policy, on first use) and does the work in one worker-thread call: catalog
   query, sample, or the statement itself, including turning rows into JSON-safe dicts;
4. on success, records ``lastUsedAt`` (one short UPDATE, at most once a second per
   connection).

Roles: a ``viewer`` may browse and query. Everything runs read-only twice over (guard and
database), the viewer already sees the connection, and reading its data is what a viewer is
for; writes are impossible for every role here.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from sqlalchemy import or_, update
from sqlglot import exp

from connhub.catalog import ColumnInfo, for_dialect
from connhub.catalog.names import (
    normalized_column_name,
    spec,
    table_expression,
    table_listing_json,
)
from connhub.connections import service as connections
from connhub.connections.schemas import Status
from connhub.errors import BadRequest, ConnhubError, InvalidState, NotFound
from connhub.kit.redact import secret_values
from connhub.models import Connection
from connhub.models.base import utcnow
from connhub.providers.kinds.sql import load_adapter, open_session
from connhub.query import guard, pool
from connhub.query.errors import translate
from connhub.query.runner import Executor, ResultSet, executor_for
from connhub.query.values import rows_to_dicts, unique_names
from connhub.runtime import Runtime
from connhub.workspaces.principal import Principal, Role

log = logging.getLogger(__name__)
T = TypeVar("T")

SAMPLE_DEFAULT_ROWS = 100
# The database's own statement timeout fires first; this only bounds a hung driver.
_THREAD_GRACE_S = 5.0
_TOUCH_EVERY = dt.timedelta(seconds=1)


@dataclass(frozen=True)
class Target:
    """What using a connection needs; the credentials live only as long as the request."""

    connection_id: uuid.UUID
    provider: str
    dialect: str
    config: dict[str, Any]
    credentials: dict[str, str]
    last_used_at: dt.datetime | None = None


class SchemaService:
    def __init__(self, runtime: Runtime, pools: pool.PoolRegistry) -> None:
        self.runtime = runtime
        self.pools = pools
        self.settings = runtime.settings

    # --- public operations ---------------------------------------------------------------

    async def tables(
        self, principal: Principal, connection_id: uuid.UUID, *, include_system: bool
    ) -> dict[str, Any]:
        target = await self._target(principal, connection_id, "schema_browsing")
        catalog = for_dialect(target.dialect, target.config)
        query = catalog.tables_query(include_system)
        timeout = self.settings.query_timeout_s

        def work(conn: Any, executor: Executor) -> orjson.Fragment:
            rows = executor.catalog(conn, query.sql, query.params, timeout)
            return table_listing_json(*catalog.table_names(rows), target.dialect)

        tables = await self._run(target, work)
        await self._touch(target)
        # Already JSON: the response embeds it as-is (10,000 tables are not parsed back).
        return {"tables": tables}

    async def columns(
        self, principal: Principal, connection_id: uuid.UUID, *, schema: str, table: str
    ) -> dict[str, Any]:
        target = await self._target(principal, connection_id, "schema_browsing")
        columns = await self._run(
            target, lambda conn, ex: self._columns(target, conn, ex, schema, table)
        )
        await self._touch(target)
        return {"schema": schema, "table": table, "columns": _column_wire(columns)}

    async def sample(
        self,
        principal: Principal,
        connection_id: uuid.UUID,
        *,
        schema: str,
        table: str,
        max_rows: int,
    ) -> dict[str, Any]:
        target = await self._target(principal, connection_id, "schema_browsing")
        statement = (
            exp.select("*")
            .from_(table_expression(schema, table))
            .limit(max_rows + 1)
            .sql(dialect=target.dialect)
        )
        timeout = self.settings.query_timeout_s

        def work(
            conn: Any, executor: Executor
        ) -> tuple[list[ColumnInfo], ResultSet, list[dict[str, Any]]]:
            columns = self._columns(target, conn, executor, schema, table)
            result = executor.query(conn, statement, "select", max_rows, timeout)
            names = unique_names(result.columns)
            return columns, result, rows_to_dicts(names, result.rows, native=result.native)

        columns, result, rows = await self._run(target, work)
        await self._touch(target)
        return {
            "schema": schema,
            "table": table,
            "columns": _column_wire(columns),
            "rows": rows,
            "rowCount": len(rows),
            "maxRows": max_rows,
            "truncated": result.truncated,
        }

    async def query(
        self, principal: Principal, connection_id: uuid.UUID, *, sql: str, max_rows: int | None
    ) -> dict[str, Any]:
        target = await self._target(principal, connection_id, "query")
        checked = guard.check(sql, target.dialect)
        cap = self.settings.query_max_rows
        limit = min(max_rows, cap) if max_rows is not None else cap
        timeout = self.settings.query_timeout_s

        def work(
            conn: Any, executor: Executor
        ) -> tuple[list[str], ResultSet, list[dict[str, Any]]]:
            result = executor.query(conn, checked.sql, checked.kind, limit, timeout)
            names = unique_names(result.columns)
            return names, result, rows_to_dicts(names, result.rows, native=result.native)

        names, result, rows = await self._run(target, work)
        await self._touch(target)
        return {
            "columns": names,
            "rows": rows,
            "rowCount": len(rows),
            "maxRows": limit,
            "truncated": result.truncated,
            "queryHash": checked.query_hash,
            "tableRefs": [ref.wire() for ref in checked.table_refs],
        }

    # --- the steps ---------------------------------------------------------------------------

    async def _target(
        self, principal: Principal, connection_id: uuid.UUID, capability: str
    ) -> Target:
        connections.require(principal, Role.viewer)
        conn = await connections.for_use(
            self.runtime.reader(), self.runtime.envelope, principal, connection_id
        )
        provider = self.runtime.registry.get(conn.provider)
        if provider.kind != "sql" or not provider.capabilities.get(capability):
            raise BadRequest(
                f"{provider.display_name} connections do not support "
                f"{capability.replace('_', ' ')}",
                code="unsupported_provider",
            )
        if conn.status != Status.active.value:
            raise InvalidState(f"Connection is {conn.status}; it must be active (verify it first)")
        return Target(
            connection_id,
            conn.provider,
            provider.dialect or conn.provider,
            conn.config,
            conn.credentials,
            conn.last_used_at,
        )

    def _columns(
        self, target: Target, conn: Any, executor: Executor, schema: str, table: str
    ) -> list[ColumnInfo]:
        catalog = for_dialect(target.dialect, target.config)
        query = catalog.columns_query(schema, table)
        rows = executor.catalog(conn, query.sql, query.params, self.settings.query_timeout_s)
        columns = catalog.columns(rows)
        if columns is None:
            raise NotFound(f"Table {spec(schema, table, target.dialect)} not found")
        return columns

    async def _run(self, target: Target, work: Callable[[Any, Executor], T]) -> T:
        adapter = load_adapter(target.provider)
        executor = executor_for(target.dialect)
        secrets = secret_values(target.credentials)
        settings = self.settings
        connect_s = settings.verify_budget_s

        async def opener() -> pool.Session:
            conn = await open_session(
                target.provider,
                target.config,
                target.credentials,
                egress=self.runtime.egress,
                timeout_s=connect_s,
                read_only=True,
            )
            session = pool.Session(conn, executor)
            try:
                await session.run(
                    lambda c: executor.prepare(c, settings.query_timeout_s), timeout=connect_s
                )
            except BaseException as exc:
                session.close_soon()
                if isinstance(exc, Exception):
                    raise translate(exc, adapter, timeout_s=connect_s, secrets=secrets) from None
                raise
            return session

        fingerprint = pool.fingerprint(target.provider, target.config, target.credentials)
        for attempt in (1, 2):
            async with pool.lease(
                self.pools,
                target.connection_id,
                fingerprint,
                opener,
                wait_s=settings.query_timeout_s,
            ) as session:
                try:
                    return await session.run(
                        lambda conn: work(conn, executor),
                        timeout=settings.query_timeout_s + _THREAD_GRACE_S,
                    )
                except ConnhubError:
                    raise
                except Exception as exc:
                    # A pooled session the server dropped meanwhile (restart, idle timeout,
                    # terminated backend): everything here is read-only, so run it once more
                    # on a fresh session instead of failing the click.
                    if (
                        attempt == 1
                        and not session.fresh
                        and not session.reusable()
                        and not isinstance(exc, TimeoutError)
                    ):
                        log.info("pooled session was dropped by the server; reconnecting")
                        continue
                    raise translate(
                        exc, adapter, timeout_s=settings.query_timeout_s, secrets=secrets
                    ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _touch(self, target: Target) -> None:
        """``lastUsedAt = now``, skipped if it was set less than a second ago.

        The value read with the connection usually answers that without a round trip; the
        WHERE clause settles concurrent requests.
        """
        now = utcnow()
        last = target.last_used_at
        if last is not None and now - last < _TOUCH_EVERY:
            return
        connection_id = target.connection_id
        try:
            async with self.runtime.sessions() as session:
                await session.execute(
                    update(Connection)
                    .where(Connection.id == connection_id)
                    .where(
                        or_(
                            Connection.last_used_at.is_(None),
                            Connection.last_used_at < now - _TOUCH_EVERY,
                        )
                    )
                    .values(last_used_at=now)
                )
                await session.commit()
        except Exception:  # bookkeeping must not fail a query that already succeeded
            log.warning("could not record lastUsedAt", exc_info=True)


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}_{n}"
    taken.add(candidate)
    return candidate


def _column_wire(columns: Sequence[ColumnInfo]) -> list[dict[str, Any]]:
    taken: set[str] = set()
    return [
        {
            "name": c.name,
            "normalizedName": _unique(normalized_column_name(c.name), taken),
            "dataType": c.data_type,
            "nullable": c.nullable,
            "primaryKey": c.primary_key,
        }
        for c in columns
    ]
