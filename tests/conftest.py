"""Suite-wide fixtures: a migrated store (SQLite or PostgreSQL), the app, clients, callers.

``CONNHUB_TEST_STORE=postgres`` runs the whole suite on a fresh database of the machine's
PostgreSQL; the default is an SQLite file. Every test starts from empty tables.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from connhub.app import create_app
from connhub.config import Settings
from connhub.kit import migrate
from connhub.kit.db import commit
from connhub.models import Base
from connhub.runtime import Runtime
from connhub.workspaces import service as workspaces
from connhub.workspaces.principal import Role

pytest_plugins = ["support.databases", "support.live"]

STORE = os.environ.get("CONNHUB_TEST_STORE", "sqlite")


@pytest.fixture(scope="session")
def store_url(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> str:
    if STORE == "postgres":
        url: str = request.getfixturevalue("pg_store_url")
        async_url = "postgresql+asyncpg://" + url.split("://", 1)[1]
    else:
        async_url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('store') / 'connhub.db'}"
    migrate.upgrade(async_url)
    return async_url


@pytest.fixture(scope="session")
def settings(store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home = tmp_path_factory.mktemp("home")
    return Settings(
        home=home,
        database_url=store_url,
        key_file=home / "master.key",
        egress_allow=["127.0.0.1"],
        verify_budget_s=3.0,
        rate_limit_enabled=False,
        auth_cache_s=0,
    )


def settings_with(base: Settings, **changes: object) -> Settings:
    return base.model_copy(update=changes)


@pytest.fixture(scope="session")
async def app_and_runtime(settings: Settings) -> AsyncIterator[tuple[object, Runtime]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app, app.state.runtime


@pytest.fixture
def runtime(app_and_runtime: tuple[object, Runtime]) -> Runtime:
    return app_and_runtime[1]


@pytest.fixture(autouse=True)
async def _empty_tables(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    yield
    if "app_and_runtime" not in request.fixturenames:
        return
    rt: Runtime = request.getfixturevalue("app_and_runtime")[1]
    async with rt.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(table.delete())


@pytest.fixture
async def client(app_and_runtime: tuple[object, Runtime]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app_and_runtime[0])  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://connhub.test") as c:
        yield c


@dataclass
class Caller:
    """A user with a token in a workspace; ``headers`` authenticate as them."""

    token: str
    user_id: uuid.UUID
    workspace_id: uuid.UUID
    workspace_slug: str
    role: Role

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def make_caller(runtime: Runtime):  # type: ignore[no-untyped-def]
    async def make(
        role: Role = Role.admin, *, workspace: str | None = None, email: str | None = None
    ) -> Caller:
        async with runtime.sessions() as session:
            if workspace is None:
                ws = await workspaces.create_workspace(session, name=f"ws {uuid.uuid4().hex[:6]}")
                workspace = ws.slug
            token, user, ws = await workspaces.create_token(
                session,
                workspace_ref=workspace,
                role=role,
                email=email or f"{role.value}-{uuid.uuid4().hex[:8]}@example.com",
            )
            await commit(session)
        return Caller(
            token=token, user_id=user.id, workspace_id=ws.id, workspace_slug=ws.slug, role=role
        )

    return make


@pytest.fixture
async def admin(make_caller) -> Caller:  # type: ignore[no-untyped-def]
    caller: Caller = await make_caller(Role.admin)
    return caller


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A port that completes TCP handshakes (kernel backlog) and never says a word."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@pytest.fixture(scope="session")
def planted_secret() -> Iterator[str]:
    yield "Pl4nted-S3cret-" + uuid.uuid4().hex
