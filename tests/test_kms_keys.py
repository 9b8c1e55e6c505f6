"""AWS KMS as the key-encryption key, chosen in settings, against moto's real KMS API.

The server seals new secrets with the KMS key and opens them at use, off the event loop;
a move from the key file to KMS is online (old secrets open until ``keys rewrap`` moves
them); a key that KMS does not have, or keys that do not open the stored secrets, stop the
start with a clear message.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from connhub.app import create_app
from connhub.config import Settings
from connhub.connections import service as connections
from connhub.errors import ConfigurationError
from connhub.kit import migrate
from connhub.kit.db import commit
from connhub.models import ConnectionSecret
from connhub.workspaces import service as workspaces
from connhub.workspaces.principal import Role
from support import moto_kms

PASSWORD = "kms-planted-pw-93f1"


@pytest.fixture(scope="module")
def kms() -> Iterator[tuple[str, Any]]:
    with moto_kms.kms_endpoint() as endpoint:
        yield endpoint, moto_kms.kms_client(endpoint)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": moto_kms.REGION,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def store(tmp_path: Path, aws_env: dict[str, str]) -> Settings:
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    migrate.upgrade(url)
    return Settings(home=tmp_path, database_url=url, key_file=tmp_path / "keys" / "master.key")


def _with_kms(settings: Settings, endpoint: str, key_id: str) -> Settings:
    return settings.model_copy(
        update={"kms_key_id": key_id, "kms_region": moto_kms.REGION, "kms_endpoint_url": endpoint}
    )


async def _create_and_use(
    settings: Settings, name: str, *, kms_threads: list[str] | None = None
) -> tuple[uuid.UUID, dict[str, str]]:
    """Create a connection through the API, then open its credentials the way a verify does.

    ``kms_threads`` collects the name of the thread each KMS call is made from.
    """
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        if kms_threads is not None:
            runtime.envelope.provider.active._client.meta.events.register(
                "before-call.kms.*",
                lambda **_: kms_threads.append(threading.current_thread().name),
            )
        async with runtime.sessions() as session:
            workspace = await workspaces.create_workspace(session, name=name)
            token, _, _ = await workspaces.create_token(
                session, workspace_ref=workspace.slug, email=f"{name}@example.com", role=Role.admin
            )
            await commit(session)
        headers = {"Authorization": f"Bearer {token}"}
        body = {
            "name": name,
            "provider": "postgres",
            "config": {"host": "db.example.com", "database": "d", "username": "u"},
            "credentials": {"password": PASSWORD},
        }
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            created = await client.post("/api/v1/connections", json=body, headers=headers)
            assert created.status_code == 201, created.text
            assert PASSWORD not in created.text
        async with runtime.reader() as reader:
            principal = await workspaces.resolve_principal(
                reader, token=token, workspace_header=None
            )
        connection_id = uuid.UUID(created.json()["id"])
        used = await connections.for_use(
            runtime.reader(), runtime.envelope, principal, connection_id
        )
        return connection_id, used.credentials


async def _key_ids(settings: Settings) -> dict[uuid.UUID, str]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with app.state.runtime.sessions() as session:
            rows = (await session.execute(select(ConnectionSecret))).scalars().all()
            for row in rows:
                assert PASSWORD not in row.sealed
            return {row.connection_id: row.key_id for row in rows}


async def _start(settings: Settings) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        pass


async def test_kms_key_seals_new_secrets_and_opens_them_off_the_event_loop(
    store: Settings, kms: tuple[str, Any]
) -> None:
    endpoint, client = kms
    key = client.create_key(Description="connhub kms settings")["KeyMetadata"]
    client.create_alias(AliasName="alias/connhub-settings", TargetKeyId=key["KeyId"])
    settings = _with_kms(store, endpoint, "alias/connhub-settings")

    threads: list[str] = []
    connection_id, credentials = await _create_and_use(settings, "kmsone", kms_threads=threads)
    assert credentials == {"password": PASSWORD}
    assert (await _key_ids(settings))[connection_id] == key["Arn"]
    assert not settings.resolved_key_file.exists()  # KMS configured: no key file is made
    # Encrypt (create) and decrypt (use), each from a worker thread, never the loop's.
    assert len(threads) == 2
    assert all(name.startswith("connhub-blocking") for name in threads)


async def test_moving_from_the_key_file_to_kms_is_online(
    store: Settings, kms: tuple[str, Any], aws_env: dict[str, str]
) -> None:
    endpoint, client = kms
    key = client.create_key(Description="connhub move")["KeyMetadata"]
    before, _ = await _create_and_use(store, "filekey")
    file_key_id = (await _key_ids(store))[before]
    assert not file_key_id.startswith("arn:")

    moved = _with_kms(store, endpoint, key["KeyId"])
    after, credentials = await _create_and_use(moved, "kmskey")  # old secret still opens
    assert credentials == {"password": PASSWORD}
    assert await _key_ids(moved) == {before: file_key_id, after: key["Arn"]}

    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNHUB_")}
    env.update(
        CONNHUB_HOME=str(moved.home),
        CONNHUB_DATABASE_URL=moved.resolved_database_url,
        CONNHUB_KEY_FILE=str(moved.resolved_key_file),
        CONNHUB_KMS_KEY_ID=key["KeyId"],
        CONNHUB_KMS_REGION=moto_kms.REGION,
        CONNHUB_KMS_ENDPOINT_URL=endpoint,
        **aws_env,
    )
    cli = [sys.executable, "-m", "connhub.cli", "keys"]

    def keys(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*cli, command], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    done = await asyncio.to_thread(keys, "rewrap")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"active_key_id": key["Arn"], "rewrapped": 1}
    refused = await asyncio.to_thread(keys, "rotate")
    assert refused.returncode == 1 and "keys rewrap" in json.loads(refused.stderr)["error"]

    moved.resolved_key_file.unlink()  # every secret is under KMS now
    assert set((await _key_ids(moved)).values()) == {key["Arn"]}
    _, credentials = await _create_and_use(moved, "kmsonly")
    assert credentials == {"password": PASSWORD}


async def test_secrets_kms_cannot_open_refuse_the_start(
    store: Settings, kms: tuple[str, Any]
) -> None:
    endpoint, client = kms
    key = client.create_key(Description="connhub refuse")["KeyMetadata"]
    await _create_and_use(store, "filesecret")
    store.resolved_key_file.unlink()  # the only key that opens the stored secret
    with pytest.raises(ConfigurationError, match="KMS key .* does not open the stored secrets"):
        await _start(_with_kms(store, endpoint, key["KeyId"]))


async def test_a_kms_key_that_does_not_exist_refuses_the_start(
    store: Settings, kms: tuple[str, Any]
) -> None:
    endpoint, _client = kms
    with pytest.raises(ConfigurationError, match="KMS key 'alias/nope' is unusable.*NotFound"):
        await _start(_with_kms(store, endpoint, "alias/nope"))
