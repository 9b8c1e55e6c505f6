"""The server never makes a new key while secrets exist, and refuses a wrong one."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from connhub.app import create_app
from connhub.config import Settings
from connhub.errors import ConfigurationError
from connhub.kit import migrate

BODY = {
    "name": "K",
    "provider": "postgres",
    "config": {"host": "h.example.com", "database": "d", "username": "u"},
    "credentials": {"password": "pw-123456"},
}


async def _seed_secret(settings: Settings) -> None:
    import httpx

    from connhub.kit.db import commit
    from connhub.workspaces import service as ws
    from connhub.workspaces.principal import Role

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        rt = app.state.runtime
        async with rt.sessions() as session:
            w = await ws.create_workspace(session, name="keys")
            token, _, _ = await ws.create_token(
                session, workspace_ref=w.slug, email="k@example.com", role=Role.admin
            )
            await commit(session)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            resp = await c.post(
                "/api/v1/connections", json=BODY, headers={"Authorization": f"Bearer {token}"}
            )
            assert resp.status_code == 201


@pytest.fixture
def own_store(tmp_path: Path) -> Settings:
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    migrate.upgrade(url)
    return Settings(home=tmp_path, database_url=url, key_file=tmp_path / "keys" / "master.key")


async def test_first_start_creates_private_key_file(own_store: Settings) -> None:
    await _seed_secret(own_store)
    key = own_store.resolved_key_file
    assert key.exists()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


async def test_missing_key_with_secrets_refuses_to_start(own_store: Settings) -> None:
    await _seed_secret(own_store)
    own_store.resolved_key_file.unlink()
    app = create_app(own_store)
    with pytest.raises(ConfigurationError, match="missing"):
        async with app.router.lifespan_context(app):
            pass
    assert not own_store.resolved_key_file.exists()  # no silent new key


async def test_wrong_key_with_secrets_refuses_to_start(own_store: Settings, tmp_path: Path) -> None:
    await _seed_secret(own_store)
    original = tmp_path / "orig.key"
    shutil.copy(own_store.resolved_key_file, original)
    own_store.resolved_key_file.unlink()
    fresh = own_store.model_copy(
        update={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'o.db'}"}
    )
    migrate.upgrade(fresh.resolved_database_url)
    await _seed_secret(fresh)  # makes a different key at the same path
    app = create_app(own_store)
    with pytest.raises(ConfigurationError, match="does not open"):
        async with app.router.lifespan_context(app):
            pass
    shutil.copy(original, own_store.resolved_key_file)
    app = create_app(own_store)
    async with app.router.lifespan_context(app):
        pass
