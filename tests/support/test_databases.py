"""Proves the real-database fixtures in tests/support/databases.py do what they promise."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pymysql
import pytest
from psycopg import sql

from .databases import (
    MariaDBUsers,
    ScramPostgres,
    pg_admin_dsn,
    running_scram_postgres,
    temporary_pg_database,
)

# --- scram_postgres ---------------------------------------------------------------------------


def _pg(
    cluster: ScramPostgres, user: str, password: str | None
) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host=cluster.host,
        port=cluster.port,
        dbname=cluster.database,
        user=user,
        password=password,
        passfile=os.devnull,  # never let a ~/.pgpass supply a password behind our back
        connect_timeout=10,
    )


def test_scram_rejects_wrong_password(scram_postgres: ScramPostgres) -> None:
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _pg(scram_postgres, "alice", "not-the-password")


def test_scram_rejects_missing_password(
    scram_postgres: ScramPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        _pg(scram_postgres, "alice", None)


def test_scram_accepts_right_password(scram_postgres: ScramPostgres) -> None:
    with _pg(scram_postgres, "alice", scram_postgres.users["alice"]) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("alice",)
        rows = conn.execute("SELECT id, secret FROM secure.t ORDER BY id").fetchall()
        assert rows == [(1, "alpha"), (2, "beta")]
    # The URL form works too (what the service will mostly be handed).
    with psycopg.connect(scram_postgres.url("bob"), connect_timeout=10) as conn:
        assert conn.execute("SELECT count(*) FROM public.widgets").fetchone() == (2,)


def test_scram_passwords_are_scram_hashed_and_loopback_only(scram_postgres: ScramPostgres) -> None:
    with psycopg.connect(scram_postgres.superuser_dsn, connect_timeout=10) as conn:
        hashes = conn.execute(
            "SELECT rolname, rolpassword FROM pg_authid WHERE rolname IN ('alice', 'bob')"
        ).fetchall()
        assert {name for name, _ in hashes} == {"alice", "bob"}
        assert all(str(h).startswith("SCRAM-SHA-256$") for _, h in hashes)
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        hba = conn.execute(
            "SELECT DISTINCT auth_method FROM pg_hba_file_rules WHERE type = 'host'"
        ).fetchall()
        assert hba == [("scram-sha-256",)]


def test_bob_is_denied_schema_secure(scram_postgres: ScramPostgres) -> None:
    with _pg(scram_postgres, "bob", scram_postgres.users["bob"]) as conn:
        with pytest.raises(
            psycopg.errors.InsufficientPrivilege, match="permission denied for schema secure"
        ):
            conn.execute("SELECT * FROM secure.t")


def test_running_scram_postgres_cleans_up() -> None:
    with running_scram_postgres() as cluster:
        data_dir = Path(cluster.data_dir)
        assert data_dir.is_dir()
        with psycopg.connect(cluster.url("alice"), connect_timeout=10) as conn:
            conn.execute("SELECT 1")
    assert not data_dir.parent.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(cluster.url("alice"), connect_timeout=3)


# --- mariadb_users ----------------------------------------------------------------------------


def _my(users: MariaDBUsers, user: str, password: str, database: str | None) -> pymysql.Connection:
    return pymysql.connect(
        host=users.host,
        port=users.port,
        user=user,
        password=password,
        database=database,
        connect_timeout=10,
    )


def test_mariadb_reader_can_select(mariadb_users: MariaDBUsers) -> None:
    u = mariadb_users
    conn = _my(u, u.reader, u.users[u.reader], u.database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id, name FROM items ORDER BY id")
            assert cur.fetchall() == ((1, "alpha"), (2, "beta"))
            with pytest.raises(pymysql.err.OperationalError) as denied:
                cur.execute("INSERT INTO items VALUES (3, 'gamma')")
            assert denied.value.args[0] == 1142
    finally:
        conn.close()


def test_mariadb_wrong_password_is_1045(mariadb_users: MariaDBUsers) -> None:
    u = mariadb_users
    with pytest.raises(pymysql.err.OperationalError) as exc:
        _my(u, u.reader, "not-the-password", u.database)
    assert exc.value.args[0] == 1045


def test_mariadb_no_access_user_is_denied(mariadb_users: MariaDBUsers) -> None:
    u = mariadb_users
    password = u.users[u.no_access]
    with pytest.raises(pymysql.err.OperationalError) as exc:
        _my(u, u.no_access, password, u.database)
    assert exc.value.args[0] == 1044  # access denied to database

    conn = _my(u, u.no_access, password, None)  # the login itself is fine
    try:
        with conn.cursor() as cur, pytest.raises(pymysql.err.OperationalError) as exc:
            cur.execute(f"SELECT * FROM `{u.database}`.items")  # noqa: S608
        assert exc.value.args[0] == 1142  # command denied on table
    finally:
        conn.close()


# --- machine PostgreSQL databases -------------------------------------------------------------


def _database_exists(name: str) -> bool:
    with psycopg.connect(pg_admin_dsn(), connect_timeout=10) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        return row is not None


def test_fresh_pg_database_is_empty_and_writable(fresh_pg_database: str) -> None:
    name = fresh_pg_database.rsplit("/", 1)[1]
    assert fresh_pg_database == f"postgresql://postgres@127.0.0.1:5432/{name}"
    assert name.startswith("connhub_test_")
    with psycopg.connect(fresh_pg_database, connect_timeout=10) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        assert tables == (0,)
        conn.execute("CREATE TABLE t (id int)")


def test_pg_store_url_is_distinct_from_fresh_database(
    pg_store_url: str, fresh_pg_database: str
) -> None:
    assert pg_store_url != fresh_pg_database
    with psycopg.connect(pg_store_url, connect_timeout=10) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (
            pg_store_url.rsplit("/", 1)[1],
        )


def test_temporary_pg_database_is_dropped_even_with_open_connections() -> None:
    with temporary_pg_database() as url:
        name = url.rsplit("/", 1)[1]
        lingering = psycopg.connect(url, connect_timeout=10)  # WITH (FORCE) must evict it
        assert _database_exists(name)
    assert not _database_exists(name)
    assert lingering.broken or lingering.closed or _is_dead(lingering)
    lingering.close()


def _is_dead(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    try:
        conn.execute(sql.SQL("SELECT 1"))
    except psycopg.OperationalError:
        return True
    return False
