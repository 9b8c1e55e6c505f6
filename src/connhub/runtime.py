"""Everything a request needs that lives as long as the process: built once per app."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from connhub.config import Settings
from connhub.errors import ConfigurationError
from connhub.kit.crypto import CryptoError, Envelope, KeyMismatch, KeyMissing, LocalKeyFile
from connhub.kit.db import (
    Reader,
    SqliteStatements,
    make_engine,
    make_sessionmaker,
    reader_engine,
)
from connhub.kit.egress import EgressPolicy
from connhub.kit.statement_pool import StatementPool, open_statement_pool
from connhub.kit.threads import run_blocking
from connhub.kit.ttlcache import TTLCache
from connhub.providers.registry import ProviderRegistry, default_registry
from connhub.secrets import keys
from connhub.secrets import service as secrets
from connhub.workspaces.principal import Principal

log = logging.getLogger("connhub")


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    reads: AsyncEngine  # autocommit where it helps: see kit.db.reader_engine
    envelope: Envelope
    registry: ProviderRegistry
    egress: EgressPolicy
    principals: TTLCache[tuple[str, str | None], Principal]
    statement_pool: StatementPool | None = None  # PostgreSQL stores only
    sqlite_statements: SqliteStatements | None = None  # embedded file stores

    def reader(self) -> Reader:
        """Read access for one request (opened lazily; use as ``async with``)."""
        return Reader(self.reads, self.statement_pool, self.sqlite_statements)

    async def close(self) -> None:
        if self.statement_pool is not None:
            await self.statement_pool.close()
        if self.sqlite_statements is not None:
            self.sqlite_statements.close()
        await self.engine.dispose()


async def open_key_provider(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> Envelope:
    """Open the configured keys and prove they open a stored secret. A key file is made
    only while no secret exists, never replaced silently; a key service is reached now, so
    a wrong key id or missing access stops the start rather than the first request."""
    async with sessions() as session:
        sample = await secrets.any_sealed(session)
    source = keys.describe(settings)
    try:
        provider, created = keys.configured(settings, allow_create=sample is None)
        if provider.blocking:
            await run_blocking(lambda: provider.active_key_id)
    except KeyMissing as exc:
        raise ConfigurationError(
            f"Stored secrets exist but the {source} is missing. Restore it (or set "
            "CONNHUB_KEY_FILE); refusing to start rather than make a new key."
        ) from exc
    except CryptoError as exc:
        raise ConfigurationError(f"The {source} is unusable: {exc}") from exc
    if created and isinstance(provider, LocalKeyFile):
        log.info(
            "created key file",
            extra={"path": str(provider.path), "fingerprint": provider.fingerprint},
        )
    envelope = Envelope(provider)
    if sample is not None:
        try:
            await secrets.open_row(envelope, sample)
        except KeyMismatch as exc:
            raise ConfigurationError(
                f"The {source} does not open the stored secrets (wrong key?); refusing to start."
            ) from exc
    return envelope


async def build_runtime(settings: Settings) -> Runtime:
    engine = make_engine(settings.resolved_database_url, pool_size=settings.db_pool_size)
    sessions = make_sessionmaker(engine)
    try:
        envelope = await open_key_provider(settings, sessions)
    except BaseException:
        await engine.dispose()
        raise
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=sessions,
        reads=reader_engine(engine),
        envelope=envelope,
        registry=default_registry(),
        egress=EgressPolicy.from_settings(settings),
        principals=TTLCache(settings.auth_cache_s),
        statement_pool=await open_statement_pool(engine, size=settings.db_statement_pool_size),
        sqlite_statements=SqliteStatements.for_engine(engine),
    )


async def store_ready(runtime: Runtime) -> bool:
    try:
        async with runtime.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:  # readiness reports, it does not raise
        return False
    return True
