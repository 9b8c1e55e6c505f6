"""Read-only bypasses from the public record, replayed against the guard: every one refused.

Each case's id names its source. Where an advisory publishes no payload, the entries cover
the class of attack it describes (marked "class").

- CVE-2024-55633, Apache Superset < 4.1.0: on PostgreSQL, a crafted DML statement was taken
  for a read-only query (writes through SQL Lab on a "read-only" database): data-modifying
  CTEs, stacked statements, session changes that lift read-only.
- CVE-2026-23984, Apache Superset < 6.0.0: the read-only check missed DML "in specially
  crafted SQL statements" on PostgreSQL (no payload published; class): DML run from inside a
  SELECT through functions that execute text or open another session (``query_to_xml``,
  ``dblink``...), quoting, qualification and Unicode escapes hiding those names.
- CVE-2024-39887, Apache Superset < 4.0.2: SQL Lab users could run PostgreSQL functions that
  write or read outside the database: ``SELECT ... INTO``, large objects, server files,
  backend signalling, sequences, advisory locks.
- CVE-2024-53947, Apache Superset < 4.1.0: SQL injection through PostgreSQL's
  ``query_to_xml_and_xmlschema``, ``table_to_xml``, ``table_to_xml_and_xmlschema`` (wrapped
  in ``xpath``), and the follow-up list of mutating statements Superset added.
- CVE-2024-34693, Apache Superset < 4.0.1: MariaDB connections with ``local_infile`` let
  ``LOAD DATA LOCAL INFILE`` read files of the Superset host; plus MySQL's other file
  channels (``LOAD_FILE``, ``INTO OUTFILE``) and executable comments that hide them.
- CVE-2026-12045, pgAdmin 4 < 9.16: ``COMMIT; <write>; SELECT 1`` ended the ``BEGIN
  TRANSACTION READ ONLY`` wrapper and ran the write in autocommit.
- Snowflake: stage file transfer and ``SYSTEM$`` administration functions.
"""

from __future__ import annotations

import pytest

from connhub.errors import QueryRefused
from connhub.providers.custom.mysql import ADAPTER as MYSQL
from connhub.query.guard import check

NRO = "statement_not_read_only"
FN = "denied_function"
MULTI = "multiple_statements"
PARSE = "parse_error"
LEX = "unsupported_syntax"

# (source, dialect, sql, expected code)
CORPUS: list[tuple[str, str, str, str]] = [
    # --- CVE-2024-55633 ---------------------------------------------------------------------
    (
        "CVE-2024-55633 data-modifying CTE delete",
        "postgres",
        "WITH x AS (DELETE FROM orders RETURNING *) SELECT * FROM x",
        NRO,
    ),
    (
        "CVE-2024-55633 data-modifying CTE insert",
        "postgres",
        "WITH x AS (INSERT INTO orders (id) VALUES (1) RETURNING id) SELECT 1",
        NRO,
    ),
    (
        "CVE-2024-55633 data-modifying CTE update",
        "postgres",
        "WITH x AS (UPDATE orders SET total = 0 RETURNING *) SELECT count(*) FROM x",
        NRO,
    ),
    (
        "CVE-2024-55633 nested data-modifying CTE",
        "postgres",
        "SELECT * FROM (WITH x AS (DELETE FROM orders RETURNING *) SELECT * FROM x) AS s",
        NRO,
    ),
    (
        "CVE-2024-55633 CTE merge",
        "postgres",
        "WITH x AS (MERGE INTO orders o USING src s ON o.id = s.id WHEN MATCHED THEN DELETE) "
        "SELECT 1",
        NRO,
    ),
    ("CVE-2024-55633 stacked create", "postgres", "SELECT 1; CREATE TABLE pwned (x int)", MULTI),
    (
        "CVE-2024-55633 stacked insert",
        "postgres",
        "SELECT * FROM orders; INSERT INTO orders (id) VALUES (2)",
        MULTI,
    ),
    (
        "CVE-2024-55633 stacked behind comments",
        "postgres",
        "SELECT 1 /* ; */ ; /* x */ DELETE FROM orders",
        MULTI,
    ),
    (
        "CVE-2024-55633 lift read-only (session)",
        "postgres",
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
        NRO,
    ),
    (
        "CVE-2024-55633 lift read-only (setting)",
        "postgres",
        "SET default_transaction_read_only = off",
        NRO,
    ),
    ("CVE-2024-55633 lift read-only (transaction)", "postgres", "SET TRANSACTION READ WRITE", NRO),
    ("CVE-2024-55633 begin read write", "postgres", "BEGIN READ WRITE", NRO),
    ("CVE-2024-55633 create table as", "postgres", "CREATE TABLE pwned AS SELECT 1", NRO),
    # --- CVE-2026-23984 (class) -------------------------------------------------------------
    (
        "CVE-2026-23984 class query_to_xml runs DML",
        "postgres",
        "SELECT query_to_xml('INSERT INTO orders (id) VALUES (3) RETURNING id', true, true, '')",
        FN,
    ),
    (
        "CVE-2026-23984 class quoted name",
        "postgres",
        "SELECT \"query_to_xml\"('DELETE FROM orders RETURNING 1', true, true, '')",
        FN,
    ),
    (
        "CVE-2026-23984 class schema-qualified name",
        "postgres",
        "SELECT pg_catalog.query_to_xml('DELETE FROM orders RETURNING 1', true, true, '')",
        FN,
    ),
    (
        "CVE-2026-23984 class upper-case name",
        "postgres",
        "SELECT QUERY_TO_XML('DELETE FROM orders RETURNING 1', TRUE, TRUE, '')",
        FN,
    ),
    (
        "CVE-2026-23984 class unicode-escaped name",
        "postgres",
        "SELECT U&\"query\\005fto\\005fxml\"('DELETE FROM orders RETURNING 1', true, true, '')",
        LEX,
    ),
    (
        "CVE-2026-23984 class unicode escape with UESCAPE",
        "postgres",
        "SELECT U&\"query!005fto!005fxml\" UESCAPE '!' ('DELETE FROM orders', true, true, '')",
        LEX,
    ),
    (
        "CVE-2026-23984 class call in WHERE",
        "postgres",
        "SELECT 1 FROM orders WHERE length(query_to_xml('DELETE FROM orders RETURNING 1', "
        "true, true, '')::text) > 0",
        FN,
    ),
    (
        "CVE-2026-23984 class call in a CTE",
        "postgres",
        "WITH q AS (SELECT query_to_xmlschema('DELETE FROM orders', true, true, '')) "
        "SELECT * FROM q",
        FN,
    ),
    (
        "CVE-2026-23984 class dblink fresh session",
        "postgres",
        "SELECT * FROM dblink('dbname=shop', 'DELETE FROM orders RETURNING 1') AS r(x int)",
        FN,
    ),
    (
        "CVE-2026-23984 class dblink_exec",
        "postgres",
        "SELECT dblink_exec('dbname=shop', 'DROP TABLE orders')",
        FN,
    ),
    (
        "CVE-2026-23984 class dblink_connect",
        "postgres",
        "SELECT dblink_connect('c', 'host=10.0.0.1 dbname=x')",
        FN,
    ),
    (
        "CVE-2026-23984 class ts_stat runs text",
        "postgres",
        "SELECT * FROM ts_stat('DELETE FROM orders RETURNING to_tsvector(''x'')')",
        FN,
    ),
    (
        "CVE-2026-23984 class crosstab runs text",
        "postgres",
        "SELECT * FROM crosstab('DELETE FROM orders RETURNING 1, 2, 3') AS ct(a int, b int)",
        FN,
    ),
    (
        "CVE-2026-23984 class set_config lifts read-only",
        "postgres",
        "SELECT set_config('transaction_read_only', 'off', true)",
        FN,
    ),
    (
        "CVE-2026-23984 class EXPLAIN ANALYZE executes",
        "postgres",
        "EXPLAIN ANALYZE DELETE FROM orders",
        NRO,
    ),
    (
        "CVE-2026-23984 class EXPLAIN (ANALYZE) executes",
        "postgres",
        "EXPLAIN (ANALYZE, BUFFERS) WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d",
        NRO,
    ),
    ("CVE-2026-23984 class DO block", "postgres", "DO $$ BEGIN DELETE FROM orders; END $$", NRO),
    ("CVE-2026-23984 class CALL", "postgres", "CALL purge_orders()", NRO),
    ("CVE-2026-23984 class PREPARE", "postgres", "PREPARE p AS DELETE FROM orders", NRO),
    ("CVE-2026-23984 class EXECUTE", "postgres", "EXECUTE p", NRO),
    ("CVE-2026-23984 class COPY TO PROGRAM", "postgres", "COPY orders TO PROGRAM 'id'", NRO),
    (
        "CVE-2026-23984 class COPY query to file",
        "postgres",
        "COPY (SELECT * FROM orders) TO '/tmp/connhub-x'",
        NRO,
    ),
    # --- CVE-2024-39887 ---------------------------------------------------------------------
    ("CVE-2024-39887 SELECT INTO", "postgres", "SELECT * INTO new_table FROM orders", NRO),
    ("CVE-2024-39887 SELECT INTO TEMP", "postgres", "SELECT * INTO TEMP t2 FROM orders", NRO),
    (
        "CVE-2024-39887 SELECT INTO UNLOGGED",
        "postgres",
        "SELECT id INTO UNLOGGED t3 FROM orders",
        NRO,
    ),
    (
        "CVE-2024-39887 lo_export",
        "postgres",
        "SELECT lo_export(lo_import('/etc/passwd'), '/tmp/connhub-x')",
        FN,
    ),
    ("CVE-2024-39887 lo_from_bytea", "postgres", "SELECT lo_from_bytea(0, 'x')", FN),
    ("CVE-2024-39887 lo_put", "postgres", "SELECT lo_put(1, 0, 'x')", FN),
    ("CVE-2024-39887 pg_read_file", "postgres", "SELECT pg_read_file('/etc/passwd')", FN),
    (
        "CVE-2024-39887 pg_read_binary_file",
        "postgres",
        "SELECT pg_read_binary_file('/etc/passwd')",
        FN,
    ),
    ("CVE-2024-39887 pg_ls_dir", "postgres", "SELECT * FROM pg_ls_dir('/') AS d", FN),
    ("CVE-2024-39887 pg_stat_file", "postgres", "SELECT pg_stat_file('/etc/passwd')", FN),
    (
        "CVE-2024-39887 pg_terminate_backend",
        "postgres",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity",
        FN,
    ),
    ("CVE-2024-39887 pg_cancel_backend", "postgres", "SELECT pg_cancel_backend(1)", FN),
    ("CVE-2024-39887 pg_reload_conf", "postgres", "SELECT pg_reload_conf()", FN),
    ("CVE-2024-39887 pg_rotate_logfile", "postgres", "SELECT pg_rotate_logfile()", FN),
    ("CVE-2024-39887 nextval", "postgres", "SELECT nextval('orders_id_seq')", FN),
    ("CVE-2024-39887 setval", "postgres", "SELECT setval('orders_id_seq', 1)", FN),
    ("CVE-2024-39887 advisory lock", "postgres", "SELECT pg_advisory_lock(42)", FN),
    ("CVE-2024-39887 try advisory lock", "postgres", "SELECT pg_try_advisory_lock(42)", FN),
    ("CVE-2024-39887 txid_current", "postgres", "SELECT txid_current()", FN),
    ("CVE-2024-39887 pg_notify", "postgres", "SELECT pg_notify('c', 'x')", FN),
    ("CVE-2024-39887 row lock", "postgres", "SELECT * FROM orders FOR UPDATE", NRO),
    (
        "CVE-2024-39887 row lock skip locked",
        "postgres",
        "SELECT * FROM orders FOR NO KEY UPDATE SKIP LOCKED",
        NRO,
    ),
    # --- CVE-2024-53947 ---------------------------------------------------------------------
    (
        "CVE-2024-53947 query_to_xml_and_xmlschema",
        "postgres",
        "SELECT query_to_xml_and_xmlschema('SELECT * FROM secrets', true, true, '')",
        FN,
    ),
    (
        "CVE-2024-53947 table_to_xml",
        "postgres",
        "SELECT table_to_xml('secrets', true, true, '')",
        FN,
    ),
    (
        "CVE-2024-53947 table_to_xml_and_xmlschema",
        "postgres",
        "SELECT table_to_xml_and_xmlschema('secrets', true, true, '')",
        FN,
    ),
    (
        "CVE-2024-53947 xpath over query_to_xml",
        "postgres",
        "SELECT xpath('/row/x/text()', query_to_xml('SELECT * FROM secrets', true, true, ''))",
        FN,
    ),
    (
        "CVE-2024-53947 cursor_to_xml",
        "postgres",
        "SELECT cursor_to_xml('c', 1, true, true, '')",
        FN,
    ),
    (
        "CVE-2024-53947 schema_to_xml",
        "postgres",
        "SELECT schema_to_xml('public', true, true, '')",
        FN,
    ),
    ("CVE-2024-53947 database_to_xml", "postgres", "SELECT database_to_xml(true, true, '')", FN),
    (
        "CVE-2024-53947 mutating MERGE",
        "postgres",
        "MERGE INTO orders o USING src s ON o.id = s.id WHEN MATCHED THEN DELETE",
        NRO,
    ),
    ("CVE-2024-53947 mutating TRUNCATE", "postgres", "TRUNCATE orders", NRO),
    ("CVE-2024-53947 mutating ALTER", "postgres", "ALTER TABLE orders ADD COLUMN x int", NRO),
    ("CVE-2024-53947 mutating DROP", "postgres", "DROP TABLE orders", NRO),
    ("CVE-2024-53947 mutating GRANT", "postgres", "GRANT ALL ON orders TO PUBLIC", NRO),
    ("CVE-2024-53947 mutating REVOKE", "postgres", "REVOKE ALL ON orders FROM PUBLIC", NRO),
    ("CVE-2024-53947 mutating VACUUM", "postgres", "VACUUM orders", NRO),
    ("CVE-2024-53947 mutating CLUSTER", "postgres", "CLUSTER orders", NRO),
    ("CVE-2024-53947 mutating REINDEX", "postgres", "REINDEX TABLE orders", NRO),
    ("CVE-2024-53947 mutating LOCK", "postgres", "LOCK TABLE orders IN EXCLUSIVE MODE", NRO),
    ("CVE-2024-53947 mutating REFRESH", "postgres", "REFRESH MATERIALIZED VIEW totals", NRO),
    ("CVE-2024-53947 mutating COMMENT", "postgres", "COMMENT ON TABLE orders IS 'x'", NRO),
    ("CVE-2024-53947 mutating NOTIFY", "postgres", "NOTIFY channel, 'x'", PARSE),
    ("CVE-2024-53947 mutating LISTEN", "postgres", "LISTEN channel", NRO),
    ("CVE-2024-53947 mutating LOAD", "postgres", "LOAD 'plpython3u'", NRO),
    (
        "CVE-2024-53947 mutating IMPORT FOREIGN SCHEMA",
        "postgres",
        "IMPORT FOREIGN SCHEMA public FROM SERVER s INTO local",
        PARSE,
    ),
    ("CVE-2024-53947 mutating DISCARD", "postgres", "DISCARD ALL", NRO),
    ("CVE-2024-53947 mutating RESET", "postgres", "RESET ALL", NRO),
    ("CVE-2024-53947 mutating ANALYZE", "postgres", "ANALYZE orders", NRO),
    ("CVE-2024-53947 mutating CHECKPOINT", "postgres", "CHECKPOINT", NRO),
    (
        "CVE-2024-53947 mutating SECURITY LABEL",
        "postgres",
        "SECURITY LABEL ON TABLE orders IS 'x'",
        PARSE,
    ),
    # --- CVE-2026-12045 (pgAdmin) -----------------------------------------------------------
    (
        "CVE-2026-12045 commit breaks the read-only wrapper",
        "postgres",
        "COMMIT; DELETE FROM orders; SELECT 1",
        MULTI,
    ),
    ("CVE-2026-12045 rollback then write", "postgres", "ROLLBACK; DROP TABLE orders", MULTI),
    ("CVE-2026-12045 lone COMMIT", "postgres", "COMMIT", NRO),
    (
        "CVE-2026-12045 COPY TO PROGRAM after commit",
        "postgres",
        "END; COPY orders TO PROGRAM 'id'",
        MULTI,
    ),
    # --- CVE-2024-34693 and MySQL/MariaDB file channels -------------------------------------
    (
        "CVE-2024-34693 LOAD DATA LOCAL INFILE",
        "mysql",
        "LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE t",
        PARSE,
    ),
    (
        "CVE-2024-34693 LOAD DATA INFILE",
        "mysql",
        "LOAD DATA INFILE '/etc/passwd' INTO TABLE t",
        PARSE,
    ),
    (
        "CVE-2024-34693 LOAD XML LOCAL INFILE",
        "mysql",
        "LOAD XML LOCAL INFILE '/etc/passwd' INTO TABLE t",
        NRO,
    ),
    ("CVE-2024-34693 turn local_infile on", "mysql", "SET GLOBAL local_infile = 1", NRO),
    ("CVE-2024-34693 LOAD_FILE", "mysql", "SELECT LOAD_FILE('/etc/passwd')", FN),
    (
        "CVE-2024-34693 LOAD_FILE in subquery",
        "mysql",
        "SELECT * FROM t WHERE x = (SELECT LOAD_FILE('/etc/shadow'))",
        FN,
    ),
    (
        "CVE-2024-34693 INTO OUTFILE",
        "mysql",
        "SELECT * FROM t INTO OUTFILE '/tmp/connhub-x'",
        PARSE,
    ),
    (
        "CVE-2024-34693 INTO DUMPFILE",
        "mysql",
        "SELECT x FROM t INTO DUMPFILE '/tmp/connhub-x'",
        PARSE,
    ),
    ("CVE-2024-34693 INTO variable", "mysql", "SELECT 1 INTO @x", NRO),
    (
        "CVE-2024-34693 executable comment",
        "mysql",
        "SELECT 1 /*!, LOAD_FILE('/etc/passwd') */",
        LEX,
    ),
    (
        "CVE-2024-34693 MariaDB executable comment",
        "mysql",
        "SELECT 1 /*M!100000 , LOAD_FILE('/etc/passwd') */",
        LEX,
    ),
    ("CVE-2024-34693 GET_LOCK", "mysql", "SELECT GET_LOCK('x', 10)", FN),
    ("CVE-2024-34693 sys_exec UDF", "mysql", "SELECT sys_exec('id')", FN),
    ("CVE-2024-34693 sequence NEXTVAL", "mysql", "SELECT NEXTVAL(s)", FN),
    ("CVE-2024-34693 row lock", "mysql", "SELECT * FROM t LOCK IN SHARE MODE", NRO),
    ("CVE-2024-34693 HANDLER", "mysql", "HANDLER t OPEN", PARSE),
    ("CVE-2024-34693 stacked", "mysql", "SELECT 1; DELETE FROM t", MULTI),
    ("CVE-2024-34693 EXPLAIN ANALYZE executes", "mysql", "EXPLAIN ANALYZE SELECT * FROM t", NRO),
    # --- Snowflake ---------------------------------------------------------------------------
    ("snowflake PUT", "snowflake", "PUT file:///etc/passwd @~", NRO),
    ("snowflake GET", "snowflake", "GET @~ file:///tmp/", NRO),
    ("snowflake COPY INTO location", "snowflake", "COPY INTO @~/x FROM (SELECT * FROM t)", NRO),
    ("snowflake COPY INTO table", "snowflake", "COPY INTO t FROM @~/x", NRO),
    ("snowflake LIST stage", "snowflake", "LIST @~", NRO),
    ("snowflake SYSTEM$ function", "snowflake", "SELECT SYSTEM$CANCEL_ALL_QUERIES(1)", FN),
    ("snowflake presigned URL", "snowflake", "SELECT GET_PRESIGNED_URL('@st', 'x')", FN),
    ("snowflake ALTER SESSION", "snowflake", "ALTER SESSION SET QUERY_TAG = 'x'", NRO),
    ("snowflake CREATE STAGE", "snowflake", "CREATE STAGE s URL = 's3://b/'", NRO),
]


@pytest.mark.parametrize(
    ("source", "dialect", "sql", "code"), CORPUS, ids=[case[0] for case in CORPUS]
)
def test_bypass_is_refused(source: str, dialect: str, sql: str, code: str) -> None:
    with pytest.raises(QueryRefused) as info:
        check(sql, dialect)
    assert info.value.code == code, (source, info.value.message)
    assert info.value.status_code == 400


def test_corpus_ids_are_unique() -> None:
    ids = [case[0] for case in CORPUS]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("key", ["local_infile", "localInfile", "allowLoadLocalInfile"])
def test_cve_2024_34693_local_infile_config_is_refused(key: str) -> None:
    """The connection itself can never enable LOCAL INFILE (the adapter refuses the option)."""
    config = {"host": "db.example.com", "database": "d", "username": "u", key: True}
    with pytest.raises(Exception) as info:
        MYSQL.validate_options(config)
    assert getattr(info.value, "code", None) == "invalid_config"
