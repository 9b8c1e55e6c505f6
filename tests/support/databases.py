"""Real-database fixtures for the test suite (a pytest plugin module).

Plug in from ``tests/conftest.py``::

    pytest_plugins = ["support.databases"]

(``tests/`` has no ``__init__.py``, so pytest's default "prepend" import mode puts ``tests/`` on
``sys.path`` and this package imports as ``support``.)

Fixtures
--------
``scram_postgres`` (session)
    A throwaway PostgreSQL cluster that really checks passwords (scram-sha-256 on TCP), listening
    only on 127.0.0.1 on a spare port. Contents:

    * role ``alice`` (password in ``users["alice"]``) owns database ``appdb``; in it, schema
      ``secure`` with table ``secure.t(id int, secret text)`` that only alice can read, and table
      ``public.widgets(id int, name text)`` that alice owns and bob may SELECT;
    * role ``bob`` (password in ``users["bob"]``) may CONNECT to ``appdb`` but has no USAGE on
      schema ``secure`` -> ``permission denied for schema secure``;
    * ``superuser_dsn``: TCP URL for the ``postgres`` superuser (with its own password).

``mariadb_users`` (session)
    On the machine's MariaDB (root, empty password, 127.0.0.1:3306): database
    ``connhub_t_<random>`` with table ``items(id, name)`` (2 rows), user ``reader`` with SELECT on
    it, user ``no_access`` with no privileges on it (1044 when connecting to the database, 1142 on
    a table). Everything is dropped on teardown.

``pg_store_url`` (session) / ``fresh_pg_database`` (function)
    A new, uniquely named database ``connhub_test_<random>`` on the machine's PostgreSQL
    (``pg_admin_dsn()``), yielded as ``postgresql://postgres@127.0.0.1:5432/<name>`` and dropped
    ``WITH (FORCE)`` afterwards.

The same things are available without pytest as context managers: ``running_scram_postgres()``,
``mariadb_test_users()`` and ``temporary_pg_database()``.

If a service is down, run ``scripts/ensure-services.sh`` (``make test`` does it for you).
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

import psycopg
import pymysql
import pytest
from psycopg import sql

__all__ = [
    "PG_HOST",
    "PG_PORT",
    "MARIADB_HOST",
    "MARIADB_PORT",
    "ScramPostgres",
    "MariaDBUsers",
    "pg_admin_dsn",
    "pg_database_url",
    "pg_bindir",
    "running_scram_postgres",
    "mariadb_test_users",
    "temporary_pg_database",
    "scram_postgres",
    "mariadb_users",
    "pg_store_url",
    "fresh_pg_database",
]

PG_HOST = "127.0.0.1"
PG_PORT = 5432
MARIADB_HOST = "127.0.0.1"
MARIADB_PORT = 3306

T = TypeVar("T")

_HINT = "is the service up? run scripts/ensure-services.sh (make test does)"


def _password() -> str:
    # URL-safe, so it can go into DSNs unquoted; long enough to never collide with a guess.
    return secrets.token_urlsafe(18)


def _suffix() -> str:
    return secrets.token_hex(5)


# ---------------------------------------------------------------------------------------------
# Machine PostgreSQL: admin DSN and throwaway databases
# ---------------------------------------------------------------------------------------------


def pg_admin_dsn() -> str:
    """Superuser DSN of the machine's PostgreSQL (trust on loopback)."""
    return f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres"


def pg_database_url(name: str) -> str:
    return f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"


@contextlib.contextmanager
def temporary_pg_database(prefix: str = "connhub_test_") -> Iterator[str]:
    """Create ``<prefix><random>`` on the machine PostgreSQL; yield its URL; drop it after."""
    name = f"{prefix}{_suffix()}"
    try:
        with psycopg.connect(pg_admin_dsn(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as exc:
        raise RuntimeError(f"cannot create database on {pg_admin_dsn()} ({_HINT}): {exc}") from exc
    try:
        yield pg_database_url(name)
    finally:
        with psycopg.connect(pg_admin_dsn(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


# ---------------------------------------------------------------------------------------------
# Throwaway password-checking PostgreSQL cluster
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScramPostgres:
    host: str
    port: int
    database: str
    users: dict[str, str]
    superuser_dsn: str
    data_dir: str = field(repr=False)
    startup_seconds: float = field(default=0.0, compare=False)

    def url(self, user: str, password: str | None = None, database: str | None = None) -> str:
        """TCP URL for ``user``; ``password`` defaults to the user's real one."""
        pw = self.users[user] if password is None else password
        db = self.database if database is None else database
        return (
            f"postgresql://{quote(user, safe='')}:{quote(pw, safe='')}@{self.host}:{self.port}/{db}"
        )


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", path)) or (0,)


def pg_bindir() -> Path:
    """Directory holding initdb/pg_ctl/postgres (``$CONNHUB_PG_BINDIR``, pg_config, Debian glob)."""
    candidates: list[Path] = []
    if env := os.environ.get("CONNHUB_PG_BINDIR"):
        candidates.append(Path(env))
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(  # noqa: S603
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            candidates.append(Path(out.stdout.strip()))
    candidates += [
        Path(p)
        for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    ]
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).parent)
    for cand in candidates:
        if all((cand / exe).is_file() for exe in ("initdb", "pg_ctl", "postgres")):
            return cand
    raise RuntimeError(f"PostgreSQL server binaries (initdb, pg_ctl) not found; {_HINT}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as_pg(cmd: list[str], *, cwd: Path, log: Path, timeout: float = 60) -> None:
    """Run a PostgreSQL server tool, as the ``postgres`` OS user when we are root."""
    argv = ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd
    with log.open("ab") as out:
        proc = subprocess.run(  # noqa: S603
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:2])} failed (exit {proc.returncode}):\n{_tail(log)}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _kill_postmaster(data: Path) -> None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int((data / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, signal.SIGKILL)


def _socket_conn(sock_dir: Path, port: int, dbname: str) -> psycopg.Connection[tuple[object, ...]]:
    """Superuser connection over the unix socket (trust), used before any password exists."""
    return psycopg.connect(
        host=str(sock_dir),
        port=port,
        user="postgres",
        dbname=dbname,
        autocommit=True,
        connect_timeout=10,
    )


_SERVER_CONF = """
# --- connhub tests/support/databases.py ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '{sock}'
password_encryption = 'scram-sha-256'
max_connections = 50
shared_buffers = 16MB
fsync = off
synchronous_commit = off
full_page_writes = off
logging_collector = off
"""


@contextlib.contextmanager
def running_scram_postgres() -> Iterator[ScramPostgres]:
    """Start a throwaway cluster with scram-sha-256 auth on TCP; yield it; destroy it after."""
    started = time.monotonic()
    bindir = pg_bindir()
    base = os.environ.get("CONNHUB_TEST_PG_TMPDIR") or ("/tmp" if os.geteuid() == 0 else None)  # noqa: S108
    tmp = Path(tempfile.mkdtemp(prefix="connhub-scram-pg-", dir=base))
    data = tmp / "data"
    log = tmp / "server.log"
    if os.geteuid() == 0:
        shutil.chown(tmp, user="postgres", group="postgres")
    running = False
    try:
        _run_as_pg(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            cwd=tmp,
            log=tmp / "initdb.log",
        )
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(_SERVER_CONF.format(sock=tmp))

        # The port is picked by binding to 0 and released before the server binds it; retry on
        # the (unlikely) race with another process.
        for attempt in range(5):
            port = _free_port()
            try:
                _run_as_pg(
                    [
                        str(bindir / "pg_ctl"),
                        "start",
                        "-D",
                        str(data),
                        "-l",
                        str(log),
                        "-w",
                        "-t",
                        "30",
                        "-o",
                        f"-p {port}",
                    ],
                    cwd=tmp,
                    log=tmp / "pg_ctl.log",
                )
                running = True
                break
            except RuntimeError:
                if attempt == 4 or "could not bind" not in _tail(log, 200):
                    raise RuntimeError(f"scram PostgreSQL did not start:\n{_tail(log)}") from None

        users = {"alice": _password(), "bob": _password()}
        su_password = _password()
        with _socket_conn(tmp, port, "postgres") as conn:
            conn.execute(
                sql.SQL("ALTER ROLE postgres PASSWORD {}").format(sql.Literal(su_password))
            )
            for name, pw in users.items():
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(name), sql.Literal(pw)
                    )
                )
            conn.execute("CREATE DATABASE appdb OWNER alice")
            conn.execute("REVOKE CONNECT ON DATABASE appdb FROM PUBLIC")
            conn.execute("GRANT CONNECT ON DATABASE appdb TO bob")
        with _socket_conn(tmp, port, "appdb") as conn:
            conn.execute("SET ROLE alice")
            conn.execute("CREATE SCHEMA secure")
            conn.execute("CREATE TABLE secure.t (id int PRIMARY KEY, secret text NOT NULL)")
            conn.execute("INSERT INTO secure.t VALUES (1, 'alpha'), (2, 'beta')")
            conn.execute("CREATE TABLE public.widgets (id int PRIMARY KEY, name text NOT NULL)")
            conn.execute("INSERT INTO public.widgets VALUES (1, 'sprocket'), (2, 'gear')")
            conn.execute("GRANT SELECT ON public.widgets TO bob")
            conn.execute("RESET ROLE")

        yield ScramPostgres(
            host="127.0.0.1",
            port=port,
            database="appdb",
            users=users,
            superuser_dsn=f"postgresql://postgres:{su_password}@127.0.0.1:{port}/postgres",
            data_dir=str(data),
            startup_seconds=time.monotonic() - started,
        )
    finally:
        if running:
            try:
                _run_as_pg(
                    [str(bindir / "pg_ctl"), "stop", "-D", str(data), "-m", "immediate", "-w"],
                    cwd=tmp,
                    log=tmp / "pg_ctl.log",
                    timeout=30,
                )
            except (RuntimeError, subprocess.TimeoutExpired):
                _kill_postmaster(data)
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Machine MariaDB: throwaway database and users
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MariaDBUsers:
    host: str
    port: int
    database: str
    users: dict[str, str]
    reader: str  # SELECT on `database`.*
    no_access: str  # no privileges on `database`
    table: str = "items"


def _mariadb_root() -> pymysql.connections.Connection:
    try:
        return pymysql.connect(
            host=MARIADB_HOST,
            port=MARIADB_PORT,
            user="root",
            password="",
            autocommit=True,
            connect_timeout=10,
        )
    except pymysql.err.OperationalError as exc:
        raise RuntimeError(
            f"cannot connect to MariaDB as root@{MARIADB_HOST}:{MARIADB_PORT} ({_HINT}): {exc}"
        ) from exc


@contextlib.contextmanager
def mariadb_test_users() -> Iterator[MariaDBUsers]:
    sfx = _suffix()
    db, reader, no_access = f"connhub_t_{sfx}", f"connhub_r_{sfx}", f"connhub_n_{sfx}"
    users = {reader: _password(), no_access: _password()}
    conn = _mariadb_root()
    try:
        with conn.cursor() as cur:
            # Identifiers are generated above from hex digits only, so formatting them is safe.
            cur.execute(f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4")
            cur.execute(
                f"CREATE TABLE `{db}`.items (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL)"
            )
            cur.execute(f"INSERT INTO `{db}`.items VALUES (1, 'alpha'), (2, 'beta')")  # noqa: S608
            for user, pw in users.items():
                cur.execute(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY %s", (pw,))
            cur.execute(f"GRANT SELECT ON `{db}`.* TO '{reader}'@'127.0.0.1'")
        yield MariaDBUsers(
            host=MARIADB_HOST,
            port=MARIADB_PORT,
            database=db,
            users=users,
            reader=reader,
            no_access=no_access,
        )
    finally:
        with conn.cursor() as cur:
            for user in users:
                cur.execute(f"DROP USER IF EXISTS '{user}'@'127.0.0.1'")
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        conn.close()


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------


def _enter_or_fail(stack: contextlib.ExitStack, cm: contextlib.AbstractContextManager[T]) -> T:
    try:
        return stack.enter_context(cm)
    except (RuntimeError, psycopg.Error, pymysql.err.Error, OSError) as exc:
        pytest.fail(f"database fixture setup failed: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def scram_postgres() -> Iterator[ScramPostgres]:
    with contextlib.ExitStack() as stack:
        yield _enter_or_fail(stack, running_scram_postgres())


@pytest.fixture(scope="session")
def mariadb_users() -> Iterator[MariaDBUsers]:
    with contextlib.ExitStack() as stack:
        yield _enter_or_fail(stack, mariadb_test_users())


@pytest.fixture(scope="session")
def pg_store_url() -> Iterator[str]:
    """Session-wide fresh database on the machine PostgreSQL (for the production-store run)."""
    with contextlib.ExitStack() as stack:
        yield _enter_or_fail(stack, temporary_pg_database())


@pytest.fixture
def fresh_pg_database() -> Iterator[str]:
    """Per-test fresh database on the machine PostgreSQL."""
    with contextlib.ExitStack() as stack:
        yield _enter_or_fail(stack, temporary_pg_database())
