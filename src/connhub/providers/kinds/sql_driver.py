"""The seam between the SQL kind and one database engine.

Each SQL provider has one small adapter in ``providers/custom/<provider>.py`` exposing a
module-level ``ADAPTER`` that satisfies :class:`SqlAdapter`. The SQL kind
(``providers/kinds/sql.py``) owns the steps, the budget and the egress policy; the adapter
only knows how to open a DB-API connection, which statements prove permissions, and how to
map the driver's exceptions to our error codes. Adapters are blocking: the kind calls them in
worker threads.

An adapter whose driver can log in without blocking may also satisfy :class:`LoopLogin`; the
verification then logs in and checks on the event loop, with no thread hand-off (see there).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class ConnectTarget:
    """Where the connectivity step must open TCP (after the egress check)."""

    host: str
    port: int


@dataclass(frozen=True)
class ConnectRequest:
    """Everything an adapter needs to open one session.

    ``address`` is the IP the egress policy resolved and checked for ``target.host``; adapters
    connect to it (not to the name) wherever the driver allows, so there is no second lookup.
    ``timeout_s`` is what is left of the verification budget (or the query timeout).
    """

    config: Mapping[str, Any]
    credentials: Mapping[str, str]
    target: ConnectTarget | None
    address: str | None
    timeout_s: float
    read_only: bool = False


def is_ipv6(text: str) -> bool:
    """Whether ``text`` is an IPv6 literal (so its colons are not a ``host:port`` separator)."""
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def url_host(name: str) -> str:
    """A host (or checked address) as spliced into ``scheme://host:port``: IPv6 in brackets.

    Without the brackets a URL parser reads the last group of an IPv6 literal as the port, so
    the driver would dial somewhere other than the address the egress policy checked.
    """
    return f"[{name}]" if is_ipv6(name) else name


class SqlAdapter(Protocol):
    name: str
    dialect: str  # sqlglot dialect name
    driver_module: str  # imported lazily; the registry gives an install hint when missing

    def target(self, config: Mapping[str, Any]) -> ConnectTarget | None:
        """Host/port for the connectivity step; ``None`` for HTTPS APIs reached by the driver."""

    def validate_options(self, config: Mapping[str, Any]) -> None:
        """Raise ``errors.BadRequest(code="invalid_config")`` for dangerous driver options."""

    def connect(self, request: ConnectRequest) -> Any:
        """Open a DB-API connection (blocking, honours ``request.timeout_s``)."""

    def permission_checks(self, conn: Any, config: Mapping[str, Any]) -> str:
        """Run ``SELECT 1`` in the configured scope plus provider checks; return a message."""

    def classify(self, exc: BaseException) -> str:
        """Map a driver exception to a verification error code (see verification/codes)."""


class StatementRefusal(Protocol):
    """Optional, for drivers whose errors carry no SQLSTATE (HTTP APIs such as BigQuery)."""

    def statement_refusal(self, exc: BaseException) -> str | None:
        """``"query_failed"`` or ``"permission_denied"`` when the database answered and
        refused the statement itself (the caller's SQL or rights), else ``None``."""


class LoopLogin(Protocol):
    """Optional: a verification login that runs on the event loop instead of a worker thread.

    Each hand-off to a worker thread and back costs more than the ``SELECT 1`` it carries
    (about 0.3 ms each way on a lightly loaded VM, a tenth of a loopback login). A driver with
    a non-blocking login (psycopg's ``AsyncConnection``, on libpq's own non-blocking connect)
    needs neither. Its CPU work (TLS, SCRAM) runs on the loop, as asyncpg's does for our own
    store. ``login_on_loop`` says when that holds: a setting that makes the driver read files
    or do other blocking work at login (e.g. a system trust store) keeps the thread path.
    """

    def login_on_loop(self, config: Mapping[str, Any]) -> bool:
        """Whether a login with this config never blocks the event loop."""

    async def connect_async(self, request: ConnectRequest) -> Any:
        """Open a session without blocking (honours ``request.timeout_s``)."""

    async def permission_checks_async(self, conn: Any, config: Mapping[str, Any]) -> str:
        """The same checks as ``permission_checks``, on a session from ``connect_async``."""

    async def close_async(self, conn: Any) -> None:
        """Close a session from ``connect_async``; never raises."""
