"""What the read-only SQL guard refuses: statement node types and function names, as data.

Why a deny list of *nodes* plus a deny list of *functions*:

- a statement is allowed only if its root is a query (``SELECT``, ``WITH ... SELECT``, set
  operations, ``VALUES``) or an engine's ``SHOW``/``DESCRIBE``/plain ``EXPLAIN``; then every
  node of the whole tree is checked, so a write hidden in a CTE (PostgreSQL data-modifying
  ``WITH x AS (DELETE ...)``), a ``SELECT ... INTO``, a row lock (``FOR UPDATE``) or anything
  sqlglot could only keep as an opaque ``Command`` is refused wherever it sits;
- a read-only transaction does not stop functions that act *outside* the transaction: they
  read server files (``pg_read_file``, ``LOAD_FILE``), open other connections (``dblink``,
  which runs in a fresh read-write session), signal other backends, change settings, take
  session locks, or run a *string* as SQL where no parser of ours can see it
  (``query_to_xml('insert ...')``, ``ts_stat``, ``crosstab``). Those are refused by name,
  unqualified and lower-cased (``pg_catalog.query_to_xml`` and ``"QUERY_TO_XML"`` alike).

Functions that only burn time (``pg_sleep``, ``SLEEP``, ``BENCHMARK``) are allowed: the
database's statement timeout ends them. Writes through user-defined functions are left to the
database: the session and the transaction are read-only there (Snowflake and BigQuery have no
read-only transaction; they rely on the role the connection logs in with, and on this guard).

The lists come from the public record (Superset's ``DISALLOWED_SQL_FUNCTIONS`` after
CVE-2024-39887 / CVE-2024-53947, pgAdmin CVE-2026-12045, MariaDB ``local_infile``) and the
engines' manuals; ``tests/query/test_bypass_corpus.py`` replays them.
"""

from __future__ import annotations

from sqlglot import exp

# Statement-like nodes refused anywhere in the tree (getattr: names move between releases).
_DENIED_NODE_NAMES = (
    # data changes
    "Insert",
    "Update",
    "Delete",
    "Merge",
    "Copy",
    "LoadData",
    "Export",
    "MultitableInserts",
    "ConditionalInsert",
    "Returning",
    "Into",
    "NextValueFor",
    "DML",
    "DDL",
    # schema and session changes
    "Create",
    "Drop",
    "Alter",
    "AlterSession",
    "AlterSet",
    "TruncateTable",
    "Comment",
    "Attach",
    "Detach",
    "Install",
    "Undrop",
    "SwapTable",
    "Pragma",
    "Use",
    "Set",
    "Transaction",
    "Commit",
    "Rollback",
    "Kill",
    "Declare",
    "Execute",
    "ExecuteSql",
    "Grant",
    "Revoke",
    "Analyze",
    "Cache",
    "Uncache",
    "Refresh",
    "Summarize",
    "Command",
    # locks
    "Lock",
    "LockingStatement",
    # stages and files (Snowflake)
    "Put",
    "Get",
    "ListStage",
    # procedural blocks
    "StoredProcedure",
    "Block",
    "IfBlock",
    "WhileBlock",
    "LoopBlock",
    "RepeatBlock",
    "Iterate",
    "Leave",
    "EndStatement",
    "AddPartition",
    "DropPartition",
    "ReplacePartition",
)
DENIED_NODES: tuple[type[exp.Expr], ...] = tuple(
    node for name in _DENIED_NODE_NAMES if isinstance(node := getattr(exp, name, None), type)
)

# Classes of sqlglot's ddl/dml modules that are *not* statements of their own (parts of other
# nodes, or harmless in a query). A test checks every class of those modules is either denied
# or listed here, so a sqlglot upgrade that adds a statement type cannot slip through.
REVIEWED_HARMLESS = frozenset(
    {
        "CharacterSet",
        "Comprehension",
        "Describe",
        "Heredoc",
        "Show",
        "SetItem",
        "DeclareItem",
        "Clone",
        "AlterColumn",
        "AlterDistStyle",
        "AlterIndex",
        "AlterModifySqlSecurity",
        "AlterRename",
        "AlterSortKey",
        "DropPrimaryKey",
        "MacroOverload",
        "MacroOverloads",
        "MergeTreeTTL",
        "MergeTreeTTLAction",
        "ModifyColumn",
        "RenameColumn",
        "RenameIndex",
        "SequenceProperties",
        "TriggerEvent",
        "TriggerExecute",
        "TriggerProperties",
        "TriggerReferencing",
        "UserDefinedFunction",
        "CopyParameter",
        "Credentials",
        "Directory",
        "DirectoryStage",
        "OnConflict",
        "When",
        "Whens",
    }
)
# ``AlterColumn`` & co. only occur inside ``Alter``, ``SetItem`` inside ``Set``, ``When``
# inside ``Merge``...: their parents are denied, so they never reach the check alone.

# Functions refused on every engine (names are harmless where an engine lacks them).
_COMMON = frozenset({"load_file", "sys_exec", "sys_eval", "lo_import", "lo_export", "dblink"})

# PostgreSQL: run text as SQL, read or list server files, other sessions, settings, locks,
# sequences, large objects, replication and server administration.
_POSTGRES = frozenset(
    {
        "query_to_xml",
        "query_to_xmlschema",
        "query_to_xml_and_xmlschema",
        "cursor_to_xml",
        "cursor_to_xmlschema",
        "cursor_to_xml_and_xmlschema",
        "table_to_xml",
        "table_to_xmlschema",
        "table_to_xml_and_xmlschema",
        "schema_to_xml",
        "schema_to_xmlschema",
        "schema_to_xml_and_xmlschema",
        "database_to_xml",
        "database_to_xmlschema",
        "database_to_xml_and_xmlschema",
        "ts_stat",
        "ts_rewrite",
        "crosstab",
        "crosstab2",
        "crosstab3",
        "crosstab4",
        "connectby",
        "xpath_table",
        "pg_read_file",
        "pg_read_binary_file",
        "pg_ls_dir",
        "pg_stat_file",
        "pg_logdir_ls",
        "pg_current_logfile",
        "pg_file_write",
        "pg_file_unlink",
        "pg_file_rename",
        "pg_file_sync",
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_log_backend_memory_contexts",
        "pg_promote",
        "pg_switch_wal",
        "pg_backup_start",
        "pg_backup_stop",
        "pg_start_backup",
        "pg_stop_backup",
        "pg_create_restore_point",
        "pg_import_system_collations",
        "pg_export_snapshot",
        "pg_import_snapshot",
        "pg_notify",
        "pg_logical_emit_message",
        "set_config",
        "nextval",
        "setval",
        "currval",
        "lastval",
        "txid_current",
        "pg_current_xact_id",
        "make_lo",
    }
)
_POSTGRES_PREFIXES = (
    "lo_",  # large objects: lo_import/lo_export read and write server files
    "dblink",  # dblink, dblink_exec, dblink_connect...: another, read-write session
    "pg_advisory",
    "pg_try_advisory",  # session locks outlive the statement
    "pg_ls_",  # pg_ls_dir, pg_ls_logdir, pg_ls_waldir, pg_ls_tmpdir...
    "pg_read_",  # pg_read_file, pg_read_binary_file
    "pg_stat_reset",  # statistics resets
    "pg_replication_",
    "pg_create_",
    "pg_drop_",
    "pg_copy_",  # replication slots & origins
    "pg_wal_replay_",
)

# MySQL / MariaDB: files, named locks, UDF shells, sequences, replication waits.
_MYSQL = frozenset(
    {
        "load_file",
        "get_lock",
        "release_lock",
        "release_all_locks",
        "is_free_lock",
        "is_used_lock",
        "sys_exec",
        "sys_eval",
        "nextval",
        "setval",
        "lastval",
        "master_pos_wait",
        "source_pos_wait",
        "master_gtid_wait",
        "wait_for_executed_gtid_set",
        "wait_until_sql_thread_after_gtids",
    }
)

# Snowflake: stage files and the SYSTEM$ administration functions.
_SNOWFLAKE = frozenset(
    {
        "get_presigned_url",
        "build_scoped_file_url",
        "build_stage_file_url",
        "infer_schema",
        "get_stage_location",
        "validate_pipe_load",
    }
)
_SNOWFLAKE_PREFIXES = ("system$",)

# BigQuery: federated queries run text on another database.
_BIGQUERY = frozenset({"external_query"})

_BY_DIALECT: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
    "postgres": (_POSTGRES, _POSTGRES_PREFIXES),
    "mysql": (_MYSQL, ()),
    "snowflake": (_SNOWFLAKE, _SNOWFLAKE_PREFIXES),
    "bigquery": (_BIGQUERY, ()),
}
_ALL_NAMES = _COMMON | _POSTGRES | _MYSQL | _SNOWFLAKE | _BIGQUERY
_ALL_PREFIXES = _POSTGRES_PREFIXES + _SNOWFLAKE_PREFIXES


def denied_function(name: str, dialect: str) -> bool:
    """Whether ``name`` (lower case, unqualified) is refused on ``dialect``.

    Engines without a list of their own (SQL Server, Databricks...) get the union of all
    lists: refusing a name an engine does not have costs nothing.
    """
    names, prefixes = _BY_DIALECT.get(dialect, (_ALL_NAMES, _ALL_PREFIXES))
    return name in names or name in _COMMON or name.startswith(prefixes)


def denied_names(dialect: str) -> frozenset[str]:
    """The exact names refused on ``dialect`` (for tests and documentation)."""
    names, _ = _BY_DIALECT.get(dialect, (_ALL_NAMES, _ALL_PREFIXES))
    return names | _COMMON
