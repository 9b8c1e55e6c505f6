"""Operator CLI: ``connhub serve|migrate|workspaces create|tokens create|keys rotate|rewrap``.

Every command reads the same Settings (``CONNHUB_DATABASE_URL``, ``CONNHUB_HOME``) and key
material as the server and calls the same services as the API.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from connhub.config import Settings
from connhub.errors import ConnhubError
from connhub.kit import migrate as migrations
from connhub.kit.db import commit, make_engine, make_sessionmaker
from connhub.workspaces import service as workspaces
from connhub.workspaces.principal import Role

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
workspaces_app = typer.Typer(no_args_is_help=True, help="Manage workspaces.")
tokens_app = typer.Typer(no_args_is_help=True, help="Manage API tokens.")
keys_app = typer.Typer(no_args_is_help=True, help="Manage the key-encryption keys.")
app.add_typer(workspaces_app, name="workspaces")
app.add_typer(tokens_app, name="tokens")
app.add_typer(keys_app, name="keys")

T = TypeVar("T")


def _emit(obj: dict[str, Any]) -> None:
    typer.echo(json.dumps(obj))


def _fail(message: str, code: int = 1) -> None:
    typer.echo(json.dumps({"error": message}), err=True)
    raise typer.Exit(code)


def _run(fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Migrate, run ``fn`` in one committed unit of work, dispose the engine."""
    settings = Settings()
    migrations.upgrade(settings.resolved_database_url)

    async def go() -> T:
        engine = make_engine(settings.resolved_database_url)
        try:
            async with make_sessionmaker(engine)() as session:
                result = await fn(session)
                await commit(session)
                return result
        finally:
            await engine.dispose()

    try:
        return asyncio.run(go())
    except ConnhubError as exc:
        _fail(exc.message)
        raise  # unreachable: _fail exits


@app.command()
def migrate() -> None:
    """Bring the store's schema up to date."""
    settings = Settings()
    migrations.upgrade(settings.resolved_database_url)
    _emit({"migrated": True})


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
) -> None:
    """Migrate the store, then serve the API (default 127.0.0.1:8765)."""
    import uvicorn

    from connhub.app import configure_logging, create_app

    settings = Settings()
    if host:
        settings.host = host
    if port:
        settings.port = port
    configure_logging(settings)
    settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    migrations.upgrade(settings.resolved_database_url)
    url = f"http://{settings.host}:{settings.port}"
    typer.echo(
        f"connhub serving on {url}  (API docs: {url}/docs)\n"
        "Get a token:  connhub workspaces create 'My team'  then\n"
        "              connhub tokens create --workspace <slug> --email you@example.com "
        "--role admin",
        err=True,
    )
    try:
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            server_header=False,
        )
    except ConnhubError as exc:
        _fail(exc.message)


@workspaces_app.command("create")
def workspaces_create(
    name: Annotated[str, typer.Argument(help="Display name")],
    slug: Annotated[str | None, typer.Option(help="URL slug (default: from the name)")] = None,
) -> None:
    """Create a workspace; prints {"id", "slug", "name"}."""
    ws = _run(lambda s: workspaces.create_workspace(s, name=name, slug=slug))
    _emit({"id": str(ws.id), "slug": ws.slug, "name": ws.name})


@tokens_app.command("create")
def tokens_create(
    workspace: Annotated[str, typer.Option(help="Workspace id or slug")],
    email: Annotated[str, typer.Option(help="The user's email (created if new)")],
    role: Annotated[Role, typer.Option(help="admin, member or viewer")] = Role.member,
) -> None:
    """Mint an API token (shown once; only its hash is stored)."""
    token, user, ws = _run(
        lambda s: workspaces.create_token(s, workspace_ref=workspace, email=email, role=role)
    )
    _emit(
        {
            "token": token,
            "user_id": str(user.id),
            "workspace_id": str(ws.id),
            "workspace_slug": ws.slug,
            "email": user.email,
            "role": role.value,
        }
    )


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Add a new key to the key file, re-wrap every stored secret under it."""
    from connhub.kit.crypto import CryptoError, Envelope, LocalKeyFile
    from connhub.secrets import service as secrets

    settings = Settings()
    if settings.kms_key_id is not None:
        _fail(
            "The key-encryption key is in KMS: rotate it there (automatic rotation keeps its "
            "id), or set CONNHUB_KMS_KEY_ID to a new key and run: connhub keys rewrap"
        )
    try:
        provider = LocalKeyFile.load(settings.resolved_key_file)
        new_id = provider.rotate()
    except CryptoError as exc:
        _fail(str(exc))
        raise  # unreachable: _fail exits
    envelope = Envelope(provider)
    count = _run(lambda s: secrets.rewrap_all(s, envelope))
    _emit({"active_key_id": new_id, "rewrapped": count})


@keys_app.command("rewrap")
def keys_rewrap() -> None:
    """Re-wrap every stored secret under the active key (after a move to KMS or a new key)."""
    from connhub.kit.crypto import CryptoError, Envelope
    from connhub.secrets import keys
    from connhub.secrets import service as secrets

    settings = Settings()
    try:
        provider, _created = keys.configured(settings, allow_create=False)
        envelope = Envelope(provider)
        count = _run(lambda s: secrets.rewrap_all(s, envelope))
        active = provider.active_key_id
    except CryptoError as exc:
        _fail(str(exc))
        raise  # unreachable: _fail exits
    _emit({"active_key_id": active, "rewrapped": count})


def main() -> None:  # pragma: no cover - console entry
    sys.exit(app())
