"""All SQL for connections: visibility-scoped reads, keyset paging, default switching."""

from __future__ import annotations

import functools
import typing
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    String,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from connhub.connections.schemas import ListQuery, Order, SortBy
from connhub.kit.db import Reader
from connhub.models import Connection, ConnectionSecret, Dependent, User
from connhub.models.base import UTCDateTime
from connhub.workspaces.principal import Principal

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def visible_to(principal: Principal) -> ColumnElement[bool]:
    """Private connections are seen by their creator and by admins; global ones by everyone."""
    scope = Connection.workspace_id == principal.workspace_id
    if principal.is_admin:
        return scope
    return and_(
        scope, or_(Connection.visibility == "global", Connection.created_by == principal.user_id)
    )


def sort_column(sort_by: SortBy) -> ColumnElement[Any]:
    if sort_by is SortBy.last_verified_at:
        # Keyset comparisons need a total order: never-verified rows sort as the epoch.
        return func.coalesce(Connection.last_verified_at, literal(_EPOCH, UTCDateTime))
    column: ColumnElement[Any] = getattr(Connection, sort_by.value)
    return column


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_conn = Connection.__table__
_creator = User.__table__.alias("creator")
_updater = User.__table__.alias("updater")
_PROFILE = ("first_name", "last_name", "profile_picture_url")
_NOT_LISTED = {"workspace_id", "face", "face_data", "template_id"}
RAW_JSON = frozenset({"config", "credential_keys", "verification_details"})


def filtered(principal: Principal, query: ListQuery, *columns: Any) -> Select[Any]:
    stmt = select(*(columns or (Connection,))).where(visible_to(principal))
    if query.q:
        pattern = f"%{_escape_like(query.q.lower())}%"
        stmt = stmt.where(
            or_(
                func.lower(Connection.name).like(pattern, escape="\\"),
                Connection.slug.like(pattern, escape="\\"),
            )
        )
    if query.providers:
        stmt = stmt.where(Connection.provider.in_(query.providers))
    if query.statuses:
        stmt = stmt.where(Connection.status.in_(query.statuses))
    return stmt


def _visible_where(admin: bool) -> list[ColumnElement[bool]]:
    """``visible_to`` with bind parameters (``ws``; ``uid`` unless admin), for statements
    built once; ``_visible_params`` supplies the values."""
    where: list[ColumnElement[bool]] = [
        _conn.c.workspace_id == bindparam("ws", type_=_conn.c.workspace_id.type)
    ]
    if not admin:
        where.append(
            or_(
                _conn.c.visibility == "global",
                _conn.c.created_by == bindparam("uid", type_=_conn.c.created_by.type),
            )
        )
    return where


def _visible_params(principal: Principal, **params: Any) -> dict[str, Any]:
    params["ws"] = principal.workspace_id
    if not principal.is_admin:
        params["uid"] = principal.user_id
    return params


@dataclass(frozen=True)
class _PageShape:
    admin: bool
    q: bool
    providers: bool
    statuses: bool
    sort_by: SortBy
    order: Order
    after: bool
    total: bool
    offset: bool


@functools.lru_cache(maxsize=256)
def _page_statement(shape: _PageShape) -> Select[Any]:
    """The page query for one shape of request, built once with bind parameters.

    Building and cache-keying a SQLAlchemy statement costs more than running this query, so
    each shape (filters present, sort, mode) is built once and reused with new values.
    """
    where = _visible_where(shape.admin)
    if shape.q:
        pattern = bindparam("q", type_=String())
        where.append(
            or_(
                func.lower(_conn.c.name).like(pattern, escape="\\"),
                _conn.c.slug.like(pattern, escape="\\"),
            )
        )
    if shape.providers:
        where.append(_conn.c.provider.in_(bindparam("providers", expanding=True)))
    if shape.statuses:
        where.append(_conn.c.status.in_(bindparam("statuses", expanding=True)))
    col = sort_column(shape.sort_by)
    # JSON columns come back as their JSON text: the page embeds them in the response as-is
    # (orjson.Fragment) instead of parsing and re-serialising 150 documents per page.
    columns: list[Any] = [
        cast(c, Text).label(c.name) if c.name in RAW_JSON else c
        for c in _conn.c
        if c.name not in _NOT_LISTED
    ]
    for alias, prefix in ((_creator, "creator_"), (_updater, "updater_")):
        columns += [alias.c[name].label(prefix + name) for name in _PROFILE]
    if shape.total:
        # An uncorrelated scalar subquery: evaluated once, an index count, unlike
        # count(*) OVER () which would materialise every joined row before the LIMIT.
        columns.append(
            select(func.count())
            .select_from(_conn)
            .where(*where)
            .scalar_subquery()
            .label("total_count")
        )
    stmt = (
        select(*columns)
        .select_from(
            _conn.outerjoin(_creator, _creator.c.id == _conn.c.created_by).outerjoin(
                _updater, _updater.c.id == _conn.c.updated_by
            )
        )
        .where(*where)
    )
    desc = shape.order is Order.desc
    if shape.after:
        key = tuple_(col, _conn.c.id)
        bound = tuple_(
            bindparam("after_value", type_=col.type), bindparam("after_id", type_=_conn.c.id.type)
        )
        stmt = stmt.where(key < bound if desc else key > bound)
    order = (col.desc(), _conn.c.id.desc()) if desc else (col.asc(), _conn.c.id.asc())
    stmt = stmt.order_by(*order).limit(bindparam("limit"))
    if shape.offset:
        stmt = stmt.offset(bindparam("offset"))
    return stmt


async def page(
    reader: Reader,
    principal: Principal,
    query: ListQuery,
    after: tuple[Any, uuid.UUID] | None,
    *,
    with_total: bool,
) -> Sequence[Row[Any]]:
    """One page plus one extra row, as plain rows (no ORM identity map on the hot path).

    Each row also carries its creator's and updater's profile (two outer joins) and, in
    offset mode, the filtered total: the whole page is one round trip.
    """
    use_offset = after is None and query.cursor is None and query.offset > 0
    shape = _PageShape(
        admin=principal.is_admin,
        q=bool(query.q),
        providers=bool(query.providers),
        statuses=bool(query.statuses),
        sort_by=query.sort_by,
        order=query.order,
        after=after is not None,
        total=with_total,
        offset=use_offset,
    )
    params = _visible_params(principal, limit=query.limit + 1)
    if query.q:
        params["q"] = f"%{_escape_like(query.q.lower())}%"
    if query.providers:
        params["providers"] = list(query.providers)
    if query.statuses:
        params["statuses"] = list(query.statuses)
    if after is not None:
        params["after_value"], params["after_id"] = after
    if use_offset:
        params["offset"] = query.offset
    if not (shape.providers or shape.statuses):
        return await reader.fetch(_page_statement(shape), params)
    # IN lists: a Core execution (no ORM loading machinery for plain rows).
    result = await (await reader.connection()).execute(_page_statement(shape), params)
    return list(result.all())


async def count(reader: Reader, principal: Principal, query: ListQuery) -> int:
    stmt = filtered(principal, query, func.count())
    return int((await (await reader.connection()).execute(stmt)).scalar_one())


def sort_value(conn: Any, sort_by: SortBy) -> Any:
    if sort_by is SortBy.last_verified_at:
        return conn.last_verified_at or _EPOCH
    return getattr(conn, sort_by.value)


def _view_statement(by: str, admin: bool) -> Select[Any]:
    key = _conn.c[by] == bindparam("key", type_=_conn.c[by].type)
    return select(*_conn.c).where(*_visible_where(admin), key)


_VIEWS = {
    (by, admin): _view_statement(by, admin) for by in ("id", "slug") for admin in (True, False)
}


async def view(
    reader: Reader,
    principal: Principal,
    *,
    connection_id: uuid.UUID | None = None,
    slug: str | None = None,
) -> Row[Any] | None:
    """A read-only row of one visible connection (no ORM object: cheaper for reads)."""
    by, key = ("id", connection_id) if connection_id is not None else ("slug", slug)
    statement = _VIEWS[(by, principal.is_admin)]
    return await _fetch_one(reader, statement, _visible_params(principal, key=key))


async def _fetch_one(reader: Reader, statement: Select[Any], params: dict[str, Any]) -> Any | None:
    """The first row of a prebuilt read, or None."""
    rows = await reader.fetch(statement, params)
    return rows[0] if rows else None


_secret = ConnectionSecret.__table__


def _with_secret_statement(admin: bool) -> Select[Any]:
    names = ("id", "provider", "status", "config", "last_used_at", "updated_at")
    columns = [_conn.c[name] for name in names]
    return (
        select(
            *columns,
            _secret.c.workspace_id.label("secret_workspace_id"),
            _secret.c.connection_id.label("secret_connection_id"),
            _secret.c.sealed,
        )
        .select_from(_conn.outerjoin(_secret, _secret.c.connection_id == _conn.c.id))
        .where(*_visible_where(admin), _conn.c.id == bindparam("key", type_=_conn.c.id.type))
    )


_WITH_SECRET = {admin: _with_secret_statement(admin) for admin in (True, False)}


async def with_secret(reader: Reader, principal: Principal, connection_id: uuid.UUID) -> Any | None:
    """One visible connection's id, provider, status, config, last use, last edit and sealed
    secret (``sealed`` None when it has none): what using a connection needs, in one read."""
    params = _visible_params(principal, key=connection_id)
    return await _fetch_one(reader, _WITH_SECRET[principal.is_admin], params)


@functools.lru_cache(maxsize=16)
def _update_statement(admin: bool, columns: tuple[str, ...], unchanged: bool) -> Any:
    where = [
        *_visible_where(admin),
        _conn.c.id == bindparam("key", type_=_conn.c.id.type),
        _conn.c.status != "disabled",
    ]
    if unchanged:
        where.append(_conn.c.updated_at == bindparam("seen", type_=_conn.c.updated_at.type))
    values = {name: bindparam(f"new_{name}", type_=_conn.c[name].type) for name in columns}
    table = typing.cast(Table, _conn)  # a mapped class's __table__ is typed as a plain FromClause
    return update(table).where(*where).values(values).returning(*_conn.c)


async def update_unless_disabled(
    reader: Reader,
    principal: Principal,
    connection_id: uuid.UUID,
    values: dict[str, Any],
    *,
    unchanged_since: datetime | None = None,
) -> Any | None:
    """Set ``values`` on a visible connection unless it is disabled (or, given
    ``unchanged_since``, edited after that ``updated_at``), in one statement built once per
    set of columns, committed at once; the updated row, or None when nothing was updated.

    For bookkeeping (a verification's outcome): on PostgreSQL it runs as one autocommit
    statement on the statement pool, whose sessions do not wait for the WAL flush (a crash
    may lose the last moments of outcomes, never consistency; verifying again restores it).
    """
    statement = _update_statement(principal.is_admin, tuple(values), unchanged_since is not None)
    params = _visible_params(principal, key=connection_id)
    if unchanged_since is not None:
        params["seen"] = unchanged_since
    params.update({f"new_{name}": value for name, value in values.items()})
    rows = await reader.fetch(statement, params, write=True)
    return rows[0] if rows else None


async def get_visible(
    session: AsyncSession,
    principal: Principal,
    *,
    connection_id: uuid.UUID | None = None,
    slug: str | None = None,
    for_update: bool = False,
) -> Connection | None:
    stmt = select(Connection).where(visible_to(principal))
    if connection_id is not None:
        stmt = stmt.where(Connection.id == connection_id)
    if slug is not None:
        stmt = stmt.where(Connection.slug == slug)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar()


async def slugs_like(session: AsyncSession, workspace_id: uuid.UUID, base: str) -> set[str]:
    stmt = select(Connection.slug).where(
        Connection.workspace_id == workspace_id,
        or_(Connection.slug == base, Connection.slug.like(f"{_escape_like(base)}-%", escape="\\")),
    )
    return set((await session.execute(stmt)).scalars().all())


async def slug_exists(session: AsyncSession, workspace_id: uuid.UUID, slug: str) -> bool:
    stmt = select(Connection.id).where(
        Connection.workspace_id == workspace_id, Connection.slug == slug
    )
    return (await session.execute(stmt)).first() is not None


async def lock_provider_defaults(
    session: AsyncSession, workspace_id: uuid.UUID, provider: str
) -> None:
    """Serialise default changes for one (workspace, provider).

    A transaction-scoped advisory lock on PostgreSQL (row locks taken in scan order would
    deadlock against each other); SQLite already runs one writer at a time.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            select(
                func.pg_advisory_xact_lock(
                    func.hashtextextended(f"connhub-default:{workspace_id}:{provider}", 0)
                )
            )
        )


async def claim_default_if_none(session: AsyncSession, conn: Connection) -> bool:
    """Make ``conn`` the provider's default unless one exists already."""
    await lock_provider_defaults(session, conn.workspace_id, conn.provider)
    others = select(Connection.id).where(
        Connection.workspace_id == conn.workspace_id,
        Connection.provider == conn.provider,
        Connection.is_default.is_(True),
    )
    result = await session.execute(
        update(Connection)
        .where(Connection.id == conn.id, ~exists(others))
        .values(is_default=True)
        .execution_options(synchronize_session=False)
    )
    claimed = bool(getattr(result, "rowcount", 0))
    conn.is_default = claimed
    return claimed


async def clear_defaults(
    session: AsyncSession, workspace_id: uuid.UUID, provider: str, *, except_id: uuid.UUID
) -> None:
    await session.execute(
        update(Connection)
        .where(
            Connection.workspace_id == workspace_id,
            Connection.provider == provider,
            Connection.is_default.is_(True),
            Connection.id != except_id,
        )
        .values(is_default=False)
        .execution_options(synchronize_session=False)
    )


async def dependents(session: AsyncSession, connection_id: uuid.UUID) -> Sequence[Dependent]:
    stmt = (
        select(Dependent)
        .where(Dependent.connection_id == connection_id)
        .order_by(Dependent.kind, Dependent.ref)
    )
    return (await session.execute(stmt)).scalars().all()


async def delete_connection(session: AsyncSession, connection_id: uuid.UUID) -> None:
    await session.execute(delete(Connection).where(Connection.id == connection_id))
