"""Run Alembic migrations programmatically (``connhub migrate``, ``serve`` and tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from connhub.kit.db import sync_url

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(async_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", sync_url(async_url).replace("%", "%%"))
    return cfg


def upgrade(async_url: str) -> None:
    if async_url.startswith("sqlite"):
        db_path = async_url.split(":///", 1)[1]
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    command.upgrade(alembic_config(async_url), "head")
