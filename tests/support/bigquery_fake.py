"""A tiny BigQuery + Google OAuth server on loopback, for the real google-cloud-bigquery client.

It implements exactly what the client calls for a verification and for DB-API queries (each
request logged in ``calls``; query requests also in ``queries``):

``POST /token``
    the service-account JWT-bearer grant. The assertion's RS256 signature is checked against
    the public half of the key in :meth:`BigQueryFake.credentials_json`, and its ``iss``/``aud``
    must be what Google expects, so a client that signs wrongly fails here as it would there.
    ``reject_token`` answers ``400 invalid_grant`` (what Google's token endpoint sends for a
    revoked or deleted key; RFC 6749 section 5.2 puts invalid_grant on 400, not 401).
``GET /bigquery/v2/projects/{p}/datasets/{d}``
    200 for a dataset in ``datasets``, 403 ``accessDenied`` for one in ``forbidden``, else 404
    ``notFound``; bodies shaped like the real API's errors.
``POST /bigquery/v2/projects/{p}/queries``
    ``jobs.query`` (what ``Client.query_and_wait`` and so the DB-API cursor use), evaluated for
    real by :class:`SqlEngine`: the GoogleSQL text is parsed by sqlglot, its table names are
    resolved against the tables made with :meth:`BigQueryFake.create_table` (case-sensitive,
    as in BigQuery; ``dataset.table`` takes the job's project) and against each dataset's
    ``INFORMATION_SCHEMA.TABLES``/``COLUMNS``/``TABLE_CONSTRAINTS``/``KEY_COLUMN_USAGE``
    (BigQuery's column names, a subset of its columns), named scalar ``queryParameters``
    (``@x``, what the DB-API sends) are bound as DuckDB parameters, and DuckDB runs it. The
    answer is complete in one response (``jobComplete``, every row, no ``pageToken``), so the client
    makes no ``getQueryResults`` call; rows are REST ``{"f": [{"v": ...}]}`` cells encoded per
    field type. Statements other than one query, SQL sqlglot or DuckDB refuse, and unknown
    parameters get 400 ``invalidQuery``; unknown datasets or tables 404 ``notFound``.

API calls need ``Authorization: Bearer <a token this server issued>`` (else 401).
``hang_token`` / ``hang_api`` make the endpoint accept the request and never answer, to test
deadlines. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import decimal
import itertools
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import duckdb
import pytest
import sqlglot
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlglot import exp
from sqlglot.errors import ErrorLevel

HOST = "127.0.0.1"
CLIENT_EMAIL = "connhub-verifier@acme-analytics.iam.gserviceaccount.com"
# google-auth always signs for Google's token endpoint, whatever token_uri says; Google checks it.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
_DATASET = re.compile(r"/bigquery/v2/projects/([^/]+)/datasets/([^/?]+)")
_QUERIES = re.compile(r"/bigquery/v2/projects/([^/]+)/queries")


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class QueryError(Exception):
    """A refusal the fake sends as a BigQuery error body (status, reason, message)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


_STATUS_NAMES = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND"}
_INFO_VIEWS: dict[str, str] = {
    # BigQuery's column names (a subset of each view's columns) and DuckDB types.
    "TABLES": "table_catalog VARCHAR, table_schema VARCHAR, table_name VARCHAR, "
    "table_type VARCHAR, is_insertable_into VARCHAR, is_typed VARCHAR, "
    "creation_time TIMESTAMPTZ, ddl VARCHAR",
    "COLUMNS": "table_catalog VARCHAR, table_schema VARCHAR, table_name VARCHAR, "
    "column_name VARCHAR, ordinal_position BIGINT, is_nullable VARCHAR, data_type VARCHAR, "
    "is_generated VARCHAR, is_hidden VARCHAR, is_system_defined VARCHAR, "
    "is_partitioning_column VARCHAR, clustering_ordinal_position BIGINT",
    "TABLE_CONSTRAINTS": "constraint_catalog VARCHAR, constraint_schema VARCHAR, "
    "constraint_name VARCHAR, table_catalog VARCHAR, table_schema VARCHAR, "
    "table_name VARCHAR, constraint_type VARCHAR, is_deferrable VARCHAR, "
    "initially_deferred VARCHAR, enforced VARCHAR",
    "KEY_COLUMN_USAGE": "constraint_catalog VARCHAR, constraint_schema VARCHAR, "
    "constraint_name VARCHAR, table_catalog VARCHAR, table_schema VARCHAR, "
    "table_name VARCHAR, column_name VARCHAR, ordinal_position BIGINT, "
    "position_in_unique_constraint BIGINT",
}
_INFO_PREFIX = "INFORMATION_SCHEMA."
# BigQuery INT64 has one width; sqlglot reads INTEGER as 32-bit INT.
_INT_TYPES = {exp.DataType.Type.INT, exp.DataType.Type.SMALLINT, exp.DataType.Type.TINYINT}
_STORABLE = {
    exp.DataType.Type.BIGINT,
    exp.DataType.Type.DOUBLE,
    exp.DataType.Type.DECIMAL,
    exp.DataType.Type.TEXT,
    exp.DataType.Type.BOOLEAN,
    exp.DataType.Type.DATE,
    exp.DataType.Type.TIME,
    exp.DataType.Type.TIMESTAMP,
    exp.DataType.Type.TIMESTAMPTZ,
    exp.DataType.Type.BINARY,
    exp.DataType.Type.JSON,
    exp.DataType.Type.ARRAY,
    exp.DataType.Type.STRUCT,
}
# DuckDB result types -> REST field types (what the client's cell parsers are keyed on).
_REST_TYPES = {
    **dict.fromkeys(
        ("tinyint", "smallint", "integer", "bigint", "hugeint", "utinyint", "usmallint")
        + ("uinteger", "ubigint"),
        "INTEGER",
    ),
    "float": "FLOAT",
    "double": "FLOAT",
    "decimal": "NUMERIC",
    "varchar": "STRING",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "time": "TIME",
    "timestamp": "DATETIME",
    "timestamp with time zone": "TIMESTAMP",
    "blob": "BYTES",
}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def bigquery_type(type_sql: str) -> tuple[str, str]:
    """``(BigQuery's spelling for INFORMATION_SCHEMA, DuckDB column type)`` of a GoogleSQL type.

    Types the fake cannot store faithfully (BIGNUMERIC's 76 digits, GEOGRAPHY, INTERVAL...)
    raise ValueError instead of being stored as something else.
    """
    built = exp.DataType.build(type_sql, dialect="bigquery")

    def fix(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.DataType):
            if node.this in _INT_TYPES:
                return exp.DataType.build("BIGINT")
            if node.this is exp.DataType.Type.DECIMAL and not node.expressions:
                return exp.DataType.build("DECIMAL(38, 9)")  # NUMERIC's precision and scale
            if node.this not in _STORABLE:
                raise ValueError(f"the BigQuery fake cannot store {type_sql}")
        return node

    duck = built.copy().transform(fix)
    if isinstance(built, exp.DataType) and built.this in _INT_TYPES:
        built = exp.DataType.build("INT64", dialect="bigquery")
    return built.sql(dialect="bigquery"), duck.sql(dialect="duckdb")


def _field(name: str, duck_type: Any) -> dict[str, Any]:
    """The REST schema field for one DuckDB result column."""
    kind = duck_type.id
    if kind == "list":
        child = _field(name, dict(duck_type.children)["child"])
        if child["mode"] == "REPEATED":
            raise QueryError(400, "invalidQuery", "Cannot return an array of arrays")
        return {**child, "mode": "REPEATED"}
    if kind == "struct":
        fields = [_field(key, sub) for key, sub in duck_type.children]
        return {"name": name, "type": "RECORD", "mode": "NULLABLE", "fields": fields}
    rest = "JSON" if str(duck_type) == "JSON" else _REST_TYPES.get(kind)
    if rest is None:
        raise QueryError(400, "invalidQuery", f"The BigQuery fake cannot return {duck_type}")
    return {"name": name, "type": rest, "mode": "NULLABLE"}


def _cell(value: Any, field: dict[str, Any], int64_timestamps: bool) -> Any:
    """One REST cell value: scalars as strings, arrays as ``[{"v": ...}]``, records ``{"f"}``."""
    if value is None:  # BigQuery has no NULL arrays: results show them empty
        return [] if field["mode"] == "REPEATED" else None
    if field["mode"] == "REPEATED":
        scalar = {**field, "mode": "NULLABLE"}
        return [{"v": _cell(item, scalar, int64_timestamps)} for item in value]
    kind = field["type"]
    if kind == "RECORD":
        return {
            "f": [
                {"v": _cell(value[sub["name"]], sub, int64_timestamps)} for sub in field["fields"]
            ]
        }
    if kind == "BOOLEAN":
        return "true" if value else "false"
    if kind == "FLOAT":
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(float(value))
    if kind == "NUMERIC":  # canonical, as BigQuery returns it: 9.50 reads 9.5
        return format(value.normalize(), "f")
    if kind == "BYTES":
        return base64.standard_b64encode(value).decode()
    if kind == "TIMESTAMP":
        micros = (value - _EPOCH) // dt.timedelta(microseconds=1)
        return str(micros) if int64_timestamps else f"{micros / 1e6:E}"
    if kind in ("DATE", "DATETIME", "TIME"):
        return value.isoformat()
    return str(value)


def _parameter_value(ptype: dict[str, Any], pvalue: dict[str, Any] | None) -> Any:
    """A ``queryParameters`` value as the Python value DuckDB binds."""
    kind = str(ptype.get("type", "")).upper()
    raw = (pvalue or {}).get("value")
    if raw is None:
        return None
    converters: dict[str, Any] = {
        "STRING": str,
        "JSON": str,
        "INT64": int,
        "FLOAT64": float,
        "BOOL": lambda v: str(v).lower() == "true",
        "NUMERIC": decimal.Decimal,
        "DATE": dt.date.fromisoformat,
        "DATETIME": dt.datetime.fromisoformat,
        "TIMESTAMP": dt.datetime.fromisoformat,
        "TIME": dt.time.fromisoformat,
        "BYTES": base64.standard_b64decode,
    }
    convert = converters.get(kind)
    if convert is None:
        raise QueryError(400, "invalid", f"The BigQuery fake cannot bind {kind} parameters")
    try:
        return convert(raw)
    except (ValueError, TypeError, decimal.InvalidOperation, binascii.Error):
        raise QueryError(400, "invalid", f"Invalid {kind} parameter value: {raw!r}") from None


def _parameter_type(ptype: dict[str, Any]) -> exp.DataType:
    kind = str(ptype.get("type", "")).upper()
    try:
        return exp.DataType.build(bigquery_type(kind)[1], dialect="duckdb")
    except (ValueError, sqlglot.errors.SqlglotError):
        raise QueryError(
            400, "invalid", f"The BigQuery fake cannot bind {kind} parameters"
        ) from None


class SqlEngine:
    """GoogleSQL on an in-memory DuckDB: tables per dataset and their INFORMATION_SCHEMA.

    BigQuery names tables case-sensitively and DuckDB does not, so every BigQuery table (and
    each dataset's four INFORMATION_SCHEMA views, kept as plain tables) gets a DuckDB name of
    its own, and the query's table references are rewritten to those names after they are
    resolved here. One lock: requests come from the server's threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._db = duckdb.connect(":memory:")
        self._db.execute("SET TimeZone = 'UTC'")
        # BigQuery cannot read the server's files or URLs (read_csv, ...): neither may this.
        self._db.execute("SET enable_external_access = false")
        # (project, dataset, table) -> its DuckDB table, named uniquely whatever the case
        self._tables: dict[tuple[str, str, str], str] = {}
        self._info: dict[tuple[str, str], dict[str, str]] = {}
        self._counter = itertools.count()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _fresh_name(self, prefix: str) -> str:
        return f"{prefix}{next(self._counter)}"

    def _info_tables(self, project: str, dataset: str) -> dict[str, str]:
        found = self._info.get((project, dataset))
        if found is None:
            base = self._fresh_name("info")
            found = {view: f"{base}_{view.lower()}" for view in _INFO_VIEWS}
            for view, columns in _INFO_VIEWS.items():
                self._db.execute(f"CREATE TABLE {found[view]} ({columns})")
            self._info[(project, dataset)] = found
        return found

    def create_table(
        self,
        project: str,
        dataset: str,
        name: str,
        columns: Sequence[tuple[str, str, bool]],
        primary_key: Sequence[str] = (),
        rows: Sequence[Sequence[Any]] = (),
    ) -> None:
        with self._lock:
            if (project, dataset, name) in self._tables:
                raise ValueError(f"table {project}:{dataset}.{name} exists")
            names = [column for column, _type, _nullable in columns]
            if len({n.lower() for n in names}) != len(names):
                raise ValueError("column names must differ in more than case (as in BigQuery)")
            if not set(primary_key) <= set(names):
                raise ValueError("primary key columns must be columns of the table")
            types = [bigquery_type(type_sql) for _name, type_sql, _nullable in columns]
            duck = self._fresh_name("t")
            info = self._info_tables(project, dataset)
            defs = ", ".join(
                f"{exp.to_identifier(column, quoted=True).sql('duckdb')} {duck_type}"
                + ("" if nullable else " NOT NULL")
                for (column, _type, nullable), (_shown, duck_type) in zip(
                    columns, types, strict=True
                )
            )
            self._db.execute(f"CREATE TABLE {duck} ({defs})")
            if rows:
                marks = ", ".join("?" * len(columns))
                self._db.executemany(
                    f"INSERT INTO {duck} VALUES ({marks})", [list(r) for r in rows]
                )
            where = (project, dataset, name)
            self._db.execute(
                f"INSERT INTO {info['TABLES']} VALUES (?, ?, ?, 'BASE TABLE', 'YES', 'NO', "
                "now(), NULL)",
                list(where),
            )
            self._db.executemany(
                f"INSERT INTO {info['COLUMNS']} VALUES "
                "(?, ?, ?, ?, ?, ?, ?, 'NEVER', 'NO', 'NO', 'NO', NULL)",
                [
                    [*where, column, position, "YES" if nullable else "NO", shown]
                    for position, ((column, _type, nullable), (shown, _duck)) in enumerate(
                        zip(columns, types, strict=True), start=1
                    )
                ],
            )
            if primary_key:
                constraint = f"{name}.pk$"  # BigQuery's name for a table's primary key
                self._db.execute(
                    f"INSERT INTO {info['TABLE_CONSTRAINTS']} VALUES "
                    "(?, ?, ?, ?, ?, ?, 'PRIMARY KEY', 'NO', 'NO', 'NO')",
                    [project, dataset, constraint, *where],
                )
                self._db.executemany(
                    f"INSERT INTO {info['KEY_COLUMN_USAGE']} VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                    [
                        [project, dataset, constraint, *where, column, position]
                        for position, column in enumerate(primary_key, start=1)
                    ],
                )
            self._tables[where] = duck

    def query(
        self,
        project: str,
        request: dict[str, Any],
        datasets: set[tuple[str, str]],
        forbidden: set[tuple[str, str]],
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The REST schema fields and rows of one jobs.query request; QueryError on refusal."""
        if request.get("useLegacySql") or request.get("dryRun"):
            raise QueryError(400, "invalid", "The BigQuery fake runs GoogleSQL queries only")
        try:
            statements = [s for s in sqlglot.parse(request.get("query", ""), read="bigquery") if s]
        except sqlglot.errors.SqlglotError as exc:
            raise QueryError(400, "invalidQuery", f"Syntax error: {_first_line(exc)}") from None
        statement = statements[0] if len(statements) == 1 else None
        if not isinstance(statement, exp.Query):
            raise QueryError(
                400, "invalidQuery", "The BigQuery fake runs exactly one query statement"
            )
        params = self._bind(statement, request)
        _name_anonymous_columns(statement)
        _float_literals(statement)
        with self._lock:
            self._resolve_tables(statement, project, datasets, forbidden)
            try:
                sql = statement.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE)
                relation = self._db.sql(sql, params=params)
                fields = [
                    _field(name, kind)
                    for name, kind in zip(
                        _unique_columns(relation.columns), relation.types, strict=True
                    )
                ]
                values = relation.fetchall()
            except (sqlglot.errors.SqlglotError, duckdb.Error) as exc:
                raise QueryError(400, "invalidQuery", _first_line(exc)) from None
        int64 = bool((request.get("formatOptions") or {}).get("useInt64Timestamp"))
        rows = [
            {"f": [{"v": _cell(v, f, int64)} for v, f in zip(row, fields, strict=True)]}
            for row in values
        ]
        return fields, rows

    def _bind(self, statement: exp.Expr, request: dict[str, Any]) -> Any:
        """``@name`` as typed DuckDB parameters (``$name``) and their values. Named scalar
        parameters only: what ``google.cloud.bigquery.dbapi`` sends for ``%(name)s``."""
        given = request.get("queryParameters") or []
        if any(statement.find_all(exp.Placeholder)):
            raise QueryError(400, "invalidQuery", "The BigQuery fake binds named parameters only")
        named = list(statement.find_all(exp.Parameter))
        by_name = {str(p.get("name", "")).lower(): p for p in given}
        values: dict[str, Any] = {}
        for node in named:
            name = node.name.lower()
            param = by_name.get(name)
            if param is None:
                raise QueryError(400, "invalidQuery", f"Query parameter '{node.name}' not found")
            values[name] = _parameter_value(param["parameterType"], param.get("parameterValue"))
            node.replace(
                exp.cast(exp.Placeholder(this=name), _parameter_type(param["parameterType"]))
            )
        return values or None

    def _resolve_tables(
        self,
        statement: exp.Expr,
        project: str,
        datasets: set[tuple[str, str]],
        forbidden: set[tuple[str, str]],
    ) -> None:
        """Every table reference rewritten to its DuckDB table, or a BigQuery error."""
        ctes = {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
        for table in list(statement.find_all(exp.Table)):
            parts = [part.name for part in table.parts]
            if len(parts) == 1 and parts[0].lower() in ctes:
                continue
            if len(parts) == 2:
                parts = [project, *parts]
            if len(parts) != 3:
                raise QueryError(
                    400,
                    "invalidQuery",
                    f'Table "{".".join(parts)}" must be qualified with a dataset '
                    "(e.g. dataset.table).",
                )
            where = f"{parts[0]}:{parts[1]}.{parts[2]}"
            if (parts[0], parts[1]) in forbidden:
                raise QueryError(
                    403,
                    "accessDenied",
                    f"Access Denied: Table {where}: User does not have permission to query "
                    f"table {where}, or perhaps it does not exist.",
                )
            if (parts[0], parts[1]) not in datasets:
                raise QueryError(
                    404,
                    "notFound",
                    f"Not found: Dataset {parts[0]}:{parts[1]} was not found in location US",
                )
            if parts[2].upper().startswith(_INFO_PREFIX):
                view = parts[2][len(_INFO_PREFIX) :].upper()
                duck = self._info_tables(parts[0], parts[1]).get(view)
            else:
                duck = self._tables.get((parts[0], parts[1], parts[2]))
            if duck is None:
                raise QueryError(
                    404, "notFound", f"Not found: Table {where} was not found in location US"
                )
            if not table.alias:  # columns may still name the table: `orders`.id
                table.set("alias", exp.TableAlias(this=exp.to_identifier(parts[2], quoted=True)))
            table.set("catalog", None)
            table.set("db", None)
            table.set("this", exp.to_identifier(duck))


def _name_anonymous_columns(statement: exp.Query) -> None:
    """BigQuery names unnamed result columns ``f0_``, ``f1_``...; DuckDB would use the text."""
    anonymous = 0
    for projection in statement.selects:
        if not isinstance(projection, exp.Alias | exp.Column | exp.Star | exp.Dot):
            projection.replace(exp.alias_(projection.copy(), f"f{anonymous}_"))
            anonymous += 1


def _float_literals(statement: exp.Expr) -> None:
    """GoogleSQL reads ``2.5`` and ``1e3`` as FLOAT64; DuckDB would make them DECIMAL."""
    for literal in list(statement.find_all(exp.Literal)):
        if literal.is_number and not literal.is_int:
            literal.replace(exp.cast(literal.copy(), exp.DataType.build("DOUBLE")))


def _unique_columns(names: Sequence[str]) -> list[str]:
    """Repeated result names get ``_1``, ``_2``... (BigQuery's names are case-insensitive)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        count = seen.get(name.lower(), 0)
        seen[name.lower()] = count + 1
        out.append(name if count == 0 else f"{name}_{count}")
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass
class BigQueryFake:
    host: str
    port: int
    private_key: rsa.RSAPrivateKey
    datasets: set[tuple[str, str]] = field(default_factory=set)
    forbidden: set[tuple[str, str]] = field(default_factory=set)
    reject_token: bool = False
    hang_token: bool = False
    hang_api: bool = False
    calls: list[tuple[str, str]] = field(default_factory=list)
    queries: list[dict[str, Any]] = field(default_factory=list)  # jobs.query request bodies
    tokens: set[str] = field(default_factory=set)
    released: threading.Event = field(default_factory=threading.Event)
    engine: SqlEngine = field(default_factory=SqlEngine)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def token_uri(self) -> str:
        return f"{self.endpoint}/token"

    def credentials_json(self, *, token_uri: str | None = None) -> str:
        """A service-account key file as Google issues it, signed by this fake's key."""
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return json.dumps(
            {
                "type": "service_account",
                "project_id": "acme-analytics",
                "private_key_id": "0123456789abcdef0123456789abcdef01234567",
                "private_key": pem,
                "client_email": CLIENT_EMAIL,
                "client_id": "104857600000000000000",
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": token_uri or self.token_uri,
                "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
                "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/x",
                "universe_domain": "googleapis.com",
            }
        )

    def create_table(
        self,
        project: str,
        dataset: str,
        name: str,
        columns: Sequence[tuple[str, str, bool]],
        primary_key: Sequence[str] = (),
        rows: Sequence[Sequence[Any]] = (),
    ) -> None:
        """A table (and the dataset, if new) with ``(name, GoogleSQL type, nullable)`` columns.

        The primary key is recorded as BigQuery records its unenforced ones (constraint
        ``<table>.pk$`` in TABLE_CONSTRAINTS and KEY_COLUMN_USAGE); ``rows`` are inserted.
        """
        self.engine.create_table(project, dataset, name, columns, primary_key, rows)
        self.datasets.add((project, dataset))

    def reset(self) -> None:
        self.datasets.clear()
        self.forbidden.clear()
        self.reject_token = self.hang_token = self.hang_api = False
        self.calls.clear()
        self.queries.clear()
        self.tokens.clear()
        self.engine.close()
        self.engine = SqlEngine()

    # --- request handling (called from the server's threads) ------------------------------

    def verify_assertion(self, assertion: str) -> bool:
        try:
            header_b64, claims_b64, signature_b64 = assertion.split(".")
            header = json.loads(_b64url_decode(header_b64))
            claims = json.loads(_b64url_decode(claims_b64))
            self.private_key.public_key().verify(
                _b64url_decode(signature_b64),
                f"{header_b64}.{claims_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (ValueError, InvalidSignature):
            return False
        now = time.time()
        return bool(
            header.get("alg") == "RS256"
            and claims.get("iss") == CLIENT_EMAIL
            and claims.get("aud") == GOOGLE_TOKEN_AUDIENCE
            and claims.get("iat", now + 999) <= now + 60
            and claims.get("exp", 0) >= now
        )


def _error(code: int, status: str, reason: str, message: str) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
            "status": status,
        }
    }


def _handler(fake: BigQueryFake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            pass

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _hang(self) -> None:
            fake.released.wait(timeout=60)

        def _authorised(self) -> bool:
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Bearer ") and auth[len("Bearer ") :] in fake.tokens:
                return True
            self._send(
                401,
                _error(
                    401,
                    "UNAUTHENTICATED",
                    "unauthorized",
                    "Request had invalid authentication credentials.",
                ),
            )
            return False

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            path = urlsplit(self.path).path
            fake.calls.append(("POST", path))
            body = self._body()
            if path == "/token":
                if fake.hang_token:
                    return self._hang()
                form = parse_qs(body.decode())
                grant = form.get("grant_type", [""])[0]
                assertion = form.get("assertion", [""])[0]
                if (
                    fake.reject_token
                    or grant != "urn:ietf:params:oauth:grant-type:jwt-bearer"
                    or not fake.verify_assertion(assertion)
                ):
                    return self._send(
                        400,
                        {"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
                    )
                token = "ya29.fake-" + secrets.token_urlsafe(16)
                fake.tokens.add(token)
                return self._send(
                    200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}
                )
            if fake.hang_api:
                return self._hang()
            if not self._authorised():
                return None
            match = _QUERIES.fullmatch(path)
            if match is None:
                return self._send(404, _error(404, "NOT_FOUND", "notFound", f"Not found: {path}"))
            project = match.group(1)
            try:
                request = json.loads(body or b"{}")
            except ValueError:
                return self._send(400, _error(400, "INVALID_ARGUMENT", "parseError", "Bad JSON"))
            fake.queries.append(request)
            try:
                fields, rows = fake.engine.query(
                    project, request, set(fake.datasets), set(fake.forbidden)
                )
            except QueryError as exc:
                status = _STATUS_NAMES[exc.status]
                return self._send(exc.status, _error(exc.status, status, exc.reason, exc.message))
            except Exception as exc:  # a gap in the fake: say so, and never hang the client
                # Not a reason google-api-core retries (backendError, internalError...): the
                # test fails at once instead of retrying until its deadline.
                message = f"The BigQuery fake failed: {exc!r}"
                return self._send(500, _error(500, "INTERNAL", "fakeFailure", message))
            job_id = "job_" + secrets.token_hex(8)
            location = request.get("location") or "US"
            return self._send(
                200,
                {
                    "kind": "bigquery#queryResponse",
                    "schema": {"fields": fields},
                    "jobReference": {"projectId": project, "jobId": job_id, "location": location},
                    "totalRows": str(len(rows)),
                    "rows": rows,
                    "totalBytesProcessed": "0",
                    "jobComplete": True,
                    "cacheHit": False,
                    "queryId": job_id,
                },
            )

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = urlsplit(self.path).path
            fake.calls.append(("GET", path))
            if fake.hang_api:
                return self._hang()
            if not self._authorised():
                return None
            match = _DATASET.fullmatch(path)
            if match is None:
                return self._send(404, _error(404, "NOT_FOUND", "notFound", f"Not found: {path}"))
            project, dataset = match.groups()
            if (project, dataset) in fake.forbidden:
                message = (
                    f"Access Denied: Dataset {project}:{dataset}: Permission bigquery.datasets.get "
                    f"denied on dataset {project}:{dataset} (or it may not exist)."
                )
                return self._send(403, _error(403, "PERMISSION_DENIED", "accessDenied", message))
            if (project, dataset) not in fake.datasets:
                message = f"Not found: Dataset {project}:{dataset}"
                return self._send(404, _error(404, "NOT_FOUND", "notFound", message))
            return self._send(
                200,
                {
                    "kind": "bigquery#dataset",
                    "id": f"{project}:{dataset}",
                    "datasetReference": {"projectId": project, "datasetId": dataset},
                    "location": "US",
                    "creationTime": "1700000000000",
                    "lastModifiedTime": "1700000000000",
                },
            )

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True


def start_bigquery_fake() -> tuple[BigQueryFake, ThreadingHTTPServer]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    fake = BigQueryFake(HOST, 0, key)
    server = _Server((HOST, 0), _handler(fake))
    fake.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, name="bigquery-fake", daemon=True).start()
    return fake, server


@pytest.fixture(scope="session")
def _bigquery_fake_server() -> Iterator[BigQueryFake]:
    fake, server = start_bigquery_fake()
    try:
        yield fake
    finally:
        fake.released.set()  # let hung handlers finish
        server.shutdown()
        server.server_close()
        fake.engine.close()


@pytest.fixture(name="bigquery_fake")
def bigquery_fake_fixture(_bigquery_fake_server: BigQueryFake) -> Iterator[BigQueryFake]:
    """The session's fake, reset before the test and its hung requests released after it."""
    fake = _bigquery_fake_server
    fake.reset()
    fake.released.clear()
    try:
        yield fake
    finally:
        fake.released.set()
