"""Customer databases for schema/query tests: the machine's PostgreSQL and MariaDB.

Import the fixtures into a test module to register them::

    from query.fixtures import maria_customer, pg_customer  # noqa: F401

``pg_customer`` (session): a fresh database with schema ``shop`` holding many column types
(numeric, json/jsonb, arrays, uuid, bytea, timestamptz, interval, an enum), a composite primary
key, a view, a materialized view, a partitioned table, a table without columns, a table whose
names need quotes, a sequence, a function that writes (to prove the read-only transaction stops
it), and ``public.big`` with ``BIG_ROWS`` rows; plus a login role ``limited`` that may read only
``shop.orders``. ``maria_customer`` (session): the same shapes on MariaDB, with user
``limited`` likewise. Both are dropped afterwards.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pymysql
import pytest
from psycopg import sql

from support.databases import MARIADB_HOST, MARIADB_PORT, PG_HOST, PG_PORT, temporary_pg_database

BIG_ROWS = 5000

_PG_SETUP = f"""
CREATE SCHEMA shop;
CREATE TYPE shop.mood AS ENUM ('happy', 'sad');
CREATE TABLE shop.orders (
    id bigint PRIMARY KEY,
    region text NOT NULL,
    total numeric(12, 2),
    big_amount numeric,
    ratio double precision,
    meta jsonb,
    doc json,
    tags text[],
    uid uuid,
    raw bytea,
    created timestamptz,
    local_ts timestamp,
    day date,
    span interval,
    feel shop.mood
);
INSERT INTO shop.orders VALUES
 (1, 'eu', 9.50, 12345678901234567890.12, 0.25, '{{"a": 1, "b": [1, 2]}}', '{{"x": "y"}}',
  ARRAY['red', 'blue'], 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x00ff10',
  '2024-05-01 12:30:00+02', '2024-05-01 12:30:00', '2024-05-01', '1 day 02:03:04.5', 'happy'),
 (2, 'us', NULL, NULL, 'NaN', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'sad');
CREATE TABLE shop.order_items (
    order_id bigint NOT NULL REFERENCES shop.orders (id),
    line_no int NOT NULL,
    sku text NOT NULL,
    qty int,
    PRIMARY KEY (order_id, line_no)
);
INSERT INTO shop.order_items VALUES (1, 1, 'A-1', 2), (1, 2, 'B-7', 1);
CREATE VIEW shop.big_orders AS SELECT id, total FROM shop.orders WHERE total > 5;
CREATE MATERIALIZED VIEW shop.order_counts AS SELECT region, count(*) AS n FROM shop.orders
    GROUP BY region;
CREATE TABLE shop.no_columns ();
CREATE TABLE shop."Weird Table" ("Order ID" int PRIMARY KEY, "select" text);
INSERT INTO shop."Weird Table" VALUES (7, 'x');
CREATE SEQUENCE shop.seq;
CREATE TABLE shop.events (id int, at date) PARTITION BY RANGE (at);
CREATE TABLE shop.events_2024 PARTITION OF shop.events FOR VALUES FROM ('2024-01-01')
    TO ('2025-01-01');
CREATE TABLE shop.victim (x int);
CREATE FUNCTION shop.writer() RETURNS int LANGUAGE sql AS
    'INSERT INTO shop.victim VALUES (1) RETURNING x';
CREATE TABLE public.big AS
    SELECT g AS id, md5(g::text) AS label, g * 1.5 AS amount FROM generate_series(1, {BIG_ROWS}) g;
"""

_MARIA_SETUP = [
    """CREATE TABLE orders (
        id BIGINT PRIMARY KEY, region VARCHAR(8) NOT NULL, total DECIMAL(12, 2),
        big_amount DECIMAL(30, 2), ratio DOUBLE, meta JSON, raw BLOB, created DATETIME(6),
        day DATE, span TIME, feel ENUM('happy', 'sad'), flags SET('a', 'b'))""",
    """INSERT INTO orders VALUES
        (1, 'eu', 9.50, 12345678901234567890.12, 0.25, '{"a": 1}', X'00ff10',
         '2024-05-01 12:30:00.250000', '2024-05-01', '26:03:04', 'happy', 'a,b'),
        (2, 'us', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'sad', '')""",
    """CREATE TABLE order_items (order_id BIGINT NOT NULL, line_no INT NOT NULL,
        sku VARCHAR(16) NOT NULL, qty INT, PRIMARY KEY (order_id, line_no))""",
    "INSERT INTO order_items VALUES (1, 1, 'A-1', 2), (1, 2, 'B-7', 1)",
    "CREATE VIEW big_orders AS SELECT id, total FROM orders WHERE total > 5",
    "CREATE TABLE `Weird Table` (`Order ID` INT PRIMARY KEY, `select` TEXT)",
    "INSERT INTO `Weird Table` VALUES (7, 'x')",
    # A unique NOT NULL key and no primary key: COLUMN_KEY would say PRI here.
    "CREATE TABLE unique_only (code VARCHAR(8) NOT NULL UNIQUE, note TEXT)",
    "CREATE TABLE victim (x INT)",
    f"CREATE TABLE big AS SELECT seq AS id, MD5(seq) AS label, seq * 1.5 AS amount "
    f"FROM seq_1_to_{BIG_ROWS}",
]


@dataclass(frozen=True)
class CustomerDb:
    provider: str
    host: str
    port: int
    database: str
    user: str
    password: str
    limited_user: str
    limited_password: str
    admin_dsn: str

    def body(
        self, *, limited: bool = False, name: str = "customer", **config: Any
    ) -> dict[str, Any]:
        """A POST /connections body for this database."""
        return {
            "name": name,
            "provider": self.provider,
            "config": {
                "host": self.host,
                "port": self.port,
                "database": self.database,
                "username": self.limited_user if limited else self.user,
                **config,
            },
            "credentials": {
                "password": (self.limited_password if limited else self.password)
                or "unused-under-trust"
            },
        }


@contextlib.contextmanager
def pg_customer_db() -> Iterator[CustomerDb]:
    limited = f"connhub_lim_{secrets.token_hex(4)}"
    with temporary_pg_database(prefix="connhub_cust_") as url:
        database = url.rsplit("/", 1)[1]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(_PG_SETUP)  # type: ignore[arg-type]
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(limited)))
            conn.execute(
                sql.SQL("GRANT USAGE ON SCHEMA shop TO {}").format(sql.Identifier(limited))
            )
            conn.execute(
                sql.SQL("GRANT SELECT ON shop.orders TO {}").format(sql.Identifier(limited))
            )
        try:
            yield CustomerDb(
                "postgres", PG_HOST, PG_PORT, database, "postgres", "", limited, "", url
            )
        finally:
            with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(database)
                    )
                )
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(limited)))


def maria_root(database: str | None = None) -> pymysql.connections.Connection:
    return pymysql.connect(
        host=MARIADB_HOST,
        port=MARIADB_PORT,
        user="root",
        password="",
        database=database,
        autocommit=True,
        connect_timeout=10,
    )


@contextlib.contextmanager
def maria_customer_db() -> Iterator[CustomerDb]:
    suffix = secrets.token_hex(5)
    database, owner, limited = f"connhub_c_{suffix}", f"connhub_o_{suffix}", f"connhub_l_{suffix}"
    password, owner_password = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    root = maria_root()
    try:
        with root.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
            cur.execute(f"USE `{database}`")
            for statement in _MARIA_SETUP:
                cur.execute(statement)
            cur.execute(f"CREATE USER '{limited}'@'127.0.0.1' IDENTIFIED BY %s", (password,))
            cur.execute(f"GRANT SELECT ON `{database}`.orders TO '{limited}'@'127.0.0.1'")
            # The owner may write anything in the database: only read-only sessions stop it.
            cur.execute(f"CREATE USER '{owner}'@'127.0.0.1' IDENTIFIED BY %s", (owner_password,))
            cur.execute(f"GRANT ALL PRIVILEGES ON `{database}`.* TO '{owner}'@'127.0.0.1'")
        yield CustomerDb(
            "mysql",
            MARIADB_HOST,
            MARIADB_PORT,
            database,
            owner,
            owner_password,
            limited,
            password,
            "",
        )
    finally:
        with root.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{limited}'@'127.0.0.1'")
            cur.execute(f"DROP USER IF EXISTS '{owner}'@'127.0.0.1'")
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
        root.close()


@pytest.fixture(scope="session")
def pg_customer() -> Iterator[CustomerDb]:
    with pg_customer_db() as db:
        yield db


@pytest.fixture(scope="session")
def maria_customer() -> Iterator[CustomerDb]:
    with maria_customer_db() as db:
        yield db


def pg_victim_rows(db: CustomerDb) -> int:
    with psycopg.connect(db.admin_dsn) as conn:
        row = conn.execute("SELECT count(*) FROM shop.victim").fetchone()
    return int(row[0]) if row else 0


def maria_victim_rows(db: CustomerDb) -> int:
    conn = maria_root(db.database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM victim")
            row = cur.fetchone()
        return int(row[0]) if row else 0
    finally:
        conn.close()
