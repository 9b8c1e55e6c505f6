"""Driver exceptions from schema browsing and queries, turned into our errors.

Who is at fault decides the status:

- the database *answered* and refused the statement (it carries a SQLSTATE, or a MySQL server
  error number below 2000, or the adapter's ``statement_refusal`` says so for a driver
  without either): the caller's SQL or rights are the problem, so ``400`` with
  ``query_failed`` (``permission_denied`` for privilege errors, ``statement_not_read_only``
  when the read-only transaction stopped a write);
- the statement ran past the timeout: ``502`` ``timeout``;
- anything else (connection lost, login refused, network): ``502`` with the adapter's
  classified code (``network_unreachable``, ``invalid_credentials``...).

Messages are one line, cut to 300 characters and redacted (credentials in any encoding, DSN
shapes); the database's own wording is kept because it is what the caller needs to fix the
query ("column x does not exist").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from connhub.errors import BadRequest, ConnhubError, QueryRefused, UpstreamError
from connhub.kit.redact import redact
from connhub.providers.kinds.sql_driver import SqlAdapter, StatementRefusal
from connhub.query.guard import NOT_READ_ONLY
from connhub.verification.codes import ErrorCode

_MAX = 300
_READ_ONLY_SQLSTATES = {"25006"}  # read_only_sql_transaction
_TIMEOUT_SQLSTATES = {"57014"}  # query_canceled (statement_timeout)
_PERMISSION_SQLSTATES = {"42501"}  # insufficient_privilege
# Connection exception, operator intervention (shutdown, terminated backend), insufficient
# resources, system error, internal error: the session or server failed, not the statement.
_SESSION_CLASSES = ("08", "57P", "53", "58", "XX")
_MYSQL_READ_ONLY = {1792, 1290}  # read-only transaction; server running with --read-only
_MYSQL_TIMEOUT = {1969, 3024}  # MariaDB max_statement_time; MySQL max_execution_time
_MYSQL_PERMISSION = {1044, 1142, 1143, 1227, 1370}


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MAX else line[: _MAX - 3] + "..."


def _message(exc: BaseException) -> str:
    primary = getattr(getattr(exc, "diag", None), "message_primary", None)  # psycopg
    if isinstance(primary, str) and primary:
        return primary
    args = exc.args
    if len(args) >= 2 and isinstance(args[0], int) and isinstance(args[1], str):
        return args[1]  # PyMySQL (errno, message)
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _mysql_errno(exc: BaseException) -> int | None:
    args = exc.args
    if args and isinstance(args[0], int) and type(exc).__module__.startswith("pymysql"):
        return args[0]
    return None


def _refusal(adapter: SqlAdapter, exc: BaseException) -> str | None:
    """The adapter's ``statement_refusal`` verdict (``StatementRefusal``), if it has one."""
    if not hasattr(adapter, "statement_refusal"):
        return None
    return cast(StatementRefusal, adapter).statement_refusal(exc)


def translate(
    exc: BaseException, adapter: SqlAdapter, *, timeout_s: float, secrets: Iterable[str] = ()
) -> ConnhubError:
    """The error to raise for ``exc`` (see the module docstring for the mapping)."""
    if isinstance(exc, ConnhubError):
        return exc
    detail = _one_line(redact(_message(exc), tuple(secrets)))
    timeout = UpstreamError(
        f"The statement ran longer than {timeout_s:g} s and was cancelled", code=ErrorCode.TIMEOUT
    )
    if isinstance(exc, TimeoutError):
        return timeout
    raw_state = getattr(exc, "sqlstate", None)
    sqlstate = raw_state if isinstance(raw_state, str) else ""
    errno = _mysql_errno(exc)
    if sqlstate in _READ_ONLY_SQLSTATES or errno in _MYSQL_READ_ONLY:
        return QueryRefused(f"The database refused to write: {detail}", code=NOT_READ_ONLY)
    if sqlstate in _TIMEOUT_SQLSTATES or errno in _MYSQL_TIMEOUT:
        return timeout
    refusal = _refusal(adapter, exc)
    if (
        sqlstate in _PERMISSION_SQLSTATES
        or errno in _MYSQL_PERMISSION
        or refusal == ErrorCode.PERMISSION_DENIED
    ):
        return BadRequest(f"Permission denied: {detail}", code=ErrorCode.PERMISSION_DENIED)
    server_answered = (len(sqlstate) == 5 and not sqlstate.startswith(_SESSION_CLASSES)) or (
        errno is not None and errno < 2000
    )
    if server_answered or refusal == "query_failed":
        return BadRequest(f"The database rejected the statement: {detail}", code="query_failed")
    try:
        code = ErrorCode.coerce(adapter.classify(exc))
    except Exception:
        code = ErrorCode.PROVIDER_ERROR
    return UpstreamError(f"The database connection failed: {detail}", code=code)
