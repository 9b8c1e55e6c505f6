"""One Settings object for the whole service (env prefix ``CONNHUB_``).

Tests build their own ``Settings(...)`` and pass it to ``create_app``; nothing reads the
environment after start-up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONNHUB_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".connhub")
    database_url: str | None = None
    key_file: Path | None = None
    # AWS KMS as the key-encryption key (see secrets/keys.py); unset: the key file.
    kms_key_id: str | None = None
    kms_region: str | None = None
    kms_endpoint_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8765
    log_level: str = "INFO"
    max_body_bytes: int = 1024 * 1024
    # Store connections per process: the ORM pool (this many, plus as many again at peaks)
    # and, on PostgreSQL, the statement pool for single reads and bookkeeping writes (opened
    # on demand, closed when idle for 5 minutes; a list request holds one while it renders,
    # so below the number of concurrent requests it queues them).
    db_pool_size: int = 20
    db_statement_pool_size: int = 20
    # How long a resolved token (user, workspace, role) is reused in-process. Revocations and
    # role changes made by another process take effect within this many seconds; 0 disables.
    auth_cache_s: float = 5.0

    verify_budget_s: float = 5.0
    verify_threads: int = 16
    egress_allow: Annotated[list[str], NoDecode] = Field(default_factory=list)

    query_timeout_s: float = 30.0
    query_max_rows: int = 1000
    pool_size_per_connection: int = 2
    pool_idle_s: float = 300.0

    product_name: str = "Flagsmith Analytics"
    warehouse_key_bits: int = 4096

    rate_limit_per_minute: int = 100
    rate_limit_burst_per_second: int = 20
    rate_limit_enabled: bool = True
    # The Sources face's limits above are its contract's (API.md section 2). The Connections
    # API's contract has a 429 but names no figures; a product's backend is its usual caller.
    connections_rate_limit_per_minute: int = 1200
    connections_rate_limit_burst_per_second: int = 50

    @field_validator("egress_allow", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def resolved_database_url(self) -> str:
        """SQLAlchemy async URL; the embedded default is a SQLite file under ``home``."""
        url = self.database_url or f"sqlite+aiosqlite:///{self.home / 'connhub.db'}"
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+asyncpg://" + url.split("://", 1)[1]
        elif url.startswith("sqlite:///"):
            url = "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
        return url

    @property
    def resolved_key_file(self) -> Path:
        return self.key_file or self.home / "master.key"
