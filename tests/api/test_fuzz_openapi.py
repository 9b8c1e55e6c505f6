"""Every endpoint fuzzed from the OpenAPI spec (schemathesis): bad input never gives a 5xx.

The app runs in a real uvicorn server on a background thread with its own SQLite store and
an egress policy that refuses every address, so generated hosts are never contacted.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from connhub.app import create_app
from connhub.config import Settings
from connhub.kit import migrate
from connhub.kit.db import commit, make_engine, make_sessionmaker
from connhub.kit.egress import EgressBlocked, EgressPolicy
from connhub.workspaces import service as workspaces
from connhub.workspaces.principal import Role
from support.live import free_port


class DenyAll(EgressPolicy):
    """No generated host or address is ever reached, whatever the allow list says."""

    def check_address(self, ip: str, *, host: str | None = None) -> None:
        raise EgressBlocked(host or ip, "fuzzing: all egress refused")

    async def resolve(self, host: str, port: int) -> Any:
        raise EgressBlocked(host, "fuzzing: all egress refused")

    def resolve_sync(self, host: str, port: int) -> Any:
        raise EgressBlocked(host, "fuzzing: all egress refused")


async def _token(settings: Settings) -> str:
    engine = make_engine(settings.resolved_database_url)
    async with make_sessionmaker(engine)() as session:
        ws = await workspaces.create_workspace(session, name="fuzz", slug="fuzz")
        token, _, _ = await workspaces.create_token(
            session, workspace_ref=ws.slug, email="fuzz@example.com", role=Role.admin
        )
        await commit(session)
    await engine.dispose()
    return token


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    home: Path = tmp_path_factory.mktemp("fuzz")
    settings = Settings(
        home=home,
        database_url=f"sqlite+aiosqlite:///{home / 'fuzz.db'}",
        verify_budget_s=1.0,
        rate_limit_enabled=False,
        auth_cache_s=0,
        warehouse_key_bits=2048,
    )
    migrate.upgrade(settings.resolved_database_url)
    token = asyncio.run(_token(settings))
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.01)
    app.state.runtime.egress = DenyAll()
    yield f"http://127.0.0.1:{port}", token
    server.should_exit = True
    thread.join(10)


def _operations() -> list[Any]:
    """Operations from the app's own OpenAPI document (no server needed to collect)."""
    spec = create_app(Settings(home=Path("/nonexistent"))).openapi()
    loaded = schemathesis.openapi.from_dict(spec)
    return [result.ok() for result in loaded.get_all_operations()]


OPERATIONS = _operations()
CASES = [
    (op, mode)
    for op in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE
    or len(op.path_parameters) + len(op.query) + len(op.body) + len(op.headers)
]


@pytest.mark.parametrize(
    ("operation", "mode"),
    CASES,
    ids=[f"{op.method.upper()} {op.path} {mode.value}" for op, mode in CASES],
)
def test_no_server_errors(
    operation: Any, mode: GenerationMode, fuzz_server: tuple[str, str]
) -> None:
    url, token = fuzz_server

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def fuzz(case: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
        response = case.call(base_url=url, timeout=15)
        assert response.status_code < 500, (
            case.method,
            case.formatted_path,
            response.status_code,
            response.text[:500],
        )

    try:
        fuzz()
    except Unsatisfiable:
        pytest.skip("no invalid input exists: every parameter accepts any string")


def test_every_route_is_fuzzed() -> None:
    paths = {op.path for op in OPERATIONS}
    assert "/api/v1/connections/{connection_id}" in paths
    assert len(OPERATIONS) >= 12
